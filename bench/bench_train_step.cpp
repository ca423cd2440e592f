// bench_train_step: images/s of the whole DCGAN training step (dcgan::train_step: D on a real and a fake
// batch, D's Adam step, G's non-saturating step and G's Adam step) on synthetic images already on the
// device, so data loading is excluded. compare_pytorch.py runs this next to the same step in PyTorch.
//
//   bench_train_step [--warmup=N] [--steps=N] [google benchmark flags]
//     --warmup  untimed steps before timing (default 1 on the CPU, 3 on a GPU)
//     --steps   timed steps (default: as many as --benchmark_min_time needs)
//   CUDAGAN_TF32=1  TF32 tensor-op GEMMs on the GPU (default: exact fp32)
//
// Names: "<device>/dcgan<size>_<channels>ch_b<batch>/train_step". Counters: images_per_s; peak memory as
// peak_gpu_MiB (the engine's allocator: live tensors + workspace, the most held during the timed steps) or,
// on the CPU, peak_rss_MiB (the process's peak resident set since it started, from getrusage: it includes
// anything run earlier in the same process, so filter to one configuration for a clean figure).
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "bench_support.h"
#include "cudagan/runtime/blas.h"
#include "cudagan/core/cuda.h"
#include "cudagan/dcgan.h"

namespace {

using namespace cudagan;

struct StepConfig {
  dcgan::Architecture arch;
  int batch;
  std::string name() const {
    return "dcgan" + std::to_string(arch.image_size) + "_" + std::to_string(arch.channels) + "ch_b" +
           std::to_string(batch);
  }
};

const std::vector<StepConfig> kConfigs = {
    {{64, 3, 100, 64, 64}, 64},   // pytorch/examples/dcgan's default batch
    {{64, 3, 100, 64, 64}, 128},  // the paper's setting (CelebA, LSUN)
    {{32, 1, 100, 64, 64}, 64},   // MNIST-sized
};

struct Options {
  int warmup = -1;  // -1: per-device default
  int steps = 0;    // 0: Google Benchmark decides
};

// Takes --warmup=N and --steps=N out of argv (Google Benchmark rejects flags it does not know).
bool parse_options(int& argc, char** argv, Options& o) {
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    int* target = std::strncmp(a, "--warmup=", 9) == 0  ? &o.warmup
                  : std::strncmp(a, "--steps=", 8) == 0 ? &o.steps
                                                        : nullptr;
    if (!target) {
      argv[out++] = argv[i];
      continue;
    }
    const char* value = std::strchr(a, '=') + 1;
    char* end = nullptr;
    const long v = std::strtol(value, &end, 10);
    if (*value == '\0' || *end != '\0' || v < 0 || v > 1000000) {
      std::fprintf(stderr, "bench_train_step: %s: expected a whole number of steps, e.g. --steps=10\n", a);
      return false;
    }
    *target = int(v);
  }
  argc = out;
  argv[argc] = nullptr;
  return true;
}

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;  // KiB on Linux
}

void train_step_bench(benchmark::State& state, const StepConfig& c, Device device, int warmup) {
  cudagan::Rng rng(1234);
  dcgan::Generator g(c.arch, rng);
  dcgan::Discriminator d(c.arch, rng);
  dcgan::init_weights(g, rng);
  dcgan::init_weights(d, rng);
  g.to(device);
  d.to(device);
  optim::Adam::Options o;
  o.lr = 2e-4;
  o.beta1 = 0.5;
  o.beta2 = 0.999;
  optim::Adam opt_g(g.parameters(), o), opt_d(d.parameters(), o);
  const int s = c.arch.image_size;
  const Tensor real = Tensor::rand({c.batch, c.arch.channels, s, s}, rng, DType::float32, device, -1.0, 1.0);

  for (int i = 0; i < warmup; ++i) dcgan::train_step(g, d, opt_g, opt_d, real, rng);
  if (device.is_cuda()) {
    cuda_synchronize(device);
    cuda_reset_peak_memory(device);
  }
  double total = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    dcgan::train_step(g, d, opt_g, opt_d, real, rng);  // ends in .item() reads, but make sure
    if (device.is_cuda()) cuda_synchronize(device);
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.SetIterationTime(sec);
    total += sec;
  }
  if (total > 0) state.counters["images_per_s"] = double(c.batch) * double(state.iterations()) / total;
  if (device.is_cuda()) {
    state.counters["peak_gpu_MiB"] = double(cuda_memory_stats(device).peak_bytes) / double(1 << 20);
    state.SetLabel(cuda_allow_tf32(device) ? "tf32" : "fp32");
  } else {
    state.counters["peak_rss_MiB"] = peak_rss_mib();
  }
}

void register_device(Device device, const Options& opt) {
  const int warmup = opt.warmup >= 0 ? opt.warmup : device.is_cuda() ? 3 : 1;
  for (const StepConfig& c : kConfigs) {
    const std::string name = (device.is_cuda() ? "cuda/" : "cpu/") + c.name() + "/train_step";
    auto* b = benchmark::RegisterBenchmark(name.c_str(), [c, device, warmup](benchmark::State& state) {
      try {
        train_step_bench(state, c, device, warmup);
      } catch (const std::exception& e) {
        state.SkipWithError(e.what());
      }
    });
    b->UseManualTime()->Unit(benchmark::kMillisecond);
    if (opt.steps > 0) b->Iterations(opt.steps);
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Before anything starts a thread: may re-execute the program with a faster OpenBLAS kernel set.
  blas::ensure_fast_kernels(argc, argv);
  const std::string blas = blas::describe();
  std::fprintf(stderr, "BLAS: %s\n", blas.c_str());
  benchmark::AddCustomContext("blas", blas);
  const std::string cpu_kernels = blas::describe_cpu_kernels();
  std::fprintf(stderr, "CPU conv kernels: %s\n", cpu_kernels.c_str());
  benchmark::AddCustomContext("cpu_kernels", cpu_kernels);

  Options opt;
  if (!parse_options(argc, argv, opt)) return 2;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  register_device(Device::cpu(), opt);
  if (cuda_available()) {
    cuda_set_allow_tf32(Device::cuda(0), bench::env_flag("CUDAGAN_TF32"));
    register_device(Device::cuda(0), opt);
  } else {
    std::fprintf(stderr, "CUDA: no GPU is visible; cuda/ training steps skipped\n");
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
