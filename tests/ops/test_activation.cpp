// cpu::activation_forward / activation_backward against reference:: for every activation, float and
// double, sizes from 1 to past the OpenMP threshold, saturated inputs (+-100, +-1000), in place, NaN, bad
// enum values, and the derivative each backward pass implements against central differences of its forward.
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "activation.h"
#include "reference/activation.h"
#include "support/compare.h"

namespace {

using cudagan::Activation;
using cudagan::activation_name;
using cudagan::test::random_vector;
using cudagan::test::require_close;

struct Tolerance {
  double atol, rtol;
};

// Why each tolerance:
// - relu is a select on both sides: bit-exact.
// - leaky_relu multiplies once; the reference does it in long double, whose 64-bit mantissa holds a float
//   product exactly but rounds a double product twice (to 64 bits, then to 53), which can land one ulp off:
//   rtol of one eps.
// - tanh and sigmoid: the backend calls libm in T (an ulp or two) and rounds two or three more times, while
//   the reference is within half an ulp: rtol 16 eps (measured worst: about 2 eps). The atol of 4 eps is
//   at the scale of the largest output (|y|, |dx| <= 1 here): it absorbs the oracle's own rounding of
//   1 - y^2 in the double backward of tanh near saturation, and float subnormals (sigmoid(-100) = 3.7e-44),
//   where relative precision does not exist.
template <class T>
Tolerance tolerance(Activation a) {
  const double eps = std::numeric_limits<T>::epsilon();
  switch (a) {
    case Activation::relu:
      return {0.0, 0.0};
    case Activation::leaky_relu:
      return {0.0, eps};
    default:
      return {4 * eps, 16 * eps};
  }
}

const Activation kActivations[] = {Activation::relu, Activation::leaky_relu, Activation::tanh,
                                   Activation::sigmoid};

// Random values in [-5, 5] (across each curve's bend and into saturation), with the inputs where a naive
// formula goes wrong spread through the larger sizes: 0 and -0 (the kink: f'(0) must be the right branch),
// +-100 and +-1000 (e^1000 overflows), +-20 (sigmoid rounds to 1 in float) and tiny values.
template <class T>
std::vector<T> activation_input(int64_t n, uint64_t seed) {
  auto x = random_vector<T>(n, seed, -5.0, 5.0);
  const T special[] = {T(0), T(-0.0), T(100), T(-100), T(1000), T(-1000), T(20), T(-20), T(1e-4), T(-1e-4)};
  const int64_t count = int64_t(sizeof(special) / sizeof(special[0]));
  if (n >= 2 * count)
    for (int64_t j = 0; j < count; ++j) x[size_t(j * (n / count))] = special[j];
  return x;
}

uint64_t seed_of(Activation a, int64_t n, double slope) {
  return uint64_t(n) * 131 + uint64_t(a) * 17 + uint64_t(slope * 1000);
}

}  // namespace

TEMPLATE_TEST_CASE("activation_forward matches the reference", "[activation][reference]", float, double) {
  using T = TestType;
  const Activation a = GENERATE(from_range(std::begin(kActivations), std::end(kActivations)));
  const int64_t n = GENERATE(int64_t(1), int64_t(7), int64_t(1000), int64_t(100003));
  const double slope = GENERATE(0.2, 0.01);  // only leaky_relu reads it; the others must ignore it
  const std::string name = activation_name(a);
  CAPTURE(name, n, slope);
  const auto x = activation_input<T>(n, seed_of(a, n, slope));
  std::vector<T> y_cpu(size_t(n), T(-7)), y_ref(size_t(n), T(-7));
  cudagan::cpu::activation_forward<T>(a, x.data(), y_cpu.data(), n, T(slope));
  cudagan::reference::activation_forward<T>(a, x.data(), y_ref.data(), n, T(slope));
  const Tolerance tol = tolerance<T>(a);
  require_close(y_cpu, y_ref, tol.atol, tol.rtol, name + " forward y");
}

