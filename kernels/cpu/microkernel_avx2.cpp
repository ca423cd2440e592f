// The AVX2 + FMA micro-kernel (microkernel.h): 6 rows x 16 columns = 12 ymm accumulators, two B vectors
// loaded and six A values broadcast per step. Compiled with -mavx2 -mfma (kernels/CMakeLists.txt); called
// only where CPUID reports both.
#include <immintrin.h>

#include <cstdint>

namespace cudagan::cpu::detail {

// Declared in cpu/microkernel.h, which this file does not include: a file compiled for a wider instruction
// set must not emit any inline function that the linker could pick for code running on a lesser CPU.
void microkernel_avx2_6x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate);

void microkernel_avx2_6x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(),
         c11 = _mm256_setzero_ps(), c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(),
         c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c40 = _mm256_setzero_ps(),
         c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int64_t p = 0; p < kc; ++p, a += 6, b += 16) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    __m256 ai = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(ai, b0, c00), c01 = _mm256_fmadd_ps(ai, b1, c01);
    ai = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(ai, b0, c10), c11 = _mm256_fmadd_ps(ai, b1, c11);
    ai = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(ai, b0, c20), c21 = _mm256_fmadd_ps(ai, b1, c21);
    ai = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(ai, b0, c30), c31 = _mm256_fmadd_ps(ai, b1, c31);
    ai = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(ai, b0, c40), c41 = _mm256_fmadd_ps(ai, b1, c41);
    ai = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(ai, b0, c50), c51 = _mm256_fmadd_ps(ai, b1, c51);
  }
  const auto put = [&](int i, __m256 lo, __m256 hi) {
    float* row = c + i * ldc;
    if (accumulate) {
      lo = _mm256_add_ps(_mm256_loadu_ps(row), lo);
      hi = _mm256_add_ps(_mm256_loadu_ps(row + 8), hi);
    }
    _mm256_storeu_ps(row, lo);
    _mm256_storeu_ps(row + 8, hi);
  };
  put(0, c00, c01), put(1, c10, c11), put(2, c20, c21), put(3, c30, c31), put(4, c40, c41), put(5, c50, c51);
}

}  // namespace cudagan::cpu::detail
