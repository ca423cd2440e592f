// Per-channel bias over y [outer, channels, inner] (conv: [N, C, H*W]; linear: [N, C, 1]):
//   forward  y[o, c, i] += bias[c]
//   backward dbias[c] = sum over o, i of dy[o, c, i]   (overwritten)
#pragma once

#include <cstdint>

#include "cudagan/core/error.h"  // InvalidArgument, which the kernels throw

namespace cudagan::cpu {
template <class T> void add_bias(const T* bias, T* y, int64_t outer, int64_t channels, int64_t inner);
template <class T> void bias_backward(const T* dy, T* dbias, int64_t outer, int64_t channels, int64_t inner);
}  // namespace cudagan::cpu

// CUDA backend (float32, kernels/cuda/bias.cu); bias_backward reduces each channel in double in one block.
namespace cudagan::cuda {
struct KernelContext;
void add_bias(const KernelContext& ctx, const float* bias, float* y, int64_t outer, int64_t channels,
              int64_t inner);
void bias_backward(const KernelContext& ctx, const float* dy, float* dbias, int64_t outer, int64_t channels,
                   int64_t inner);
}  // namespace cudagan::cuda
