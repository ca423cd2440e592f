// bench_dist: what data parallelism costs, under mpirun (or alone, as the 1-rank baseline):
//
//   mpirun -np N bench_dist [--iterations=N] [google benchmark flags]
//
//   dist/allreduce/<KiB>KiB     one in-place float32 all-reduce (average) of that size: ms per call and the
//                               bus bandwidth, 2 (N - 1) / N x bytes / time (what a ring moves per rank)
//   dist/<config>/train_step    the whole DCGAN step at a global batch, each rank on its share, gradients
//                               averaged and batchnorm synchronised as dcgan::Trainer::distribute does:
//                               images/s (all ranks), and per step the time in the two gradient all-reduces
//                               (grad_allreduce_ms) and its fraction of the step
//
// Every rank must run every iteration of every benchmark in lockstep (they are collectives), so each runs a
// fixed number of iterations rather than until a minimum time; rank 0 alone reports. Sizes: DCGAN-64's G
// has 3.58 M parameters (14.3 MB of gradients), D 2.77 M (11.1 MB); a batchnorm layer's sums are 2C+1
// doubles (at most 8 KiB).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "cudagan/cudagan.h"
#include "cudagan/dcgan.h"
#include "cudagan/dist/dist.h"
#include "cudagan/runtime/blas.h"

namespace {

using namespace cudagan;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void allreduce_bench(benchmark::State& state, const dist::Communicator& comm, int64_t floats) {
  Tensor t = Tensor::ones({floats});
  comm.all_reduce(t, dist::ReduceOp::average);  // warm: connections, buffers
  double total = 0;
  for (auto _ : state) {
    comm.barrier();  // time the collective, not the ranks' arrival skew
    const auto t0 = std::chrono::steady_clock::now();
    comm.all_reduce(t, dist::ReduceOp::average);
    const double s = seconds_since(t0);
    state.SetIterationTime(s);
    total += s;
  }
  const double n = comm.world_size(), bytes = double(floats) * 4;
  if (total > 0) state.counters["bus_GB_per_s"] = 2 * (n - 1) / n * bytes * double(state.iterations()) / total / 1e9;
  state.counters["ranks"] = n;
}

struct StepConfig {
  dcgan::Architecture arch;
  int global_batch;
  std::string name() const {
    return "dcgan" + std::to_string(arch.image_size) + "_" + std::to_string(arch.channels) + "ch_b" +
           std::to_string(global_batch);
  }
};

void train_step_bench(benchmark::State& state, const dist::Communicator& comm, const StepConfig& c) {
  const int world = comm.world_size();
  if (c.global_batch % world != 0) return state.SkipWithError("the global batch does not divide over the ranks");
  const int local = c.global_batch / world;
  Rng rng(1234);
  dcgan::Generator g(c.arch, rng);
  dcgan::Discriminator d(c.arch, rng);
  dcgan::init_weights(g, rng);
  dcgan::init_weights(d, rng);
  dist::broadcast_module(comm, g);
  dist::broadcast_module(comm, d);
  dist::synchronize_batchnorm(comm, g);
  dist::synchronize_batchnorm(comm, d);
  dist::GradientAverager average_g(comm, g), average_d(comm, d);
  optim::Adam::Options o;
  o.lr = 2e-4;
  o.beta1 = 0.5;
  optim::Adam opt_g(g.parameters(), o), opt_d(d.parameters(), o);
  const int s = c.arch.image_size;
  const Tensor real = Tensor::rand({local, c.arch.channels, s, s}, rng, DType::float32, Device::cpu(), -1.0, 1.0);
  double in_allreduce = 0;
  const dcgan::GradientHook average = [&](nn::Module& net) {
    const auto t0 = std::chrono::steady_clock::now();
    (&net == &d ? average_d : average_g)();
    in_allreduce += seconds_since(t0);
  };
  auto step = [&] {
    const Tensor noise = dcgan::sample_noise(local, c.arch.nz, rng, Device::cpu());
    dcgan::train_step(g, d, opt_g, opt_d, real, noise, average);
  };
  step();  // warm-up: first-touch allocations
  in_allreduce = 0;
  double total = 0;
  for (auto _ : state) {
    comm.barrier();
    const auto t0 = std::chrono::steady_clock::now();
    step();
    const double sec = seconds_since(t0);
    state.SetIterationTime(sec);
    total += sec;
  }
  if (total <= 0) return;
  const double steps = double(state.iterations());
  state.counters["images_per_s"] = double(c.global_batch) * steps / total;
  state.counters["grad_allreduce_ms"] = in_allreduce / steps * 1e3;
  state.counters["allreduce_fraction"] = in_allreduce / total;
  state.counters["ranks"] = world;
}

// Takes --iterations=N out of argv.
int take_iterations(int& argc, char** argv) {
  int iterations = 10, out = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--iterations=", 13) == 0)
      iterations = std::max(1, std::atoi(argv[i] + 13));
    else
      argv[out++] = argv[i];
  }
  argc = out;
  argv[argc] = nullptr;
  return iterations;
}

}  // namespace

int main(int argc, char** argv) {
  blas::ensure_fast_kernels(argc, argv);
  try {
    auto comm = dist::init(argc, argv);
    const int iterations = take_iterations(argc, argv);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::AddCustomContext("dist", comm->describe());
    benchmark::AddCustomContext("blas", blas::describe());
    if (!comm->is_root() && !std::freopen("/dev/null", "w", stdout)) return 1;  // rank 0 reports
    const dist::Communicator& c = *comm;
    for (int64_t kib : {8, 1024, 11 * 1024, 14 * 1024}) {
      benchmark::RegisterBenchmark(("dist/allreduce/" + std::to_string(kib) + "KiB").c_str(),
                                   [&c, kib](benchmark::State& st) { allreduce_bench(st, c, kib * 256); })
          ->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(iterations * 5);
    }
    for (const StepConfig& sc : {StepConfig{{64, 3, 100, 64, 64}, 64}, StepConfig{{32, 1, 100, 64, 64}, 64}}) {
      benchmark::RegisterBenchmark(("dist/" + sc.name() + "/train_step").c_str(),
                                   [&c, sc](benchmark::State& st) { train_step_bench(st, c, sc); })
          ->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(iterations);
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    comm->finalize();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_dist: %s\n", e.what());
    return 1;
  }
}
