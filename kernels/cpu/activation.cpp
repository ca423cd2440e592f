// Point-wise activations, CPU backend. x, y, dy, dx: [n] contiguous; y may be x and dx may be dy
// (in place), but no partial overlap.
//   forward:  y = f(x)
//   backward: dx = dy * f'(x), with f' read from x (relu, leaky_relu) or from y (tanh, sigmoid)
#include "activation.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "cudagan/core/error.h"
#include "cpu/parallel.h"
#include <string>

namespace cudagan {

const char* activation_name(Activation a) {
  switch (a) {
    case Activation::relu:
      return "relu";
    case Activation::leaky_relu:
      return "leaky_relu";
    case Activation::tanh:
      return "tanh";
    case Activation::sigmoid:
      return "sigmoid";
  }
  return "unknown";  // an out-of-range enum value: a name for the error message, not a throw from a printer
}

namespace cpu {
namespace {

[[noreturn]] void throw_unknown(const char* where, Activation a) {
  throw InvalidArgument(std::string(where) + ": unknown Activation value " + std::to_string(int(a)));
}

// exp only ever sees -|x| <= 0, so nothing overflows: x = -1000 gives e = 0 and y = 0 (not 1 / (1 + inf)),
// x = +1000 gives y = 1. Both halves are computed and one selected, which keeps the loop branch-free.
template <class T>
inline T stable_sigmoid(T x) {
  const T e = std::exp(-std::fabs(x));
  const T r = T(1) / (T(1) + e);
  return x >= T(0) ? r : e * r;  // e / (1 + e) for negative x
}

// tanh for float without a libm call, so that its loop vectorises (std::tanh cost 20 ns an element, more
// than G's whole tanh pass moves in memory). Both halves are computed and one selected:
//   |x| < 0.625: the odd Taylor series to x^19 (the next term is below 1e-8 relative there);
//   otherwise:   1 - 2 / (e^(2|x|) + 1) with |x| clamped to 10 (tanh(10) rounds to 1 in float), e^t as
//                2^k e^r with r = t - k ln 2 in [-0.35, 0.35], e^r by its series to r^7, 2^k built from
//                its exponent bits; 2 / (e + 1) <= 0.45 there, so its rounding stays small beside the result.
// NaN gives NaN, +-inf gives +-1.
// Within 2 ulp of the correctly rounded tanh over the float range (tests/ops/test_activation.cpp).
inline float tanh_float(float x) {
  const float x2 = x * x;
  float p = -443861162.0f / 1856156927625.0f;
  p = p * x2 + 6404582.0f / 10854718875.0f;
  p = p * x2 - 929569.0f / 638512875.0f;
  p = p * x2 + 21844.0f / 6081075.0f;
  p = p * x2 - 1382.0f / 155925.0f;
  p = p * x2 + 62.0f / 2835.0f;
  p = p * x2 - 17.0f / 315.0f;
  p = p * x2 + 2.0f / 15.0f;
  p = p * x2 - 1.0f / 3.0f;
  const float small = x + x * (x2 * p);

  const float ax = std::fabs(x), a = ax < 10.0f ? ax : 10.0f, t = 2.0f * a;
  const int k = int(t * 1.44269504f + 0.5f);  // t >= 0: truncation rounds to nearest
  const float r = (t - float(k) * 0.693145752f) - float(k) * 1.42860682e-6f;  // ln 2 = hi + lo, hi exact in k
  float e = 1.0f / 5040.0f;
  e = e * r + 1.0f / 720.0f;
  e = e * r + 1.0f / 120.0f;
  e = e * r + 1.0f / 24.0f;
  e = e * r + 1.0f / 6.0f;
  e = e * r + 0.5f;
  e = e * r + 1.0f;
  e = e * r + 1.0f;
  const int32_t bits = (k + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  const float big = std::copysign(1.0f - 2.0f / (e * scale + 1.0f), x);
  return !(ax >= 0.625f) ? small : big;  // a NaN takes the series, which passes it through
}

}  // namespace

// The switch sits outside the loops so each loop body is a single expression the compiler can vectorise.
// `if (parallel : ...)` rather than a bare `if`: under OpenMP 5 a bare `if` on a combined construct would
// also switch off simd for small n.
template <class T>
void activation_forward(Activation a, const T* x, T* y, int64_t n, T slope) {
  switch (a) {
    case Activation::relu:
      // x < 0 ? 0 : x rather than x > 0 ? x : 0 so that a NaN passes through and a diverging run shows it.
#pragma omp parallel for simd schedule(static) if (parallel : n >= kParallelMinElems)
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] < T(0) ? T(0) : x[i];
      return;
    case Activation::leaky_relu:
#pragma omp parallel for simd schedule(static) if (parallel : n >= kParallelMinElems)
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : slope * x[i];
      return;
    case Activation::tanh:
      if constexpr (std::is_same_v<T, float>) {
#pragma omp parallel for simd schedule(static) if (parallel : n >= kParallelMinElems)
        for (int64_t i = 0; i < n; ++i) y[i] = tanh_float(x[i]);
      } else {
        // No `simd` on the loops that call libm: without -ffast-math there is no vector tanh/exp to call,
        // so the request could only fail (clang warns that it did).
#pragma omp parallel for schedule(static) if (n >= kParallelMinElems)
        for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
      }
      return;
    case Activation::sigmoid:
#pragma omp parallel for schedule(static) if (n >= kParallelMinElems)
      for (int64_t i = 0; i < n; ++i) y[i] = stable_sigmoid(x[i]);
      return;
  }
  throw_unknown("activation_forward", a);
}

template <class T>
void activation_backward(Activation a, const T* x, const T* y, const T* dy, T* dx, int64_t n, T slope) {
  switch (a) {
    case Activation::relu:
#pragma omp parallel for simd schedule(static) if (parallel : n >= kParallelMinElems)
      for (int64_t i = 0; i < n; ++i) {
        const T v = x[i], g = dy[i];  // both loads unconditional, so that the select vectorises
        dx[i] = v > T(0) ? g : T(0);
      }
      return;
    case Activation::leaky_relu:
#pragma omp parallel for simd schedule(static) if (parallel : n >= kParallelMinElems)
      for (int64_t i = 0; i < n; ++i) dx[i] = x[i] > T(0) ? dy[i] : slope * dy[i];
      return;
    case Activation::tanh:
      // (1 - y)(1 + y) instead of 1 - y^2: for |y| near 1, y^2 rounds away most of the small difference
      // from 1, while 1 - |y| is exact there (Sterbenz): the saturated region keeps full relative precision.
#pragma omp parallel for simd schedule(static) if (parallel : n >= kParallelMinElems)
      for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * ((T(1) - y[i]) * (T(1) + y[i]));
      return;
    case Activation::sigmoid:
#pragma omp parallel for simd schedule(static) if (parallel : n >= kParallelMinElems)
      for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * (y[i] * (T(1) - y[i]));
      return;
  }
  throw_unknown("activation_backward", a);
}

template void activation_forward<float>(Activation, const float*, float*, int64_t, float);
template void activation_forward<double>(Activation, const double*, double*, int64_t, double);
template void activation_backward<float>(Activation, const float*, const float*, const float*, float*,
                                         int64_t, float);
template void activation_backward<double>(Activation, const double*, const double*, const double*, double*,
                                          int64_t, double);

}  // namespace cpu
}  // namespace cudagan
