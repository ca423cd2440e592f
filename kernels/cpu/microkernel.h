// The packed GEMM micro-kernels: one register tile C [mr, nr] = A_panel * B_panel over kc steps, where the
// packed panels hold, for each step p, mr values of A (a[p * mr + i]) and nr values of B (b[p * nr + j]).
// The tile is written to c[i * ldc + j] for the first half of its columns (j < nr / 2) and to
// c[i * ldc + split + j - nr / 2] for the second, overwriting C or, with `accumulate`, added to it (the sum
// of the kc steps first, then C + sum: the same bits as adding a finished tile). split = nr / 2 writes one
// run of nr columns. The driver (packed_gemm.h) points c straight into C where a tile's columns land as one
// run or as two runs of nr / 2 (the 16 pixels of each of two 4x4 images), and at a scratch tile (ldc = nr)
// that it then stores element by element otherwise. Panels are 64-byte aligned; c need not be.
//
// Each kernel has a variant for the first `rows` < mr rows of a strip (A still packed mr wide, the other rows
// neither read nor written), for the last strip of a GEMM whose m is not a multiple of mr: it does only the
// rows that exist, with each row's sum in the same order as in the full tile.
//
// One kernel per instruction set, each in its own file compiled for that set alone (microkernel_*.cpp), so
// no AVX instruction can leak into code that runs on a CPU without it.
#pragma once

#include <cstdint>

#include "cpu/isa.h"

namespace cudagan::cpu {

using MicroKernelFn = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t split,
                               bool accumulate);

using MicroKernelRowsFn = void (*)(int rows, int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                                   int64_t split, bool accumulate);

struct MicroKernel {
  int mr = 0, nr = 0;
  MicroKernelFn fn = nullptr;
  MicroKernelRowsFn rows_fn = nullptr;
  // The tile's first `rows` rows (1 <= rows <= mr).
  void run(int rows, int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t split,
           bool accumulate) const {
    if (rows == mr)
      fn(kc, a, b, c, ldc, split, accumulate);
    else
      rows_fn(rows, kc, a, b, c, ldc, split, accumulate);
  }
};

// The kernel for `isa` (which must be supported: isa_supported).
MicroKernel microkernel(Isa isa);

namespace detail {
void microkernel_generic_4x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t split,
                              bool accumulate);
void microkernel_avx2_6x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t split,
                              bool accumulate);
void microkernel_avx512_12x32(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t split,
                              bool accumulate);
void microkernel_generic_rows(int rows, int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                              int64_t split, bool accumulate);
void microkernel_avx2_rows(int rows, int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                           int64_t split, bool accumulate);
void microkernel_avx512_rows(int rows, int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                             int64_t split, bool accumulate);
}  // namespace detail

}  // namespace cudagan::cpu
