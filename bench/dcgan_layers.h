// Every layer of DCGAN (models/src/dcgan.cpp) with the shapes it runs at, named by network and position
// ("G.convT3", "D.bn2", "D.leaky_relu1"), so the benchmarks can time each one through the raw kernels.
// Built from a dcgan::Architecture by the model's rules (widths ngf * 2^(L-1) ... ngf, 4x4 kernels, stride 2
// pad 1 except the 1x1 <-> 4x4 ends); bench/check_layers.cpp (a CTest) holds the two to the same parameters.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "activation.h"
#include "batchnorm.h"
#include "bench_support.h"
#include "conv.h"
#include "cudagan/dcgan.h"

namespace cudagan::bench {

struct NetConfig {
  dcgan::Architecture arch;  // DCGAN-64 RGB, nz 100, ngf = ndf = 64 by default
  int batch = 128;
};

struct Layer {
  enum class Kind { conv, conv_transpose, batch_norm, activation };
  std::string name;  // "G.convT1", ...
  Kind kind = Kind::conv;
  // conv / conv_transpose: the convolution geometry; for a transposed convolution that is the conv whose
  // backward-data pass it is (conv.h), so its input side is the layer's output.
  ConvGeometry conv;
  BatchNormGeometry norm;             // batch_norm
  Activation act = Activation::relu;  // activation
  int64_t elems = 0;                  // activation: elements
  float slope = 0;                    // leaky_relu
};

struct Network {
  std::vector<Layer> generator, discriminator;  // forward order
  // Parameter tensor sizes in the modules' parameter order (conv weight, then each batchnorm's gamma
  // and beta), as optim::Adam sees them.
  std::vector<int64_t> generator_params, discriminator_params;
  int batch = 0;
};

Network dcgan_network(const NetConfig& c);

// The passes benchmarked per layer: convolutions forward, backward_data and backward_weight (timed
// separately: they are different GEMM shapes), batchnorm and activations forward and backward.
struct PassSpec {
  std::string name;  // "forward", "backward", "backward_data", "backward_weight"
  Cost cost;
};
std::vector<PassSpec> layer_passes(const Layer& l);

// Which of the three convolution kernels (conv.h) runs a pass of a conv / conv_transpose layer: a
// transposed convolution's forward is the conv's backward-data kernel and vice versa.
enum class ConvKernel { forward, backward_data, backward_weight };
ConvKernel conv_kernel(const Layer& l, const std::string& pass);

}  // namespace cudagan::bench
