// Batch normalization on the GPU, optionally fused with the activation that follows it.
// x, y, dy, dx: [N, C, S] with S = H*W; per-channel vectors: [C]. Per channel c over its n = N*S values:
//   forward (train): shift = x[0, c, 0]; one pass of sum(x - shift), sum((x - shift)^2) in double;
//                    mean, biased var, invstd = 1/sqrt(var + eps); y = act(gamma (x - mean) invstd + beta);
//                    running_mean = (1-m) running_mean + m mean,
//                    running_var  = (1-m) running_var  + m var n/(n-1)   (factor 1 when n == 1)
//   backward (train): dy' = dy act'(y) (fused) or dy; xhat = (x - mean) invstd;
//                    dgamma = sum(dy' xhat), dbeta = sum(dy'),
//                    dx = gamma invstd (dy' - sum(dy')/n - xhat sum(dy' xhat)/n)
//   forward (eval):  y = gamma (x - running_mean) / sqrt(running_var + eps) + beta
//   backward (eval): dx = dy gamma / sqrt(running_var + eps), dgamma = sum(dy xhat), dbeta = sum(dy)
//   synchronised (kernels/batchnorm.h): channel_sums / backward_sums reduce one channel per block as the
//                    training kernels do (no shift: the sums are added over the replicas) and write the count
//                    to sums[2C]; stats_from_sums, one thread per channel, and backward_from_sums,
//                    element-wise like forward_eval, read the (summed) count from device memory, so nothing
//                    waits for the host.
//
// The training kernels run one block per channel: the block reduces the channel's sums (per-thread double
// accumulators, then a fixed-order block reduction: deterministic), thread 0 turns them into the per-channel
// constants, and the block makes its second pass over the same channel while it is still in L2. The
// constants and the element-wise expressions are those of kernels/cpu/batchnorm.cpp in the same order, with
// __f*_rn intrinsics so that nvcc does not contract them into FMAs: the CUDA and CPU results differ only
// where the differently-ordered double sums round to different floats.
//
// With the activation fused, relu / leaky_relu take their derivative from the sign of y, which has the sign
// of the pre-activation when slope >= 0; tanh / sigmoid take it from y as usual. Neither pass needs the
// pre-activation tensor, which therefore never exists in memory.
#include <algorithm>
#include <stdexcept>

#include "cudagan/core/error.h"
#include <string>

#include "activation.h"
#include "batchnorm.h"
#include "cuda/activation_math.cuh"
#include "cuda/common.cuh"

