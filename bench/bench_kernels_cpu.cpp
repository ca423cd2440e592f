// CPU kernel benchmarks: every DCGAN layer pass through the raw cpu:: kernels, the fused loss, Adam over
// each network's parameters, and the two ceilings (sgemm 2048^3 through cpu::gemm, a 256 MiB memcpy).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "adam.h"
#include "bce.h"
#include "conv.h"
#include "cpu/conv_implicit.h"
#include "cpu/isa.h"
#include "gemm.h"
#include "kernel_benches.h"

namespace cudagan::bench {

namespace {

constexpr int kGemmSize = 2048;
constexpr int64_t kCopyBytes = int64_t(256) << 20;

// Buffers shared by a launch closure (std::function needs copyable captures).
struct Buffers {
  std::vector<HostFloats> v;
  float* add(int64_t n, float lo, float hi) {
    v.push_back(host_floats(n));
    fill_uniform(v.back().get(), n, lo, hi, uint32_t(v.size()));
    return v.back().get();
  }
};

Launch gemm_launch(int n) {
  auto b = std::make_shared<Buffers>();
  const int64_t e = int64_t(n) * n;
  float *a = b->add(e, -1, 1), *x = b->add(e, -1, 1), *c = b->add(e, 0, 0);
  return owning(b, [n, a, x, c] { cpu::gemm<float>(false, false, n, n, n, 1.f, a, n, x, n, 0.f, c, n); });
}

Launch copy_launch() {
  auto b = std::make_shared<Buffers>();
  const int64_t e = kCopyBytes / int64_t(sizeof(float));
  float *src = b->add(e, -1, 1), *dst = b->add(e, 0, 0);
  return owning(b, [src, dst] { std::memcpy(dst, src, size_t(kCopyBytes)); });
}

// The best of ten timed runs after a warm-up, measured once per process when a benchmark first asks: on a
// shared 2-core machine single sgemm runs vary from 125 to 175 GFLOP/s, and a low ceiling would flatter
// every layer (about 1.5 s in all).
double best_rate(const Launch& launch, double work) {
  launch();
  double best = 0;
  for (int i = 0; i < 10; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    launch();
    best = std::max(best, work / seconds_since(t0));
  }
  return best;
}

const Ceilings& cpu_ceilings() {
  static const Ceilings c = [] {
    Ceilings r;
    r.gemm_flops_per_s = best_rate(gemm_launch(kGemmSize), 2.0 * kGemmSize * kGemmSize * double(kGemmSize));
    r.copy_bytes_per_s = best_rate(copy_launch(), 2.0 * double(kCopyBytes));  // read + write
    return r;
  }();
  return c;
}

void add(const std::string& name, const Cost& cost, Setup setup) {
  benchmark::RegisterBenchmark(("cpu/" + name).c_str(),
                               [cost, setup](benchmark::State& state) {
                                 try {
                                   const Ceilings ceil = cpu_ceilings();
                                   const Launch launch = setup();
                                   set_counters(state, cost, time_host_loop(state, launch), ceil);
                                 } catch (const std::exception& e) {
                                   state.SkipWithError(e.what());
                                 }
                               })
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
}

// How a conv pass is computed: as cpu::conv2d_* choose (the layer benchmarks), or forced onto one
// implementation (the per-path comparison).
enum class ConvPath { dispatch, im2col, implicit };

// The three conv kernels on one geometry: a is the convolution's input side, b its output side.
Launch conv_path_launch(const Layer& l, ConvKernel k, ConvPath path, cpu::Isa isa) {
  auto b = std::make_shared<Buffers>();
  const ConvGeometry g = l.conv;
  float* in = b->add(g.input_elems(), -1, 1);
  float* out = b->add(g.output_elems(), -1, 1);
  float* w = b->add(g.weight_elems(), -0.03f, 0.03f);
  switch (k) {
    case ConvKernel::forward:
      if (path == ConvPath::im2col)
        return owning(b, [g, in, out, w] { cpu::conv2d_forward_im2col<float>(g, in, w, out); });
      if (path == ConvPath::implicit)
        return owning(b, [g, in, out, w, isa] { cpu::conv2d_forward_implicit(g, in, w, out, isa); });
      return owning(b, [g, in, out, w] { cpu::conv2d_forward<float>(g, in, w, out); });
    case ConvKernel::backward_data:
      if (path == ConvPath::im2col)
        return owning(b, [g, in, out, w] { cpu::conv2d_backward_data_im2col<float>(g, out, w, in); });
      if (path == ConvPath::implicit)
        return owning(b, [g, in, out, w, isa] { cpu::conv2d_backward_data_implicit(g, out, w, in, isa); });
      return owning(b, [g, in, out, w] { cpu::conv2d_backward_data<float>(g, out, w, in); });
    case ConvKernel::backward_weight:
      break;
  }
  if (path == ConvPath::im2col)
    return owning(b, [g, in, out, w] { cpu::conv2d_backward_weight_im2col<float>(g, in, out, w); });
  if (path == ConvPath::implicit)
    return owning(b, [g, in, out, w, isa] { cpu::conv2d_backward_weight_implicit(g, in, out, w, isa); });
  return owning(b, [g, in, out, w] { cpu::conv2d_backward_weight<float>(g, in, out, w); });
}

Launch conv_launch(const Layer& l, ConvKernel k) { return conv_path_launch(l, k, ConvPath::dispatch, cpu::Isa::generic); }

// Every conv pass of the network on each implementation, next to each other: im2col + BLAS, and the implicit
// GEMM with each instruction set's micro-kernel this CPU has ("cpu/D.conv2/forward/im2col",
// ".../implicit_avx512"). This is the measurement behind conv.cpp's choice of implementation per geometry.
void register_conv_paths(const std::vector<Layer>& layers) {
  for (const Layer& l : layers) {
    if (l.kind != Layer::Kind::conv && l.kind != Layer::Kind::conv_transpose) continue;
    for (const PassSpec& p : layer_passes(l)) {
      const ConvKernel k = conv_kernel(l, p.name);
      const std::string base = l.name + "/" + p.name + "/";
      add(base + "im2col", p.cost, [l, k] { return conv_path_launch(l, k, ConvPath::im2col, cpu::Isa::generic); });
      for (cpu::Isa isa : cpu::supported_isas())
        add(base + "implicit_" + cpu::isa_name(isa), p.cost,
            [l, k, isa] { return conv_path_launch(l, k, ConvPath::implicit, isa); });
    }
  }
}

Launch norm_launch(const Layer& l, bool backward) {
  auto b = std::make_shared<Buffers>();
  const BatchNormGeometry g = l.norm;
  const int64_t c = g.channels;
  float *x = b->add(g.elems(), -1, 1), *y = b->add(g.elems(), 0, 0), *dy = b->add(g.elems(), -1, 1);
  float *gamma = b->add(c, 1, 1), *beta = b->add(c, 0, 0), *mean = b->add(c, 0, 0), *invstd = b->add(c, 0, 0);
  float *run_mean = b->add(c, 0, 0), *run_var = b->add(c, 1, 1), *dgamma = b->add(c, 0, 0);
  float *dbeta = b->add(c, 0, 0), *dx = b->add(g.elems(), 0, 0);
  const Launch forward = owning(b, [=] {
    cpu::batch_norm_forward_train<float>(g, x, gamma, beta, 1e-5f, 0.1f, y, mean, invstd, run_mean, run_var);
  });
  if (!backward) return forward;
  forward();  // the saved statistics the backward pass reads
  return owning(
      b, [=] { cpu::batch_norm_backward_train<float>(g, x, dy, gamma, mean, invstd, dx, dgamma, dbeta); });
}

Launch activation_launch(const Layer& l, bool backward) {
  auto b = std::make_shared<Buffers>();
  const int64_t n = l.elems;
  const Activation a = l.act;
  const float slope = l.slope;
  float *x = b->add(n, -2, 2), *y = b->add(n, 0, 0), *dy = b->add(n, -1, 1), *dx = b->add(n, 0, 0);
  cpu::activation_forward<float>(a, x, y, n, slope);
  if (!backward) return owning(b, [=] { cpu::activation_forward<float>(a, x, y, n, slope); });
  return owning(b, [=] { cpu::activation_backward<float>(a, x, y, dy, dx, n, slope); });
}

Launch bce_launch(int64_t n, bool backward) {
  auto b = std::make_shared<Buffers>();
  float *logits = b->add(n, -3, 3), *targets = b->add(n, 1, 1), *loss = b->add(1, 0, 0);
  float* dlogits = b->add(n, 0, 0);
  if (!backward) return owning(b, [=] { cpu::bce_with_logits_forward<float>(logits, targets, n, loss); });
  return owning(b, [=] { cpu::bce_with_logits_backward<float>(logits, targets, n, 1.f, dlogits); });
}

// Adam as optim::Adam runs it on the CPU: one fused pass per parameter tensor.
Launch adam_launch(const std::vector<int64_t>& sizes) {
  auto b = std::make_shared<Buffers>();
  struct Tensor4 {
    float *p, *g, *m, *v;
    int64_t n;
  };
  std::vector<Tensor4> ts;
  for (int64_t n : sizes)
    ts.push_back({b->add(n, -0.1f, 0.1f), b->add(n, -0.01f, 0.01f), b->add(n, 0, 0), b->add(n, 0, 0), n});
  auto step = std::make_shared<int64_t>(0);
  return owning(b, [ts, step] {
    AdamHyper h;
    h.lr = 2e-4;
    h.beta1 = 0.5;
    h.step = ++*step;
    for (const Tensor4& t : ts) cpu::adam_step<float>(h, t.p, t.g, t.m, t.v, t.n);
  });
}

}  // namespace

void register_cpu_benchmarks(const Network& net) {
  static const Backend backend = [] {
    Backend b;
    b.gemm_size = kGemmSize;
    b.copy_bytes = double(kCopyBytes);
    b.add = add;
    b.gemm = gemm_launch;
    b.copy = copy_launch;
    b.conv = conv_launch;
    b.norm = norm_launch;
    b.activation = activation_launch;
    b.bce = bce_launch;
    b.adam = adam_launch;
    return b;
  }();
  register_network(net, backend);
  register_conv_paths(net.generator);
  register_conv_paths(net.discriminator);
}

}  // namespace cudagan::bench
