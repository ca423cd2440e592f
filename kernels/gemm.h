// The one GEMM entry point per backend: row-major C = alpha * op(A) * op(B) + beta * C,
// op(A) [m, k], op(B) [k, n], C [m, n]; lda/ldb/ldc are row strides of the stored matrices.
// Nothing else calls the BLAS directly.
#pragma once

#include <cstdint>

#include "cudagan/core/error.h"  // InvalidArgument, which the kernels throw

namespace cudagan::cpu {
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
          const T* b, int64_t ldb, T beta, T* c, int64_t ldc);
}  // namespace cudagan::cpu

// CUDA backend (float32, kernels/cuda/gemm.cu): the same row-major GEMM on cuBLAS, on ctx's stream and
// handle, TF32 tensor-op math when ctx.allow_tf32. The only caller of cuBLAS in the project.
namespace cudagan::cuda {
struct KernelContext;
void gemm(const KernelContext& ctx, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
          const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
}  // namespace cudagan::cuda