namespace cudagan::cuda {
namespace {

constexpr int kTrainBlock = 512;  // threads per channel in the training passes
constexpr int kEvalBlock = 256;
constexpr int kMaxGridY = 65535;

void check_geometry(const BatchNormGeometry& g, const char* op) {
  if (g.batch < 0 || g.channels < 0 || g.spatial < 0)
    throw InvalidArgument(std::string("cuda::") + op + ": invalid geometry (batch " +
                                std::to_string(g.batch) + ", channels " + std::to_string(g.channels) +
                                ", spatial " + std::to_string(g.spatial) + ")");
}

unsigned channel_blocks(int channels) { return unsigned(std::min<int64_t>(channels, kMaxGridBlocks)); }

}  // namespace

template <Activation A, bool kFuse>
static __global__ void forward_train_kernel(int batch, int channels, int64_t spatial, const float* x,
                                            const float* gamma, const float* beta, float eps, float momentum,
                                            float slope, float* y, float* saved_mean, float* saved_invstd,
                                            float* running_mean, float* running_var) {
  __shared__ double scratch[kTrainBlock / kWarpSize];
  __shared__ float s_mean, s_scale, s_bias;
  const int64_t n = int64_t(batch) * spatial;
  for (int c = blockIdx.x; c < channels; c += gridDim.x) {
    // Shifting by one of the channel's own values keeps E[d^2] - E[d]^2 from cancelling when |mean| >> std.
    const double shift = double(x[int64_t(c) * spatial]);
    double sum = 0.0, sum_sq = 0.0;
    ChannelWalk it(threadIdx.x, blockDim.x, c, channels, spatial);
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x, it.next()) {
      const double d = double(x[it.addr]) - shift;
      sum += d;
      sum_sq += d * d;
    }
    sum = block_sum<kTrainBlock>(sum, scratch);
    sum_sq = block_sum<kTrainBlock>(sum_sq, scratch);
    if (threadIdx.x == 0) {
      const double mean_shifted = sum / double(n);
      const double var = fmax(0.0, __dsub_rn(sum_sq / double(n), __dmul_rn(mean_shifted, mean_shifted)));
      const double mean = shift + mean_shifted;
      const double invstd = 1.0 / sqrt(var + double(eps));
      s_mean = float(mean);
      s_scale = float(gamma ? double(gamma[c]) * invstd : invstd);
      s_bias = beta ? beta[c] : 0.0f;
      if (saved_mean) saved_mean[c] = float(mean);
      if (saved_invstd) saved_invstd[c] = float(invstd);
      const double m = double(momentum);
      const double unbias = n > 1 ? double(n) / double(n - 1) : 1.0;
      if (running_mean)
        running_mean[c] = float(__dadd_rn(__dmul_rn(1.0 - m, double(running_mean[c])), __dmul_rn(m, mean)));
      if (running_var)
        running_var[c] = float(
            __dadd_rn(__dmul_rn(1.0 - m, double(running_var[c])), __dmul_rn(__dmul_rn(m, var), unbias)));
    }
    __syncthreads();
    if (y) {
      const float mean_t = s_mean, scale = s_scale, bias = s_bias;
      ChannelWalk out(threadIdx.x, blockDim.x, c, channels, spatial);
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x, out.next()) {
        float v = __fadd_rn(__fmul_rn(__fsub_rn(x[out.addr], mean_t), scale), bias);
        if constexpr (kFuse) v = activation_value<A>(v, slope);
        y[out.addr] = v;
      }
    }
    __syncthreads();  // s_mean & co. are rewritten for the block's next channel
  }
}

template <Activation A, bool kFuse>
static __global__ void backward_train_kernel(int batch, int channels, int64_t spatial, const float* x,
                                             const float* dy, const float* y, const float* gamma,
                                             const float* saved_mean, const float* saved_invstd, float slope,
                                             float* dx, float* dgamma, float* dbeta) {
  __shared__ double scratch[kTrainBlock / kWarpSize];
  __shared__ float s_k, s_mean_dy, s_coef;
  const int64_t n = int64_t(batch) * spatial;
  for (int c = blockIdx.x; c < channels; c += gridDim.x) {
    const float mean_t = saved_mean[c];
    const double mean = double(mean_t), invstd = double(saved_invstd[c]);
    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    ChannelWalk it(threadIdx.x, blockDim.x, c, channels, spatial);
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x, it.next()) {
      float g = dy[it.addr];
      if constexpr (kFuse) g = activation_grad<A>(y[it.addr], y[it.addr], g, slope);
      sum_dy += double(g);
      sum_dy_xhat += double(g) * ((double(x[it.addr]) - mean) * invstd);
    }
    sum_dy = block_sum<kTrainBlock>(sum_dy, scratch);
    sum_dy_xhat = block_sum<kTrainBlock>(sum_dy_xhat, scratch);
    if (threadIdx.x == 0) {
      if (dgamma) dgamma[c] = float(sum_dy_xhat);
      if (dbeta) dbeta[c] = float(sum_dy);
      // dx = k (dy' - mean(dy') - (x - mean) coef), xhat's invstd folded into coef.
      s_k = float((gamma ? double(gamma[c]) : 1.0) * invstd);
      s_mean_dy = float(sum_dy / double(n));
      s_coef = float(sum_dy_xhat / double(n) * invstd);
    }
    __syncthreads();
    if (dx) {
      const float k = s_k, mean_dy = s_mean_dy, coef = s_coef;
      ChannelWalk out(threadIdx.x, blockDim.x, c, channels, spatial);
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x, out.next()) {
        float g = dy[out.addr];
        if constexpr (kFuse) g = activation_grad<A>(y[out.addr], y[out.addr], g, slope);
        dx[out.addr] =
            __fmul_rn(k, __fsub_rn(__fsub_rn(g, mean_dy), __fmul_rn(__fsub_rn(x[out.addr], mean_t), coef)));
      }
    }
    __syncthreads();
  }
}

