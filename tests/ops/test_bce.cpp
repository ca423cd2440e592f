// cpu::bce_with_logits_forward / backward against reference:: (the textbook -(t log s + (1 - t) log(1 - s))),
// float and double, sizes from 1 to past the OpenMP threshold, soft targets, hard 0/1 labels and smoothed
// labels; saturated logits (+-100, +-1000) give finite losses with the right limits; the gradient against
// the reference and against central differences of the loss.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "bce.h"
#include "reference/bce.h"
#include "support/compare.h"

namespace {

using cudagan::test::random_vector;
using cudagan::test::require_close;

enum class Targets { soft, hard, smoothed };

const char* targets_name(Targets k) {
  switch (k) {
    case Targets::soft:
      return "soft targets in [0, 1]";
    case Targets::hard:
      return "hard 0/1 labels";
    case Targets::smoothed:
      return "smoothed labels 0.9 / 0";
  }
  return "?";
}

// Logits in [-8, 8] with saturated ones (+-30, +-100, +-1000) spread through the larger sizes; targets of
// the requested kind.
template <class T>
std::vector<T> bce_logits(int64_t n, uint64_t seed) {
  auto z = random_vector<T>(n, seed, -8.0, 8.0);
  const T special[] = {T(0), T(30), T(-30), T(100), T(-100), T(1000), T(-1000)};
  const int64_t count = int64_t(sizeof(special) / sizeof(special[0]));
  if (n >= 2 * count)
    for (int64_t j = 0; j < count; ++j) z[size_t(j * (n / count) + 1)] = special[j];
  return z;
}

template <class T>
std::vector<T> bce_targets(Targets kind, int64_t n, uint64_t seed) {
  auto t = random_vector<T>(n, seed, 0.0, 1.0);
  if (kind == Targets::hard)
    for (auto& v : t) v = v < T(0.5) ? T(0) : T(1);
  if (kind == Targets::smoothed)  // one-sided label smoothing, as in GAN discriminators
    for (auto& v : t) v = v < T(0.5) ? T(0) : T(0.9);
  return t;
}

uint64_t seed_of(Targets kind, int64_t n) { return uint64_t(n) * 7919 + uint64_t(kind) * 3; }

}  // namespace

TEMPLATE_TEST_CASE("bce_with_logits_forward matches the reference", "[bce][reference]", float, double) {
  using T = TestType;
  const Targets kind = GENERATE(Targets::soft, Targets::hard, Targets::smoothed);
  const int64_t n = GENERATE(int64_t(1), int64_t(7), int64_t(1000), int64_t(100003));
  const std::string what = targets_name(kind);
  CAPTURE(what, n);
  const auto z = bce_logits<T>(n, seed_of(kind, n));
  const auto t = bce_targets<T>(kind, n, seed_of(kind, n) + 1);
  T loss_cpu = T(-1), loss_ref = T(-2);
  cudagan::cpu::bce_with_logits_forward<T>(z.data(), t.data(), n, &loss_cpu);
  cudagan::reference::bce_with_logits_forward<T>(z.data(), t.data(), n, &loss_ref);
  // Every term is >= 0, so the sums do not cancel. In float both sides compute far more precisely than
  // float and round once, so they may differ by the last rounding only: 2 eps. In double the backend sums
  // n terms in double in blocks of at most 4096, whose rounding is bounded by about 4400 eps relative (the
  // oracle uses long double): rtol 1e-12 covers that bound; measured differences are a few eps.
  const double rtol = std::is_same_v<T, float> ? 2 * double(std::numeric_limits<float>::epsilon()) : 1e-12;
  require_close(&loss_cpu, &loss_ref, 1, 0.0, rtol, "bce loss");
}

TEMPLATE_TEST_CASE("bce_with_logits_backward matches the reference", "[bce][reference]", float, double) {
  using T = TestType;
  const Targets kind = GENERATE(Targets::soft, Targets::hard, Targets::smoothed);
  const int64_t n = GENERATE(int64_t(1), int64_t(7), int64_t(1000), int64_t(100003));
  const double grad_loss = GENERATE(1.0, 2.5, -0.5);
  const std::string what = targets_name(kind);
  CAPTURE(what, n, grad_loss);
  const auto z = bce_logits<T>(n, seed_of(kind, n));
  const auto t = bce_targets<T>(kind, n, seed_of(kind, n) + 1);
  std::vector<T> dz_cpu(size_t(n), T(-7)), dz_ref(size_t(n), T(-7));
  cudagan::cpu::bce_with_logits_backward<T>(z.data(), t.data(), n, T(grad_loss), dz_cpu.data());
  cudagan::reference::bce_with_logits_backward<T>(z.data(), t.data(), n, T(grad_loss), dz_ref.data());
  // dz = g (sigmoid(z) - t) with g = grad_loss / n, computed in T: sigmoid to a few ulp (an absolute error
  // of a few eps, as sigmoid <= 1), one rounding in the subtraction, which may cancel (so no relative bound
  // holds), and one in the product. The error is a few eps of |g| absolutely: atol 8 eps |g| leaves a
  // margin (measured worst: 2 eps |g|); rtol 8 eps only widens it for large outputs.
  const double eps = std::numeric_limits<T>::epsilon();
  const double g = std::fabs(grad_loss) / double(n);
  require_close(dz_cpu, dz_ref, 8 * eps * g, 8 * eps, "bce dlogits");
}

