// cpu::cross_entropy_with_logits_forward / backward against reference:: (the textbook softmax, then its log,
// in long double), float and double, N in {1, 7, 33} and past the OpenMP threshold, K in {1, 3, 10, 129},
// one-hot rows, soft rows (probabilities) and unnormalized rows (weights in [0, 1] that do not sum to 1, which
// the op must not assume); saturated logits (+-100, +-1000) give finite losses with the right limits; the
// gradient against the reference and against central differences of the loss; the op's argument checks.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "cross_entropy.h"
#include "cudagan/cudagan.h"
#include "reference/cross_entropy.h"
#include "support/compare.h"

namespace {

using cudagan::test::random_vector;
using cudagan::test::require_close;

enum class Targets { one_hot, soft, unnormalized };

const char* targets_name(Targets kind) {
  switch (kind) {
    case Targets::one_hot:
      return "one-hot rows";
    case Targets::soft:
      return "soft rows summing to 1";
    case Targets::unnormalized:
      return "unnormalized rows in [0, 1]";
  }
  return "?";
}

// Logits in [-8, 8] with saturated ones (+-30, +-100) spread through the larger sizes (the reference takes
// e^z without a shift, which long double holds for these).
template <class T>
std::vector<T> ce_logits(int64_t n, int64_t k, uint64_t seed) {
  auto z = random_vector<T>(n * k, seed, -8.0, 8.0);
  const T special[] = {T(0), T(30), T(-30), T(100), T(-100), T(100), T(-100)};
  const int64_t count = int64_t(sizeof(special) / sizeof(special[0]));
  if (n * k >= 2 * count)
    for (int64_t j = 0; j < count; ++j) z[size_t(j * (n * k / count) + 1)] = special[j];
  return z;
}

template <class T>
std::vector<T> ce_targets(Targets kind, int64_t n, int64_t k, uint64_t seed) {
  auto t = random_vector<T>(n * k, seed, 0.0, 1.0);
  if (kind == Targets::unnormalized) return t;
  for (int64_t r = 0; r < n; ++r) {
    T* row = t.data() + r * k;
    if (kind == Targets::one_hot) {
      const int64_t hot = int64_t(double(row[0]) * double(k)) % k;  // a class drawn from the row's first value
      std::fill(row, row + k, T(0));
      row[hot] = T(1);
    } else {
      double total = 0;
      for (int64_t j = 0; j < k; ++j) total += double(row[j]);
      for (int64_t j = 0; j < k; ++j) row[j] = T(double(row[j]) / total);
    }
  }
  return t;
}

// The largest row sum of the targets: the backward's magnitude scales with it.
template <class T>
double max_row_sum(const std::vector<T>& t, int64_t n, int64_t k) {
  double worst = 0;
  for (int64_t r = 0; r < n; ++r) {
    double s = 0;
    for (int64_t j = 0; j < k; ++j) s += double(t[size_t(r * k + j)]);
    worst = std::max(worst, s);
  }
  return worst;
}

uint64_t seed_of(Targets kind, int64_t n, int64_t k) {
  return uint64_t(n) * 7919 + uint64_t(k) * 104729 + uint64_t(kind) * 3;
}

struct Size {
  int64_t n, k;
};

// N x K for every N in {1, 7, 33} and K in {1, 3, 10, 129}, and 300 x 129 (38700 elements: past the OpenMP
// threshold, and more than one block of the forward's reduction).
std::vector<Size> sizes() {
  std::vector<Size> all;
  for (int64_t n : {1, 7, 33})
    for (int64_t k : {1, 3, 10, 129}) all.push_back({n, k});
  all.push_back({300, 129});
  return all;
}

}  // namespace

TEMPLATE_TEST_CASE("cross_entropy_with_logits_forward matches the reference", "[cross_entropy][reference]", float,
                   double) {
  using T = TestType;
  const Targets kind = GENERATE(Targets::one_hot, Targets::soft, Targets::unnormalized);
  const std::string what = targets_name(kind);
  for (const Size& size : sizes()) {
    const int64_t n = size.n, k = size.k;
    CAPTURE(what, n, k);
    const auto z = ce_logits<T>(n, k, seed_of(kind, n, k));
    const auto t = ce_targets<T>(kind, n, k, seed_of(kind, n, k) + 1);
    T loss_cpu = T(-1), loss_ref = T(-2);
    cudagan::cpu::cross_entropy_with_logits_forward<T>(z.data(), t.data(), n, k, &loss_cpu);
    cudagan::reference::cross_entropy_with_logits_forward<T>(z.data(), t.data(), n, k, &loss_ref);
    REQUIRE(std::isfinite(loss_cpu));
    // Every term is >= 0, so the sums do not cancel. In float both sides compute far more precisely than float
    // and round once: they may differ by the last rounding only, 2 eps. In double the backend's relative error
    // is bounded by about (K + rows per block + blocks) eps, a few hundred eps here: rtol 1e-12 covers it. The
    // atol is the oracle's own limit: its log(p) for p ~ 1 is exact only to a long double eps (~1e-19), so a
    // confident row's loss of e^-90 reads 0 there while the backend (log1p) keeps it.
    const double rtol = std::is_same_v<T, float> ? 2 * double(std::numeric_limits<float>::epsilon()) : 1e-12;
    require_close(&loss_cpu, &loss_ref, 1, 1e-17, rtol, "cross-entropy loss");
  }
}