// Element-wise with per-channel constants: blockIdx.y walks the channels, blockIdx.x / threadIdx.x the
// channel's n values (grid-stride in both).
static __global__ void forward_eval_kernel(int batch, int channels, int64_t spatial, const float* x,
                                           const float* gamma, const float* beta, const float* running_mean,
                                           const float* running_var, float eps, float* y) {
  const int64_t n = int64_t(batch) * spatial;
  const int64_t start = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int c = blockIdx.y; c < channels; c += gridDim.y) {
    if (start >= n) break;
    const double invstd = 1.0 / sqrt(double(running_var[c]) + double(eps));
    const float mean_t = running_mean[c];
    const float scale = float(gamma ? double(gamma[c]) * invstd : invstd);
    const float bias = beta ? beta[c] : 0.0f;
    ChannelWalk it(start, stride, c, channels, spatial);
    for (int64_t j = start; j < n; j += stride, it.next())
      y[it.addr] = __fadd_rn(__fmul_rn(__fsub_rn(x[it.addr], mean_t), scale), bias);
  }
}

// With fixed statistics y is affine in x: dx is element-wise; the block of channel c also reduces dgamma
// and dbeta when they are wanted.
static __global__ void backward_eval_kernel(int batch, int channels, int64_t spatial, const float* x,
                                            const float* dy, const float* gamma, const float* running_mean,
                                            const float* running_var, float eps, float* dx, float* dgamma,
                                            float* dbeta) {
  __shared__ double scratch[kTrainBlock / kWarpSize];
  const int64_t n = int64_t(batch) * spatial;
  const bool reduce = dgamma != nullptr || dbeta != nullptr;
  for (int c = blockIdx.x; c < channels; c += gridDim.x) {
    const double mean = double(running_mean[c]);
    const double invstd = 1.0 / sqrt(double(running_var[c]) + double(eps));
    const float k = float((gamma ? double(gamma[c]) : 1.0) * invstd);
    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    ChannelWalk it(threadIdx.x, blockDim.x, c, channels, spatial);
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x, it.next()) {
      const float g = dy[it.addr];
      if (reduce) {
        sum_dy += double(g);
        sum_dy_xhat += double(g) * ((double(x[it.addr]) - mean) * invstd);
      }
      if (dx) dx[it.addr] = __fmul_rn(g, k);
    }
    if (reduce) {  // uniform across the block: every thread reaches block_sum's barriers
      sum_dy = block_sum<kTrainBlock>(sum_dy, scratch);
      sum_dy_xhat = block_sum<kTrainBlock>(sum_dy_xhat, scratch);
      if (threadIdx.x == 0) {
        if (dgamma) dgamma[c] = float(sum_dy_xhat);
        if (dbeta) dbeta[c] = float(sum_dy);
      }
    }
  }
}

// --- synchronised batch norm (see kernels/batchnorm.h) ---

constexpr int kStatsBlock = 128;  // threads of stats_from_sums_kernel, one per channel

