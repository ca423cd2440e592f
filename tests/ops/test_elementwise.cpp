// cpu:: add, mul, scale, axpy, fill and sum against reference::, float and double, sizes from 1 to past the
// OpenMP threshold; outputs aliasing inputs; sum's double accumulation (1e6 floats of 0.1) and its
// independence from the thread count.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "elementwise.h"
#include "reference/elementwise.h"
#include "support/compare.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

using cudagan::test::random_vector;
using cudagan::test::require_close;
using cudagan::test::require_equal;

// add, mul, scale and fill are one IEEE operation (or none) per element on both sides, correctly rounded,
// so they must agree bit for bit. axpy is a multiply and an add, which a compiler may contract into one
// fused multiply-add on one side and not the other: that changes the result by at most about one rounding
// of the product and one of the sum, i.e. an eps or two of the operands (here |y|, |alpha x| <= 1): 2 eps
// absolute and relative.
template <class T>
double eps() {
  return double(std::numeric_limits<T>::epsilon());
}

}  // namespace

TEMPLATE_TEST_CASE("add matches the reference exactly", "[elementwise][reference]", float, double) {
  using T = TestType;
  const int64_t n = GENERATE(int64_t(1), int64_t(7), int64_t(1000), int64_t(100003));
  CAPTURE(n);
  const auto a = random_vector<T>(n, 1 + uint64_t(n)), b = random_vector<T>(n, 2 + uint64_t(n));
  std::vector<T> out_cpu(size_t(n), T(-7)), out_ref(size_t(n), T(-7));
  cudagan::cpu::add<T>(a.data(), b.data(), out_cpu.data(), n);
  cudagan::reference::add<T>(a.data(), b.data(), out_ref.data(), n);
  require_equal(out_cpu, out_ref, "add");
}

TEMPLATE_TEST_CASE("mul matches the reference exactly", "[elementwise][reference]", float, double) {
  using T = TestType;
  const int64_t n = GENERATE(int64_t(1), int64_t(7), int64_t(1000), int64_t(100003));
  CAPTURE(n);
  const auto a = random_vector<T>(n, 3 + uint64_t(n)), b = random_vector<T>(n, 4 + uint64_t(n));
  std::vector<T> out_cpu(size_t(n), T(-7)), out_ref(size_t(n), T(-7));
  cudagan::cpu::mul<T>(a.data(), b.data(), out_cpu.data(), n);
  cudagan::reference::mul<T>(a.data(), b.data(), out_ref.data(), n);
  require_equal(out_cpu, out_ref, "mul");
}

TEMPLATE_TEST_CASE("scale matches the reference exactly", "[elementwise][reference]", float, double) {
  using T = TestType;
  const int64_t n = GENERATE(int64_t(1), int64_t(7), int64_t(1000), int64_t(100003));
  const double alpha = GENERATE(-0.75, 0.0, 3.0);
  CAPTURE(n, alpha);
  const auto x = random_vector<T>(n, 5 + uint64_t(n));
  std::vector<T> out_cpu(size_t(n), T(-7)), out_ref(size_t(n), T(-7));
  cudagan::cpu::scale<T>(x.data(), T(alpha), out_cpu.data(), n);
  cudagan::reference::scale<T>(x.data(), T(alpha), out_ref.data(), n);
  require_equal(out_cpu, out_ref, "scale");
}

TEMPLATE_TEST_CASE("axpy matches the reference", "[elementwise][reference]", float, double) {
  using T = TestType;
  const int64_t n = GENERATE(int64_t(1), int64_t(7), int64_t(1000), int64_t(100003));
  const double alpha = GENERATE(-0.75, 1.0);
  CAPTURE(n, alpha);
  const auto x = random_vector<T>(n, 6 + uint64_t(n));
  auto y_cpu = random_vector<T>(n, 7 + uint64_t(n));
  auto y_ref = y_cpu;
  cudagan::cpu::axpy<T>(T(alpha), x.data(), y_cpu.data(), n);
  cudagan::reference::axpy<T>(T(alpha), x.data(), y_ref.data(), n);
  require_close(y_cpu, y_ref, 2 * eps<T>(), 2 * eps<T>(), "axpy y");
}

TEMPLATE_TEST_CASE("fill sets every element", "[elementwise][reference]", float, double) {
  using T = TestType;
  const int64_t n = GENERATE(int64_t(1), int64_t(7), int64_t(1000), int64_t(100003));
  CAPTURE(n);
  std::vector<T> out_cpu = random_vector<T>(n, 8 + uint64_t(n)), out_ref(size_t(n), T(-7));
  cudagan::cpu::fill<T>(out_cpu.data(), T(0.375), n);
  cudagan::reference::fill<T>(out_ref.data(), T(0.375), n);
  require_equal(out_cpu, out_ref, "fill");
}

TEMPLATE_TEST_CASE("sum matches the reference", "[elementwise][reference]", float, double) {
  using T = TestType;
  const int64_t n = GENERATE(int64_t(1), int64_t(7), int64_t(1000), int64_t(100003));
  CAPTURE(n);
  const auto x = random_vector<T>(n, 9 + uint64_t(n));
  T s_cpu = T(-7), s_ref = T(-8);
  cudagan::cpu::sum<T>(x.data(), n, &s_cpu);
  cudagan::reference::sum<T>(x.data(), n, &s_ref);
  // The backend adds in double, the oracle in long double; both round to T at the end. Summing n terms in
  // double errs by at most n eps_double sum|x| (the textbook bound; the backend's blocking does better),
  // and the final rounding to T by an eps of the result. Dropping or doubling any element (|x| ~ 0.5) would
  // miss by orders of magnitude more.
  double sum_abs = 0;
  for (T v : x) sum_abs += std::fabs(double(v));
  const double atol = double(n) * eps<double>() * sum_abs;
  require_close(&s_cpu, &s_ref, 1, atol, eps<T>(), "sum");
}

