// Point-wise activations, forward y = f(x) and backward dx = dy * f'(x):
//   relu        max(x, 0)                  f' = x > 0
//   leaky_relu  x > 0 ? x : slope * x       f' = x > 0 ? 1 : slope
//   tanh        tanh(x)                     f' = 1 - y^2
//   sigmoid     1 / (1 + e^-x)              f' = y (1 - y)
// The backward pass reads x (relu, leaky_relu) or y (tanh, sigmoid); the other may be null.
#pragma once

#include <cstdint>

#include "cudagan/core/error.h"  // InvalidArgument, which the kernels throw

namespace cudagan {

enum class Activation { relu, leaky_relu, tanh, sigmoid };

const char* activation_name(Activation a);

namespace cpu {
template <class T> void activation_forward(Activation a, const T* x, T* y, int64_t n, T slope);
template <class T>
void activation_backward(Activation a, const T* x, const T* y, const T* dy, T* dx, int64_t n, T slope);
}  // namespace cpu

}  // namespace cudagan

// CUDA backend (float32, kernels/cuda/activation.cu): the same contract on device pointers.
namespace cudagan::cuda {
struct KernelContext;
void activation_forward(const KernelContext& ctx, Activation a, const float* x, float* y, int64_t n,
                        float slope);
void activation_backward(const KernelContext& ctx, Activation a, const float* x, const float* y,
                         const float* dy, float* dx, int64_t n, float slope);
}  // namespace cudagan::cuda
