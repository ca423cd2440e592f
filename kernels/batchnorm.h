// Batch normalization over x [N, C, S] (S = H*W), per channel c:
//   mean_c = E[x], var_c = E[(x - mean_c)^2] (biased), invstd_c = 1 / sqrt(var_c + eps)
//   y = gamma_c * (x - mean_c) * invstd_c + beta_c
// Training uses the batch statistics and updates the running ones with momentum m:
//   running_mean = (1 - m) running_mean + m mean;  running_var = (1 - m) running_var + m var * n/(n-1)
// Evaluation uses the running statistics. gamma/beta may be null (no affine: gamma 1, beta 0); any
// output pointer may be null when that result is not wanted. Outputs are overwritten.
#pragma once

#include <cstdint>

#include "cudagan/core/error.h"  // InvalidArgument, which the kernels throw

namespace cudagan {

struct BatchNormGeometry {
  int batch = 1;
  int channels = 1;
  int64_t spatial = 1;  // H * W
  int64_t count() const { return int64_t(batch) * spatial; }  // elements per channel
  int64_t elems() const { return count() * channels; }
};

namespace cpu {
template <class T>
void batch_norm_forward_train(const BatchNormGeometry& g, const T* x, const T* gamma, const T* beta, T eps,
                              T momentum, T* y, T* saved_mean, T* saved_invstd, T* running_mean,
                              T* running_var);
template <class T>
void batch_norm_forward_eval(const BatchNormGeometry& g, const T* x, const T* gamma, const T* beta,
                             const T* running_mean, const T* running_var, T eps, T* y);
template <class T>
void batch_norm_backward_train(const BatchNormGeometry& g, const T* x, const T* dy, const T* gamma,
                               const T* saved_mean, const T* saved_invstd, T* dx, T* dgamma, T* dbeta);
template <class T>
void batch_norm_backward_eval(const BatchNormGeometry& g, const T* x, const T* dy, const T* gamma,
                              const T* running_mean, const T* running_var, T eps, T* dx, T* dgamma,
                              T* dbeta);
}  // namespace cpu

}  // namespace cudagan

// CUDA backend (float32, kernels/cuda/batchnorm.cu), device pointers, one block per channel for the
// training passes. Same math, null-pointer rules and outputs as the CPU functions above.
//
// The overloads taking (act, fuse_activation, slope) fuse a point-wise activation: with fuse_activation
// the forward writes y = act(batch_norm(x)), and the backward receives that y and the gradient dy with
// respect to it, forms dy' = dy * act'(...) from y, and backpropagates dy' through the batch norm
// (dgamma, dbeta and dx are those of the unfused pair). relu / leaky_relu read the derivative from the
// sign of y, which needs slope >= 0 (a negative slope throws). Without fuse_activation they are the plain
// functions and y (backward) may be null.
namespace cudagan {
enum class Activation;  // activation.h

namespace cuda {
struct KernelContext;
void batch_norm_forward_train(const KernelContext& ctx, const BatchNormGeometry& g, const float* x,
                              const float* gamma, const float* beta, float eps, float momentum, float* y,
                              float* saved_mean, float* saved_invstd, float* running_mean,
                              float* running_var);
void batch_norm_forward_train(const KernelContext& ctx, const BatchNormGeometry& g, const float* x,
                              const float* gamma, const float* beta, float eps, float momentum, float* y,
                              float* saved_mean, float* saved_invstd, float* running_mean, float* running_var,
                              Activation act, bool fuse_activation, float slope);
void batch_norm_forward_eval(const KernelContext& ctx, const BatchNormGeometry& g, const float* x,
                             const float* gamma, const float* beta, const float* running_mean,
                             const float* running_var, float eps, float* y);
void batch_norm_backward_train(const KernelContext& ctx, const BatchNormGeometry& g, const float* x,
                               const float* dy, const float* gamma, const float* saved_mean,
                               const float* saved_invstd, float* dx, float* dgamma, float* dbeta);
void batch_norm_backward_train(const KernelContext& ctx, const BatchNormGeometry& g, const float* x,
                               const float* dy, const float* gamma, const float* saved_mean,
                               const float* saved_invstd, float* dx, float* dgamma, float* dbeta,
                               const float* y, Activation act, bool fuse_activation, float slope);
void batch_norm_backward_eval(const KernelContext& ctx, const BatchNormGeometry& g, const float* x,
                              const float* dy, const float* gamma, const float* running_mean,
                              const float* running_var, float eps, float* dx, float* dgamma, float* dbeta);
}  // namespace cuda
}  // namespace cudagan
