// bench_kernels: per-layer throughput of DCGAN-64 (batch 128, nz 100, ngf = ndf = 64, RGB) through the raw
// kernels, each pass on its own, on the CPU and (when a GPU is visible) CUDA. Every figure comes with its
// fraction of ceilings measured in the same run: of_gemm_peak (the backend's GEMM on a large square
// problem) and of_copy_bw (a large copy).
//
//   bench_kernels --benchmark_filter=cpu/D.conv      one network's convolutions on the CPU
//   CUDAGAN_TF32=1 bench_kernels                     TF32 GEMMs on the GPU (the ceiling too)
#include <benchmark/benchmark.h>

#include <cstdio>

#include "cudagan/runtime/blas.h"
#include "cudagan/core/device.h"
#include "kernel_benches.h"

int main(int argc, char** argv) {
  // Before anything starts a thread: may re-execute the program with a faster OpenBLAS kernel set.
  cudagan::blas::ensure_fast_kernels(argc, argv);
  const std::string blas = cudagan::blas::describe();
  std::fprintf(stderr, "BLAS: %s\n", blas.c_str());
  benchmark::AddCustomContext("blas", blas);
  const std::string cpu_kernels = cudagan::blas::describe_cpu_kernels();
  std::fprintf(stderr, "CPU conv kernels: %s\n", cpu_kernels.c_str());
  benchmark::AddCustomContext("cpu_kernels", cpu_kernels);  // into the JSON output as well

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  using namespace cudagan::bench;
  const Network net = dcgan_network(NetConfig{});
  register_cpu_benchmarks(net);
#if CUDAGAN_HAVE_CUDA
  const bool tf32 = env_flag("CUDAGAN_TF32");
  benchmark::AddCustomContext("cuda_math", tf32 ? "tf32" : "fp32");
  register_cuda_benchmarks(net, tf32);
#else
  std::fprintf(stderr, "CUDA: this build has no CUDA backend; cuda/ benchmarks not built\n");
#endif
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
