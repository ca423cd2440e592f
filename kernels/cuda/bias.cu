// Per-channel bias on the GPU. y, dy: [outer, channels, inner] (conv: [N, C, H*W]; linear: [N, C, 1]);
// bias, dbias: [channels].
//   add_bias:      y[o, c, i] += bias[c]
//   bias_backward: dbias[c] = sum over o, i of dy[o, c, i]   (accumulated in double, then overwritten)
// add_bias: blockIdx.y walks the channels and the x dimension the channel's outer*inner values, so the bias
// is loaded once per thread and channel and no index is divided per element. bias_backward: one block per
// channel reduces it in double with a fixed-order block reduction (deterministic, no atomics).
#include <algorithm>
#include <limits>
#include <stdexcept>

#include "cudagan/core/error.h"
#include <string>

#include "bias.h"
#include "cuda/common.cuh"

namespace cudagan::cuda {
namespace {

constexpr int kAddBiasBlock = 256;
constexpr int kBiasReduceBlock = 256;
constexpr int kMaxGridY = 65535;

void check_shape(int64_t outer, int64_t channels, int64_t inner, const char* op) {
  if (outer < 0 || channels < 0 || inner < 0 || channels > int64_t(std::numeric_limits<int>::max()))
    throw InvalidArgument(std::string("cuda::") + op + ": invalid shape [" + std::to_string(outer) +
                                ", " + std::to_string(channels) + ", " + std::to_string(inner) + "]");
}

}  // namespace

static __global__ void add_bias_kernel(const float* bias, float* y, int64_t outer, int channels,
                                       int64_t inner) {
  const int64_t n = outer * inner;
  const int64_t start = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  if (start >= n) return;
  for (int c = blockIdx.y; c < channels; c += gridDim.y) {
    const float b = bias[c];
    ChannelWalk it(start, stride, c, channels, inner);
    for (int64_t j = start; j < n; j += stride, it.next()) y[it.addr] += b;
  }
}

static __global__ void bias_backward_kernel(const float* dy, float* dbias, int64_t outer, int channels,
                                            int64_t inner) {
  __shared__ double scratch[kBiasReduceBlock / kWarpSize];
  const int64_t n = outer * inner;
  for (int c = blockIdx.x; c < channels; c += gridDim.x) {
    double acc = 0.0;
    ChannelWalk it(threadIdx.x, blockDim.x, c, channels, inner);
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x, it.next()) acc += double(dy[it.addr]);
    acc = block_sum<kBiasReduceBlock>(acc, scratch);
    if (threadIdx.x == 0) dbias[c] = float(acc);
  }
}

void add_bias(const KernelContext& ctx, const float* bias, float* y, int64_t outer, int64_t channels,
              int64_t inner) {
  check_shape(outer, channels, inner, "add_bias");
  if (outer * inner == 0 || channels == 0) return;
  const unsigned grid_y = unsigned(std::min<int64_t>(channels, kMaxGridY));
  const unsigned grid_x =
      grid_blocks(outer * inner, kAddBiasBlock, std::max<int64_t>(1, kMaxGridBlocks / grid_y));
  add_bias_kernel<<<dim3(grid_x, grid_y), kAddBiasBlock, 0, ctx.stream>>>(bias, y, outer, int(channels),
                                                                          inner);
  CUDA_CHECK_LAUNCH(ctx, "add_bias_kernel");
}

void bias_backward(const KernelContext& ctx, const float* dy, float* dbias, int64_t outer, int64_t channels,
                   int64_t inner) {
  check_shape(outer, channels, inner, "bias_backward");
  if (channels == 0) return;
  // outer * inner == 0 still runs: every dbias[c] is overwritten with 0, as on the CPU.
  bias_backward_kernel<<<unsigned(std::min<int64_t>(channels, kMaxGridBlocks)), kBiasReduceBlock, 0,
                         ctx.stream>>>(dy, dbias, outer, int(channels), inner);
  CUDA_CHECK_LAUNCH(ctx, "bias_backward_kernel");
}

}  // namespace cudagan::cuda
