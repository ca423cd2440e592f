// Reference GEMM, the oracle for cpu::gemm and cuda::gemm: the textbook triple loop, row-major,
// C [m, n] = alpha * op(A) [m, k] * op(B) [k, n] + beta * C, summed in T one product at a time.
// Like the BLAS, beta == 0 overwrites C without reading it (an uninitialized C is fine).
#pragma once

#include <cstdint>

namespace cudagan::reference {

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
          const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      T acc = T(0);
      for (int64_t p = 0; p < k; ++p) {
        const T av = trans_a ? a[p * lda + i] : a[i * lda + p];
        const T bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
        acc += av * bv;
      }
      T& out = c[i * ldc + j];
      out = beta == T(0) ? alpha * acc : alpha * acc + beta * out;
    }
  }
}

}  // namespace cudagan::reference