TEMPLATE_TEST_CASE("add, mul, scale and axpy work in place", "[elementwise][reference]", float, double) {
  using T = TestType;
  const int64_t n = GENERATE(int64_t(7), int64_t(100003));
  CAPTURE(n);
  const auto a = random_vector<T>(n, 10 + uint64_t(n)), b = random_vector<T>(n, 11 + uint64_t(n));
  std::vector<T> expected(static_cast<size_t>(n));

  SECTION("add, out == a") {
    cudagan::reference::add<T>(a.data(), b.data(), expected.data(), n);
    auto buf = a;
    cudagan::cpu::add<T>(buf.data(), b.data(), buf.data(), n);
    require_equal(buf, expected, "add in place (out == a)");
  }
  SECTION("add, out == b") {
    cudagan::reference::add<T>(a.data(), b.data(), expected.data(), n);
    auto buf = b;
    cudagan::cpu::add<T>(a.data(), buf.data(), buf.data(), n);
    require_equal(buf, expected, "add in place (out == b)");
  }
  SECTION("add, a == b == out") {
    cudagan::reference::add<T>(a.data(), a.data(), expected.data(), n);
    auto buf = a;
    cudagan::cpu::add<T>(buf.data(), buf.data(), buf.data(), n);
    require_equal(buf, expected, "add in place (a == b == out)");
  }
  SECTION("mul, out == a") {
    cudagan::reference::mul<T>(a.data(), b.data(), expected.data(), n);
    auto buf = a;
    cudagan::cpu::mul<T>(buf.data(), b.data(), buf.data(), n);
    require_equal(buf, expected, "mul in place (out == a)");
  }
  SECTION("mul, a == b == out (squaring)") {
    cudagan::reference::mul<T>(a.data(), a.data(), expected.data(), n);
    auto buf = a;
    cudagan::cpu::mul<T>(buf.data(), buf.data(), buf.data(), n);
    require_equal(buf, expected, "mul in place (a == b == out)");
  }
  SECTION("scale, out == x") {
    cudagan::reference::scale<T>(a.data(), T(-2.5), expected.data(), n);
    auto buf = a;
    cudagan::cpu::scale<T>(buf.data(), T(-2.5), buf.data(), n);
    require_equal(buf, expected, "scale in place");
  }
  SECTION("axpy, x == y (y = (1 + alpha) y)") {
    expected = a;
    cudagan::reference::axpy<T>(T(0.5), a.data(), expected.data(), n);
    auto buf = a;
    cudagan::cpu::axpy<T>(T(0.5), buf.data(), buf.data(), n);
    require_close(buf, expected, 2 * eps<T>(), 2 * eps<T>(), "axpy in place (x == y)");
  }
  SECTION("sum, out == x") {
    T s = T(0);
    cudagan::reference::sum<T>(a.data(), n, &s);
    auto buf = a;
    cudagan::cpu::sum<T>(buf.data(), n, buf.data());
    // Same bound as "sum matches the reference"; what matters here is that x[0] is not overwritten early.
    double sum_abs = 0;
    for (T v : a) sum_abs += std::fabs(double(v));
    require_close(buf.data(), &s, 1, double(n) * eps<double>() * sum_abs, eps<T>(), "sum into x[0]");
  }
}

TEST_CASE("sum of 1e6 floats of 0.1 is accurate (accumulated in double)", "[elementwise]") {
  // 0.1f is 0.100000001490116..., so the exact sum is 100000.00149, which rounds to 100000 in float. A float
  // accumulator drifts by hundreds (once the running sum passes 2^16, each 0.1 is rounded to a multiple of
  // 2^-7); a double accumulator is exact to about 1e-6 before the final rounding.
  const int64_t n = 1000000;
  const std::vector<float> x(size_t(n), 0.1f);
  float s = 0;
  cudagan::cpu::sum<float>(x.data(), n, &s);
  CAPTURE(s);
  CHECK(s == 100000.0f);

  const std::vector<double> xd(size_t(n), 0.1);
  double sd = 0;
  cudagan::cpu::sum<double>(xd.data(), n, &sd);
  CAPTURE(sd);
  CHECK(std::fabs(sd - 100000.0) <= 1e-7);  // naive double summation drifts by ~1e-6 here
}

TEMPLATE_TEST_CASE("sum of zero elements is 0", "[elementwise]", float, double) {
  TestType s = TestType(-7);
  cudagan::cpu::sum<TestType>(nullptr, 0, &s);
  CHECK(s == TestType(0));
}

TEMPLATE_TEST_CASE("sum is bit-identical whatever the OpenMP thread count", "[elementwise]", float, double) {
  // Training on the CPU must give bit-identical losses run after run; the reduction partitions by n alone.
#ifdef _OPENMP
  using T = TestType;
  const int64_t n = 1000003;
  const auto x = random_vector<T>(n, 77, -1.0, 1.0);
  const int saved = omp_get_max_threads();
  std::vector<T> results;
  for (int threads : {1, 2, 3, 8}) {
    omp_set_num_threads(threads);
    T s = T(0);
    cudagan::cpu::sum<T>(x.data(), n, &s);
    results.push_back(s);
  }
  omp_set_num_threads(saved);
  CAPTURE(results);
  for (T r : results) CHECK(r == results[0]);
#else
  WARN("built without OpenMP: nothing to compare");
#endif
}