// sums[c] = sum x, sums[C + c] = sum x^2 over channel c; sums[2C] = n (block 0 writes it).
static __global__ void channel_sums_kernel(int batch, int channels, int64_t spatial, const float* x,
                                           double* sums) {
  __shared__ double scratch[kTrainBlock / kWarpSize];
  const int64_t n = int64_t(batch) * spatial;
  if (blockIdx.x == 0 && threadIdx.x == 0) sums[2 * int64_t(channels)] = double(n);
  for (int c = blockIdx.x; c < channels; c += gridDim.x) {
    double sum = 0.0, sum_sq = 0.0;
    ChannelWalk it(threadIdx.x, blockDim.x, c, channels, spatial);
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x, it.next()) {
      const double v = double(x[it.addr]);
      sum += v;
      sum_sq += v * v;
    }
    sum = block_sum<kTrainBlock>(sum, scratch);
    sum_sq = block_sum<kTrainBlock>(sum_sq, scratch);
    if (threadIdx.x == 0) {
      sums[c] = sum;
      sums[int64_t(channels) + c] = sum_sq;
    }
  }
}

// Thread 0 of forward_train_kernel, from summed sums: the same expressions, with the count read from
// sums[2C].
static __global__ void stats_from_sums_kernel(int channels, const double* sums, float eps, float momentum,
                                              float* mean, float* var, float* invstd, float* running_mean,
                                              float* running_var) {
  const double n = sums[2 * int64_t(channels)];
  const double m = double(momentum);
  const double unbias = n > 1.0 ? n / (n - 1.0) : 1.0;
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < channels;
       c += int64_t(gridDim.x) * blockDim.x) {
    const double mu = sums[c] / n;
    const double v = fmax(0.0, __dsub_rn(sums[channels + c] / n, __dmul_rn(mu, mu)));
    if (mean) mean[c] = float(mu);
    if (var) var[c] = float(v);
    if (invstd) invstd[c] = float(1.0 / sqrt(v + double(eps)));
    if (running_mean)
      running_mean[c] = float(__dadd_rn(__dmul_rn(1.0 - m, double(running_mean[c])), __dmul_rn(m, mu)));
    if (running_var)
      running_var[c] =
          float(__dadd_rn(__dmul_rn(1.0 - m, double(running_var[c])), __dmul_rn(__dmul_rn(m, v), unbias)));
  }
}

// The reduction half of backward_train_kernel: sums[c] = sum dy, sums[C + c] = sum dy xhat, sums[2C] = n, and
// this replica's dgamma / dbeta.
static __global__ void backward_sums_kernel(int batch, int channels, int64_t spatial, const float* x,
                                            const float* dy, const float* mean, const float* invstd,
                                            double* sums, float* dgamma, float* dbeta) {
  __shared__ double scratch[kTrainBlock / kWarpSize];
  const int64_t n = int64_t(batch) * spatial;
  if (blockIdx.x == 0 && threadIdx.x == 0) sums[2 * int64_t(channels)] = double(n);
  for (int c = blockIdx.x; c < channels; c += gridDim.x) {
    const double mu = double(mean[c]), is = double(invstd[c]);
    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    ChannelWalk it(threadIdx.x, blockDim.x, c, channels, spatial);
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x, it.next()) {
      const float g = dy[it.addr];
      sum_dy += double(g);
      sum_dy_xhat += double(g) * ((double(x[it.addr]) - mu) * is);
    }
    sum_dy = block_sum<kTrainBlock>(sum_dy, scratch);
    sum_dy_xhat = block_sum<kTrainBlock>(sum_dy_xhat, scratch);
    if (threadIdx.x == 0) {
      sums[c] = sum_dy;
      sums[int64_t(channels) + c] = sum_dy_xhat;
      if (dgamma) dgamma[c] = float(sum_dy_xhat);
      if (dbeta) dbeta[c] = float(sum_dy);
    }
  }
}

