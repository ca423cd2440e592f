// Point-wise activations, reference (the oracle the tests compare against). x, y, dy, dx: [n].
// Written straight from the definitions in kernels/activation.h, sharing nothing with kernels/cpu:
//   relu        max(x, 0)                   f' = x > 0 ? 1 : 0
//   leaky_relu  x > 0 ? x : slope * x       f' = x > 0 ? 1 : slope
//   tanh        tanh(x)                     f' = 1 - y^2
//   sigmoid     1 / (1 + e^-x)              f' = y (1 - y)
// Evaluated in long double (a 64-bit mantissa on x86-64) and rounded to T once, when stored, so the oracle's
// own rounding stays well below the tolerances the tests allow. The plain 1 / (1 + e^-x) is safe here: in
// long double e^1000 is finite, and where long double is double, 1 / (1 + inf) is still the right 0.
// Like the backends, the backward pass reads only x (relu, leaky_relu) or only y (tanh, sigmoid).
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>

#include "cudagan/core/error.h"
#include <string>

#include "../activation.h"

namespace cudagan::reference {

template <class T>
void activation_forward(Activation a, const T* x, T* y, int64_t n, T slope) {
  for (int64_t i = 0; i < n; ++i) {
    const long double v = x[i];
    long double r = 0;
    switch (a) {
      case Activation::relu:  // max(x, 0), letting a NaN through
        r = std::isnan(v) ? v : (v > 0 ? v : 0.0L);
        break;
      case Activation::leaky_relu:
        r = v > 0 ? v : (long double)slope * v;
        break;
      case Activation::tanh:
        r = std::tanh(v);
        break;
      case Activation::sigmoid:
        r = 1.0L / (1.0L + std::exp(-v));
        break;
      default:
        throw InvalidArgument("reference::activation_forward: bad Activation " +
                                    std::to_string(int(a)));
    }
    y[i] = T(r);
  }
}

template <class T>
void activation_backward(Activation a, const T* x, const T* y, const T* dy, T* dx, int64_t n, T slope) {
  for (int64_t i = 0; i < n; ++i) {
    const long double g = dy[i];
    long double r = 0;
    switch (a) {
      case Activation::relu:
        r = x[i] > 0 ? g : 0.0L;
        break;
      case Activation::leaky_relu:
        r = x[i] > 0 ? g : (long double)slope * g;
        break;
      case Activation::tanh:
        r = g * (1.0L - (long double)y[i] * (long double)y[i]);
        break;
      case Activation::sigmoid:
        r = g * (long double)y[i] * (1.0L - (long double)y[i]);
        break;
      default:
        throw InvalidArgument("reference::activation_backward: bad Activation " +
                                    std::to_string(int(a)));
    }
    dx[i] = T(r);
  }
}

}  // namespace cudagan::reference
