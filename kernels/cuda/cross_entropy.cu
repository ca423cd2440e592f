// Softmax cross-entropy on logits on the GPU, logits z, targets t, dlogits: [n, k] row-major; loss: one
// device float. One warp per row (kCeBlock / 32 rows per block, grid-stride over the rows);
// m = max_j z[r,j], s = sum_j e^(z[r,j] - m):
//   forward:  loss = (1/n) sum_r  sum_j t[r,j] (m - z[r,j])  +  (sum_j t[r,j]) log1p(s - 1)   (n, k = 0: NaN)
//   backward: dz[r,j] = g (e^(z[r,j] - m) (sum_j t[r,j]) / s - t[r,j]),  g = grad_loss / n
// The same split as kernels/cpu/cross_entropy.cpp: for targets >= 0 both forward sums have terms >= 0, exp
// only sees z - m <= 0, and s - 1 is summed without the e^0 of one maximum, so nothing overflows or cancels
// for any logit. The forward terms are formed and summed in double, like the CPU backend; each block adds
// its warps' row losses in a fixed tree into a double partial in ctx.workspace (at most kMaxPartials of
// them, 8 KiB) and reduce.cuh's finishing kernel adds the partials in order: deterministic, no atomics. The
// backward pass works in float with the row's two sums accumulated in double; grad_loss comes either as a
// host float or as a device pointer (autograd's upstream gradient, read by every thread: no host
// synchronization).
#include <cmath>
#include <stdexcept>

#include "cross_entropy.h"
#include "cuda/common.cuh"
#include "cuda/reduce.cuh"
#include "cudagan/core/error.h"

namespace cudagan::cuda {
namespace {

constexpr int kCeBlock = 256;
constexpr int kCeRowsPerBlock = kCeBlock / kWarpSize;

// Butterfly reductions over the warp: every lane ends with the same value (a + b and b + a round alike).
__device__ __forceinline__ float warp_max_all(float v) {
  for (int offset = kWarpSize / 2; offset > 0; offset >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

__device__ __forceinline__ double warp_sum_all(double v) {
  for (int offset = kWarpSize / 2; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// The row's largest logit, in every lane. fmaxf skips a NaN, which still reaches the sums that follow.
__device__ __forceinline__ float row_max(const float* z, int64_t k, int lane) {
  float m = -INFINITY;
  for (int64_t j = lane; j < k; j += kWarpSize) m = fmaxf(m, z[j]);
  return warp_max_all(m);
}

}  // namespace

static __global__ void cross_entropy_partials_kernel(const float* logits, const float* targets, int64_t n,
                                                     int64_t k, double* partials) {
  __shared__ double scratch[kCeBlock / kWarpSize];
  const int lane = int(threadIdx.x) % kWarpSize;
  double acc = 0.0;  // the row losses of this thread's warp, in lane 0
  for (int64_t r = int64_t(blockIdx.x) * kCeRowsPerBlock + threadIdx.x / kWarpSize; r < n;
       r += int64_t(gridDim.x) * kCeRowsPerBlock) {
    const float* z = logits + r * k;
    const float* t = targets + r * k;
    const double m = double(row_max(z, k, lane));
    double maxima = 0.0, rest = 0.0, t_sum = 0.0, t_gap = 0.0;  // s - 1 = rest + (maxima - 1)
    for (int64_t j = lane; j < k; j += kWarpSize) {
      const double gap = m - double(z[j]), tj = double(t[j]);
      if (gap == 0.0)
        maxima += 1.0;
      else
        rest += exp(-gap);
      t_sum += tj;
      t_gap += tj * gap;
    }
    maxima = warp_sum(maxima);
    rest = warp_sum(rest);
    t_sum = warp_sum(t_sum);
    t_gap = warp_sum(t_gap);
    if (lane == 0) acc += t_gap + t_sum * log1p(rest + (maxima - 1.0));
  }
  acc = block_sum<kCeBlock>(acc, scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

// g is grad_loss / n: from a host value (g_host) or, when g_device is set, from *g_device / n.
static __global__ void cross_entropy_backward_kernel(const float* logits, const float* targets, int64_t n,
                                                     int64_t k, float g_host, const float* g_device,
                                                     float* dlogits) {
  const float g = g_device ? __fdiv_rn(*g_device, float(n)) : g_host;
  const int lane = int(threadIdx.x) % kWarpSize;
  for (int64_t r = int64_t(blockIdx.x) * kCeRowsPerBlock + threadIdx.x / kWarpSize; r < n;
       r += int64_t(gridDim.x) * kCeRowsPerBlock) {
    const float* z = logits + r * k;
    const float* t = targets + r * k;
    float* dz = dlogits + r * k;
    const float m = row_max(z, k, lane);
    double s = 0.0, t_sum = 0.0;
    for (int64_t j = lane; j < k; j += kWarpSize) {
      s += double(expf(__fsub_rn(z[j], m)));
      t_sum += double(t[j]);
    }
    // softmax_j * sum t = e^(z_j - m) * (sum t / s); targets need not sum to 1.
    const float scale = float(warp_sum_all(t_sum) / warp_sum_all(s));
    for (int64_t j = lane; j < k; j += kWarpSize)
      dz[j] = __fmul_rn(g, __fsub_rn(__fmul_rn(expf(__fsub_rn(z[j], m)), scale), t[j]));
  }
}

void cross_entropy_with_logits_forward(const KernelContext& ctx, const float* logits, const float* targets,
                                       int64_t n, int64_t k, float* loss) {
  const int64_t rows = n > 0 && k > 0 ? n : 0;  // nothing to average: 0 / 0, NaN, as on the CPU
  const int blocks = rows > 0 ? int(grid_blocks(rows, kCeRowsPerBlock, kMaxPartials)) : 0;
  double* partials = workspace_as<double>(ctx, blocks, "cross_entropy_with_logits_forward");
  if (blocks > 0) {
    cross_entropy_partials_kernel<<<blocks, kCeBlock, 0, ctx.stream>>>(logits, targets, rows, k, partials);
    CUDA_CHECK_LAUNCH(ctx, "cross_entropy_partials_kernel");
  }
  reduce_finish_kernel<<<1, kMaxPartials, 0, ctx.stream>>>(partials, blocks, double(rows), loss);
  CUDA_CHECK_LAUNCH(ctx, "reduce_finish_kernel");
}

void cross_entropy_with_logits_backward(const KernelContext& ctx, const float* logits, const float* targets,
                                        int64_t n, int64_t k, float grad_loss, float* dlogits) {
  if (n <= 0 || k <= 0) return;
  cross_entropy_backward_kernel<<<grid_blocks(n, kCeRowsPerBlock), kCeBlock, 0, ctx.stream>>>(
      logits, targets, n, k, grad_loss / float(n), nullptr, dlogits);
  CUDA_CHECK_LAUNCH(ctx, "cross_entropy_backward_kernel");
}

void cross_entropy_with_logits_backward(const KernelContext& ctx, const float* logits, const float* targets,
                                        int64_t n, int64_t k, const float* grad_loss_device, float* dlogits) {
  if (n <= 0 || k <= 0) return;
  if (grad_loss_device == nullptr)
    throw InvalidArgument("cuda::cross_entropy_with_logits_backward: grad_loss_device is null");
  cross_entropy_backward_kernel<<<grid_blocks(n, kCeRowsPerBlock), kCeBlock, 0, ctx.stream>>>(
      logits, targets, n, k, 0.0f, grad_loss_device, dlogits);
  CUDA_CHECK_LAUNCH(ctx, "cross_entropy_backward_kernel");
}

}  // namespace cudagan::cuda
