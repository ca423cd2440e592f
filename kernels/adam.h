// Adam (Kingma & Ba) with PyTorch's semantics (torch.optim.Adam, amsgrad off), for step t >= 1:
//   g = grad + weight_decay * p
//   m = beta1 m + (1 - beta1) g;      v = beta2 v + (1 - beta2) g^2
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
#pragma once

#include <cstdint>

#include "cudagan/core/error.h"  // InvalidArgument, which the kernels throw

namespace cudagan {

struct AdamHyper {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  int64_t step = 1;  // t, the number of this update (1 for the first)
};

namespace cpu {
template <class T> void adam_step(const AdamHyper& h, T* param, const T* grad, T* m, T* v, int64_t n);
}  // namespace cpu

}  // namespace cudagan

namespace cudagan {

// One parameter tensor of a fused multi-tensor Adam update (device pointers, n elements each).
struct AdamSegment {
  float* param;
  const float* grad;
  float* m;
  float* v;
  int64_t n;
};

// CUDA backend (float32, kernels/cuda/adam.cu). adam_step_multi updates every segment in one launch: it
// copies the segment table into ctx.workspace (count * sizeof(AdamSegment) + (count + 1) * 8 bytes) and each
// thread finds its segment by binary search over the prefix sums of n. The bias corrections are formed on
// the host in double, exactly as on the CPU.
namespace cuda {
struct KernelContext;
void adam_step(const KernelContext& ctx, const AdamHyper& h, float* param, const float* grad, float* m,
               float* v, int64_t n);
void adam_step_multi(const KernelContext& ctx, const AdamHyper& h, const AdamSegment* segments, int count);
}  // namespace cuda

}  // namespace cudagan
