// The AVX-512 micro-kernel (microkernel.h): 12 rows x 32 columns = 24 zmm accumulators, two B vectors loaded
// and twelve A values broadcast per step (24 FMAs to 14 loads, so the two FMA ports stay busy). Compiled
// with -mavx512f -mfma (kernels/CMakeLists.txt); called only where CPUID reports AVX-512F.
#include <immintrin.h>

#include <cstdint>

namespace cudagan::cpu::detail {

// Declared in cpu/microkernel.h, which this file does not include: a file compiled for a wider instruction
// set must not emit any inline function that the linker could pick for code running on a lesser CPU.
void microkernel_avx512_12x32(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate);

void microkernel_avx512_12x32(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate) {
  constexpr int kMr = 12;
  __m512 lo[kMr], hi[kMr];  // fully unrolled below, so these live in registers
#pragma GCC unroll 12
  for (int i = 0; i < kMr; ++i) lo[i] = hi[i] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kc; ++p, a += kMr, b += 32) {
    const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 12
    for (int i = 0; i < kMr; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      lo[i] = _mm512_fmadd_ps(ai, b0, lo[i]);
      hi[i] = _mm512_fmadd_ps(ai, b1, hi[i]);
    }
  }
  if (accumulate) {
#pragma GCC unroll 12
    for (int i = 0; i < kMr; ++i) {
      lo[i] = _mm512_add_ps(_mm512_loadu_ps(c + i * ldc), lo[i]);
      hi[i] = _mm512_add_ps(_mm512_loadu_ps(c + i * ldc + 16), hi[i]);
    }
  }
#pragma GCC unroll 12
  for (int i = 0; i < kMr; ++i) {
    _mm512_storeu_ps(c + i * ldc, lo[i]);
    _mm512_storeu_ps(c + i * ldc + 16, hi[i]);
  }
}

}  // namespace cudagan::cpu::detail