// The element-wise half of backward_train_kernel, with the summed count; laid out like forward_eval_kernel.
static __global__ void backward_from_sums_kernel(int batch, int channels, int64_t spatial, const float* x,
                                                 const float* dy, const float* gamma, const float* mean,
                                                 const float* invstd, const double* sums, float* dx) {
  const int64_t n = int64_t(batch) * spatial;
  const int64_t start = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const double total = sums[2 * int64_t(channels)];
  for (int c = blockIdx.y; c < channels; c += gridDim.y) {
    if (start >= n) break;
    const float mean_t = mean[c];
    const double is = double(invstd[c]);
    const float k = float((gamma ? double(gamma[c]) : 1.0) * is);
    const float mean_dy = float(sums[c] / total);
    const float coef = float(sums[int64_t(channels) + c] / total * is);
    ChannelWalk it(start, stride, c, channels, spatial);
    for (int64_t j = start; j < n; j += stride, it.next())
      dx[it.addr] = __fmul_rn(
          k, __fsub_rn(__fsub_rn(dy[it.addr], mean_dy), __fmul_rn(__fsub_rn(x[it.addr], mean_t), coef)));
  }
}

namespace {

// forward_eval_kernel's grid: blockIdx.y over the channels, blockIdx.x over each channel's values.
dim3 elementwise_grid(const BatchNormGeometry& g) {
  const unsigned grid_y = unsigned(std::min(g.channels, kMaxGridY));
  return dim3(grid_blocks(g.count(), kEvalBlock, std::max<int64_t>(1, kMaxGridBlocks / grid_y)), grid_y);
}

template <Activation A, bool kFuse>
void launch_forward_train(const KernelContext& ctx, const BatchNormGeometry& g, const float* x,
                          const float* gamma, const float* beta, float eps, float momentum, float slope,
                          float* y, float* saved_mean, float* saved_invstd, float* running_mean,
                          float* running_var) {
  forward_train_kernel<A, kFuse><<<channel_blocks(g.channels), kTrainBlock, 0, ctx.stream>>>(
      g.batch, g.channels, g.spatial, x, gamma, beta, eps, momentum, slope, y, saved_mean, saved_invstd,
      running_mean, running_var);
  CUDA_CHECK_LAUNCH(ctx, "forward_train_kernel");
}

template <Activation A, bool kFuse>
void launch_backward_train(const KernelContext& ctx, const BatchNormGeometry& g, const float* x,
                           const float* dy, const float* y, const float* gamma, const float* saved_mean,
                           const float* saved_invstd, float slope, float* dx, float* dgamma, float* dbeta) {
  backward_train_kernel<A, kFuse><<<channel_blocks(g.channels), kTrainBlock, 0, ctx.stream>>>(
      g.batch, g.channels, g.spatial, x, dy, y, gamma, saved_mean, saved_invstd, slope, dx, dgamma, dbeta);
  CUDA_CHECK_LAUNCH(ctx, "backward_train_kernel");
}

[[noreturn]] void throw_unknown(const char* op, Activation a) {
  throw InvalidArgument(std::string("cuda::") + op + ": unknown Activation value " +
                              std::to_string(int(a)));
}

}  // namespace

void batch_norm_forward_train(const KernelContext& ctx, const BatchNormGeometry& g, const float* x,
                              const float* gamma, const float* beta, float eps, float momentum, float* y,
                              float* saved_mean, float* saved_invstd, float* running_mean,
                              float* running_var) {
  batch_norm_forward_train(ctx, g, x, gamma, beta, eps, momentum, y, saved_mean, saved_invstd, running_mean,
                           running_var, Activation::relu, false, 0.0f);
}

