// Element-wise comparison for tests: passes when |actual - expected| <= atol + rtol * |expected|
// everywhere; otherwise fails once, naming the worst element, both values and the tolerance.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace cudagan::test {

template <class A, class B>
void require_close(const A* actual, const B* expected, int64_t n, double atol, double rtol,
                   const std::string& what) {
  int64_t worst = -1, bad = 0;
  double worst_excess = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double a = double(actual[i]), e = double(expected[i]);
    const double tol = atol + rtol * std::fabs(e);
    const double diff = std::fabs(a - e);
    if (!(diff <= tol)) {  // also catches NaN
      ++bad;
      const double excess = std::isnan(diff) ? INFINITY : diff - tol;
      if (worst < 0 || excess > worst_excess) worst = i, worst_excess = excess;
    }
  }
  if (bad == 0) {
    SUCCEED(what << ": " << n << " elements within atol " << atol << " + rtol " << rtol);
    return;
  }
  const double a = double(actual[worst]), e = double(expected[worst]);
  std::ostringstream msg;
  msg.precision(10);
  msg << what << ": " << bad << " of " << n << " elements differ; worst at index " << worst << ": actual "
      << a << ", expected " << e << ", |diff| " << std::fabs(a - e) << " > tolerance "
      << atol + rtol * std::fabs(e) << " (atol " << atol << " + rtol " << rtol << " * |expected|)";
  FAIL(msg.str());
}

template <class A, class B>
void require_close(const std::vector<A>& actual, const std::vector<B>& expected, double atol, double rtol,
                   const std::string& what) {
  REQUIRE(actual.size() == expected.size());
  require_close(actual.data(), expected.data(), int64_t(actual.size()), atol, rtol, what);
}

// Passes when max |actual - expected| <= rel * max |expected|: an error judged against the tensor's own scale,
// for results that pass through many layers, where single elements may cancel to near zero but an error that
// matters shows against the largest. An all-zero expected passes only with an all-zero actual; NaN never passes.
template <class A, class B>
void require_close_to_scale(const std::vector<A>& actual, const std::vector<B>& expected, double rel,
                            const std::string& what) {
  REQUIRE(actual.size() == expected.size());
  double max_err = 0, max_ref = 0;
  int64_t worst = -1;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double err = std::fabs(double(actual[i]) - double(expected[i]));
    if (!(err <= max_err)) max_err = std::isnan(err) ? INFINITY : err, worst = int64_t(i);
    max_ref = std::max(max_ref, std::fabs(double(expected[i])));
  }
  if (max_err <= rel * max_ref) {
    SUCCEED(what << ": max error " << max_err << " <= " << rel << " x max |expected| " << max_ref);
    return;
  }
  std::ostringstream msg;
  msg.precision(10);
  msg << what << ": max |error| " << max_err << " at index " << worst << " (actual " << double(actual[size_t(worst)])
      << ", expected " << double(expected[size_t(worst)]) << ") exceeds " << rel << " x max |expected| " << max_ref
      << " (relative error " << (max_ref > 0 ? max_err / max_ref : INFINITY) << ")";
  FAIL(msg.str());
}

// Bit-exact comparison, for pure data movement (im2col, col2im, copies).
template <class T>
void require_equal(const std::vector<T>& actual, const std::vector<T>& expected, const std::string& what) {
  require_close(actual, expected, 0.0, 0.0, what);
}

template <class T> std::vector<T> random_vector(int64_t n, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& x : v) x = T(dist(rng));
  return v;
}

}  // namespace cudagan::test
