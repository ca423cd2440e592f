// Which CPU BLAS runs the GEMMs, and making sure it runs its fastest kernels.
//
// OpenBLAS built with DYNAMIC_ARCH (Debian's) picks its kernels from CPUID when the library loads.
// On some virtual machines it misdetects the CPU and falls back to generic SSE3 kernels ("Prescott"),
// 4-5x slower than the AVX2/AVX-512 ones the CPU supports. The choice can only be overridden with
// OPENBLAS_CORETYPE before the library initialises, which happens before main() runs, so
// ensure_fast_kernels() sets it and re-executes the program once, with the same arguments. It does
// the same for OMP_WAIT_POLICY=PASSIVE and OPENBLAS_THREAD_TIMEOUT=4 (also read only at start-up), so
// that idle OpenMP threads do not spin on the cores OpenBLAS's threads need, nor idle OpenBLAS threads
// (sched_yield in a loop) on the cores the OpenMP loops between GEMMs need. Settings the user made are
// left alone.
#pragma once

#include <string>

namespace cudagan::blas {

// What info() reports about the loaded OpenBLAS.
struct Info {
  std::string library;  // "OpenBLAS 0.3.21 ..."
  std::string kernels;  // the kernel set in use, e.g. "Haswell", "SkylakeX", "Zen"
  std::string best_supported;  // the best kernel set this CPU supports, e.g. "Haswell"
  bool overridden = false;      // cudagan set OPENBLAS_CORETYPE
  std::string detected;         // what OpenBLAS chose by itself, when overridden
  int threads = 1;
};

Info info();  // asks the loaded OpenBLAS; never throws
// How capable an OpenBLAS kernel set is: 1 generic SSE, 2 AVX, 3 AVX2+FMA, 4 AVX-512; names are
// compared case-insensitively and unknown ones rank 1.
int kernel_rank(const std::string& kernels);
// One line for logs, e.g. "OpenBLAS 0.3.21 ... Zen; kernels Zen; 2 threads"; it says so when the environment's
// OPENBLAS_CORETYPE holds OpenBLAS to weaker kernels than the CPU supports.
std::string describe();

// The instruction set of cudagan's own CPU kernels (the implicit-GEMM convolution's micro-kernel), chosen by
// CPUID at run time, e.g. "avx512 (12x32 micro-kernel)": logged next to the BLAS.
std::string describe_cpu_kernels();

// Call first thing in main(), before any thread starts. When OpenBLAS picked a kernel set weaker
// than the CPU supports (and the user did not set OPENBLAS_CORETYPE), or OMP_WAIT_POLICY or
// OPENBLAS_THREAD_TIMEOUT is unset, sets them and re-executes /proc/self/exe with argv, once; returns normally otherwise, or if
// re-executing fails.
// It also keeps freed memory in the process (keep_freed_memory) instead of returning it to the kernel.
void ensure_fast_kernels(int argc, char** argv);

// Freed blocks stay in the heap for the next allocation of their size (glibc's mallopt), so a steady
// training step does not page-fault fresh memory in every time. Process-wide: main()'s business, like the
// environment ensure_fast_kernels sets. (Tensors and kernel scratch of 256 KiB and more come from the host
// pool, kernels/cpu/host_memory.h, which keeps them itself, the ones above glibc's 32 MiB limit included.)
void keep_freed_memory();

}  // namespace cudagan::blas
