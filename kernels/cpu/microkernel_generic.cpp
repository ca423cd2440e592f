// The portable micro-kernel (microkernel.h): 4 x 16, plain loops that the baseline x86-64 compiler
// vectorises with SSE. It is the path of CPUs without AVX2 and the one a test forces.
#include <cstdint>

#include "cpu/microkernel.h"

namespace cudagan::cpu::detail {

void microkernel_generic_rows(int rows, int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                              int64_t split, bool accumulate) {
  constexpr int kMr = 4, kNr = 16;
  float acc[kMr][kNr] = {};
  for (int64_t p = 0; p < kc; ++p) {
    const float* bp = b + p * kNr;
    for (int i = 0; i < rows; ++i) {
      const float ai = a[p * kMr + i];
      for (int j = 0; j < kNr; ++j) acc[i][j] += ai * bp[j];
    }
  }
  for (int i = 0; i < rows; ++i)
    for (int half = 0; half < 2; ++half) {
      float* d = c + i * ldc + (half ? split : 0);
      const float* t = acc[i] + half * (kNr / 2);
      for (int j = 0; j < kNr / 2; ++j) d[j] = accumulate ? d[j] + t[j] : t[j];
    }
}

void microkernel_generic_4x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t split,
                              bool accumulate) {
  microkernel_generic_rows(4, kc, a, b, c, ldc, split, accumulate);
}

}  // namespace cudagan::cpu::detail
