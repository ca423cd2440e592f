// CUDA kernel benchmarks: the same passes as bench_kernels_cpu.cpp through the cuda:: launchers, timed with
// events around the launches on the benchmark's stream after a warm-up, with the ceilings sgemm 8192^3
// through cuda::gemm and a 1 GiB device-to-device copy.
//
// The kernel context is built here as the engine builds its own (engine/src/cuda/runtime.cpp): a
// non-blocking stream, a cuBLAS handle bound to it and a 256 MiB workspace, so the convolutions process
// as many images per GEMM as they do in training.
#include <benchmark/benchmark.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "adam.h"
#include "bce.h"
#include "cuda/check.h"
#include "cuda_context.h"
#include "cudagan/core/device.h"
#include "gemm.h"
#include "kernel_benches.h"

namespace cudagan::bench {

namespace {

constexpr int kGemmSize = 8192;
constexpr size_t kCopyBytes = size_t(1) << 30;
constexpr size_t kWorkspaceBytes = size_t(256) << 20;  // as the engine's
constexpr int kWarmupLaunches = 3;

// Process-lifetime stream, handle, workspace and timing events (never destroyed: tearing CUDA objects
// down during static destruction races the driver's own shutdown).
struct Context {
  cuda::KernelContext kc;
  cudaEvent_t start = nullptr, stop = nullptr;
};
bool g_allow_tf32 = false;

const Context& context() {
  static const Context* c = [] {
    auto* r = new Context;
    cudaStream_t stream = nullptr;
    cublasHandle_t handle = nullptr;
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasCreate(&handle));
    CUBLAS_CHECK(cublasSetStream(handle, stream));
    CUDA_CHECK(cudaMalloc(&r->kc.workspace, kWorkspaceBytes));
    r->kc.stream = stream;
    r->kc.cublas = handle;
    r->kc.workspace_bytes = kWorkspaceBytes;
    r->kc.allow_tf32 = g_allow_tf32;
    CUDA_CHECK(cudaEventCreate(&r->start));
    CUDA_CHECK(cudaEventCreate(&r->stop));
    return r;
  }();
  return *c;
}

// Device buffers of one launch, freed when the launch closure goes.
struct Buffers {
  std::vector<float*> v;
  Buffers() = default;
  Buffers(const Buffers&) = delete;
  Buffers& operator=(const Buffers&) = delete;
  ~Buffers() {
    for (float* p : v) cudaFree(p);  // no throw from a destructor
  }
  // The copies and memsets run on the legacy default stream, which the benchmark's non-blocking stream does
  // not wait for: synchronize, so no launch reads a buffer still being filled.
  float* add(int64_t n, float lo, float hi) {
    const size_t count = size_t(std::max<int64_t>(n, 1)), bytes = count * sizeof(float);
    float* p = nullptr;
    CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p), bytes));
    v.push_back(p);
    if (lo == 0 && hi == 0) {
      CUDA_CHECK(cudaMemset(p, 0, bytes));
    } else {
      HostFloats host = host_floats(int64_t(count));
      fill_uniform(host.get(), int64_t(count), lo, hi, uint32_t(v.size()));
      CUDA_CHECK(cudaMemcpy(p, host.get(), bytes, cudaMemcpyHostToDevice));
    }
    CUDA_CHECK(cudaDeviceSynchronize());
    return p;
  }
};

// Seconds of device time for one launch, between events on the benchmark's stream.
double time_once(const Launch& launch) {
  const Context& c = context();
  CUDA_CHECK(cudaEventRecord(c.start, c.kc.stream));
  launch();
  CUDA_CHECK(cudaEventRecord(c.stop, c.kc.stream));
  CUDA_CHECK(cudaEventSynchronize(c.stop));
  float ms = 0;
  CUDA_CHECK(cudaEventElapsedTime(&ms, c.start, c.stop));
  return double(ms) * 1e-3;
}

void warm_up(const Launch& launch) {
  for (int i = 0; i < kWarmupLaunches; ++i) launch();
  CUDA_CHECK(cudaStreamSynchronize(context().kc.stream));
}

Launch gemm_launch(int n) {
  auto b = std::make_shared<Buffers>();
  const int64_t e = int64_t(n) * n;
  float *a = b->add(e, -1, 1), *x = b->add(e, -1, 1), *c = b->add(e, 0, 0);
  return owning(
      b, [n, a, x, c] { cuda::gemm(context().kc, false, false, n, n, n, 1.f, a, n, x, n, 0.f, c, n); });
}

Launch copy_launch() {
  auto b = std::make_shared<Buffers>();
  const int64_t e = int64_t(kCopyBytes / sizeof(float));
  float *src = b->add(e, -1, 1), *dst = b->add(e, 0, 0);
  return owning(b, [src, dst] {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, kCopyBytes, cudaMemcpyDeviceToDevice, context().kc.stream));
  });
}

