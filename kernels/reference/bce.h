// Binary cross-entropy on logits, reference (the oracle the tests compare against). logits z, targets t,
// dlogits: [n]; loss: [1]. Written from the textbook definition, not from the rearranged form the backends
// use:
//   loss = -(1/n) sum_i t_i log(sigmoid(z_i)) + (1 - t_i) log(1 - sigmoid(z_i))
//   dloss/dz_i = grad_loss * (sigmoid(z_i) - t_i) / n
// with 1 - sigmoid(z) = sigmoid(-z). Evaluated in long double and rounded to T once, when stored. The one
// care taken is in log(sigmoid(z)): the log of a sigmoid that has rounded to 0 or 1 would give -inf or lose
// everything, so it is computed as -log(1 + e^-z) for z >= 0 and z - log(1 + e^z) for z < 0, where the
// exponential never exceeds 1 and the logit +-100 gives a finite, correct loss.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

namespace cudagan::reference {

namespace detail {
inline long double log_sigmoid(long double z) {
  return z >= 0 ? -std::log1p(std::exp(-z)) : z - std::log1p(std::exp(z));
}
inline long double sigmoid(long double z) { return 1.0L / (1.0L + std::exp(-z)); }
}  // namespace detail

template <class T>
void bce_with_logits_forward(const T* logits, const T* targets, int64_t n, T* loss) {
  long double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const long double z = logits[i], t = targets[i];
    total += -(t * detail::log_sigmoid(z) + (1.0L - t) * detail::log_sigmoid(-z));
  }
  *loss = n > 0 ? T(total / (long double)n) : std::numeric_limits<T>::quiet_NaN();  // mean of nothing: NaN
}

template <class T>
void bce_with_logits_backward(const T* logits, const T* targets, int64_t n, T grad_loss, T* dlogits) {
  for (int64_t i = 0; i < n; ++i) {
    const long double z = logits[i], t = targets[i];
    dlogits[i] = T((long double)grad_loss * (detail::sigmoid(z) - t) / (long double)n);
  }
}

}  // namespace cudagan::reference
