// Binary cross-entropy on logits on the GPU, logits z, targets t, dlogits: [n]; loss: one device float.
//   forward:  loss = (1/n) sum_i max(z_i, 0) - z_i t_i + log(1 + e^-|z_i|)      (n == 0: NaN, as PyTorch)
//   backward: dz_i = g (sigmoid(z_i) - t_i),  g = grad_loss / n
// exp only ever sees -|z|: no overflow and no log(0) for any logit (z = +-100 gives 0 or 100). The terms are
// formed and summed in double, like kernels/cpu/bce.cpp, by the deterministic two-stage reduction of
// reduce.cuh (double partials in ctx.workspace, at most 8 KiB). grad_loss comes either as a host float or as
// a device pointer (autograd's upstream gradient, read by every thread: no host synchronization).
#include <stdexcept>

#include "cudagan/core/error.h"

#include "bce.h"
#include "cuda/activation_math.cuh"
#include "cuda/common.cuh"
#include "cuda/reduce.cuh"

namespace cudagan::cuda {
namespace {

constexpr int kBceBlock = 256;

struct BceTerm {
  const float* logits;
  const float* targets;
  __device__ double operator()(int64_t i) const {
    const double z = double(logits[i]), t = double(targets[i]);
    return __dadd_rn(__dsub_rn(fmax(z, 0.0), __dmul_rn(z, t)), log1p(exp(-fabs(z))));
  }
};

}  // namespace

// g is grad_loss / n: from a host value (g_host) or, when g_device is set, from *g_device / n.
static __global__ void bce_backward_kernel(const float* logits, const float* targets, int64_t n, float g_host,
                                           const float* g_device, float* dlogits) {
  const float g = g_device ? __fdiv_rn(*g_device, float(n)) : g_host;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dlogits[i] = __fmul_rn(g, __fsub_rn(stable_sigmoid(logits[i]), targets[i]));
}

void bce_with_logits_forward(const KernelContext& ctx, const float* logits, const float* targets, int64_t n,
                             float* loss) {
  reduce_to_device(ctx, BceTerm{logits, targets}, n > 0 ? n : 0, double(n > 0 ? n : 0), loss,
                   "bce_with_logits_forward");
}

void bce_with_logits_backward(const KernelContext& ctx, const float* logits, const float* targets, int64_t n,
                              float grad_loss, float* dlogits) {
  if (n <= 0) return;
  bce_backward_kernel<<<grid_blocks(n, kBceBlock), kBceBlock, 0, ctx.stream>>>(
      logits, targets, n, grad_loss / float(n), nullptr, dlogits);
  CUDA_CHECK_LAUNCH(ctx, "bce_backward_kernel");
}

void bce_with_logits_backward(const KernelContext& ctx, const float* logits, const float* targets, int64_t n,
                              const float* grad_loss_device, float* dlogits) {
  if (n <= 0) return;
  if (grad_loss_device == nullptr)
    throw InvalidArgument("cuda::bce_with_logits_backward: grad_loss_device is null");
  bce_backward_kernel<<<grid_blocks(n, kBceBlock), kBceBlock, 0, ctx.stream>>>(logits, targets, n, 0.0f,
                                                                               grad_loss_device, dlogits);
  CUDA_CHECK_LAUNCH(ctx, "bce_backward_kernel");
}

}  // namespace cudagan::cuda
