// Row-major GEMM on the CPU: C [m, n] = alpha * op(A) [m, k] * op(B) [k, n] + beta * C, forwarded to
// OpenBLAS (cblas_sgemm / cblas_dgemm). This is the only file that calls the BLAS, so a different BLAS
// (MKL, BLIS) is a change to this file alone.
//
// Stored shapes: A is [m, k] (or [k, m] when trans_a), B is [k, n] (or [n, k] when trans_b); lda/ldb/ldc
// are the row strides of those stored matrices and must be at least their row lengths.
#include "gemm.h"

#include <cblas.h>

#include <cstdint>
#include <limits>
#include <stdexcept>

#include "cudagan/core/error.h"
#include <string>

namespace cudagan::cpu {
namespace {

// OpenBLAS's cblas takes 32-bit ints (blasint) in the Debian build; refuse rather than truncate.
blasint to_blasint(int64_t v, const char* name) {
  if (v < 0 || v > int64_t(std::numeric_limits<blasint>::max()))
    throw InvalidArgument(std::string("cpu::gemm: ") + name + " = " + std::to_string(v) +
                                " is negative or too large for the BLAS integer type");
  return blasint(v);
}

// CBLAS reports a bad leading dimension through xerbla, which prints and returns without computing;
// a silently unchanged C is worse than an exception naming the argument.
void check_ld(int64_t ld, int64_t row_len, const char* name) {
  if (ld < (row_len > 1 ? row_len : 1))
    throw InvalidArgument(std::string("cpu::gemm: ") + name + " = " + std::to_string(ld) +
                                " is smaller than the stored row length " + std::to_string(row_len));
}

void blas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint m, blasint n, blasint k, float alpha,
               const float* a, blasint lda, const float* b, blasint ldb, float beta, float* c, blasint ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void blas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint m, blasint n, blasint k, double alpha,
               const double* a, blasint lda, const double* b, blasint ldb, double beta, double* c,
               blasint ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
          const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  const blasint bm = to_blasint(m, "m"), bn = to_blasint(n, "n"), bk = to_blasint(k, "k");
  if (bm == 0 || bn == 0) return;  // C is empty: nothing to compute, nothing to scale
  check_ld(ldc, n, "ldc");
  if (bk == 0) {
    // op(A) * op(B) is the zero matrix: C = beta * C. beta == 0 overwrites without reading, as the
    // BLAS does, so an uninitialized C cannot leak NaN into the result.
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
    return;
  }
  check_ld(lda, trans_a ? m : k, "lda");
  check_ld(ldb, trans_b ? k : n, "ldb");
  blas_gemm(trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, bm, bn, bk, alpha, a,
            to_blasint(lda, "lda"), b, to_blasint(ldb, "ldb"), beta, c, to_blasint(ldc, "ldc"));
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                          int64_t, float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                           const double*, int64_t, double, double*, int64_t);

}  // namespace cudagan::cpu
