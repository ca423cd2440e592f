// The packed GEMM micro-kernels: one register tile C [mr, nr] = A_panel * B_panel over kc steps, where the
// packed panels hold, for each step p, mr values of A (a[p * mr + i]) and nr values of B (b[p * nr + j]).
// The tile is written row-major (c[i * nr + j]) and overwritten; the driver (packed_gemm.h) adds it where
// it belongs. Panels are 64-byte aligned.
//
// One kernel per instruction set, each in its own file compiled for that set alone (microkernel_*.cpp), so
// no AVX instruction can leak into code that runs on a CPU without it.
#pragma once

#include <cstdint>

#include "cpu/isa.h"

namespace cudagan::cpu {

using MicroKernelFn = void (*)(int64_t kc, const float* a, const float* b, float* c);

struct MicroKernel {
  int mr = 0, nr = 0;
  MicroKernelFn fn = nullptr;
};

// The kernel for `isa` (which must be supported: isa_supported).
MicroKernel microkernel(Isa isa);

namespace detail {
void microkernel_generic_4x16(int64_t kc, const float* a, const float* b, float* c);
void microkernel_avx2_6x16(int64_t kc, const float* a, const float* b, float* c);
void microkernel_avx512_12x32(int64_t kc, const float* a, const float* b, float* c);
}  // namespace detail

}  // namespace cudagan::cpu
