// The point-wise activation math on the device, shared by activation.cu and the fused batch norm in
// batchnorm.cu. Same formulas, in the same order of operations, as kernels/cpu/activation.cpp; the
// __f*_rn intrinsics keep nvcc from contracting a multiply and an add into an FMA, so relu, leaky_relu and
// both backward passes round exactly like the CPU backend (tanh and exp differ by their library ulps).
//   relu        y = x < 0 ? 0 : x             dx = x > 0 ? dy : 0
//   leaky_relu  y = x > 0 ? x : slope x       dx = x > 0 ? dy : slope dy
//   tanh        y = tanh(x)                   dx = dy ((1 - y)(1 + y))
//   sigmoid     y = 1 / (1 + e^-x)            dx = dy (y (1 - y))
#pragma once

#include "activation.h"

namespace cudagan::cuda {

// exp only ever sees -|x| <= 0: nothing overflows for any x.
__device__ __forceinline__ float stable_sigmoid(float x) {
  const float e = expf(-fabsf(x));
  const float r = __fdiv_rn(1.0f, __fadd_rn(1.0f, e));
  return x >= 0.0f ? r : __fmul_rn(e, r);
}

template <Activation A>
__device__ __forceinline__ float activation_value(float x, float slope) {
  if constexpr (A == Activation::relu) {
    return x < 0.0f ? 0.0f : x;  // a NaN passes through, as on the CPU
  } else if constexpr (A == Activation::leaky_relu) {
    return x > 0.0f ? x : __fmul_rn(slope, x);
  } else if constexpr (A == Activation::tanh) {
    return tanhf(x);
  } else {
    return stable_sigmoid(x);
  }
}

// dx from dy and whichever of x (relu, leaky_relu) and y (tanh, sigmoid) the derivative needs.
template <Activation A>
__device__ __forceinline__ float activation_grad(float x, float y, float dy, float slope) {
  if constexpr (A == Activation::relu) {
    return x > 0.0f ? dy : 0.0f;
  } else if constexpr (A == Activation::leaky_relu) {
    return x > 0.0f ? dy : __fmul_rn(slope, dy);
  } else if constexpr (A == Activation::tanh) {
    return __fmul_rn(dy, __fmul_rn(__fsub_rn(1.0f, y), __fadd_rn(1.0f, y)));
  } else {
    return __fmul_rn(dy, __fmul_rn(y, __fsub_rn(1.0f, y)));
  }
}

}  // namespace cudagan::cuda