TEMPLATE_TEST_CASE("cross_entropy_with_logits_backward matches the reference", "[cross_entropy][reference]",
                   float, double) {
  using T = TestType;
  const Targets kind = GENERATE(Targets::one_hot, Targets::soft, Targets::unnormalized);
  const double grad_loss = GENERATE(1.0, -0.5);
  const std::string what = targets_name(kind);
  for (const Size& size : sizes()) {
    const int64_t n = size.n, k = size.k;
    CAPTURE(what, n, k, grad_loss);
    const auto z = ce_logits<T>(n, k, seed_of(kind, n, k));
    const auto t = ce_targets<T>(kind, n, k, seed_of(kind, n, k) + 1);
    std::vector<T> dz_cpu(size_t(n * k), T(-7)), dz_ref(size_t(n * k), T(-7));
    cudagan::cpu::cross_entropy_with_logits_backward<T>(z.data(), t.data(), n, k, T(grad_loss), dz_cpu.data());
    cudagan::reference::cross_entropy_with_logits_backward<T>(z.data(), t.data(), n, k, T(grad_loss),
                                                              dz_ref.data());
    // dz = g (p sum t - t), g = grad_loss / n, evaluated in double and rounded to T once. p sum t - t may
    // cancel (so no relative bound holds): the error is a few double eps of |g| max(1, sum t) absolutely
    // (atol 16 of them leaves a margin), plus in float the final rounding (rtol eps), in double a few eps
    // more from s and exp (rtol 16 eps).
    const double eps_d = std::numeric_limits<double>::epsilon();
    const double g = std::fabs(grad_loss) / double(n);
    const double atol = 16 * eps_d * g * std::max(1.0, max_row_sum(t, n, k));
    const double rtol = std::is_same_v<T, float> ? double(std::numeric_limits<float>::epsilon()) : 16 * eps_d;
    require_close(dz_cpu, dz_ref, atol, rtol, "cross-entropy dlogits");
  }
}

TEMPLATE_TEST_CASE("cross_entropy_with_logits stays finite and takes the right limits at logits +-100 and +-1000",
                   "[cross_entropy]", float, double) {
  using T = TestType;
  struct Case {
    std::vector<double> z, t;
    double loss;
    std::vector<double> dz;  // for grad_loss 1 and n 1: softmax(z) sum t - t
  };
  // softmax([L, -L, 0]) is (1, 0, 0) to far below float precision for L = 100 and 1000, and
  // -log softmax = (0, 2L, L): e^1000 overflows in any precision, and without the shift by the max even
  // e^100 does in float.
  const Case cases[] = {
      {{100, -100, 0}, {1, 0, 0}, 0, {0, 0, 0}},
      {{100, -100, 0}, {0, 1, 0}, 200, {1, -1, 0}},
      {{1000, -1000, 0}, {0, 0, 1}, 1000, {1, 0, -1}},
      {{-1000, 1000, 0}, {0.5, 0.5, 0}, 1000, {-0.5, 0.5, 0}},
      {{1000, -1000, 0}, {0.5, 0.25, 0}, 500, {0.25, -0.25, 0}},  // unnormalized: sum t = 0.75
      {{100, 100, 100}, {0, 1, 0}, std::log(3.0), {1.0 / 3, -2.0 / 3, 1.0 / 3}},
      {{-100, -100}, {0.5, 0.5}, std::log(2.0), {0, 0}},
      {{1000}, {1}, 0, {0}},  // one class: log softmax is 0
  };
  for (const Case& c : cases) {
    const int64_t k = int64_t(c.z.size());
    CAPTURE(c.z, c.t);
    std::vector<T> z(c.z.begin(), c.z.end()), t(c.t.begin(), c.t.end()), dz(size_t(k), T(-7));
    T loss = T(-1);
    cudagan::cpu::cross_entropy_with_logits_forward<T>(z.data(), t.data(), 1, k, &loss);
    cudagan::cpu::cross_entropy_with_logits_backward<T>(z.data(), t.data(), 1, k, T(1), dz.data());
    CAPTURE(loss, dz);
    CHECK(std::isfinite(loss));
    CHECK(loss >= T(0));
    CHECK(std::fabs(double(loss) - c.loss) <= 1e-6 * std::fmax(1.0, c.loss));
    for (int64_t j = 0; j < k; ++j) {
      CHECK(std::isfinite(dz[size_t(j)]));
      CHECK(std::fabs(double(dz[size_t(j)]) - c.dz[size_t(j)]) <= 1e-6);
    }
  }
  // The mean over a batch of the first two rows: (0 + 200) / 2.
  const std::vector<T> z = {T(100), T(-100), T(0), T(100), T(-100), T(0)};
  const std::vector<T> t = {T(1), T(0), T(0), T(0), T(1), T(0)};
  T loss = T(-1);
  cudagan::cpu::cross_entropy_with_logits_forward<T>(z.data(), t.data(), 2, 3, &loss);
  CHECK(std::fabs(double(loss) - 100.0) <= 1e-5);
}

