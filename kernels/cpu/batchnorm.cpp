// Batch normalization, CPU backend. x, y, dy, dx: [N, C, S] with S = H*W; per-channel vectors: [C].
// Per channel c over its n = N*S values:
//   forward (train): mean, biased var (one pass), invstd = 1/sqrt(var + eps),
//                    y = gamma (x - mean) invstd + beta;
//                    running_mean = (1-m) running_mean + m mean,
//                    running_var  = (1-m) running_var  + m var n/(n-1)   (factor 1 when n == 1)
//   backward (train, fused): xhat = (x - mean) invstd,
//                    dx = gamma invstd / n (n dy - sum(dy) - xhat sum(dy xhat)),
//                    dgamma = sum(dy xhat), dbeta = sum(dy)
//   forward (eval):  y = gamma (x - running_mean) / sqrt(running_var + eps) + beta
//   backward (eval): dx = dy gamma / sqrt(running_var + eps), dgamma = sum(dy xhat), dbeta = sum(dy)
//   synchronised (kernels/batchnorm.h): sums [sum x | sum x^2 | n] -> (summed over the replicas) ->
//                    mean, var, invstd, the running update with the summed n;
//                    sums [sum dy | sum dy xhat | n] -> (summed) ->
//                    dx = gamma invstd (dy - sum(dy)/n - xhat sum(dy xhat)/n). The backward pair repeats
//                    batch_norm_backward_train's loops and expressions, so one replica gives its bits.
// gamma/beta null: no affine. Every output pointer may be null. Channels are independent, so each
// reduction runs over one channel inside one thread: no atomics, and the result does not depend on
// the thread count (bit-identical runs).
#include "batchnorm.h"

#include <string>

#include "activation.h"
#include "cpu/parallel.h"

#include <algorithm>
#include <cmath>

