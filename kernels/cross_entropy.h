// Softmax cross-entropy on logits, mean over n rows of k classes, for targets t that are per-row class
// probabilities (one-hot rows for hard labels; nothing assumes they are one-hot):
//   loss = (1/n) sum_r sum_j -t[r,j] log_softmax(z[r,:])[j]   (stable for any logits, e.g. +-100)
//   dloss/dz[r,j] = grad_loss * (softmax(z[r,:])[j] sum_j' t[r,j'] - t[r,j]) / n
// logits, targets, dlogits: [n, k], row-major; loss points at one element. n <= 0 or k <= 0: loss is NaN.
#pragma once

#include <cstdint>

#include "cudagan/core/error.h"  // InvalidArgument, which the kernels throw

namespace cudagan::cpu {
template <class T>
void cross_entropy_with_logits_forward(const T* logits, const T* targets, int64_t n, int64_t k, T* loss);
template <class T>
void cross_entropy_with_logits_backward(const T* logits, const T* targets, int64_t n, int64_t k, T grad_loss,
                                        T* dlogits);
}  // namespace cudagan::cpu

// CUDA backend (float32, kernels/cuda/cross_entropy.cu), one warp per row. loss is a device pointer; the
// forward reduction is deterministic (per-block double partials in ctx.workspace, then one block adds them in
// order). The backward pass takes grad_loss either as a host value or as a device pointer to one float (the
// upstream gradient as autograd produces it), so no host synchronization is needed.
namespace cudagan::cuda {
struct KernelContext;
void cross_entropy_with_logits_forward(const KernelContext& ctx, const float* logits, const float* targets,
                                       int64_t n, int64_t k, float* loss);
void cross_entropy_with_logits_backward(const KernelContext& ctx, const float* logits, const float* targets,
                                        int64_t n, int64_t k, float grad_loss, float* dlogits);
void cross_entropy_with_logits_backward(const KernelContext& ctx, const float* logits, const float* targets,
                                        int64_t n, int64_t k, const float* grad_loss_device, float* dlogits);
}  // namespace cudagan::cuda
