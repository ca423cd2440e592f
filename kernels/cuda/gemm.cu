// Row-major GEMM on cuBLAS: C [m, n] = alpha * op(A) [m, k] * op(B) [k, n] + beta * C, where A is stored
// [m, k] (or [k, m] when trans_a), B [k, n] (or [n, k] when trans_b), lda/ldb/ldc are row strides.
//
// cuBLAS is column-major, and a row-major matrix read column-major is its transpose. So the row-major
// C = op(A) op(B) is the column-major C^T = op(B)^T op(A)^T: call cublasSgemm with the operands swapped
// (B first), the same transpose flags, and dimensions (n, m, k). No data moves.
//
// Math mode is set on the handle before every call (the handle is shared, its last mode is not ours to
// assume): CUBLAS_TF32_TENSOR_OP_MATH when ctx.allow_tf32, else CUBLAS_DEFAULT_MATH, which since CUDA 11
// keeps sgemm in full fp32.
#include <cublas_v2.h>

#include <limits>
#include <stdexcept>

#include "cudagan/core/error.h"
#include <string>

#include "cuda/common.cuh"
#include "gemm.h"

namespace cudagan::cuda {
namespace {

constexpr int kScaleBlock = 256;

int to_int(int64_t v, const char* name) {
  if (v < 0 || v > int64_t(std::numeric_limits<int>::max()))
    throw InvalidArgument(std::string("cuda::gemm: ") + name + " = " + std::to_string(v) +
                                " is negative or too large for cuBLAS's 32-bit integers");
  return int(v);
}

// cuBLAS rejects a leading dimension below the stored row length with CUBLAS_STATUS_INVALID_VALUE; name the
// argument instead, as cpu::gemm does.
void check_ld(int64_t ld, int64_t row_len, const char* name) {
  if (ld < (row_len > 1 ? row_len : 1))
    throw InvalidArgument(std::string("cuda::gemm: ") + name + " = " + std::to_string(ld) +
                                " is smaller than the stored row length " + std::to_string(row_len));
}

}  // namespace

// C = beta * C for k == 0 (op(A) op(B) is the zero matrix). beta == 0 overwrites without reading, so an
// uninitialized C cannot leak NaN. One grid-stride loop over the m*n elements of the strided C; only this
// degenerate case runs it, so the per-element 64-bit division does not matter.
static __global__ void scale_matrix_kernel(float* c, int64_t m, int64_t n, int64_t ldc, float beta) {
  const int64_t total = m * n;
  for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = idx / n, j = idx - i * n;
    float* p = c + i * ldc + j;
    *p = beta == 0.0f ? 0.0f : beta * *p;
  }
}

void gemm(const KernelContext& ctx, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
          const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const int im = to_int(m, "m"), in = to_int(n, "n"), ik = to_int(k, "k");
  if (im == 0 || in == 0) return;  // C is empty
  check_ld(ldc, n, "ldc");
  if (ik == 0) {
    scale_matrix_kernel<<<grid_blocks(m * n, kScaleBlock), kScaleBlock, 0, ctx.stream>>>(c, m, n, ldc, beta);
    CUDA_CHECK_LAUNCH(ctx, "scale_matrix_kernel");
    return;
  }
  check_ld(lda, trans_a ? m : k, "lda");
  check_ld(ldb, trans_b ? k : n, "ldb");
  if (ctx.cublas == nullptr)
    throw InvalidArgument("cuda::gemm: the kernel context has no cuBLAS handle");
  cublasHandle_t handle = ctx.cublas;
  CUBLAS_CHECK(cublasSetMathMode(handle, ctx.allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  CUBLAS_CHECK(cublasSetPointerMode(handle, CUBLAS_POINTER_MODE_HOST));  // alpha, beta are host values
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  CUBLAS_CHECK(cublasSgemm(handle, op_b, op_a, in, im, ik, &alpha, b, to_int(ldb, "ldb"), a,
                           to_int(lda, "lda"), &beta, c, to_int(ldc, "ldc")));
  detail::record_launch(ctx, "cublasSgemm", __FILE__, __LINE__);
}

}  // namespace cudagan::cuda
