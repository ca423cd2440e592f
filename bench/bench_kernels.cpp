// bench_kernels: per-layer throughput of DCGAN-64 (batch 128, nz 100, ngf = ndf = 64, RGB) through the raw
// kernels, each pass on its own, on the CPU and (when a GPU is visible) CUDA. Every figure comes with its
// fraction of ceilings measured in the same run: of_gemm_peak (the backend's GEMM on a large square
// problem) and of_copy_bw (a large copy).
//
//   bench_kernels --benchmark_filter=cpu/D.conv      one network's convolutions on the CPU
//   bench_kernels --net=dcgan32_1ch_b64              another configuration (bench_train_step's names:
//                                                    dcgan<image size>_<channels>ch_b<batch>, ngf = ndf = 64)
//   CUDAGAN_TF32=1 bench_kernels                     TF32 GEMMs on the GPU (the ceiling too)
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <exception>

#include "cudagan/runtime/blas.h"
#include "cudagan/core/device.h"
#include "kernel_benches.h"

namespace {

// Takes --net=dcgan<S>_<C>ch_b<N> out of argv (Google Benchmark rejects flags it does not know) into `net`.
bool parse_net(int& argc, char** argv, cudagan::bench::NetConfig& net) {
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--net=", 6) != 0) {
      argv[out++] = argv[i];
      continue;
    }
    int size = 0, channels = 0, batch = 0, used = 0;
    const char* value = argv[i] + 6;
    if (std::sscanf(value, "dcgan%d_%dch_b%d%n", &size, &channels, &batch, &used) != 3 || value[used] != '\0' ||
        batch < 1 || batch > 4096) {
      std::fprintf(stderr, "bench_kernels: %s: expected a configuration like --net=dcgan32_1ch_b64\n", argv[i]);
      return false;
    }
    net.arch.image_size = size;
    net.arch.channels = channels;
    net.batch = batch;
    try {
      cudagan::dcgan::validate(net.arch);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench_kernels: %s: %s\n", argv[i], e.what());
      return false;
    }
  }
  argc = out;
  argv[argc] = nullptr;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  // Before anything starts a thread: may re-execute the program with a faster OpenBLAS kernel set.
  cudagan::blas::ensure_fast_kernels(argc, argv);
  const std::string blas = cudagan::blas::describe();
  std::fprintf(stderr, "BLAS: %s\n", blas.c_str());
  benchmark::AddCustomContext("blas", blas);
  const std::string cpu_kernels = cudagan::blas::describe_cpu_kernels();
  std::fprintf(stderr, "CPU conv kernels: %s\n", cpu_kernels.c_str());
  benchmark::AddCustomContext("cpu_kernels", cpu_kernels);  // into the JSON output as well

  using namespace cudagan::bench;
  NetConfig config;
  if (!parse_net(argc, argv, config)) return 2;
  benchmark::AddCustomContext("net", "dcgan" + std::to_string(config.arch.image_size) + "_" +
                                         std::to_string(config.arch.channels) + "ch_b" + std::to_string(config.batch));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  const Network net = dcgan_network(config);
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
