// Softmax cross-entropy on logits, CPU backend. logits z, targets t, dlogits: [n, k] row-major; loss: [1].
//   forward:  loss = (1/n) sum_r  sum_j t[r,j] (m_r - z[r,j])  +  (sum_j t[r,j]) log1p(s_r - 1)
//   backward: dz[r,j] = grad_loss * (e^(z[r,j] - m_r) / s_r * (sum_j' t[r,j']) - t[r,j]) / n
// with m_r = max_j z[r,j] and s_r = sum_j e^(z[r,j] - m_r) >= 1. The forward form is -sum_j t log softmax(z)
// with log softmax(z)_j = z_j - m - log(s) split so that, for targets >= 0, both parts are sums of terms >= 0
// (m - z_j >= 0 and log(s) >= 0): no cancellation, and exp only sees z - m <= 0, so no overflow for any logit
// (z = +-1000 gives the exact limits, not inf or NaN). s - 1 is summed without its leading 1 (the e^0 of one
// maximum), so a confident row (s = 1 + e^-90) keeps its small loss instead of rounding log(s) to 0.
#include "cross_entropy.h"

#include <cmath>
#include <limits>

#include "cpu/parallel.h"

namespace cudagan::cpu {
namespace {

// As in bce.cpp: the mean is reduced over a partition that depends only on n and k (at most kMaxBlocks blocks
// of whole rows, at least kMinBlock elements each unless a row is longer), one partial per block, added in
// order: the loss is bit-identical whatever the thread count and from run to run.
constexpr int64_t kMinBlock = 4096;
constexpr int64_t kMaxBlocks = 256;

// The row's largest logit (a NaN elsewhere in the row still reaches the sums below).
template <class T>
inline double row_max(const T* z, int64_t k) {
  double m = double(z[0]);
  for (int64_t j = 1; j < k; ++j)
    if (double(z[j]) > m) m = double(z[j]);
  return m;
}

// One row's -sum_j t_j log softmax(z)_j, evaluated in double even for float tensors (the loss is a reported
// number, and the extra precision costs nothing measurable next to exp). A NaN logit makes its gap NaN, which
// reaches t_gap (and rest): NaN in, NaN out.
template <class T>
inline double row_loss(const T* z, const T* t, int64_t k) {
  const double m = row_max(z, k);
  double maxima = 0, rest = 0, t_sum = 0, t_gap = 0;  // s - 1 = rest + (maxima - 1)
  for (int64_t j = 0; j < k; ++j) {
    const double gap = m - double(z[j]), tj = double(t[j]);
    if (gap == 0)
      maxima += 1;
    else
      rest += std::exp(-gap);
    t_sum += tj;
    t_gap += tj * gap;
  }
  return t_gap + t_sum * std::log1p(rest + (maxima - 1));
}

}  // namespace

template <class T>
void cross_entropy_with_logits_forward(const T* logits, const T* targets, int64_t n, int64_t k, T* loss) {
  if (n <= 0 || k <= 0) {  // the mean of nothing, as bce_with_logits reports it
    *loss = std::numeric_limits<T>::quiet_NaN();
    return;
  }
  int64_t rows = (n + kMaxBlocks - 1) / kMaxBlocks;
  const int64_t min_rows = (kMinBlock + k - 1) / k;
  if (rows < min_rows) rows = min_rows;
  const int64_t blocks = (n + rows - 1) / rows;
  double partial[kMaxBlocks];
#pragma omp parallel for schedule(static) if (n * k >= kParallelMinElems)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * rows, end = begin + rows < n ? begin + rows : n;
    double s = 0;
    for (int64_t r = begin; r < end; ++r) s += row_loss(logits + r * k, targets + r * k, k);
    partial[b] = s;
  }
  double total = 0;
  for (int64_t b = 0; b < blocks; ++b) total += partial[b];
  *loss = T(total / double(n));
}

template <class T>
void cross_entropy_with_logits_backward(const T* logits, const T* targets, int64_t n, int64_t k, T grad_loss,
                                        T* dlogits) {
  if (n <= 0 || k <= 0) return;
  const double g = double(grad_loss) / double(n);
#pragma omp parallel for schedule(static) if (n * k >= kParallelMinElems)
  for (int64_t r = 0; r < n; ++r) {
    const T* z = logits + r * k;
    const T* t = targets + r * k;
    T* dz = dlogits + r * k;
    const double m = row_max(z, k);
    double s = 0, t_sum = 0;
    for (int64_t j = 0; j < k; ++j) {
      s += std::exp(double(z[j]) - m);
      t_sum += double(t[j]);
    }
    // softmax_j * sum t = e^(z_j - m) * (sum t / s); targets need not sum to 1.
    const double scale = t_sum / s;
    for (int64_t j = 0; j < k; ++j) dz[j] = T(g * (std::exp(double(z[j]) - m) * scale - double(t[j])));
  }
}

template void cross_entropy_with_logits_forward<float>(const float*, const float*, int64_t, int64_t, float*);
template void cross_entropy_with_logits_forward<double>(const double*, const double*, int64_t, int64_t,
                                                        double*);
template void cross_entropy_with_logits_backward<float>(const float*, const float*, int64_t, int64_t, float,
                                                        float*);
template void cross_entropy_with_logits_backward<double>(const double*, const double*, int64_t, int64_t,
                                                         double, double*);

}  // namespace cudagan::cpu
