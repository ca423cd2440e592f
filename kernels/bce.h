// Binary cross-entropy on logits, mean over n elements, for targets t in [0, 1]:
//   loss = mean( max(z, 0) - z t + log(1 + e^-|z|) )      (stable for any z, e.g. +-100)
//   dloss/dz_i = grad_loss * (sigmoid(z_i) - t_i) / n
// loss points at one element.
#pragma once

#include <cstdint>

#include "cudagan/core/error.h"  // InvalidArgument, which the kernels throw

namespace cudagan::cpu {
template <class T> void bce_with_logits_forward(const T* logits, const T* targets, int64_t n, T* loss);
template <class T>
void bce_with_logits_backward(const T* logits, const T* targets, int64_t n, T grad_loss, T* dlogits);
}  // namespace cudagan::cpu

// CUDA backend (float32, kernels/cuda/bce.cu). loss is a device pointer; the forward reduction is
// deterministic (per-block double partials in ctx.workspace, then one block adds them in order).
// The backward pass takes grad_loss either as a host value or as a device pointer to one float (the
// upstream gradient as autograd produces it), so no host synchronization is needed.
namespace cudagan::cuda {
struct KernelContext;
void bce_with_logits_forward(const KernelContext& ctx, const float* logits, const float* targets, int64_t n,
                             float* loss);
void bce_with_logits_backward(const KernelContext& ctx, const float* logits, const float* targets, int64_t n,
                              float grad_loss, float* dlogits);
void bce_with_logits_backward(const KernelContext& ctx, const float* logits, const float* targets, int64_t n,
                              const float* grad_loss_device, float* dlogits);
}  // namespace cudagan::cuda