TEMPLATE_TEST_CASE("activation_backward matches the reference", "[activation][reference]", float, double) {
  using T = TestType;
  const Activation a = GENERATE(from_range(std::begin(kActivations), std::end(kActivations)));
  const int64_t n = GENERATE(int64_t(1), int64_t(7), int64_t(1000), int64_t(100003));
  const double slope = GENERATE(0.2, 0.01);
  const std::string name = activation_name(a);
  CAPTURE(name, n, slope);
  const uint64_t seed = seed_of(a, n, slope);
  const auto x = activation_input<T>(n, seed);
  const auto dy = random_vector<T>(n, seed + 1);
  // Both sides get the same y (the oracle's), so this checks the derivative alone. The header promises that
  // only x or only y is read: the other is passed as null, and reading it would crash.
  std::vector<T> y(static_cast<size_t>(n));
  cudagan::reference::activation_forward<T>(a, x.data(), y.data(), n, T(slope));
  const bool reads_x = a == Activation::relu || a == Activation::leaky_relu;
  const T* xp = reads_x ? x.data() : nullptr;
  const T* yp = reads_x ? nullptr : y.data();
  std::vector<T> dx_cpu(size_t(n), T(-7)), dx_ref(size_t(n), T(-7));
  cudagan::cpu::activation_backward<T>(a, xp, yp, dy.data(), dx_cpu.data(), n, T(slope));
  cudagan::reference::activation_backward<T>(a, xp, yp, dy.data(), dx_ref.data(), n, T(slope));
  const Tolerance tol = tolerance<T>(a);
  require_close(dx_cpu, dx_ref, tol.atol, tol.rtol, name + " backward dx");
}

TEMPLATE_TEST_CASE("activation works in place (y == x, dx == dy)", "[activation][reference]", float, double) {
  using T = TestType;
  const Activation a = GENERATE(from_range(std::begin(kActivations), std::end(kActivations)));
  const int64_t n = GENERATE(int64_t(7), int64_t(100003));
  const std::string name = activation_name(a);
  CAPTURE(name, n);
  const T slope = T(0.2);
  const auto x = activation_input<T>(n, 99 + uint64_t(n));
  const auto dy = random_vector<T>(n, 100 + uint64_t(n));
  std::vector<T> y_ref(static_cast<size_t>(n)), dx_ref(static_cast<size_t>(n));
  cudagan::reference::activation_forward<T>(a, x.data(), y_ref.data(), n, slope);
  cudagan::reference::activation_backward<T>(a, x.data(), y_ref.data(), dy.data(), dx_ref.data(), n, slope);

  auto buf = x;
  cudagan::cpu::activation_forward<T>(a, buf.data(), buf.data(), n, slope);
  const Tolerance tol = tolerance<T>(a);
  require_close(buf, y_ref, tol.atol, tol.rtol, name + " forward in place");

  auto grad = dy;
  cudagan::cpu::activation_backward<T>(a, x.data(), y_ref.data(), grad.data(), grad.data(), n, slope);
  require_close(grad, dx_ref, tol.atol, tol.rtol, name + " backward in place");
}

TEMPLATE_TEST_CASE("activation sigmoid and tanh saturate without overflow at +-100 and +-1000",
                   "[activation]", float, double) {
  using T = TestType;
  const std::vector<T> x = {T(100), T(-100), T(1000), T(-1000)};
  const std::vector<T> dy(x.size(), T(1));
  std::vector<T> y(x.size()), dx(x.size());

  cudagan::cpu::activation_forward<T>(Activation::sigmoid, x.data(), y.data(), 4, T(0));
  CAPTURE(y[0], y[1], y[2], y[3]);
  CHECK(y[0] == T(1));
  CHECK(y[1] >= T(0));  // e^-100 = 3.7e-44: a float subnormal or 0, never negative or NaN
  CHECK(y[1] < T(1e-40));
  CHECK(y[2] == T(1));
  CHECK(y[3] == T(0));
  cudagan::cpu::activation_backward<T>(Activation::sigmoid, nullptr, y.data(), dy.data(), dx.data(), 4, T(0));
  CAPTURE(dx[0], dx[1], dx[2], dx[3]);
  for (T d : dx) CHECK((std::isfinite(d) && d >= T(0) && d < T(1e-40)));

  cudagan::cpu::activation_forward<T>(Activation::tanh, x.data(), y.data(), 4, T(0));
  CHECK(y == std::vector<T>{T(1), T(-1), T(1), T(-1)});
  cudagan::cpu::activation_backward<T>(Activation::tanh, nullptr, y.data(), dy.data(), dx.data(), 4, T(0));
  CHECK(dx == std::vector<T>(4, T(0)));
}

