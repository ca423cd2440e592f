// cuRAND fills: statistics, reproducibility from seed and offset, independence from the launch shape.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/check.h"
#include "cuda_context.h"
#include "cuda_test_support.h"
#include "random.h"
#include "support/compare.h"

using namespace cudagan;
using test::DeviceBuffer;
using test::TestContext;

TEST_CASE("cuda fill_normal has mean 0 and std 1 and is reproducible from seed and offset",
          "[cuda][random]") {
  TestContext tc;
  const int64_t n = 1000003;  // not a multiple of 4: the last Philox draw is partly used
  DeviceBuffer<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n)), c(static_cast<size_t>(n));
  cuda::fill_normal(tc.ctx(), a.get(), n, 1234, 0, 0.0f, 1.0f);
  cuda::fill_normal(tc.ctx(), b.get(), n, 1234, 0, 0.0f, 1.0f);
  cuda::fill_normal(tc.ctx(), c.get(), n, 1234, 4, 0.0f, 1.0f);
  const auto va = a.download(), vb = b.download(), vc = c.download();
  test::require_equal(va, vb, "same seed and offset");

  double sum = 0, sum_sq = 0;
  for (float x : va) {
    REQUIRE(std::isfinite(x));
    sum += x;
    sum_sq += double(x) * x;
  }
  const double mean = sum / double(n), std_dev = std::sqrt(sum_sq / double(n) - mean * mean);
  // Standard errors: 1e-3 for the mean, 7e-4 for the std; 5e-3 is 5 and 7 of them.
  CHECK(std::fabs(mean) < 5e-3);
  CHECK(std::fabs(std_dev - 1.0) < 5e-3);

  // Another offset gives other numbers (equal floats by chance: essentially never).
  int64_t equal = 0;
  for (int64_t i = 0; i < n; ++i) equal += va[size_t(i)] == vc[size_t(i)];
  CHECK(equal < n / 1000);

  // A short fill is a prefix of the long one: the values do not depend on the launch configuration.
  DeviceBuffer<float> short_d(10);
  cuda::fill_normal(tc.ctx(), short_d.get(), 10, 1234, 0, 0.0f, 1.0f);
  test::require_equal(short_d.download(), std::vector<float>(va.begin(), va.begin() + 10), "prefix");

  // mean and stddev are applied.
  cuda::fill_normal(tc.ctx(), b.get(), n, 99, 0, 2.0f, 0.5f);
  const auto vs = b.download();
  double s2 = 0;
  for (float x : vs) s2 += x;
  CHECK(std::fabs(s2 / double(n) - 2.0) < 5e-3 * 0.5);
}

TEST_CASE("cuda fill_uniform stays within lo and hi with the right mean", "[cuda][random]") {
  TestContext tc;
  const int64_t n = 1000001;
  const float lo = -3.0f, hi = 5.0f;
  DeviceBuffer<float> a(static_cast<size_t>(n));
  cuda::fill_uniform(tc.ctx(), a.get(), n, 77, 0, lo, hi);
  const auto v = a.download();
  double sum = 0;
  bool in_range = true;
  for (float x : v) {
    in_range = in_range && x >= lo && x < hi;
    sum += x;
  }
  REQUIRE(in_range);
  // Uniform on [-3, 5): mean 1, std 8 / sqrt(12) = 2.31, standard error of the mean 2.3e-3.
  CHECK(std::fabs(sum / double(n) - 1.0) < 1.2e-2);
  REQUIRE_THROWS_AS(cuda::fill_uniform(tc.ctx(), a.get(), n, 77, 0, 1.0f, 0.0f), cudagan::InvalidArgument);
}
