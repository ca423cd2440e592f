// Adam on the GPU with PyTorch's semantics (torch.optim.Adam, amsgrad off), for step t >= 1:
//   g = grad + weight_decay p
//   m = beta1 m + (1 - beta1) g;      v = beta2 v + (1 - beta2) g^2
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// param, grad, m, v: [n] per tensor. The step size and sqrt(1 - beta2^t) are formed on the host in double and
// rounded once, exactly as kernels/cpu/adam.cpp does, and the update is written with __f*_rn intrinsics in
// the CPU's order of operations (no FMA contraction): the two backends agree bit for bit.
//
// adam_step_multi: every tensor in one launch. The segment table [count] AdamSegment and the prefix sums of
// the segment lengths [count + 1] int64 are copied (one cudaMemcpyAsync on ctx.stream, stream-ordered after
// any earlier user of the workspace) into ctx.workspace; a grid-stride loop runs over the concatenation of
// all segments and each thread finds the segment of its element by binary search over the prefix sums.
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "cudagan/core/error.h"
#include <string>
#include <vector>

#include "adam.h"
#include "cuda/common.cuh"

namespace cudagan::cuda {
namespace {

constexpr int kAdamBlock = 256;

// The per-step constants, rounded to float once on the host.
struct AdamConsts {
  float step_size, sqrt_bc2, beta1, one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay;
};

AdamConsts consts_of(const AdamHyper& h, const char* op) {
  // t = 0 would divide by a zero bias correction and silently write NaN into every parameter.
  if (h.step < 1)
    throw InvalidArgument(std::string("cuda::") + op + ": step is " + std::to_string(h.step) +
                                ", must be >= 1");
  const double t = double(h.step);
  AdamConsts k;
  k.step_size = float(h.lr / (1.0 - std::pow(h.beta1, t)));
  k.sqrt_bc2 = float(std::sqrt(1.0 - std::pow(h.beta2, t)));
  k.beta1 = float(h.beta1);
  k.one_minus_beta1 = float(1.0 - h.beta1);
  k.beta2 = float(h.beta2);
  k.one_minus_beta2 = float(1.0 - h.beta2);
  k.eps = float(h.eps);
  k.weight_decay = float(h.weight_decay);
  return k;
}

}  // namespace

static __device__ __forceinline__ void adam_update(const AdamConsts& k, float* param, const float* grad,
                                                   float* m, float* v, int64_t i) {
  const float p = param[i];
  const float g = __fadd_rn(grad[i], __fmul_rn(k.weight_decay, p));
  const float mi = __fadd_rn(__fmul_rn(k.beta1, m[i]), __fmul_rn(k.one_minus_beta1, g));
  const float vi = __fadd_rn(__fmul_rn(k.beta2, v[i]), __fmul_rn(__fmul_rn(k.one_minus_beta2, g), g));
  m[i] = mi;
  v[i] = vi;
  const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), k.sqrt_bc2), k.eps);
  param[i] = __fsub_rn(p, __fmul_rn(k.step_size, __fdiv_rn(mi, denom)));
}

static __global__ void adam_kernel(AdamConsts k, float* param, const float* grad, float* m, float* v,
                                   int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    adam_update(k, param, grad, m, v, i);
}

// total = prefix[count]; element i belongs to the last segment s with prefix[s] <= i (empty segments repeat a
// prefix value and are skipped by taking the last).
static __global__ void adam_multi_kernel(AdamConsts k, const AdamSegment* segments, const int64_t* prefix,
                                         int count, int64_t total) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    int lo = 0, hi = count - 1;
    while (lo < hi) {
      const int mid = lo + (hi - lo + 1) / 2;
      if (prefix[mid] <= i)
        lo = mid;
      else
        hi = mid - 1;
    }
    const AdamSegment s = segments[lo];
    adam_update(k, s.param, s.grad, s.m, s.v, i - prefix[lo]);
  }
}

void adam_step(const KernelContext& ctx, const AdamHyper& h, float* param, const float* grad, float* m,
               float* v, int64_t n) {
  const AdamConsts k = consts_of(h, "adam_step");
  if (n <= 0) return;
  adam_kernel<<<grid_blocks(n, kAdamBlock), kAdamBlock, 0, ctx.stream>>>(k, param, grad, m, v, n);
  CUDA_CHECK_LAUNCH(ctx, "adam_kernel");
}

void adam_step_multi(const KernelContext& ctx, const AdamHyper& h, const AdamSegment* segments, int count) {
  const AdamConsts k = consts_of(h, "adam_step_multi");
  if (count < 0 || (count > 0 && segments == nullptr))
    throw InvalidArgument("cuda::adam_step_multi: " + std::to_string(count) + " segments at " +
                                (segments ? "a valid" : "a null") + " pointer");
  if (count == 0) return;
  static_assert(sizeof(AdamSegment) % sizeof(int64_t) == 0,
                "the prefix sums follow the table 8-byte aligned");
  // Table and prefix sums packed in one host buffer of int64 (8-byte aligned), uploaded with one copy.
  const size_t table_words = size_t(count) * sizeof(AdamSegment) / sizeof(int64_t);
  std::vector<int64_t> host(table_words + size_t(count) + 1);
  std::memcpy(host.data(), segments, size_t(count) * sizeof(AdamSegment));
  int64_t* prefix = host.data() + table_words;
  prefix[0] = 0;
  for (int s = 0; s < count; ++s) {
    if (segments[s].n < 0)
      throw InvalidArgument("cuda::adam_step_multi: segment " + std::to_string(s) + " has " +
                                  std::to_string(segments[s].n) + " elements");
    prefix[s + 1] = prefix[s] + segments[s].n;
  }
  const int64_t total = prefix[count];
  if (total == 0) return;
  int64_t* device = workspace_as<int64_t>(ctx, int64_t(host.size()), "adam_step_multi");
  // A pageable source: the copy has consumed `host` by the time cudaMemcpyAsync returns (the driver stages
  // it), so the vector may go out of scope before the copy has reached the device.
  CUDA_CHECK(cudaMemcpyAsync(device, host.data(), host.size() * sizeof(int64_t), cudaMemcpyHostToDevice,
                             ctx.stream));
  adam_multi_kernel<<<grid_blocks(total, kAdamBlock), kAdamBlock, 0, ctx.stream>>>(
      k, reinterpret_cast<const AdamSegment*>(device), device + table_words, count, total);
  CUDA_CHECK_LAUNCH(ctx, "adam_multi_kernel");
}

}  // namespace cudagan::cuda
