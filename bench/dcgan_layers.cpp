#include "dcgan_layers.h"

namespace cudagan::bench {

namespace {

// DCGAN's square 4x4 convolutions.
ConvGeometry dcgan_conv(int batch, int in_c, int in_s, int out_c, int stride, int pad) {
  return conv_geometry(batch, in_c, in_s, in_s, out_c, 4, 4, stride, stride, pad, pad);
}

Layer conv_layer(std::string name, const ConvGeometry& g, Layer::Kind kind) {
  Layer l;
  l.name = std::move(name);
  l.kind = kind;
  l.conv = g;
  return l;
}

Layer norm_layer(std::string name, int batch, int channels, int size) {
  Layer l;
  l.name = std::move(name);
  l.kind = Layer::Kind::batch_norm;
  l.norm.batch = batch;
  l.norm.channels = channels;
  l.norm.spatial = int64_t(size) * size;
  return l;
}

Layer act_layer(std::string name, Activation a, int64_t elems, float slope) {
  Layer l;
  l.name = std::move(name);
  l.kind = Layer::Kind::activation;
  l.act = a;
  l.elems = elems;
  l.slope = slope;
  return l;
}

}  // namespace

Network dcgan_network(const NetConfig& config) {
  const dcgan::Architecture& c = config.arch;
  dcgan::validate(c);
  Network net;
  net.batch = config.batch;
  const int n = config.batch;
  const int layers = dcgan::upsampling_layers(c.image_size);

  // Generator: z [n, nz, 1, 1] -> ConvT(4,1,0) 4x4 -> [ConvT(4,2,1) doubling]* -> image.
  int width = c.ngf << (layers - 1), size = 4;
  for (int i = 1; i <= layers + 1; ++i) {
    const bool first = i == 1, last = i == layers + 1;
    const int in_c = first ? c.nz : width, out_c = first ? width : last ? c.channels : width / 2;
    const int in_s = first ? 1 : size, out_s = first ? 4 : size * 2;
    const std::string pos = std::to_string(i);
    net.generator.push_back(conv_layer("G.convT" + pos,
                                       transpose_geometry(n, in_c, in_s, in_s, out_c, 4, 4, first ? 1 : 2,
                                                          first ? 1 : 2, first ? 0 : 1, first ? 0 : 1),
                                       Layer::Kind::conv_transpose));
    net.generator_params.push_back(int64_t(in_c) * out_c * 16);
    const int64_t elems = int64_t(n) * out_c * out_s * out_s;
    if (last) {
      net.generator.push_back(act_layer("G.tanh" + pos, Activation::tanh, elems, 0));
    } else {
      net.generator.push_back(norm_layer("G.bn" + pos, n, out_c, out_s));
      net.generator.push_back(act_layer("G.relu" + pos, Activation::relu, elems, 0));
      net.generator_params.insert(net.generator_params.end(), {out_c, out_c});
      width = out_c;
    }
    size = out_s;
  }

  // Discriminator: image -> Conv(4,2,1) halving, widths ndf ... -> Conv(4,1,0) 4x4 -> 1x1 logit.
  width = c.ndf;
  size = c.image_size;
  int in_c = c.channels;
  for (int i = 1; i <= layers + 1; ++i) {
    const bool first = i == 1, last = i == layers + 1;
    const int out_c = last ? 1 : width;
    const std::string pos = std::to_string(i);
    net.discriminator.push_back(conv_layer(
        "D.conv" + pos, dcgan_conv(n, in_c, size, out_c, last ? 1 : 2, last ? 0 : 1), Layer::Kind::conv));
    net.discriminator_params.push_back(int64_t(in_c) * out_c * 16);
    if (last) break;
    size /= 2;
    if (!first) {
      net.discriminator.push_back(norm_layer("D.bn" + pos, n, out_c, size));
      net.discriminator_params.insert(net.discriminator_params.end(), {out_c, out_c});
    }
    net.discriminator.push_back(
        act_layer("D.leaky_relu" + pos, Activation::leaky_relu, int64_t(n) * out_c * size * size, 0.2f));
    in_c = out_c;
    width *= 2;
  }
  return net;
}

std::vector<PassSpec> layer_passes(const Layer& l) {
  constexpr double f = sizeof(float);
  switch (l.kind) {
    case Layer::Kind::conv:
    case Layer::Kind::conv_transpose: {
      // Every pass reads two of {input, weight, output} and writes the third: the same bytes and FLOPs.
      const Cost c{l.conv.flops(),
                   f * double(l.conv.input_elems() + l.conv.weight_elems() + l.conv.output_elems())};
      return {{"forward", c}, {"backward_data", c}, {"backward_weight", c}};
    }
    case Layer::Kind::batch_norm: {
      const double e = double(l.norm.elems());  // per-channel vectors are negligible next to x
      return {{"forward", {0, f * 2 * e}}, {"backward", {0, f * 3 * e}}};  // x -> y;  x, dy -> dx
    }
    case Layer::Kind::activation:
      return {{"forward", {0, f * 2 * double(l.elems)}}, {"backward", {0, f * 3 * double(l.elems)}}};
  }
  return {};
}

ConvKernel conv_kernel(const Layer& l, const std::string& pass) {
  if (pass == "backward_weight") return ConvKernel::backward_weight;
  const bool forward = pass == "forward";
  if (l.kind == Layer::Kind::conv_transpose) return forward ? ConvKernel::backward_data : ConvKernel::forward;
  return forward ? ConvKernel::forward : ConvKernel::backward_data;
}

}  // namespace cudagan::bench
