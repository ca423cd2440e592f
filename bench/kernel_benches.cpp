#include "kernel_benches.h"

namespace cudagan::bench {

namespace {

double total(const std::vector<int64_t>& sizes) {
  double s = 0;
  for (int64_t n : sizes) s += double(n);
  return s;
}

void add_layers(const std::vector<Layer>& layers, const Backend& b) {
  for (const Layer& l : layers) {
    for (const PassSpec& p : layer_passes(l)) {
      const bool backward = p.name != "forward";
      Setup setup;
      switch (l.kind) {
        case Layer::Kind::conv:
        case Layer::Kind::conv_transpose:
          setup = [&b, l, k = conv_kernel(l, p.name)] { return b.conv(l, k); };
          break;
        case Layer::Kind::batch_norm:
          setup = [&b, l, backward] { return b.norm(l, backward); };
          break;
        case Layer::Kind::activation:
          setup = [&b, l, backward] { return b.activation(l, backward); };
          break;
      }
      b.add(l.name + "/" + p.name, p.cost, setup);
    }
  }
}

}  // namespace

void register_network(const Network& net, const Backend& b) {
  const double s = b.gemm_size;
  b.add("ceiling/sgemm_" + std::to_string(b.gemm_size), {2 * s * s * s, 0},
        [&b] { return b.gemm(b.gemm_size); });
  b.add("ceiling/copy", {0, 2 * b.copy_bytes}, [&b] { return b.copy(); });  // read + write
  add_layers(net.generator, b);
  add_layers(net.discriminator, b);
  const int64_t n = net.batch;  // one logit per image; logits and targets in, loss or dlogits out
  b.add("D.bce/forward", {0, 8.0 * double(n)}, [&b, n] { return b.bce(n, false); });
  b.add("D.bce/backward", {0, 12.0 * double(n)}, [&b, n] { return b.bce(n, true); });
  // Adam reads param, grad, m, v and writes param, m, v: 7 floats per parameter.
  b.add("G.adam/step", {0, 28 * total(net.generator_params)},
        [&b, p = net.generator_params] { return b.adam(p); });
  b.add("D.adam/step", {0, 28 * total(net.discriminator_params)},
        [&b, p = net.discriminator_params] { return b.adam(p); });
}

}  // namespace cudagan::bench
