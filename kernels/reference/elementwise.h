// Element-wise arithmetic and a full reduction, reference (the oracle the tests compare against). Every array
// is [n]; an output may be one of the inputs. Plain loops sharing nothing with kernels/cpu. add, mul, scale,
// axpy and fill are single IEEE operations per element and are done in T, exactly as the math reads; the sum
// is accumulated in long double, one element at a time, and rounded to T once.
//   add:   out = a + b          mul:  out = a * b          scale: out = alpha * x
//   axpy:  y += alpha * x       fill: out = value          sum:   out[0] = sum_i x_i
#pragma once

#include <cstdint>

namespace cudagan::reference {

template <class T>
void add(const T* a, const T* b, T* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

template <class T>
void mul(const T* a, const T* b, T* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}

template <class T>
void scale(const T* x, T alpha, T* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = alpha * x[i];
}

template <class T>
void axpy(T alpha, const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = y[i] + alpha * x[i];
}

template <class T>
void fill(T* out, T value, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = value;
}

template <class T>
void sum(const T* x, int64_t n, T* out) {
  long double total = 0;
  for (int64_t i = 0; i < n; ++i) total += x[i];
  out[0] = T(total);
}

}  // namespace cudagan::reference
