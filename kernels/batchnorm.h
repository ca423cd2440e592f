// Batch normalization over x [N, C, S] (S = H*W), per channel c:
//   mean_c = E[x], var_c = E[(x - mean_c)^2] (biased), invstd_c = 1 / sqrt(var_c + eps)
//   y = gamma_c * (x - mean_c) * invstd_c + beta_c
// Training uses the batch statistics and updates the running ones with momentum m:
//   running_mean = (1 - m) running_mean + m mean;  running_var = (1 - m) running_var + m var * n/(n-1)
// Evaluation uses the running statistics. gamma/beta may be null (no affine: gamma 1, beta 0); any
// output pointer may be null when that result is not wanted. Outputs are overwritten.
//
// Synchronised (cross-replica) batch normalization splits the training passes where a data-parallel run
// sums per-channel values over the replicas, each holding a slice of the global batch. `sums` is a
// double [2C + 1] array: two per-channel sums, then the count n = N*S of the values they cover, so that
// summing the arrays element-wise over the replicas also sums the counts (n_tot):
//   batch_norm_channel_sums:    sums = [sum x | sum x^2 | n], in double, with no shift (a shift would have
//                               to be common to all replicas; in double E[x^2] - E[x]^2 stays accurate to
//                               ~1e-16 (mean/std)^2 relative, far below fp32 data's own resolution)
//   (the replicas' sums are added)
//   batch_norm_stats_from_sums: mean = S1 / n_tot, var = max(0, S2 / n_tot - mean^2) (biased),
//                               invstd = 1 / sqrt(var + eps); the running update above with n_tot
//   batch_norm_forward_eval with (mean, var) then writes y: the normalisation itself is the same
//   batch_norm_backward_sums:   sums = [sum dy | sum dy xhat | n], xhat = (x - mean) invstd;
//                               dgamma = sum dy xhat and dbeta = sum dy of this replica's values only
//                               (data-parallel training averages them over the replicas with every other
//                               gradient, which gives the global batch's)
//   (the replicas' sums are added)
//   batch_norm_backward_from_sums: dx = gamma invstd (dy - S_dy / n_tot - xhat S_dyxhat / n_tot)
// With one replica (no summing) the passes give batch_norm_forward_train's and batch_norm_backward_train's
// results. n_tot must be positive; with n_tot == 1 the running variance takes the biased one (0), as above.
#pragma once

#include <cstdint>

#include "cudagan/core/error.h"  // InvalidArgument, which the kernels throw

namespace cudagan {

enum class Activation;  // activation.h

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
// The forward with a fused relu / leaky_relu (slope >= 0), as the CUDA overload below: y = act(batch_norm(x))
// in the normalising pass, one pass over y fewer than the pair, with the bits of batch_norm_forward_train
// then activation_forward. The backward stays the pair's two kernels on the CPU: a fused one, forming
// dy * act' a row at a time in both of its passes, measured 0.85-1.3x of the pair.
template <class T>
void batch_norm_forward_train(const BatchNormGeometry& g, const T* x, const T* gamma, const T* beta, T eps,
                              T momentum, T* y, T* saved_mean, T* saved_invstd, T* running_mean, T* running_var,
                              Activation act, bool fuse_activation, T slope);
template <class T>
void batch_norm_backward_eval(const BatchNormGeometry& g, const T* x, const T* dy, const T* gamma,
                              const T* running_mean, const T* running_var, T eps, T* dx, T* dgamma,
                              T* dbeta);

// The synchronised passes (see the top of this file); sums: double [2C + 1].
template <class T>
void batch_norm_channel_sums(const BatchNormGeometry& g, const T* x, double* sums);
template <class T>
void batch_norm_stats_from_sums(int channels, const double* sums, T eps, T momentum, T* mean, T* var,
                                T* invstd, T* running_mean, T* running_var);
template <class T>
void batch_norm_backward_sums(const BatchNormGeometry& g, const T* x, const T* dy, const T* mean,
                              const T* invstd, double* sums, T* dgamma, T* dbeta);
template <class T>
void batch_norm_backward_from_sums(const BatchNormGeometry& g, const T* x, const T* dy, const T* gamma,
                                   const T* mean, const T* invstd, const double* sums, T* dx);
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

// The synchronised passes; sums is a device double [2C + 1] array, read and written in stream order (no
// host round trip: stats_from_sums reads the count from it on the device).
void batch_norm_channel_sums(const KernelContext& ctx, const BatchNormGeometry& g, const float* x,
                             double* sums);
void batch_norm_stats_from_sums(const KernelContext& ctx, int channels, const double* sums, float eps,
                                float momentum, float* mean, float* var, float* invstd, float* running_mean,
                                float* running_var);
void batch_norm_backward_sums(const KernelContext& ctx, const BatchNormGeometry& g, const float* x,
                              const float* dy, const float* mean, const float* invstd, double* sums,
                              float* dgamma, float* dbeta);
void batch_norm_backward_from_sums(const KernelContext& ctx, const BatchNormGeometry& g, const float* x,
                                   const float* dy, const float* gamma, const float* mean,
                                   const float* invstd, const double* sums, float* dx);
}  // namespace cuda
}  // namespace cudagan