TEMPLATE_TEST_CASE("bce_with_logits stays finite and takes the right limits at logits +-100 and +-1000",
                   "[bce]", float, double) {
  using T = TestType;
  struct Case {
    double z, t, loss, dz;  // dz for grad_loss 1 and n 1: sigmoid(z) - t
  };
  // For t = 1 the loss is log(1 + e^-z): ~0 for z = 100, z itself (100) for z = -100; mirrored for t = 0.
  // A naive log(sigmoid(z)) gives log(0) = -inf at z = -100 in float, and e^1000 overflows in any precision.
  const Case cases[] = {{100, 1, 0, 0},  {-100, 1, 100, -1},          {100, 0, 100, 1},
                        {-100, 0, 0, 0}, {1000, 0, 1000, 1},          {-1000, 1, 1000, -1},
                        {1000, 1, 0, 0}, {0, 1, std::log(2.0), -0.5}, {0, 0.5, std::log(2.0), 0}};
  for (const Case& c : cases) {
    CAPTURE(c.z, c.t);
    const T z = T(c.z), t = T(c.t);
    T loss = T(-1), dz = T(-7);
    cudagan::cpu::bce_with_logits_forward<T>(&z, &t, 1, &loss);
    cudagan::cpu::bce_with_logits_backward<T>(&z, &t, 1, T(1), &dz);
    CAPTURE(loss, dz);
    CHECK(std::isfinite(loss));
    CHECK(loss >= T(0));
    // The limits are exact up to e^-100 (far below float precision) and one rounding of log(2).
    CHECK(std::fabs(double(loss) - c.loss) <= 1e-6 * std::fmax(1.0, c.loss));
    CHECK(std::isfinite(dz));
    CHECK(std::fabs(double(dz) - c.dz) <= 1e-6);
  }
  // The mean over a batch mixing both saturated extremes: (0 + 100 + 100 + 0) / 4.
  const std::vector<T> z = {T(100), T(-100), T(100), T(-100)}, t = {T(1), T(1), T(0), T(0)};
  T loss = T(-1);
  cudagan::cpu::bce_with_logits_forward<T>(z.data(), t.data(), 4, &loss);
  CHECK(std::fabs(double(loss) - 50.0) <= 1e-5);
}

TEST_CASE("bce_with_logits_backward matches central differences of the forward loss", "[bce][gradcheck]") {
  // float64, central differences with h = 1e-6 and the project's gradcheck tolerances (atol 1e-5, rtol 1e-3).
  // The loss is a mean, so each derivative is O(1/n): n stays small to keep them well above atol.
  const double h = 1e-6, grad_loss = 1.5;
  const Targets kind = GENERATE(Targets::soft, Targets::hard);
  const std::string what = targets_name(kind);
  CAPTURE(what);
  const int64_t n = 5;
  auto z = random_vector<double>(n, 11 + uint64_t(kind), -4.0, 4.0);
  const auto t = bce_targets<double>(kind, n, 12 + uint64_t(kind));
  std::vector<double> dz(static_cast<size_t>(n)), numeric(static_cast<size_t>(n));
  cudagan::cpu::bce_with_logits_backward<double>(z.data(), t.data(), n, grad_loss, dz.data());
  for (int64_t i = 0; i < n; ++i) {
    const double saved = z[size_t(i)];
    double lp = 0, lm = 0;
    z[size_t(i)] = saved + h;
    cudagan::cpu::bce_with_logits_forward<double>(z.data(), t.data(), n, &lp);
    z[size_t(i)] = saved - h;
    cudagan::cpu::bce_with_logits_forward<double>(z.data(), t.data(), n, &lm);
    z[size_t(i)] = saved;
    numeric[size_t(i)] = grad_loss * (lp - lm) / (2 * h);
  }
  require_close(dz, numeric, 1e-5, 1e-3, "bce dlogits vs central differences");
}

TEST_CASE("bce_with_logits_forward of zero elements is NaN, like a mean over nothing", "[bce]") {
  const float z = 0, t = 0;
  float loss = 0;
  cudagan::cpu::bce_with_logits_forward<float>(&z, &t, 0, &loss);
  CHECK(std::isnan(loss));
}
