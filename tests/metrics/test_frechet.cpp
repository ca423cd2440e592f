// The Frechet distance (cudagan/metrics/frechet.h): the Jacobi eigensolver reconstructs its matrix; the
// distance against closed forms (1-D, diagonal, a rotated covariance) and, for general covariances, against
// an independent matrix square root (Denman-Beavers iteration on the non-symmetric product S_a S_b, in long
// double); and the statistics against a direct computation.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "cudagan/core/rng.h"
#include "cudagan/core/tensor.h"
#include "cudagan/metrics/frechet.h"

using namespace cudagan;
using namespace cudagan::metrics;

namespace {

using Matrix = std::vector<double>;

Matrix multiply(const Matrix& x, const Matrix& y, int n) {
  Matrix r(size_t(n * n), 0.0);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      for (int k = 0; k < n; ++k) r[size_t(i * n + j)] += x[size_t(i * n + k)] * y[size_t(k * n + j)];
  return r;
}

// A random symmetric positive definite matrix: X X^T / n + 0.1 I, X standard normal [n, n + 3].
Matrix random_spd(int n, uint64_t seed) {
  Rng rng(seed);
  const int m = n + 3;
  std::vector<double> x(size_t(n * m));
  for (double& v : x) v = rng.normal();
  Matrix s(size_t(n * n), 0.0);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      for (int k = 0; k < m; ++k) s[size_t(i * n + j)] += x[size_t(i * m + k)] * x[size_t(j * m + k)];
      s[size_t(i * n + j)] /= n;
    }
  for (int i = 0; i < n; ++i) s[size_t(i * n + i)] += 0.1;
  return s;
}

GaussianStats stats(std::vector<double> mean, Matrix cov) {
  GaussianStats s;
  s.dim = int(mean.size());
  s.count = 100;
  s.mean = std::move(mean);
  s.cov = std::move(cov);
  return s;
}

// Tr((S_a S_b)^(1/2)) by the Denman-Beavers iteration Y <- (Y + Z^-1) / 2, Z <- (Z + Y^-1) / 2 from
// Y = S_a S_b, Z = I (Y converges to the principal square root), with Gauss-Jordan inverses, in long double:
// nothing shared with the eigendecomposition route of the code under test.
long double trace_sqrt_product(const Matrix& a, const Matrix& b, int n) {
  using LMatrix = std::vector<long double>;
  auto inverse = [n](LMatrix m) {
    LMatrix inv(size_t(n * n), 0.0L);
    for (int i = 0; i < n; ++i) inv[size_t(i * n + i)] = 1;
    for (int c = 0; c < n; ++c) {
      int pivot = c;
      for (int r = c + 1; r < n; ++r)
        if (std::fabs(m[size_t(r * n + c)]) > std::fabs(m[size_t(pivot * n + c)])) pivot = r;
      for (int k = 0; k < n; ++k) {
        std::swap(m[size_t(c * n + k)], m[size_t(pivot * n + k)]);
        std::swap(inv[size_t(c * n + k)], inv[size_t(pivot * n + k)]);
      }
      const long double d = m[size_t(c * n + c)];
      for (int k = 0; k < n; ++k) {
        m[size_t(c * n + k)] /= d;
        inv[size_t(c * n + k)] /= d;
      }
      for (int r = 0; r < n; ++r)
        if (r != c) {
          const long double f = m[size_t(r * n + c)];
          for (int k = 0; k < n; ++k) {
            m[size_t(r * n + k)] -= f * m[size_t(c * n + k)];
            inv[size_t(r * n + k)] -= f * inv[size_t(c * n + k)];
          }
        }
    }
    return inv;
  };
  const Matrix p = multiply(a, b, n);
  LMatrix y(p.begin(), p.end()), z(size_t(n * n), 0.0L);
  for (int i = 0; i < n; ++i) z[size_t(i * n + i)] = 1;
  for (int it = 0; it < 60; ++it) {
    const LMatrix yi = inverse(y), zi = inverse(z);
    for (size_t k = 0; k < y.size(); ++k) {
      y[k] = (y[k] + zi[k]) / 2;
      z[k] = (z[k] + yi[k]) / 2;
    }
  }
  long double t = 0;
  for (int i = 0; i < n; ++i) t += y[size_t(i * n + i)];
  return t;
}

}  // namespace

TEST_CASE("symmetric_eigen reconstructs the matrix from orthonormal vectors", "[metrics][frechet]") {
  for (int n : {1, 2, 5, 17, 64}) {
    const Matrix m = random_spd(n, uint64_t(n));
    const SymmetricEigen e = symmetric_eigen(m, n);
    double worst = 0, worst_orth = 0;
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) {
        double r = 0, dot = 0;
        for (int k = 0; k < n; ++k) {
          r += e.vectors[size_t(i * n + k)] * e.values[size_t(k)] * e.vectors[size_t(j * n + k)];
          dot += e.vectors[size_t(k * n + i)] * e.vectors[size_t(k * n + j)];
        }
        worst = std::max(worst, std::fabs(r - m[size_t(i * n + j)]));
        worst_orth = std::max(worst_orth, std::fabs(dot - (i == j ? 1.0 : 0.0)));
      }
    INFO("n = " << n);
    CHECK(worst < 1e-12 * n);
    CHECK(worst_orth < 1e-12 * n);
    for (int k = 1; k < n; ++k) CHECK(e.values[size_t(k - 1)] <= e.values[size_t(k)]);
  }
}

