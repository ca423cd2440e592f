// Helpers shared by the CUDA kernel files (device code, so only .cu files include this):
//   - warp_sum / block_sum: a deterministic block reduction (fixed shuffle tree, then warp 0 adds the
//     per-warp sums in warp order), so a result depends only on the launch configuration;
//   - ChannelWalk: strided iteration over the values of one channel of [N, C, S] without a division per
//     element;
//   - fits_int32: lets launchers pick 32-bit index arithmetic (64-bit division is an emulated routine
//     of ~70 instructions on the GPU) when every index of a kernel fits;
//   - workspace_as: a typed, size- and alignment-checked view of ctx.workspace.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <limits>
#include <stdexcept>

#include "cudagan/core/error.h"
#include <string>

#include "cuda/check.h"
#include "cuda_context.h"

namespace cudagan::cuda {

constexpr int kWarpSize = 32;

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int offset = kWarpSize / 2; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

// Sum of v over the block; the result is valid in thread 0 only. kBlock must be the launch's blockDim.x,
// a multiple of 32 and at most 1024; `scratch` is __shared__ T[kBlock / 32]. Every thread must call it
// (it synchronizes), and it synchronizes again before returning so scratch can be reused at once.
template <int kBlock, class T>
__device__ __forceinline__ T block_sum(T v, T* scratch) {
  static_assert(kBlock % kWarpSize == 0 && kBlock <= 1024, "block_sum: block size must be a multiple of 32");
  constexpr int kWarps = kBlock / kWarpSize;
  const int lane = int(threadIdx.x) % kWarpSize, warp = int(threadIdx.x) / kWarpSize;
  v = warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kWarps ? scratch[lane] : T(0);
    v = warp_sum(v);
  }
  __syncthreads();
  return v;
}

// Walks the elements j = start, start + stride, ... of channel c in x [N, C, S] (j = b*S + s indexes the
// channel's count = N*S values, at address (b*C + c)*S + s). Two divisions when constructed, none per step:
// moving j by `stride` moves (b, s) by (stride / S, stride % S) plus at most one carry.
struct ChannelWalk {
  int64_t addr, s;             // current address and position inside the row
  int64_t step, rem, spatial;  // address step without carry, stride % S, S
  int64_t carry;               // extra address step when s wraps: C*S - S

  __device__ ChannelWalk(int64_t start, int64_t stride, int c, int channels, int64_t spatial_size)
      : spatial(spatial_size) {
    if (spatial_size <= 0) {  // an empty channel: no element is ever visited; avoid dividing by zero
      addr = s = step = rem = carry = 0;
      return;
    }
    const int64_t row = int64_t(channels) * spatial_size;
    const int64_t b = start / spatial_size;
    s = start - b * spatial_size;
    addr = b * row + int64_t(c) * spatial_size + s;
    const int64_t q = stride / spatial_size;
    rem = stride - q * spatial_size;
    step = q * row + rem;
    carry = row - spatial_size;
  }
  __device__ __forceinline__ void next() {
    addr += step;
    s += rem;
    if (s >= spatial) {
      s -= spatial;
      addr += carry;
    }
  }
};

// True when every index a kernel forms stays below 2^31: a grid-stride index then also stays below 2^32
// after its last step (at most kMaxGridBlocks * 1024 < 2^29 past the end), so uint32_t arithmetic is safe.
inline bool fits_int32(int64_t max_elems) {
  return max_elems <= int64_t(std::numeric_limits<int32_t>::max());
}

// ctx.workspace as `count` elements of T, or a clear error when it is missing, too small or misaligned.
template <class T>
T* workspace_as(const KernelContext& ctx, int64_t count, const char* op) {
  const size_t need = size_t(count) * sizeof(T);
  if (need > ctx.workspace_bytes || (need > 0 && ctx.workspace == nullptr))
    throw InvalidArgument(std::string("cuda::") + op + ": needs " + std::to_string(need) +
                                " bytes of workspace, the context has " +
                                std::to_string(ctx.workspace_bytes));
  if (reinterpret_cast<uintptr_t>(ctx.workspace) % alignof(T) != 0)
    throw InvalidArgument(std::string("cuda::") + op + ": the context's workspace is not " +
                                std::to_string(alignof(T)) + "-byte aligned");
  return static_cast<T*>(ctx.workspace);
}

}  // namespace cudagan::cuda