TEMPLATE_TEST_CASE("activation forward passes NaN through", "[activation]", float, double) {
  // A diverging GAN should show NaN in its outputs and losses, not have a relu quietly turn it into 0.
  using T = TestType;
  const Activation a = GENERATE(from_range(std::begin(kActivations), std::end(kActivations)));
  const std::string name = activation_name(a);
  CAPTURE(name);
  const T x[1] = {std::numeric_limits<T>::quiet_NaN()};
  T y[1] = {T(0)};
  cudagan::cpu::activation_forward<T>(a, x, y, 1, T(0.2));
  CHECK(std::isnan(y[0]));
}

TEST_CASE("activation_backward matches central differences of activation_forward",
          "[activation][gradcheck]") {
  // float64, central differences with h = 1e-6 and the project's gradcheck tolerances (atol 1e-5, rtol 1e-3).
  // Points within 1e-3 of relu's kink at 0 are moved off it: there the two one-sided slopes differ.
  const double h = 1e-6;
  const Activation a = GENERATE(from_range(std::begin(kActivations), std::end(kActivations)));
  const double slope = GENERATE(0.2, 0.01);
  const std::string name = activation_name(a);
  CAPTURE(name, slope);
  const int64_t n = 257;
  auto x = random_vector<double>(n, 5 + uint64_t(a), -4.0, 4.0);
  for (auto& v : x)
    if (std::fabs(v) < 1e-3) v = 0.5;
  const auto dy = random_vector<double>(n, 6 + uint64_t(a));
  std::vector<double> y(static_cast<size_t>(n)), dx(static_cast<size_t>(n)), numeric(static_cast<size_t>(n));
  cudagan::cpu::activation_forward<double>(a, x.data(), y.data(), n, slope);
  cudagan::cpu::activation_backward<double>(a, x.data(), y.data(), dy.data(), dx.data(), n, slope);
  for (int64_t i = 0; i < n; ++i) {
    double xp = x[size_t(i)] + h, xm = x[size_t(i)] - h, yp = 0, ym = 0;
    cudagan::cpu::activation_forward<double>(a, &xp, &yp, 1, slope);
    cudagan::cpu::activation_forward<double>(a, &xm, &ym, 1, slope);
    numeric[size_t(i)] = dy[size_t(i)] * (yp - ym) / (2 * h);
  }
  require_close(dx, numeric, 1e-5, 1e-3, name + " dx vs central differences");
}

TEST_CASE("activation_name names every activation, unknown values throw", "[activation]") {
  CHECK(std::string(activation_name(Activation::relu)) == "relu");
  CHECK(std::string(activation_name(Activation::leaky_relu)) == "leaky_relu");
  CHECK(std::string(activation_name(Activation::tanh)) == "tanh");
  CHECK(std::string(activation_name(Activation::sigmoid)) == "sigmoid");
  const auto bad = static_cast<Activation>(42);
  CHECK(std::string(activation_name(bad)) == "unknown");
  float x = 1, y = 0, dx = 0;
  CHECK_THROWS_AS(cudagan::cpu::activation_forward<float>(bad, &x, &y, 1, 0.2f), cudagan::InvalidArgument);
  CHECK_THROWS_AS(cudagan::cpu::activation_backward<float>(bad, &x, &y, &x, &dx, 1, 0.2f),
                  cudagan::InvalidArgument);
}