void batch_norm_forward_train(const KernelContext& ctx, const BatchNormGeometry& g, const float* x,
                              const float* gamma, const float* beta, float eps, float momentum, float* y,
                              float* saved_mean, float* saved_invstd, float* running_mean, float* running_var,
                              Activation act, bool fuse_activation, float slope) {
  check_geometry(g, "batch_norm_forward_train");
  if (g.count() == 0 || g.channels == 0) return;
  if (!fuse_activation)
    return launch_forward_train<Activation::relu, false>(ctx, g, x, gamma, beta, eps, momentum, slope, y,
                                                         saved_mean, saved_invstd, running_mean, running_var);
  switch (act) {
    case Activation::relu:
      return launch_forward_train<Activation::relu, true>(ctx, g, x, gamma, beta, eps, momentum, slope, y,
                                                          saved_mean, saved_invstd, running_mean,
                                                          running_var);
    case Activation::leaky_relu:
      return launch_forward_train<Activation::leaky_relu, true>(ctx, g, x, gamma, beta, eps, momentum, slope,
                                                                y, saved_mean, saved_invstd, running_mean,
                                                                running_var);
    case Activation::tanh:
      return launch_forward_train<Activation::tanh, true>(ctx, g, x, gamma, beta, eps, momentum, slope, y,
                                                          saved_mean, saved_invstd, running_mean,
                                                          running_var);
    case Activation::sigmoid:
      return launch_forward_train<Activation::sigmoid, true>(ctx, g, x, gamma, beta, eps, momentum, slope, y,
                                                             saved_mean, saved_invstd, running_mean,
                                                             running_var);
  }
  throw_unknown("batch_norm_forward_train", act);
}

void batch_norm_forward_eval(const KernelContext& ctx, const BatchNormGeometry& g, const float* x,
                             const float* gamma, const float* beta, const float* running_mean,
                             const float* running_var, float eps, float* y) {
  check_geometry(g, "batch_norm_forward_eval");
  if (!y || g.count() == 0 || g.channels == 0) return;
  forward_eval_kernel<<<elementwise_grid(g), kEvalBlock, 0, ctx.stream>>>(
      g.batch, g.channels, g.spatial, x, gamma, beta, running_mean, running_var, eps, y);
  CUDA_CHECK_LAUNCH(ctx, "forward_eval_kernel");
}

void batch_norm_backward_train(const KernelContext& ctx, const BatchNormGeometry& g, const float* x,
                               const float* dy, const float* gamma, const float* saved_mean,
                               const float* saved_invstd, float* dx, float* dgamma, float* dbeta) {
  batch_norm_backward_train(ctx, g, x, dy, gamma, saved_mean, saved_invstd, dx, dgamma, dbeta, nullptr,
                            Activation::relu, false, 0.0f);
}

void batch_norm_backward_train(const KernelContext& ctx, const BatchNormGeometry& g, const float* x,
                               const float* dy, const float* gamma, const float* saved_mean,
                               const float* saved_invstd, float* dx, float* dgamma, float* dbeta,
                               const float* y, Activation act, bool fuse_activation, float slope) {
  check_geometry(g, "batch_norm_backward_train");
  if (g.count() == 0 || g.channels == 0 || (!dx && !dgamma && !dbeta)) return;
  if (!fuse_activation)
    return launch_backward_train<Activation::relu, false>(ctx, g, x, dy, nullptr, gamma, saved_mean,
                                                          saved_invstd, slope, dx, dgamma, dbeta);
  if (y == nullptr)
    throw InvalidArgument(
        "cuda::batch_norm_backward_train: a fused activation needs the forward output y");
  switch (act) {
    case Activation::relu:
      return launch_backward_train<Activation::relu, true>(ctx, g, x, dy, y, gamma, saved_mean, saved_invstd,
                                                           slope, dx, dgamma, dbeta);
    case Activation::leaky_relu:
      if (!(slope >= 0.0f))
        throw InvalidArgument(
            "cuda::batch_norm_backward_train: a fused leaky_relu reads its derivative from "
            "the sign of y, which needs slope >= 0, got " +
            std::to_string(slope));
      return launch_backward_train<Activation::leaky_relu, true>(ctx, g, x, dy, y, gamma, saved_mean,
                                                                 saved_invstd, slope, dx, dgamma, dbeta);
    case Activation::tanh:
      return launch_backward_train<Activation::tanh, true>(ctx, g, x, dy, y, gamma, saved_mean, saved_invstd,
                                                           slope, dx, dgamma, dbeta);
    case Activation::sigmoid:
      return launch_backward_train<Activation::sigmoid, true>(ctx, g, x, dy, y, gamma, saved_mean,
                                                              saved_invstd, slope, dx, dgamma, dbeta);
  }
  throw_unknown("batch_norm_backward_train", act);
}