namespace cudagan::cpu {
namespace {

// Start of row (b, c): the S contiguous values of channel c in image b.
template <class T>
T* row_of(T* p, const BatchNormGeometry& g, int b, int c) {
  return p + (int64_t(b) * g.channels + c) * g.spatial;
}

// The training forward with y = post(normalised x): the identity, or a fused relu / leaky_relu.
template <class T, class Post>
void forward_train(const BatchNormGeometry& g, const T* x, const T* gamma, const T* beta, T eps, T momentum, T* y,
                   T* saved_mean, T* saved_invstd, T* running_mean, T* running_var, Post post) {
  const int64_t n = g.count(), spatial = g.spatial;
  if (n == 0) return;
  const double m = double(momentum);
  // Unbiased variance for the running estimate; with a single value per channel it is undefined
  // (PyTorch refuses to train there), so keep the biased one (0) rather than produce inf/NaN.
  const double unbias = n > 1 ? double(n) / double(n - 1) : 1.0;
#pragma omp parallel for schedule(static) if (g.elems() >= kParallelMinElems)
  for (int c = 0; c < g.channels; ++c) {
    // One pass of sum and sum of squares in double, shifted by the channel's first value: without
    // the shift E[x^2] - E[x]^2 cancels catastrophically when |mean| >> std.
    const double shift = double(x[int64_t(c) * spatial]);
    double sum = 0, sum_sq = 0;
    for (int b = 0; b < g.batch; ++b) {
      const T* xr = row_of(x, g, b, c);
#pragma omp simd reduction(+ : sum, sum_sq)
      for (int64_t s = 0; s < spatial; ++s) {
        const double d = double(xr[s]) - shift;
        sum += d;
        sum_sq += d * d;
      }
    }
    const double mean_shifted = sum / double(n);
    const double var = std::max(0.0, sum_sq / double(n) - mean_shifted * mean_shifted);
    const double mean = shift + mean_shifted;
    const double invstd = 1.0 / std::sqrt(var + double(eps));
    if (y) {
      // y = (x - mean) * scale + beta: subtracting first keeps x - mean exact-ish for large offsets,
      // where folding into x * scale + (beta - mean * scale) would round the large product.
      const T mean_t = T(mean);
      const T scale = T(gamma ? double(gamma[c]) * invstd : invstd);
      const T bias = beta ? beta[c] : T(0);
      for (int b = 0; b < g.batch; ++b) {
        const T* xr = row_of(x, g, b, c);
        T* yr = row_of(y, g, b, c);
#pragma omp simd
        for (int64_t s = 0; s < spatial; ++s) yr[s] = post((xr[s] - mean_t) * scale + bias);
      }
    }
    if (saved_mean) saved_mean[c] = T(mean);
    if (saved_invstd) saved_invstd[c] = T(invstd);
    if (running_mean) running_mean[c] = T((1.0 - m) * double(running_mean[c]) + m * mean);
    if (running_var) running_var[c] = T((1.0 - m) * double(running_var[c]) + m * var * unbias);
  }
}

// What the fused forward applies after the normalisation: the expressions of cpu/activation.cpp's loops, so
// that it gives the unfused pair's bits.
template <class T>
struct Identity {
  T operator()(T v) const { return v; }
};
template <class T>
struct Relu {
  T operator()(T v) const { return v < T(0) ? T(0) : v; }
};
template <class T>
struct LeakyRelu {
  T slope;
  // Both sides computed before the select, so that GCC if-converts (and vectorises) the loop it sits in.
  T operator()(T v) const {
    const T scaled = slope * v;
    return v > T(0) ? v : scaled;
  }
};

void check_fusable(const char* where, Activation act, double slope) {
  if (act != Activation::relu && act != Activation::leaky_relu)
    throw InvalidArgument(std::string(where) + ": only relu and leaky_relu fuse into batchnorm, not " +
                          activation_name(act) + "; run the activation after it");
  if (act == Activation::leaky_relu && !(slope >= 0))
    throw InvalidArgument(std::string(where) + ": a fused leaky_relu needs slope >= 0 (its gradient is read " +
                          "from the sign of the output), got " + std::to_string(slope));
}

}  // namespace

template <class T>
void batch_norm_forward_train(const BatchNormGeometry& g, const T* x, const T* gamma, const T* beta, T eps,
                              T momentum, T* y, T* saved_mean, T* saved_invstd, T* running_mean,
                              T* running_var) {
  forward_train(g, x, gamma, beta, eps, momentum, y, saved_mean, saved_invstd, running_mean, running_var,
                Identity<T>{});
}

template <class T>
void batch_norm_forward_train(const BatchNormGeometry& g, const T* x, const T* gamma, const T* beta, T eps,
                              T momentum, T* y, T* saved_mean, T* saved_invstd, T* running_mean, T* running_var,
                              Activation act, bool fuse_activation, T slope) {
  if (!fuse_activation)
    return batch_norm_forward_train(g, x, gamma, beta, eps, momentum, y, saved_mean, saved_invstd, running_mean,
                                    running_var);
  check_fusable("batch_norm_forward_train", act, double(slope));
  if (act == Activation::relu)
    forward_train(g, x, gamma, beta, eps, momentum, y, saved_mean, saved_invstd, running_mean, running_var,
                  Relu<T>{});
  else
    forward_train(g, x, gamma, beta, eps, momentum, y, saved_mean, saved_invstd, running_mean, running_var,
                  LeakyRelu<T>{slope});
}

template <class T>
void batch_norm_backward_train(const BatchNormGeometry& g, const T* x, const T* dy, const T* gamma,
                               const T* saved_mean, const T* saved_invstd, T* dx, T* dgamma, T* dbeta) {
  const int64_t n = g.count(), spatial = g.spatial;
  if (n == 0 || (!dx && !dgamma && !dbeta)) return;
#pragma omp parallel for schedule(static) if (g.elems() >= kParallelMinElems)
  for (int c = 0; c < g.channels; ++c) {
    const double mean = double(saved_mean[c]), invstd = double(saved_invstd[c]);
    // Both reductions in one pass over dy and x, in double: they are what every dx depends on.
    double sum_dy = 0, sum_dy_xhat = 0;
    for (int b = 0; b < g.batch; ++b) {
      const T* xr = row_of(x, g, b, c);
      const T* dyr = row_of(dy, g, b, c);
#pragma omp simd reduction(+ : sum_dy, sum_dy_xhat)
      for (int64_t s = 0; s < spatial; ++s) {
        sum_dy += double(dyr[s]);
        sum_dy_xhat += double(dyr[s]) * ((double(xr[s]) - mean) * invstd);
      }
    }
    if (dgamma) dgamma[c] = T(sum_dy_xhat);
    if (dbeta) dbeta[c] = T(sum_dy);
    if (!dx) continue;
    // dx = gamma invstd (dy - sum(dy)/n - xhat sum(dy xhat)/n), with xhat's invstd folded into the
    // last coefficient so the inner loop is two multiply-adds per element.
    const double k = (gamma ? double(gamma[c]) : 1.0) * invstd;
    const T k_t = T(k), mean_dy = T(sum_dy / double(n)), mean_t = saved_mean[c];
    const T xhat_coef = T(sum_dy_xhat / double(n) * invstd);
    for (int b = 0; b < g.batch; ++b) {
      const T* xr = row_of(x, g, b, c);
      const T* dyr = row_of(dy, g, b, c);
      T* dxr = row_of(dx, g, b, c);
#pragma omp simd
      for (int64_t s = 0; s < spatial; ++s) dxr[s] = k_t * (dyr[s] - mean_dy - (xr[s] - mean_t) * xhat_coef);
    }
  }
}

template <class T>
void batch_norm_forward_eval(const BatchNormGeometry& g, const T* x, const T* gamma, const T* beta,
                             const T* running_mean, const T* running_var, T eps, T* y) {
  if (!y) return;
  const int64_t rows = int64_t(g.batch) * g.channels, spatial = g.spatial;
  // No reduction here, so parallelize over all N*C rows rather than the (maybe few) channels.
#pragma omp parallel for schedule(static) if (g.elems() >= kParallelMinElems)
  for (int64_t r = 0; r < rows; ++r) {
    const int c = int(r % g.channels);
    const double invstd = 1.0 / std::sqrt(double(running_var[c]) + double(eps));
    const T mean_t = running_mean[c];
    const T scale = T(gamma ? double(gamma[c]) * invstd : invstd);
    const T bias = beta ? beta[c] : T(0);
    const T* xr = x + r * spatial;
    T* yr = y + r * spatial;
#pragma omp simd
    for (int64_t s = 0; s < spatial; ++s) yr[s] = (xr[s] - mean_t) * scale + bias;
  }
}

template <class T>
void batch_norm_backward_eval(const BatchNormGeometry& g, const T* x, const T* dy, const T* gamma,
                              const T* running_mean, const T* running_var, T eps, T* dx, T* dgamma,
                              T* dbeta) {
  const int64_t spatial = g.spatial;
  if (!dx && !dgamma && !dbeta) return;
    // With fixed statistics y is affine in x, so dx does not involve the batch at all.
#pragma omp parallel for schedule(static) if (g.elems() >= kParallelMinElems)
  for (int c = 0; c < g.channels; ++c) {
    const double mean = double(running_mean[c]);
    const double invstd = 1.0 / std::sqrt(double(running_var[c]) + double(eps));
    const T k_t = T((gamma ? double(gamma[c]) : 1.0) * invstd);
    double sum_dy = 0, sum_dy_xhat = 0;
    for (int b = 0; b < g.batch; ++b) {
      const T* xr = row_of(x, g, b, c);
      const T* dyr = row_of(dy, g, b, c);
      if (dx) {
        T* dxr = row_of(dx, g, b, c);
#pragma omp simd
        for (int64_t s = 0; s < spatial; ++s) dxr[s] = dyr[s] * k_t;
      }
      if (dgamma || dbeta) {
#pragma omp simd reduction(+ : sum_dy, sum_dy_xhat)
        for (int64_t s = 0; s < spatial; ++s) {
          sum_dy += double(dyr[s]);
          sum_dy_xhat += double(dyr[s]) * ((double(xr[s]) - mean) * invstd);
        }
      }
    }
    if (dgamma) dgamma[c] = T(sum_dy_xhat);
    if (dbeta) dbeta[c] = T(sum_dy);
  }
}

template <class T>
void batch_norm_channel_sums(const BatchNormGeometry& g, const T* x, double* sums) {
  const int64_t spatial = g.spatial;
  const int channels = g.channels;
#pragma omp parallel for schedule(static) if (g.elems() >= kParallelMinElems)
  for (int c = 0; c < channels; ++c) {
    // No shift, unlike batch_norm_forward_train: the replicas' sums are added, so a shift would have to be
    // the same on all of them. In double, sum x^2 / n - mean^2 keeps ~16 - 2 log10(|mean| / std) digits,
    // plenty for fp32 activations.
    double sum = 0, sum_sq = 0;
    for (int b = 0; b < g.batch; ++b) {
      const T* xr = row_of(x, g, b, c);
#pragma omp simd reduction(+ : sum, sum_sq)
      for (int64_t s = 0; s < spatial; ++s) {
        const double v = double(xr[s]);
        sum += v;
        sum_sq += v * v;
      }
    }
    sums[c] = sum;
    sums[channels + c] = sum_sq;
  }
  sums[2 * channels] = double(g.count());  // the count travels with the sums, and is summed with them
}

template <class T>
void batch_norm_stats_from_sums(int channels, const double* sums, T eps, T momentum, T* mean, T* var,
                                T* invstd, T* running_mean, T* running_var) {
  const double n = sums[2 * channels];
  const double m = double(momentum);
  const double unbias = n > 1 ? n / (n - 1) : 1.0;  // as batch_norm_forward_train, with the global count
  for (int c = 0; c < channels; ++c) {
    const double mu = sums[c] / n;
    const double v = std::max(0.0, sums[channels + c] / n - mu * mu);
    const double is = 1.0 / std::sqrt(v + double(eps));
    if (mean) mean[c] = T(mu);
    if (var) var[c] = T(v);
    if (invstd) invstd[c] = T(is);
    if (running_mean) running_mean[c] = T((1.0 - m) * double(running_mean[c]) + m * mu);
    if (running_var) running_var[c] = T((1.0 - m) * double(running_var[c]) + m * v * unbias);
  }
}

template <class T>
void batch_norm_backward_sums(const BatchNormGeometry& g, const T* x, const T* dy, const T* mean,
                              const T* invstd, double* sums, T* dgamma, T* dbeta) {
  const int64_t spatial = g.spatial;
  const int channels = g.channels;
#pragma omp parallel for schedule(static) if (g.elems() >= kParallelMinElems)
  for (int c = 0; c < channels; ++c) {
    const double mu = double(mean[c]), is = double(invstd[c]);
    double sum_dy = 0, sum_dy_xhat = 0;
    for (int b = 0; b < g.batch; ++b) {
      const T* xr = row_of(x, g, b, c);
      const T* dyr = row_of(dy, g, b, c);
#pragma omp simd reduction(+ : sum_dy, sum_dy_xhat)
      for (int64_t s = 0; s < spatial; ++s) {
        sum_dy += double(dyr[s]);
        sum_dy_xhat += double(dyr[s]) * ((double(xr[s]) - mu) * is);
      }
    }
    sums[c] = sum_dy;
    sums[channels + c] = sum_dy_xhat;
    // This replica's share: the optimizer's gradient averaging over the replicas makes it the global one.
    if (dgamma) dgamma[c] = T(sum_dy_xhat);
    if (dbeta) dbeta[c] = T(sum_dy);
  }
  sums[2 * channels] = double(g.count());
}

template <class T>
void batch_norm_backward_from_sums(const BatchNormGeometry& g, const T* x, const T* dy, const T* gamma,
                                   const T* mean, const T* invstd, const double* sums, T* dx) {
  if (!dx) return;
  const int64_t rows = int64_t(g.batch) * g.channels, spatial = g.spatial;
  const int channels = g.channels;
  const double n = sums[2 * channels];  // the global count: every replica's values moved the statistics
  // Element-wise once the sums are known: parallel over all N*C rows, as batch_norm_forward_eval.
#pragma omp parallel for schedule(static) if (g.elems() >= kParallelMinElems)
  for (int64_t r = 0; r < rows; ++r) {
    const int c = int(r % channels);
    const double is = double(invstd[c]);
    // The constants and the expression of batch_norm_backward_train, in the same order.
    const T k_t = T((gamma ? double(gamma[c]) : 1.0) * is), mean_dy = T(sums[c] / n), mean_t = mean[c];
    const T xhat_coef = T(sums[channels + c] / n * is);
    const T* xr = x + r * spatial;
    const T* dyr = dy + r * spatial;
    T* dxr = dx + r * spatial;
#pragma omp simd
    for (int64_t s = 0; s < spatial; ++s) dxr[s] = k_t * (dyr[s] - mean_dy - (xr[s] - mean_t) * xhat_coef);
  }
}

#define CUDAGAN_INSTANTIATE_BATCH_NORM(T)                                                                    \
  template void batch_norm_forward_train<T>(const BatchNormGeometry&, const T*, const T*, const T*, T, T,    \
                                            T*, T*, T*, T*, T*);                                             \
  template void batch_norm_forward_eval<T>(const BatchNormGeometry&, const T*, const T*, const T*, const T*, \
                                           const T*, T, T*);                                                 \
  template void batch_norm_forward_train<T>(const BatchNormGeometry&, const T*, const T*, const T*, T, T,    \
                                            T*, T*, T*, T*, T*, Activation, bool, T);                        \
  template void batch_norm_backward_train<T>(const BatchNormGeometry&, const T*, const T*, const T*,         \
                                             const T*, const T*, T*, T*, T*);                                \
  template void batch_norm_backward_eval<T>(const BatchNormGeometry&, const T*, const T*, const T*,          \
                                            const T*, const T*, T, T*, T*, T*);                              \
  template void batch_norm_channel_sums<T>(const BatchNormGeometry&, const T*, double*);                     \
  template void batch_norm_stats_from_sums<T>(int, const double*, T, T, T*, T*, T*, T*, T*);                 \
  template void batch_norm_backward_sums<T>(const BatchNormGeometry&, const T*, const T*, const T*,          \
                                            const T*, double*, T*, T*);                                      \
  template void batch_norm_backward_from_sums<T>(const BatchNormGeometry&, const T*, const T*, const T*,     \
                                                 const T*, const T*, const double*, T*);
CUDAGAN_INSTANTIATE_BATCH_NORM(float)
CUDAGAN_INSTANTIATE_BATCH_NORM(double)
#undef CUDAGAN_INSTANTIATE_BATCH_NORM

}  // namespace cudagan::cpu
