// What every benchmark here shares: the cost model of one launch (FLOPs, bytes moved), the ceilings
// measured in the same run (the library GEMM, a large copy), and the counters that relate the two.
//
// Rates are computed here from the manually measured time, not with benchmark::Counter::kIsRate:
// Google Benchmark 1.7 divides rate counters by the main thread's CPU time, which is wrong both for
// the BLAS's worker threads and for GPU work timed with events.
#pragma once

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

namespace cudagan::bench {

// One launch: 2 x multiply-adds, and bytes with each tensor counted once per read and once per write.
struct Cost {
  double flops = 0;
  double bytes = 0;
};

// The best rates this backend reached in this run: the GEMM's FLOP/s and a large copy's bytes/s.
struct Ceilings {
  double gemm_flops_per_s = 0;
  double copy_bytes_per_s = 0;
};

// Sets GFLOP/s and of_gemm_peak (when the launch has FLOPs), GB/s and of_copy_bw, for `seconds` of
// measured time over state.iterations() launches.
inline void set_counters(benchmark::State& state, const Cost& cost, double seconds, const Ceilings& ceil) {
  if (seconds <= 0 || state.iterations() == 0) return;
  const double per_s = double(state.iterations()) / seconds;
  if (cost.flops > 0) {
    state.counters["GFLOP/s"] = cost.flops * per_s / 1e9;
    if (ceil.gemm_flops_per_s > 0)
      state.counters["of_gemm_peak"] = cost.flops * per_s / ceil.gemm_flops_per_s;
  }
  if (cost.bytes > 0) {
    state.counters["GB/s"] = cost.bytes * per_s / 1e9;
    if (ceil.copy_bytes_per_s > 0) state.counters["of_copy_bw"] = cost.bytes * per_s / ceil.copy_bytes_per_s;
  }
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Times `launch` (a host-synchronous call) once per iteration after one untimed warm-up call, which
// takes the first-touch page faults and the BLAS thread start-up out of the measurement.
template <class F>
double time_host_loop(benchmark::State& state, F&& launch) {
  launch();
  double total = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    launch();
    const double s = seconds_since(t0);
    state.SetIterationTime(s);
    total += s;
  }
  return total;
}

// Host memory, 64-byte aligned like the engine's tensors (so vector loads behave as in training).
struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
using HostFloats = std::unique_ptr<float[], FreeDeleter>;

inline HostFloats host_floats(int64_t n) {
  const size_t bytes = (size_t(n > 0 ? n : 1) * sizeof(float) + 63) / 64 * 64;
  auto* p = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (!p) throw std::bad_alloc();
  return HostFloats(p);
}

// Deterministic values in [lo, hi): a 32-bit LCG is plenty for benchmark inputs and keeps setup cheap
// next to the multi-MiB buffers of the first layers.
inline void fill_uniform(float* p, int64_t n, float lo, float hi, uint32_t seed) {
  uint32_t s = seed * 2654435761u + 1u;
  const float scale = (hi - lo) / 4294967296.0f;
  for (int64_t i = 0; i < n; ++i) {
    s = s * 1664525u + 1013904223u;
    p[i] = lo + float(s) * scale;
  }
}

inline bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && std::strcmp(v, "0") != 0;
}

}  // namespace cudagan::bench