TEST_CASE("frechet_distance matches closed forms", "[metrics][frechet]") {
  SECTION("1-D: (mu_a - mu_b)^2 + (sigma_a - sigma_b)^2") {
    CHECK(frechet_distance(stats({1.0}, {4.0}), stats({-2.0}, {9.0})) == Approx(9.0 + 1.0).epsilon(1e-12));
  }
  SECTION("diagonal covariances: |dmu|^2 + sum (sqrt(a_i) - sqrt(b_i))^2") {
    const Matrix a{1, 0, 0, 0, 4, 0, 0, 0, 0.25}, b{9, 0, 0, 0, 1, 0, 0, 0, 0.01};
    const double expected = (1 + 4 + 0) + 4 + 1 + 0.16;
    CHECK(frechet_distance(stats({1, 2, 3}, a), stats({0, 0, 3}, b)) == Approx(expected).epsilon(1e-12));
  }
  SECTION("identity against a rotated diagonal: Tr(S_b) + n - 2 sum sqrt(lambda_i)") {
    const double c = std::cos(0.7), s = std::sin(0.7);
    const Matrix r{c, -s, s, c}, d{4, 0, 0, 0.09}, rt{c, s, -s, c};
    const Matrix b = multiply(multiply(r, d, 2), rt, 2);
    CHECK(frechet_distance(stats({0, 0}, {1, 0, 0, 1}), stats({0, 0}, b)) ==
          Approx(4.09 + 2 - 2 * (2 + 0.3)).epsilon(1e-12));
  }
  SECTION("equal statistics: 0, and the distance is symmetric") {
    const Matrix a = random_spd(12, 3), b = random_spd(12, 4);
    const std::vector<double> mu(12, 0.5), nu(12, -0.25);
    CHECK(frechet_distance(stats(mu, a), stats(mu, a)) == Approx(0).margin(1e-9));
    CHECK(frechet_distance(stats(mu, a), stats(nu, b)) ==
          Approx(frechet_distance(stats(nu, b), stats(mu, a))).epsilon(1e-10));
  }
}

TEST_CASE("frechet_distance agrees with the Denman-Beavers square root on general covariances", "[metrics][frechet]") {
  for (int n : {3, 10, 32}) {
    const Matrix a = random_spd(n, uint64_t(100 + n)), b = random_spd(n, uint64_t(200 + n));
    double trace = 0;
    for (int i = 0; i < n; ++i) trace += a[size_t(i * n + i)] + b[size_t(i * n + i)];
    const double expected = trace - 2 * double(trace_sqrt_product(a, b, n));
    INFO("n = " << n);
    CHECK(frechet_distance(stats(std::vector<double>(size_t(n), 0.0), a),
                           stats(std::vector<double>(size_t(n), 0.0), b)) == Approx(expected).epsilon(1e-9));
  }
}

TEST_CASE("gaussian_stats computes the mean and the unbiased covariance", "[metrics][frechet]") {
  // Rows (1, 2), (3, 0), (5, 4): mean (3, 2); deviations (-2, 0), (0, -2), (2, 2) -> cov [[4, 2], [2, 4]].
  const Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3, 0, 5, 4}, {3, 2});
  const GaussianStats s = gaussian_stats(x);
  CHECK(s.count == 3);
  CHECK(s.dim == 2);
  CHECK(s.mean == std::vector<double>{3, 2});
  CHECK(s.cov == std::vector<double>{4, 2, 2, 4});
  CHECK_THROWS_WITH(gaussian_stats(Tensor::from_vector(std::vector<float>{1, 2}, {1, 2})),
                    Catch::Matchers::Contains("at least 2 feature vectors"));
  CHECK_THROWS_WITH(gaussian_stats(Tensor::from_vector(std::vector<float>{1, 2}, {2})),
                    Catch::Matchers::Contains("[N, D]"));
  CHECK_THROWS_WITH(frechet_distance(s, stats({0}, {1})), Catch::Matchers::Contains("dimensions"));
}

TEST_CASE("samples of one Gaussian are close, a shifted or squeezed one is far", "[metrics][frechet]") {
  Rng rng(7);
  const int n = 4000, d = 8;
  auto sample = [&](double shift, double scale) {
    std::vector<float> v(size_t(n * d));
    for (float& x : v) x = float(shift + scale * rng.normal());
    return gaussian_stats(Tensor::from_vector(v, {n, d}));
  };
  const GaussianStats ref = sample(0, 1), same = sample(0, 1), shifted = sample(0.5, 1), squeezed = sample(0, 0.5);
  const double near = frechet_distance(ref, same);
  CHECK(near < 0.05);
  CHECK(frechet_distance(ref, shifted) == Approx(d * 0.25).epsilon(0.1));   // |dmu|^2 = 8 x 0.25
  CHECK(frechet_distance(ref, squeezed) == Approx(d * 0.25).epsilon(0.1));  // 8 x (1 - 0.5)^2
}
