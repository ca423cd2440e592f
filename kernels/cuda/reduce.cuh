// A deterministic two-stage full reduction into one device float, shared by elementwise.cu (sum) and
// bce.cu (the mean loss); cross_entropy.cu has a stage 1 of its own (a warp per row) and ends in stage 2:
//   stage 1: grid_blocks(n, kReduceBlock, kMaxPartials) blocks; each thread accumulates term(i) in double
//   over
//            its grid-stride share, the block reduces in a fixed tree, thread 0 writes partials[block]
//            (partials: doubles in ctx.workspace);
//   stage 2: one block of kMaxPartials threads adds the partials in a fixed tree and writes
//            out[0] = float(total / divisor).
// The partition depends only on n, so the result is bit-identical from run to run and on every GPU; no
// atomics, no host synchronization. out may point into the input: it is written after stage 1 has read it.
#pragma once

#include "cuda/common.cuh"

namespace cudagan::cuda {

constexpr int kReduceBlock = 256;
constexpr int kMaxPartials = 1024;  // stage 2's block size, hence at most this many stage-1 blocks

template <class Term>
static __global__ void reduce_partials_kernel(Term term, int64_t n, double* partials) {
  __shared__ double scratch[kReduceBlock / kWarpSize];
  double acc = 0.0;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    acc += term(i);
  acc = block_sum<kReduceBlock>(acc, scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

static __global__ void reduce_finish_kernel(const double* partials, int count, double divisor, float* out) {
  __shared__ double scratch[kMaxPartials / kWarpSize];
  double acc = int(threadIdx.x) < count ? partials[threadIdx.x] : 0.0;
  acc = block_sum<kMaxPartials>(acc, scratch);
  if (threadIdx.x == 0) out[0] = float(acc / divisor);
}

// out[0] = float(sum over i < n of term(i), in double, / divisor). n == 0 gives 0 / divisor.
template <class Term>
void reduce_to_device(const KernelContext& ctx, Term term, int64_t n, double divisor, float* out,
                      const char* op) {
  const int blocks = n > 0 ? int(grid_blocks(n, kReduceBlock, kMaxPartials)) : 0;
  double* partials = workspace_as<double>(ctx, blocks, op);
  if (blocks > 0) {
    reduce_partials_kernel<<<blocks, kReduceBlock, 0, ctx.stream>>>(term, n, partials);
    CUDA_CHECK_LAUNCH(ctx, "reduce_partials_kernel");
  }
  reduce_finish_kernel<<<1, kMaxPartials, 0, ctx.stream>>>(partials, blocks, divisor, out);
  CUDA_CHECK_LAUNCH(ctx, "reduce_finish_kernel");
}

}  // namespace cudagan::cuda
