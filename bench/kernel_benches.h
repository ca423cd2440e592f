// Registration of the per-layer kernel benchmarks. Names are "<backend>/<network>.<layer><position>/<pass>"
// ("cpu/G.convT3/forward", "cuda/D.bn2/backward"), plus "<backend>/ceiling/..." for the GEMM and copy
// ceilings every other figure is a fraction of. Each backend supplies how to build a launch for each kind
// of layer; what is registered, under which name and with which cost, is decided once, here.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dcgan_layers.h"

namespace cudagan::bench {

using Launch = std::function<void()>;
// Allocates and fills a pass's buffers and returns the launch that owns them. Runs at the start of every
// benchmark invocation, outside the timed loop.
using Setup = std::function<Launch()>;

// A launch that keeps `owner` (the buffers it works on) alive for as long as it exists.
template <class Owner, class F>
Launch owning(std::shared_ptr<Owner> owner, F f) {
  return [owner = std::move(owner), f = std::move(f)] { f(); };
}

struct Backend {
  int gemm_size = 0;      // the square sgemm ceiling
  double copy_bytes = 0;  // the copy ceiling
  std::function<void(const std::string& name, const Cost& cost, Setup setup)> add;  // registers one
  std::function<Launch(int n)> gemm;
  std::function<Launch()> copy;
  std::function<Launch(const Layer&, ConvKernel)> conv;
  std::function<Launch(const Layer&, bool backward)> norm, activation;
  std::function<Launch(int64_t n, bool backward)> bce;
  std::function<Launch(const std::vector<int64_t>& sizes)> adam;  // one step over these tensors
};

// Ceilings first (so they are measured before anything else runs), then G and D layer by layer in
// forward order, the loss and the two optimizers.
void register_network(const Network& net, const Backend& b);

void register_cpu_benchmarks(const Network& net);
#if CUDAGAN_HAVE_CUDA
// Registers nothing (and says so on stderr) when no GPU is visible. allow_tf32: TF32 GEMMs for every
// kernel and for the GEMM ceiling alike.
void register_cuda_benchmarks(const Network& net, bool allow_tf32);
#endif

}  // namespace cudagan::bench
