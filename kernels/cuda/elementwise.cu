// Element-wise arithmetic and a full reduction on the GPU. Every array is [n] contiguous; an output may be
// one of the inputs (in place), but no partial overlap.
//   add:   out = a + b          mul:  out = a * b          scale: out = alpha * x
//   axpy:  y += alpha * x       fill: out = value          sum:   out[0] = sum_i x_i (accumulated in double)
//   copy:  dst = src (cudaMemcpyAsync, device to device)
// Grid-stride kernels. axpy is written with __f*_rn so it is not contracted into an FMA and rounds like the
// CPU backend. sum is the deterministic two-stage reduction of reduce.cuh (partials in ctx.workspace, at
// most kMaxPartials doubles = 8 KiB) and writes its result to device memory: no host synchronization.
#include "cuda/common.cuh"
#include "cuda/reduce.cuh"
#include "elementwise.h"

namespace cudagan::cuda {
namespace {

constexpr int kElementwiseBlock = 256;

struct SumTerm {
  const float* x;
  __device__ double operator()(int64_t i) const { return double(x[i]); }
};

}  // namespace

#define CUDAGAN_GRID_STRIDE(i, n)                                           \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += int64_t(gridDim.x) * blockDim.x)

static __global__ void add_kernel(const float* a, const float* b, float* out, int64_t n) {
  CUDAGAN_GRID_STRIDE(i, n) out[i] = a[i] + b[i];
}

static __global__ void mul_kernel(const float* a, const float* b, float* out, int64_t n) {
  CUDAGAN_GRID_STRIDE(i, n) out[i] = a[i] * b[i];
}

static __global__ void scale_kernel(const float* x, float alpha, float* out, int64_t n) {
  CUDAGAN_GRID_STRIDE(i, n) out[i] = alpha * x[i];
}

static __global__ void axpy_kernel(float alpha, const float* x, float* y, int64_t n) {
  CUDAGAN_GRID_STRIDE(i, n) y[i] = __fadd_rn(y[i], __fmul_rn(alpha, x[i]));
}

static __global__ void fill_kernel(float* out, float value, int64_t n) {
  CUDAGAN_GRID_STRIDE(i, n) out[i] = value;
}

#undef CUDAGAN_GRID_STRIDE

void add(const KernelContext& ctx, const float* a, const float* b, float* out, int64_t n) {
  if (n <= 0) return;
  add_kernel<<<grid_blocks(n, kElementwiseBlock), kElementwiseBlock, 0, ctx.stream>>>(a, b, out, n);
  CUDA_CHECK_LAUNCH(ctx, "add_kernel");
}

void mul(const KernelContext& ctx, const float* a, const float* b, float* out, int64_t n) {
  if (n <= 0) return;
  mul_kernel<<<grid_blocks(n, kElementwiseBlock), kElementwiseBlock, 0, ctx.stream>>>(a, b, out, n);
  CUDA_CHECK_LAUNCH(ctx, "mul_kernel");
}

void scale(const KernelContext& ctx, const float* x, float alpha, float* out, int64_t n) {
  if (n <= 0) return;
  scale_kernel<<<grid_blocks(n, kElementwiseBlock), kElementwiseBlock, 0, ctx.stream>>>(x, alpha, out, n);
  CUDA_CHECK_LAUNCH(ctx, "scale_kernel");
}

void axpy(const KernelContext& ctx, float alpha, const float* x, float* y, int64_t n) {
  if (n <= 0) return;
  axpy_kernel<<<grid_blocks(n, kElementwiseBlock), kElementwiseBlock, 0, ctx.stream>>>(alpha, x, y, n);
  CUDA_CHECK_LAUNCH(ctx, "axpy_kernel");
}

void fill(const KernelContext& ctx, float* out, float value, int64_t n) {
  if (n <= 0) return;
  fill_kernel<<<grid_blocks(n, kElementwiseBlock), kElementwiseBlock, 0, ctx.stream>>>(out, value, n);
  CUDA_CHECK_LAUNCH(ctx, "fill_kernel");
}

void sum(const KernelContext& ctx, const float* x, int64_t n, float* out) {
  reduce_to_device(ctx, SumTerm{x}, n > 0 ? n : 0, 1.0, out, "sum");
}

void copy(const KernelContext& ctx, float* dst, const float* src, int64_t n) {
  if (n <= 0 || dst == src) return;
  CUDA_CHECK(cudaMemcpyAsync(dst, src, size_t(n) * sizeof(float), cudaMemcpyDeviceToDevice, ctx.stream));
}

}  // namespace cudagan::cuda
