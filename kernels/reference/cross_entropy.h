// Softmax cross-entropy on logits, reference (the oracle the tests compare against). logits z, targets t,
// dlogits: [n, k] row-major; loss: [1]. Written from the textbook definition, not from the max-shifted,
// split form the backends use: the softmax first, then its log,
//   p[r,j] = e^z[r,j] / sum_j' e^z[r,j']
//   loss = -(1/n) sum_r sum_j t[r,j] log(p[r,j])
//   dloss/dz[r,j] = grad_loss * (p[r,j] sum_j' t[r,j'] - t[r,j]) / n
// Evaluated in long double and rounded to T once, when stored. No shift by the row's max: the x87 long
// double's range (e^+-11356) holds e^z and the quotients for the logits the tests use (|z| <= 100, where
// p >= e^-200 or so); that the backends need the shift and the oracle does not is part of what is checked.
// n <= 0 or k <= 0: the mean of nothing, NaN.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace cudagan::reference {

namespace detail {
// The softmax of one row of k logits.
template <class T>
std::vector<long double> softmax_row(const T* z, int64_t k) {
  std::vector<long double> p(static_cast<size_t>(k));
  long double total = 0;
  for (int64_t j = 0; j < k; ++j) total += p[size_t(j)] = std::exp((long double)z[j]);
  for (auto& v : p) v /= total;
  return p;
}
}  // namespace detail

template <class T>
void cross_entropy_with_logits_forward(const T* logits, const T* targets, int64_t n, int64_t k, T* loss) {
  if (n <= 0 || k <= 0) {
    *loss = std::numeric_limits<T>::quiet_NaN();
    return;
  }
  long double total = 0;
  for (int64_t r = 0; r < n; ++r) {
    const auto p = detail::softmax_row(logits + r * k, k);
    for (int64_t j = 0; j < k; ++j) total += -(long double)targets[r * k + j] * std::log(p[size_t(j)]);
  }
  *loss = T(total / (long double)n);
}

template <class T>
void cross_entropy_with_logits_backward(const T* logits, const T* targets, int64_t n, int64_t k, T grad_loss,
                                        T* dlogits) {
  for (int64_t r = 0; r < n; ++r) {
    const auto p = detail::softmax_row(logits + r * k, k);
    long double t_sum = 0;
    for (int64_t j = 0; j < k; ++j) t_sum += targets[r * k + j];
    for (int64_t j = 0; j < k; ++j)
      dlogits[r * k + j] = T((long double)grad_loss *
                             (p[size_t(j)] * t_sum - (long double)targets[r * k + j]) / (long double)n);
  }
}

}  // namespace cudagan::reference