double best_rate(const Launch& launch, double work) {
  warm_up(launch);
  double best = 0;
  for (int i = 0; i < 3; ++i) best = std::max(best, work / time_once(launch));
  return best;
}

const Ceilings& cuda_ceilings() {
  static const Ceilings c = [] {
    Ceilings r;
    r.gemm_flops_per_s = best_rate(gemm_launch(kGemmSize), 2.0 * kGemmSize * kGemmSize * double(kGemmSize));
    r.copy_bytes_per_s = best_rate(copy_launch(), 2.0 * double(kCopyBytes));  // read + write
    return r;
  }();
  return c;
}

void add(const std::string& name, const Cost& cost, Setup setup) {
  benchmark::RegisterBenchmark(("cuda/" + name).c_str(),
                               [cost, setup](benchmark::State& state) {
                                 try {
                                   const Ceilings ceil = cuda_ceilings();
                                   const Launch launch = setup();
                                   warm_up(launch);
                                   double total = 0;
                                   for (auto _ : state) {
                                     const double s = time_once(launch);
                                     state.SetIterationTime(s);
                                     total += s;
                                   }
                                   set_counters(state, cost, total, ceil);
                                 } catch (const std::exception& e) {
                                   state.SkipWithError(e.what());
                                 }
                               })
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
}

Launch conv_launch(const Layer& l, ConvKernel k) {
  auto b = std::make_shared<Buffers>();
  const ConvGeometry g = l.conv;
  float* in = b->add(g.input_elems(), -1, 1);
  float* out = b->add(g.output_elems(), -1, 1);
  float* w = b->add(g.weight_elems(), -0.03f, 0.03f);
  switch (k) {
    case ConvKernel::forward:
      return owning(b, [g, in, out, w] { cuda::conv2d_forward(context().kc, g, in, w, out); });
    case ConvKernel::backward_data:
      return owning(b, [g, in, out, w] { cuda::conv2d_backward_data(context().kc, g, out, w, in); });
    case ConvKernel::backward_weight:
      break;
  }
  return owning(b, [g, in, out, w] { cuda::conv2d_backward_weight(context().kc, g, in, out, w); });
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
    cuda::batch_norm_forward_train(context().kc, g, x, gamma, beta, 1e-5f, 0.1f, y, mean, invstd, run_mean,
                                   run_var);
  });
  if (!backward) return forward;
  forward();  // the saved statistics the backward pass reads
  return owning(b, [=] {
    cuda::batch_norm_backward_train(context().kc, g, x, dy, gamma, mean, invstd, dx, dgamma, dbeta);
  });
}

Launch activation_launch(const Layer& l, bool backward) {
  auto b = std::make_shared<Buffers>();
  const int64_t n = l.elems;
  const Activation a = l.act;
  const float slope = l.slope;
  float *x = b->add(n, -2, 2), *y = b->add(n, 0, 0), *dy = b->add(n, -1, 1), *dx = b->add(n, 0, 0);
  const Launch forward = owning(b, [=] { cuda::activation_forward(context().kc, a, x, y, n, slope); });
  if (!backward) return forward;
  forward();  // tanh's backward reads y
  return owning(b, [=] { cuda::activation_backward(context().kc, a, x, y, dy, dx, n, slope); });
}

Launch bce_launch(int64_t n, bool backward) {
  auto b = std::make_shared<Buffers>();
  float *logits = b->add(n, -3, 3), *targets = b->add(n, 1, 1), *loss = b->add(1, 0, 0);
  float* dlogits = b->add(n, 0, 0);
  if (!backward)
    return owning(b, [=] { cuda::bce_with_logits_forward(context().kc, logits, targets, n, loss); });
  return owning(b, [=] { cuda::bce_with_logits_backward(context().kc, logits, targets, n, 1.f, dlogits); });
}

// Adam as optim::Adam runs it on a GPU: one fused launch over every parameter tensor of a network.
Launch adam_launch(const std::vector<int64_t>& sizes) {
  auto b = std::make_shared<Buffers>();
  std::vector<AdamSegment> segments;
  for (int64_t n : sizes)
    segments.push_back(
        {b->add(n, -0.1f, 0.1f), b->add(n, -0.01f, 0.01f), b->add(n, 0, 0), b->add(n, 0, 0), n});
  auto step = std::make_shared<int64_t>(0);
  return owning(b, [segments, step] {
    AdamHyper h;
    h.lr = 2e-4;
    h.beta1 = 0.5;
    h.step = ++*step;
    cuda::adam_step_multi(context().kc, h, segments.data(), int(segments.size()));
  });
}

}  // namespace

void register_cuda_benchmarks(const Network& net, bool allow_tf32) {
  if (!cuda_available()) {
    std::fprintf(stderr, "CUDA: no GPU is visible; cuda/ benchmarks skipped\n");
    return;
  }
  g_allow_tf32 = allow_tf32;
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
}

}  // namespace cudagan::bench
