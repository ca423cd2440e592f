// Batch normalization, reference (the oracle the tests compare against). x, y, dy, dx: [N, C, S] with
// S = H*W; per-channel vectors: [C]. Written straight from the definitions (Ioffe & Szegedy 2015), as
// naive loops sharing nothing with kernels/cpu: the mean and the biased variance in two passes, and the
// training backward by the chain rule one step at a time (dxhat, dvar, dmean, then dx). Everything is
// accumulated in long double (a 64-bit mantissa on x86-64) so that the oracle's own rounding stays well
// below the tolerances the tests hold the backends to, and is rounded to T only when stored.
// Same contract as kernels/batchnorm.h: gamma/beta null means no affine; any output may be null; with
// one value per channel the running variance takes the biased variance (0) instead of dividing by 0.
// The synchronised passes at the end follow kernels/batchnorm.h's definitions the same way.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "../batchnorm.h"

namespace cudagan::reference {

namespace detail {
// Flat index of x[b, c, s] in the NCS layout.
inline int64_t bn_index(const BatchNormGeometry& g, int b, int c, int64_t s) {
  return (int64_t(b) * g.channels + c) * g.spatial + s;
}
}  // namespace detail

template <class T>
void batch_norm_forward_train(const BatchNormGeometry& g, const T* x, const T* gamma, const T* beta, T eps,
                              T momentum, T* y, T* saved_mean, T* saved_invstd, T* running_mean,
                              T* running_var) {
  using Acc = long double;
  const int64_t n = g.count();
  for (int c = 0; c < g.channels; ++c) {
    // Pass 1: the mean.
    Acc sum = 0;
    for (int b = 0; b < g.batch; ++b)
      for (int64_t s = 0; s < g.spatial; ++s) sum += Acc(x[detail::bn_index(g, b, c, s)]);
    const Acc mean = sum / Acc(n);
    // Pass 2: the biased variance around it.
    Acc sum_sq_dev = 0;
    for (int b = 0; b < g.batch; ++b)
      for (int64_t s = 0; s < g.spatial; ++s) {
        const Acc dev = Acc(x[detail::bn_index(g, b, c, s)]) - mean;
        sum_sq_dev += dev * dev;
      }
    const Acc var = sum_sq_dev / Acc(n);
    const Acc invstd = 1 / std::sqrt(var + Acc(eps));

    const Acc gam = gamma ? Acc(gamma[c]) : Acc(1);
    const Acc bet = beta ? Acc(beta[c]) : Acc(0);
    if (y)
      for (int b = 0; b < g.batch; ++b)
        for (int64_t s = 0; s < g.spatial; ++s) {
          const int64_t i = detail::bn_index(g, b, c, s);
          const Acc xhat = (Acc(x[i]) - mean) * invstd;
          y[i] = T(gam * xhat + bet);
        }
    if (saved_mean) saved_mean[c] = T(mean);
    if (saved_invstd) saved_invstd[c] = T(invstd);

    const Acc m = Acc(momentum);
    const Acc unbiased_var = n > 1 ? sum_sq_dev / Acc(n - 1) : var;
    if (running_mean) running_mean[c] = T((1 - m) * Acc(running_mean[c]) + m * mean);
    if (running_var) running_var[c] = T((1 - m) * Acc(running_var[c]) + m * unbiased_var);
  }
}

template <class T>
void batch_norm_forward_eval(const BatchNormGeometry& g, const T* x, const T* gamma, const T* beta,
                             const T* running_mean, const T* running_var, T eps, T* y) {
  using Acc = long double;
  if (!y) return;
  for (int b = 0; b < g.batch; ++b)
    for (int c = 0; c < g.channels; ++c)
      for (int64_t s = 0; s < g.spatial; ++s) {
        const int64_t i = detail::bn_index(g, b, c, s);
        const Acc xhat = (Acc(x[i]) - Acc(running_mean[c])) / std::sqrt(Acc(running_var[c]) + Acc(eps));
        const Acc gam = gamma ? Acc(gamma[c]) : Acc(1);
        const Acc bet = beta ? Acc(beta[c]) : Acc(0);
        y[i] = T(gam * xhat + bet);
      }
}

// The chain rule through y = gamma xhat + beta, xhat = (x - mean) (var + eps)^(-1/2), where mean and
// var are themselves functions of every x of the channel.
template <class T>
void batch_norm_backward_train(const BatchNormGeometry& g, const T* x, const T* dy, const T* gamma,
                               const T* saved_mean, const T* saved_invstd, T* dx, T* dgamma, T* dbeta) {
  using Acc = long double;
  const int64_t n = g.count();
  std::vector<Acc> dxhat(static_cast<size_t>(n));
  for (int c = 0; c < g.channels; ++c) {
    const Acc mean = Acc(saved_mean[c]), invstd = Acc(saved_invstd[c]);
    const Acc gam = gamma ? Acc(gamma[c]) : Acc(1);
    auto xv = [&](int b, int64_t s) { return Acc(x[detail::bn_index(g, b, c, s)]); };
    auto dyv = [&](int b, int64_t s) { return Acc(dy[detail::bn_index(g, b, c, s)]); };

    // Affine parameters: dgamma = sum dy xhat, dbeta = sum dy.
    Acc sum_dy = 0, sum_dy_xhat = 0;
    for (int b = 0; b < g.batch; ++b)
      for (int64_t s = 0; s < g.spatial; ++s) {
        sum_dy += dyv(b, s);
        sum_dy_xhat += dyv(b, s) * (xv(b, s) - mean) * invstd;
      }
    if (dgamma) dgamma[c] = T(sum_dy_xhat);
    if (dbeta) dbeta[c] = T(sum_dy);
    if (!dx) continue;

    // Step 1: dL/dxhat = dy gamma.
    for (int b = 0; b < g.batch; ++b)
      for (int64_t s = 0; s < g.spatial; ++s) dxhat[size_t(int64_t(b) * g.spatial + s)] = dyv(b, s) * gam;
    auto dxhat_at = [&](int b, int64_t s) { return dxhat[size_t(int64_t(b) * g.spatial + s)]; };

    // Step 2: dL/dvar = sum dxhat (x - mean) * (-1/2) (var + eps)^(-3/2).
    Acc dvar = 0;
    for (int b = 0; b < g.batch; ++b)
      for (int64_t s = 0; s < g.spatial; ++s) dvar += dxhat_at(b, s) * (xv(b, s) - mean);
    dvar *= Acc(-0.5) * invstd * invstd * invstd;

    // Step 3: dL/dmean = sum dxhat (-invstd) + dvar * sum(-2 (x - mean)) / n.
    Acc dmean = 0, sum_dev = 0;
    for (int b = 0; b < g.batch; ++b)
      for (int64_t s = 0; s < g.spatial; ++s) {
        dmean += -dxhat_at(b, s) * invstd;
        sum_dev += xv(b, s) - mean;
      }
    dmean += dvar * (-2 * sum_dev) / Acc(n);

    // Step 4: dL/dx = dxhat invstd + dvar 2 (x - mean) / n + dmean / n.
    for (int b = 0; b < g.batch; ++b)
      for (int64_t s = 0; s < g.spatial; ++s)
        dx[detail::bn_index(g, b, c, s)] =
            T(dxhat_at(b, s) * invstd + dvar * 2 * (xv(b, s) - mean) / Acc(n) + dmean / Acc(n));
  }
}

// With the running statistics fixed, y is affine in x: dx = dy gamma / sqrt(running_var + eps).
template <class T>
void batch_norm_backward_eval(const BatchNormGeometry& g, const T* x, const T* dy, const T* gamma,
                              const T* running_mean, const T* running_var, T eps, T* dx, T* dgamma,
                              T* dbeta) {
  using Acc = long double;
  for (int c = 0; c < g.channels; ++c) {
    const Acc invstd = 1 / std::sqrt(Acc(running_var[c]) + Acc(eps));
    const Acc gam = gamma ? Acc(gamma[c]) : Acc(1);
    Acc sum_dy = 0, sum_dy_xhat = 0;
    for (int b = 0; b < g.batch; ++b)
      for (int64_t s = 0; s < g.spatial; ++s) {
        const int64_t i = detail::bn_index(g, b, c, s);
        const Acc xhat = (Acc(x[i]) - Acc(running_mean[c])) * invstd;
        sum_dy += Acc(dy[i]);
        sum_dy_xhat += Acc(dy[i]) * xhat;
        if (dx) dx[i] = T(Acc(dy[i]) * gam * invstd);
      }
    if (dgamma) dgamma[c] = T(sum_dy_xhat);
    if (dbeta) dbeta[c] = T(sum_dy);
  }
}

// The synchronised passes (kernels/batchnorm.h), straight from their definitions: sums [2C + 1] of plain
// (unshifted) values accumulated in long double, and the statistics and dx from the summed arrays.
template <class T>
void batch_norm_channel_sums(const BatchNormGeometry& g, const T* x, double* sums) {
  using Acc = long double;
  for (int c = 0; c < g.channels; ++c) {
    Acc sum = 0, sum_sq = 0;
    for (int b = 0; b < g.batch; ++b)
      for (int64_t s = 0; s < g.spatial; ++s) {
        const Acc v = Acc(x[detail::bn_index(g, b, c, s)]);
        sum += v;
        sum_sq += v * v;
      }
    sums[c] = double(sum);
    sums[g.channels + c] = double(sum_sq);
  }
  sums[2 * g.channels] = double(g.count());
}

template <class T>
void batch_norm_stats_from_sums(int channels, const double* sums, T eps, T momentum, T* mean, T* var,
                                T* invstd, T* running_mean, T* running_var) {
  using Acc = long double;
  const Acc n = Acc(sums[2 * channels]);
  for (int c = 0; c < channels; ++c) {
    const Acc mu = Acc(sums[c]) / n;
    Acc v = Acc(sums[channels + c]) / n - mu * mu;  // E[x^2] - E[x]^2, which rounding may push below 0
    if (v < 0) v = 0;
    if (mean) mean[c] = T(mu);
    if (var) var[c] = T(v);
    if (invstd) invstd[c] = T(1 / std::sqrt(v + Acc(eps)));
    const Acc m = Acc(momentum);
    const Acc unbiased_var = n > 1 ? v * n / (n - 1) : v;
    if (running_mean) running_mean[c] = T((1 - m) * Acc(running_mean[c]) + m * mu);
    if (running_var) running_var[c] = T((1 - m) * Acc(running_var[c]) + m * unbiased_var);
  }
}

template <class T>
void batch_norm_backward_sums(const BatchNormGeometry& g, const T* x, const T* dy, const T* mean,
                              const T* invstd, double* sums, T* dgamma, T* dbeta) {
  using Acc = long double;
  for (int c = 0; c < g.channels; ++c) {
    Acc sum_dy = 0, sum_dy_xhat = 0;
    for (int b = 0; b < g.batch; ++b)
      for (int64_t s = 0; s < g.spatial; ++s) {
        const int64_t i = detail::bn_index(g, b, c, s);
        const Acc xhat = (Acc(x[i]) - Acc(mean[c])) * Acc(invstd[c]);
        sum_dy += Acc(dy[i]);
        sum_dy_xhat += Acc(dy[i]) * xhat;
      }
    sums[c] = double(sum_dy);
    sums[g.channels + c] = double(sum_dy_xhat);
    if (dgamma) dgamma[c] = T(sum_dy_xhat);
    if (dbeta) dbeta[c] = T(sum_dy);
  }
  sums[2 * g.channels] = double(g.count());
}

// dx = gamma invstd (dy - mean(dy) - xhat mean(dy xhat)), the means over the global count sums[2C].
template <class T>
void batch_norm_backward_from_sums(const BatchNormGeometry& g, const T* x, const T* dy, const T* gamma,
                                   const T* mean, const T* invstd, const double* sums, T* dx) {
  using Acc = long double;
  if (!dx) return;
  const Acc n = Acc(sums[2 * g.channels]);
  for (int b = 0; b < g.batch; ++b)
    for (int c = 0; c < g.channels; ++c)
      for (int64_t s = 0; s < g.spatial; ++s) {
        const int64_t i = detail::bn_index(g, b, c, s);
        const Acc is = Acc(invstd[c]);
        const Acc xhat = (Acc(x[i]) - Acc(mean[c])) * is;
        const Acc gam = gamma ? Acc(gamma[c]) : Acc(1);
        dx[i] = T(gam * is * (Acc(dy[i]) - Acc(sums[c]) / n - xhat * Acc(sums[g.channels + c]) / n));
      }
}

}  // namespace cudagan::reference
