// Binary cross-entropy on logits, CPU backend. logits z, targets t, dlogits: [n]; loss: [1].
//   forward:  loss = (1/n) sum_i max(z_i, 0) - z_i t_i + log(1 + e^-|z_i|)
//   backward: dz_i = grad_loss * (sigmoid(z_i) - t_i) / n
// The forward form is -(t log sigmoid(z) + (1 - t) log(1 - sigmoid(z))) rearranged so that exp only sees
// -|z|: no overflow, no log(0), and no cancellation for saturated logits (z = +-100 gives 0 or 100, not inf).
#include "bce.h"
#include "cpu/parallel.h"

#include <cmath>
#include <limits>

namespace cudagan::cpu {
namespace {

// The mean is reduced over a partition that depends only on n (at most kMaxBlocks blocks of at least
// kMinBlock elements), one partial per block, added in order: the loss is bit-identical whatever the thread
// count and from run to run, which an OpenMP `reduction` clause (combining in thread-finish order) does not
// promise.
constexpr int64_t kMinBlock = 4096;
constexpr int64_t kMaxBlocks = 256;

// Evaluated in double even for float tensors: the loss is a reported number summed over the batch, and n is
// small (one logit per image), so the extra precision costs nothing measurable.
inline double bce_term(double z, double t) {
  return std::fmax(z, 0.0) - z * t + std::log1p(std::exp(-std::fabs(z)));
}

// exp only ever sees -|z| <= 0 (see activation.cpp).
template <class T>
inline T stable_sigmoid(T z) {
  const T e = std::exp(-std::fabs(z));
  const T r = T(1) / (T(1) + e);
  return z >= T(0) ? r : e * r;
}

}  // namespace

template <class T>
void bce_with_logits_forward(const T* logits, const T* targets, int64_t n, T* loss) {
  if (n <= 0) {  // the mean of nothing, as PyTorch reports it
    *loss = std::numeric_limits<T>::quiet_NaN();
    return;
  }
  int64_t block = (n + kMaxBlocks - 1) / kMaxBlocks;
  if (block < kMinBlock) block = kMinBlock;
  const int64_t blocks = (n + block - 1) / block;
  double partial[kMaxBlocks];
#pragma omp parallel for schedule(static) if (n >= kParallelMinElems)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * block, end = begin + block < n ? begin + block : n;
    double s = 0;
    for (int64_t i = begin; i < end; ++i) s += bce_term(double(logits[i]), double(targets[i]));
    partial[b] = s;
  }
  double total = 0;
  for (int64_t b = 0; b < blocks; ++b) total += partial[b];
  *loss = T(total / double(n));
}

template <class T>
void bce_with_logits_backward(const T* logits, const T* targets, int64_t n, T grad_loss, T* dlogits) {
  if (n <= 0) return;
  const T g = grad_loss / T(n);
  // No `simd`: the loop calls libm's exp, which has no vector form without -ffast-math.
#pragma omp parallel for schedule(static) if (n >= kParallelMinElems)
  for (int64_t i = 0; i < n; ++i) dlogits[i] = g * (stable_sigmoid(logits[i]) - targets[i]);
}

template void bce_with_logits_forward<float>(const float*, const float*, int64_t, float*);
template void bce_with_logits_forward<double>(const double*, const double*, int64_t, double*);
template void bce_with_logits_backward<float>(const float*, const float*, int64_t, float, float*);
template void bce_with_logits_backward<double>(const double*, const double*, int64_t, double, double*);

}  // namespace cudagan::cpu