void batch_norm_backward_eval(const KernelContext& ctx, const BatchNormGeometry& g, const float* x,
                              const float* dy, const float* gamma, const float* running_mean,
                              const float* running_var, float eps, float* dx, float* dgamma, float* dbeta) {
  check_geometry(g, "batch_norm_backward_eval");
  if (g.channels == 0 || (!dx && !dgamma && !dbeta)) return;
  // n == 0 still writes dgamma = dbeta = 0, as the CPU backend does.
  backward_eval_kernel<<<channel_blocks(g.channels), kTrainBlock, 0, ctx.stream>>>(
      g.batch, g.channels, g.spatial, x, dy, gamma, running_mean, running_var, eps, dx, dgamma, dbeta);
  CUDA_CHECK_LAUNCH(ctx, "backward_eval_kernel");
}

void batch_norm_channel_sums(const KernelContext& ctx, const BatchNormGeometry& g, const float* x,
                             double* sums) {
  check_geometry(g, "batch_norm_channel_sums");
  // Always launched, also for an empty input: the count (and zero sums) must be written for the collective.
  channel_sums_kernel<<<std::max(1u, channel_blocks(g.channels)), kTrainBlock, 0, ctx.stream>>>(
      g.batch, g.channels, g.spatial, x, sums);
  CUDA_CHECK_LAUNCH(ctx, "channel_sums_kernel");
}

void batch_norm_stats_from_sums(const KernelContext& ctx, int channels, const double* sums, float eps,
                                float momentum, float* mean, float* var, float* invstd, float* running_mean,
                                float* running_var) {
  if (channels < 0)
    throw InvalidArgument("cuda::batch_norm_stats_from_sums: invalid channel count " +
                          std::to_string(channels));
  if (channels == 0) return;
  stats_from_sums_kernel<<<grid_blocks(channels, kStatsBlock), kStatsBlock, 0, ctx.stream>>>(
      channels, sums, eps, momentum, mean, var, invstd, running_mean, running_var);
  CUDA_CHECK_LAUNCH(ctx, "stats_from_sums_kernel");
}

void batch_norm_backward_sums(const KernelContext& ctx, const BatchNormGeometry& g, const float* x,
                              const float* dy, const float* mean, const float* invstd, double* sums,
                              float* dgamma, float* dbeta) {
  check_geometry(g, "batch_norm_backward_sums");
  backward_sums_kernel<<<std::max(1u, channel_blocks(g.channels)), kTrainBlock, 0, ctx.stream>>>(
      g.batch, g.channels, g.spatial, x, dy, mean, invstd, sums, dgamma, dbeta);
  CUDA_CHECK_LAUNCH(ctx, "backward_sums_kernel");
}

void batch_norm_backward_from_sums(const KernelContext& ctx, const BatchNormGeometry& g, const float* x,
                                   const float* dy, const float* gamma, const float* mean,
                                   const float* invstd, const double* sums, float* dx) {
  check_geometry(g, "batch_norm_backward_from_sums");
  if (!dx || g.count() == 0 || g.channels == 0) return;
  backward_from_sums_kernel<<<elementwise_grid(g), kEvalBlock, 0, ctx.stream>>>(
      g.batch, g.channels, g.spatial, x, dy, gamma, mean, invstd, sums, dx);
  CUDA_CHECK_LAUNCH(ctx, "backward_from_sums_kernel");
}

}  // namespace cudagan::cuda
