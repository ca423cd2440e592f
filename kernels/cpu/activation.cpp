// Point-wise activations, CPU backend. x, y, dy, dx: [n] contiguous; y may be x and dx may be dy
// (in place), but no partial overlap.
//   forward:  y = f(x)
//   backward: dx = dy * f'(x), with f' read from x (relu, leaky_relu) or from y (tanh, sigmoid)
#include "activation.h"

#include <cmath>
#include <stdexcept>

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
      // No `simd` on the two loops that call libm: without -ffast-math there is no vector tanh/exp to call,
      // so the request could only fail (clang warns that it did).
#pragma omp parallel for schedule(static) if (n >= kParallelMinElems)
      for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
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