TEST_CASE("cross_entropy_with_logits_backward matches central differences of the forward loss",
          "[cross_entropy][gradcheck]") {
  // float64, central differences with h = 1e-6 and the project's gradcheck tolerances (atol 1e-5, rtol 1e-3).
  // The loss is a mean, so each derivative is O(1/n): n stays small to keep them well above atol.
  const double h = 1e-6, grad_loss = 1.5;
  const Targets kind = GENERATE(Targets::one_hot, Targets::soft, Targets::unnormalized);
  const std::string what = targets_name(kind);
  CAPTURE(what);
  const int64_t n = 3, k = 5;
  auto z = random_vector<double>(n * k, 21 + uint64_t(kind), -4.0, 4.0);
  const auto t = ce_targets<double>(kind, n, k, 22 + uint64_t(kind));
  std::vector<double> dz(size_t(n * k)), numeric(size_t(n * k));
  cudagan::cpu::cross_entropy_with_logits_backward<double>(z.data(), t.data(), n, k, grad_loss, dz.data());
  for (int64_t i = 0; i < n * k; ++i) {
    const double saved = z[size_t(i)];
    double lp = 0, lm = 0;
    z[size_t(i)] = saved + h;
    cudagan::cpu::cross_entropy_with_logits_forward<double>(z.data(), t.data(), n, k, &lp);
    z[size_t(i)] = saved - h;
    cudagan::cpu::cross_entropy_with_logits_forward<double>(z.data(), t.data(), n, k, &lm);
    z[size_t(i)] = saved;
    numeric[size_t(i)] = grad_loss * (lp - lm) / (2 * h);
  }
  require_close(dz, numeric, 1e-5, 1e-3, "cross-entropy dlogits vs central differences");
}

TEST_CASE("cross_entropy_with_logits_forward of zero rows or classes is NaN, like a mean over nothing",
          "[cross_entropy]") {
  const float z = 0, t = 0;
  float loss = 0;
  cudagan::cpu::cross_entropy_with_logits_forward<float>(&z, &t, 0, 3, &loss);
  CHECK(std::isnan(loss));
  loss = 0;
  cudagan::cpu::cross_entropy_with_logits_forward<float>(&z, &t, 2, 0, &loss);
  CHECK(std::isnan(loss));
}

TEST_CASE("cross_entropy_with_logits the op: the kernels' loss and gradient, and its argument checks",
          "[cross_entropy]") {
  using namespace cudagan;
  using Catch::Matchers::Contains;
  const int64_t n = 4, k = 3;
  const auto z = random_vector<float>(n * k, 31, -3.0, 3.0);
  const auto t = ce_targets<float>(Targets::soft, n, k, 32);
  Tensor logits = Tensor::from_vector(z, {n, k});
  logits.requires_grad_(true);
  const Tensor targets = Tensor::from_vector(t, {n, k});
  Tensor loss = cross_entropy_with_logits(logits, targets);
  REQUIRE(loss.shape() == Shape{});
  float expected = 0;
  cpu::cross_entropy_with_logits_forward<float>(z.data(), t.data(), n, k, &expected);
  CHECK(loss.item() == double(expected));
  scale(loss, 2.0).backward();
  std::vector<float> dz(size_t(n * k));
  cpu::cross_entropy_with_logits_backward<float>(z.data(), t.data(), n, k, 2.0f, dz.data());
  require_close(logits.grad().to_vector(), dz, 0.0, 1e-6, "op dlogits");

  REQUIRE_THROWS_WITH(cross_entropy_with_logits(Tensor::zeros({12}), Tensor::zeros({12})),
                      Contains("cross_entropy_with_logits: logits must have 2 dimensions, got shape [12]"));
  REQUIRE_THROWS_WITH(cross_entropy_with_logits(Tensor::zeros({4, 3}), Tensor::zeros({3, 4})),
                      Contains("cross_entropy_with_logits: logits [4, 3] and targets [3, 4] differ in shape"));
  REQUIRE_THROWS_WITH(cross_entropy_with_logits(Tensor::zeros({0, 3}), Tensor::zeros({0, 3})),
                      Contains("cross_entropy_with_logits: empty input"));
  Tensor wants_grad = Tensor::zeros({4, 3});
  wants_grad.requires_grad_(true);
  REQUIRE_THROWS_WITH(cross_entropy_with_logits(Tensor::zeros({4, 3}), wants_grad),
                      Contains("targets get no gradient; pass targets.detach()"));
  REQUIRE_THROWS_AS(cross_entropy_with_logits(Tensor::zeros({4, 3}), Tensor::zeros({4, 3}, DType::float64)),
                    Error);
}
