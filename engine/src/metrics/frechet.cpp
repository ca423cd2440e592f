#include "cudagan/metrics/frechet.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "cudagan/core/error.h"

namespace cudagan::metrics {

GaussianStats gaussian_stats(const Tensor& features) {
  CUDAGAN_CHECK(features.defined(), "gaussian_stats: undefined features");
  CUDAGAN_CHECK(features.dim() == 2, "gaussian_stats: features must be [N, D], got ", shape_str(features.shape()));
  const int64_t n = features.size(0), d = features.size(1);
  CUDAGAN_CHECK(n >= 2 && d >= 1, "gaussian_stats: needs at least 2 feature vectors of at least 1 value, got ",
                shape_str(features.shape()));
  const std::vector<float> x = features.to_float_vector();
  GaussianStats s;
  s.count = n;
  s.dim = int(d);
  s.mean.assign(size_t(d), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) s.mean[size_t(j)] += x[size_t(i * d + j)];
  for (double& m : s.mean) m /= double(n);
  // Two passes (centre, then multiply) rather than sum x x^T - n mu mu^T, whose cancellation loses the
  // small variances of features with a large mean.
  std::vector<double> centred(size_t(n * d));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) centred[size_t(i * d + j)] = x[size_t(i * d + j)] - s.mean[size_t(j)];
  s.cov.assign(size_t(d * d), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const double* row = centred.data() + i * d;
    for (int64_t j = 0; j < d; ++j) {
      const double rj = row[j];
      double* out = s.cov.data() + j * d;
      for (int64_t k = j; k < d; ++k) out[k] += rj * row[k];
    }
  }
  for (int64_t j = 0; j < d; ++j)
    for (int64_t k = j; k < d; ++k) {
      const double v = s.cov[size_t(j * d + k)] / double(n - 1);
      s.cov[size_t(j * d + k)] = v;
      s.cov[size_t(k * d + j)] = v;
    }
  return s;
}

SymmetricEigen symmetric_eigen(const std::vector<double>& m, int n) {
  CUDAGAN_CHECK(n >= 1 && m.size() == size_t(n) * size_t(n), "symmetric_eigen: expected ", n, " x ", n,
                " values, got ", m.size());
  std::vector<double> a(m.size());
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) a[size_t(i * n + j)] = 0.5 * (m[size_t(i * n + j)] + m[size_t(j * n + i)]);
  std::vector<double> v(m.size(), 0.0);
  for (int i = 0; i < n; ++i) v[size_t(i * n + i)] = 1.0;
  auto at = [&](int i, int j) -> double& { return a[size_t(i * n + j)]; };
  const double total = std::sqrt(std::inner_product(a.begin(), a.end(), a.begin(), 0.0));
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (int p = 0; p < n; ++p)
      for (int q = p + 1; q < n; ++q) off += at(p, q) * at(p, q);
    if (std::sqrt(2 * off) <= 1e-15 * total || off == 0) break;
    for (int p = 0; p < n; ++p)
      for (int q = p + 1; q < n; ++q) {
        const double apq = at(p, q);
        if (apq == 0) continue;
        // The rotation in the (p, q) plane that zeroes a_pq: t = tan(phi) is the smaller root of
        // t^2 + 2 theta t - 1 = 0, so |phi| <= pi / 4 and the rest of the matrix moves as little as possible.
        const double theta = (at(q, q) - at(p, p)) / (2 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < n; ++k) {  // A J: columns p and q
          const double kp = at(k, p), kq = at(k, q);
          at(k, p) = c * kp - s * kq;
          at(k, q) = s * kp + c * kq;
        }
        for (int k = 0; k < n; ++k) {  // J^T (A J): rows p and q
          const double pk = at(p, k), qk = at(q, k);
          at(p, k) = c * pk - s * qk;
          at(q, k) = s * pk + c * qk;
        }
        at(p, q) = at(q, p) = 0;  // exactly, rather than the rounding residue
        for (int k = 0; k < n; ++k) {  // V J
          double& kp = v[size_t(k * n + p)];
          double& kq = v[size_t(k * n + q)];
          const double vp = kp, vq = kq;
          kp = c * vp - s * vq;
          kq = s * vp + c * vq;
        }
      }
  }
  std::vector<int> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int x, int y) { return at(x, x) < at(y, y); });
  SymmetricEigen e;
  e.values.resize(size_t(n));
  e.vectors.resize(m.size());
  for (int k = 0; k < n; ++k) {
    e.values[size_t(k)] = at(order[size_t(k)], order[size_t(k)]);
    for (int i = 0; i < n; ++i) e.vectors[size_t(i * n + k)] = v[size_t(i * n + order[size_t(k)])];
  }
  return e;
}

namespace {

// The square root of a symmetric positive semi-definite matrix: V diag(sqrt(max(lambda, 0))) V^T.
std::vector<double> psd_sqrt(const std::vector<double>& m, int n) {
  const SymmetricEigen e = symmetric_eigen(m, n);
  std::vector<double> r(m.size(), 0.0);
  for (int k = 0; k < n; ++k) {
    const double root = std::sqrt(std::max(e.values[size_t(k)], 0.0));
    for (int i = 0; i < n; ++i) {
      const double vi = e.vectors[size_t(i * n + k)] * root;
      for (int j = 0; j < n; ++j) r[size_t(i * n + j)] += vi * e.vectors[size_t(j * n + k)];
    }
  }
  return r;
}

std::vector<double> matmul(const std::vector<double>& x, const std::vector<double>& y, int n) {
  std::vector<double> r(x.size(), 0.0);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < n; ++k) {
      const double xik = x[size_t(i * n + k)];
      for (int j = 0; j < n; ++j) r[size_t(i * n + j)] += xik * y[size_t(k * n + j)];
    }
  return r;
}

}  // namespace

double frechet_distance(const GaussianStats& a, const GaussianStats& b) {
  CUDAGAN_CHECK(a.dim >= 1 && a.dim == b.dim, "frechet_distance: statistics of ", a.dim, " and ", b.dim,
                " dimensions");
  const int n = a.dim;
  CUDAGAN_CHECK(a.mean.size() == size_t(n) && b.mean.size() == size_t(n) && a.cov.size() == size_t(n) * size_t(n) &&
                    b.cov.size() == size_t(n) * size_t(n),
                "frechet_distance: statistics whose mean or covariance do not have ", n, " dimensions");
  double mean_term = 0, trace = 0;
  for (int i = 0; i < n; ++i) {
    const double diff = a.mean[size_t(i)] - b.mean[size_t(i)];
    mean_term += diff * diff;
    trace += a.cov[size_t(i * n + i)] + b.cov[size_t(i * n + i)];
  }
  const std::vector<double> root_a = psd_sqrt(a.cov, n);
  const SymmetricEigen inner = symmetric_eigen(matmul(matmul(root_a, b.cov, n), root_a, n), n);
  double trace_root = 0;
  for (double lambda : inner.values) trace_root += std::sqrt(std::max(lambda, 0.0));
  // Equal statistics give 0 up to rounding, which may fall on either side of it; a distance is not negative.
  return std::max(0.0, mean_term + trace - 2 * trace_root);
}

}  // namespace cudagan::metrics
