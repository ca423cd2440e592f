#include "cudagan/runtime/blas.h"

#include <cblas.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "cpu/isa.h"  // the kernels library's instruction-set choice

namespace cudagan::blas {

int kernel_rank(const std::string& kernels) {
  std::string core = kernels;
  std::transform(core.begin(), core.end(), core.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* c : {"skylakex", "cooperlake", "sapphirerapids"})
    if (core == c) return 4;
  for (const char* c : {"haswell", "zen", "skylake", "excavator"})
    if (core == c) return 3;
  for (const char* c : {"sandybridge", "bulldozer", "piledriver", "steamroller"})
    if (core == c) return 2;
  return 1;
}

namespace {

// The best OpenBLAS kernel set this CPU (and OS) supports. __builtin_cpu_supports also checks
// that the OS saves the vector registers, so an AVX-512 CPU under an OS without it is not chosen.
std::string best_for_this_cpu() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512cd"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  if (__builtin_cpu_supports("avx")) return "Sandybridge";
#endif
  return "";
}

constexpr const char* kDetectedVar = "CUDAGAN_OPENBLAS_DETECTED";  // what OpenBLAS chose before we set it
constexpr const char* kReexecVar = "CUDAGAN_RESTARTED";  // set in the restarted process: restart once only
}  // namespace

Info info() {
  Info i;
  i.library = openblas_get_config();
  i.kernels = openblas_get_corename();
  i.best_supported = best_for_this_cpu();
  i.threads = openblas_get_num_threads();
  if (const char* detected = std::getenv(kDetectedVar)) {
    i.overridden = true;
    i.detected = detected;
  }
  return i;
}

std::string describe() {
  const Info i = info();
  std::string s = i.library + "; kernels " + i.kernels;
  if (i.overridden) s += " (set by cudagan; OpenBLAS detected " + i.detected + ")";
  // The user's (or the machine's) OPENBLAS_CORETYPE is respected, but a slower choice than the CPU allows is
  // worth a word: measured on an AVX-512 machine whose environment set Haswell, sgemm ran 230 against 430
  // GFLOP/s and the DCGAN-64 step 64 against 92 images/s.
  if (!i.overridden && !i.best_supported.empty() && kernel_rank(i.kernels) < kernel_rank(i.best_supported))
    s += " (OPENBLAS_CORETYPE=" + std::string(std::getenv("OPENBLAS_CORETYPE") ? std::getenv("OPENBLAS_CORETYPE") : "?") +
         " in the environment; this CPU supports " + i.best_supported + ": unset it for faster GEMMs)";
  return s + "; " + std::to_string(i.threads) + " threads";
}

// glibc returns a freed block above its mmap threshold (128 KiB at first, rising to at most 32 MiB as such
// blocks are freed) to the kernel at once, and trims the heap's free top beyond twice that: a training step,
// which frees and allocates the same activation-sized blocks every time, then takes fresh zeroed pages and a
// page fault per 4 KiB for each of them. Serving blocks up to 32 MiB from the heap and never trimming it keeps
// those pages: measured on the DCGAN-64 step at batch 64 (2 cores), 6-8 % more images/s in three alternating runs.
void keep_freed_memory() {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
}

std::string describe_cpu_kernels() { return cpu::describe_cpu_kernels(); }

void ensure_fast_kernels(int argc, char** argv) {
  (void)argc;
  keep_freed_memory();
  if (std::getenv(kReexecVar)) return;  // this is the restarted process: settle for what we have
  bool restart = false;
  // Idle OpenMP threads spin for a while after each parallel loop by default; on a machine with few
  // cores they steal the cores OpenBLAS's own threads need for the next GEMM (measured on 2 cores:
  // a small conv net trained 30x slower). Passive waiting costs microseconds per loop instead.
  if (!std::getenv("OMP_WAIT_POLICY")) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    restart = true;
    // Passive, with a short spin first (libgomp: 10^4 spins, about 0.1 ms, where its default is 3 ms): since
    // our own kernels run the convolutions, a step is a chain of OpenMP loops with gaps of microseconds
    // between them, and a thread asleep in each gap is woken by a futex every time (3 % of the DCGAN-32 step
    // in futex calls). Measured on 2 cores, alternating: DCGAN-32's step 556-571 -> 590-601 images/s, its
    // whole MNIST loop 574-587 -> 614-624; DCGAN-64 and the CelebA loop (JPEG decoders on the same cores)
    // unchanged. A short spin still leaves OpenBLAS's threads the cores within 0.1 ms.
    if (!std::getenv("GOMP_SPINCOUNT")) setenv("GOMP_SPINCOUNT", "10000", 1);
  }
  // The same on OpenBLAS's side: its idle threads call sched_yield in a loop for 2^28 cycles (about 0.1 s)
  // after each GEMM, so during the im2col, batchnorm and activation loops between GEMMs they fight the
  // OpenMP threads for the cores (perf: 20% of a CPU training step in sched_yield). 2^4 cycles, the least
  // OpenBLAS accepts, makes them sleep at once; waking them costs microseconds per GEMM (measured on
  // 2 cores: DCGAN-64 training step 33 -> 41 images/s).
  if (!std::getenv("OPENBLAS_THREAD_TIMEOUT")) {
    setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1);
    restart = true;
  }
  const std::string detected = openblas_get_corename();
  const std::string best = best_for_this_cpu();
  if (!std::getenv("OPENBLAS_CORETYPE") && !best.empty() && kernel_rank(best) > kernel_rank(detected)) {
    setenv("OPENBLAS_CORETYPE", best.c_str(), 1);  // the user's own setting is left alone
    setenv(kDetectedVar, detected.c_str(), 1);
    restart = true;
  }
  if (!restart) return;
  setenv(kReexecVar, "1", 1);
  std::fflush(nullptr);
  execv("/proc/self/exe", argv);
  // Still here: re-executing failed (no /proc, say). Carry on with the slower settings.
  std::fprintf(stderr, "cudagan: could not restart with OMP_WAIT_POLICY=PASSIVE GOMP_SPINCOUNT=10000 "
               "OPENBLAS_THREAD_TIMEOUT=4%s%s; "
               "set them yourself for speed\n", std::getenv(kDetectedVar) ? " OPENBLAS_CORETYPE=" : "",
               std::getenv(kDetectedVar) ? best.c_str() : "");
  unsetenv(kDetectedVar);
}

}  // namespace cudagan::blas
