// The AVX-512 micro-kernel (microkernel.h): 12 rows x 32 columns = 24 zmm accumulators, two B vectors loaded
// and twelve A values broadcast per step (24 FMAs to 14 loads, so the two FMA ports stay busy). Compiled
// with -mavx512f -mfma (kernels/CMakeLists.txt); called only where CPUID reports AVX-512F.
//
// The same loop for the first `rows` < 12 rows of a strip (its A still 12 wide): the last strip of a GEMM
// whose m is not a multiple of 12 (64 rows are 5 strips and 4 rows, not 6 strips). Each row's sum runs in the
// same order as in the full tile, so the bits do not depend on which kernel computed a row.
#include <immintrin.h>

#include <cstdint>

namespace cudagan::cpu::detail {

// Declared in cpu/microkernel.h, which this file does not include: a file compiled for a wider instruction
// set must not emit any inline function that the linker could pick for code running on a lesser CPU.
void microkernel_avx512_12x32(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t split,
                              bool accumulate);
void microkernel_avx512_rows(int rows, int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                             int64_t split, bool accumulate);

namespace {

constexpr int kMr = 12;  // A's stride: every strip is packed 12 rows wide

template <int R>
void tile(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t split,
                              bool accumulate) {
  __m512 lo[R], hi[R];  // fully unrolled below, so these live in registers
#pragma GCC unroll 12
  for (int i = 0; i < R; ++i) lo[i] = hi[i] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kc; ++p, a += kMr, b += 32) {
    const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 12
    for (int i = 0; i < R; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      lo[i] = _mm512_fmadd_ps(ai, b0, lo[i]);
      hi[i] = _mm512_fmadd_ps(ai, b1, hi[i]);
    }
  }
  if (accumulate) {
#pragma GCC unroll 12
    for (int i = 0; i < R; ++i) {
      lo[i] = _mm512_add_ps(_mm512_loadu_ps(c + i * ldc), lo[i]);
      hi[i] = _mm512_add_ps(_mm512_loadu_ps(c + i * ldc + split), hi[i]);
    }
  }
#pragma GCC unroll 12
  for (int i = 0; i < R; ++i) {
    _mm512_storeu_ps(c + i * ldc, lo[i]);
    _mm512_storeu_ps(c + i * ldc + split, hi[i]);
  }
}

}  // namespace

void microkernel_avx512_12x32(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t split,
                              bool accumulate) {
  tile<kMr>(kc, a, b, c, ldc, split, accumulate);
}

void microkernel_avx512_rows(int rows, int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                             int64_t split, bool accumulate) {
  switch (rows) {
    case 1: return tile<1>(kc, a, b, c, ldc, split, accumulate);
    case 2: return tile<2>(kc, a, b, c, ldc, split, accumulate);
    case 3: return tile<3>(kc, a, b, c, ldc, split, accumulate);
    case 4: return tile<4>(kc, a, b, c, ldc, split, accumulate);
    case 5: return tile<5>(kc, a, b, c, ldc, split, accumulate);
    case 6: return tile<6>(kc, a, b, c, ldc, split, accumulate);
    case 7: return tile<7>(kc, a, b, c, ldc, split, accumulate);
    case 8: return tile<8>(kc, a, b, c, ldc, split, accumulate);
    case 9: return tile<9>(kc, a, b, c, ldc, split, accumulate);
    case 10: return tile<10>(kc, a, b, c, ldc, split, accumulate);
    case 11: return tile<11>(kc, a, b, c, ldc, split, accumulate);
    default: return tile<kMr>(kc, a, b, c, ldc, split, accumulate);
  }
}

}  // namespace cudagan::cpu::detail
