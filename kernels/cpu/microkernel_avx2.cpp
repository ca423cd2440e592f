// The AVX2 + FMA micro-kernel (microkernel.h): 6 rows x 16 columns = 12 ymm accumulators, two B vectors
// loaded and six A values broadcast per step. Compiled with -mavx2 -mfma (kernels/CMakeLists.txt); called
// only where CPUID reports both. The same loop serves the first `rows` < 6 rows of a strip (the last strip
// of a GEMM whose m is not a multiple of 6), each row's sum in the same order as in the full tile.
#include <immintrin.h>

#include <cstdint>

namespace cudagan::cpu::detail {

// Declared in cpu/microkernel.h, which this file does not include: a file compiled for a wider instruction
// set must not emit any inline function that the linker could pick for code running on a lesser CPU.
void microkernel_avx2_6x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t split,
                           bool accumulate);
void microkernel_avx2_rows(int rows, int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                           int64_t split, bool accumulate);

namespace {

constexpr int kMr = 6;  // A's stride: every strip is packed 6 rows wide

template <int R>
void tile(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t split,
                           bool accumulate) {
  __m256 lo[R], hi[R];  // fully unrolled below, so these live in registers
#pragma GCC unroll 6
  for (int i = 0; i < R; ++i) lo[i] = hi[i] = _mm256_setzero_ps();
  for (int64_t p = 0; p < kc; ++p, a += kMr, b += 16) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
    for (int i = 0; i < R; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
      lo[i] = _mm256_fmadd_ps(ai, b0, lo[i]);
      hi[i] = _mm256_fmadd_ps(ai, b1, hi[i]);
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < R; ++i) {
    float* row = c + i * ldc;
    if (accumulate) {
      lo[i] = _mm256_add_ps(_mm256_loadu_ps(row), lo[i]);
      hi[i] = _mm256_add_ps(_mm256_loadu_ps(row + split), hi[i]);
    }
    _mm256_storeu_ps(row, lo[i]);
    _mm256_storeu_ps(row + split, hi[i]);
  }
}

}  // namespace

void microkernel_avx2_6x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t split,
                           bool accumulate) {
  tile<kMr>(kc, a, b, c, ldc, split, accumulate);
}

void microkernel_avx2_rows(int rows, int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                           int64_t split, bool accumulate) {
  switch (rows) {
    case 1: return tile<1>(kc, a, b, c, ldc, split, accumulate);
    case 2: return tile<2>(kc, a, b, c, ldc, split, accumulate);
    case 3: return tile<3>(kc, a, b, c, ldc, split, accumulate);
    case 4: return tile<4>(kc, a, b, c, ldc, split, accumulate);
    case 5: return tile<5>(kc, a, b, c, ldc, split, accumulate);
    default: return tile<kMr>(kc, a, b, c, ldc, split, accumulate);
  }
}

}  // namespace cudagan::cpu::detail
