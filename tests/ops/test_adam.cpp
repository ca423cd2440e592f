// Adam kernel: the CPU backend against the reference over several steps (float and double, sizes that
// leave vector tails, early and late steps, default / DCGAN / weight-decay hyper-parameters), a 10-step
// trajectory against the textbook update written out here with bias-corrected moments, the first
// step's known size, and the rejection of step 0.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "adam.h"
#include "reference/adam.h"
#include "support/compare.h"

namespace {

using cudagan::AdamHyper;
using cudagan::test::random_vector;
using cudagan::test::require_close;
namespace cpu = cudagan::cpu;
namespace ref = cudagan::reference;

// Float: the CPU kernel updates in float, the reference in double; per step each of p (|p| <= 2), m and
// v picks up a few float roundings (6e-8 relative), over 10 steps well under 1e-5. Double: the same at
// 1.1e-16, so 1e-12: there a wrong bias correction or a misplaced eps, which moves p by a fraction of lr
// (>= 1e-6 here), stands out by orders of magnitude. v can be far below 1e-5 (1e-11 when grad and
// weight_decay * p nearly cancel), so it gets an absolute part of only tol^2: its error is
// 2 |g| err(g) (1 - beta2) with err(g) a few ulps of O(1) terms, which that covers.
template <class T>
constexpr double kTol = std::is_same_v<T, float> ? 1e-5 : 1e-12;

struct Hyper {
  const char* name;
  AdamHyper h;
};

AdamHyper make_hyper(double lr, double beta1, double beta2, double eps, double weight_decay) {
  AdamHyper h;
  h.lr = lr;
  h.beta1 = beta1;
  h.beta2 = beta2;
  h.eps = eps;
  h.weight_decay = weight_decay;
  return h;
}

const Hyper kHypers[] = {
    {"PyTorch defaults", make_hyper(1e-3, 0.9, 0.999, 1e-8, 0.0)},
    {"DCGAN: lr 2e-4, betas (0.5, 0.999)", make_hyper(2e-4, 0.5, 0.999, 1e-8, 0.0)},
    {"lr 1e-3, betas (0.8, 0.99), eps 1e-6, weight decay 0.05", make_hyper(1e-3, 0.8, 0.99, 1e-6, 0.05)},
};

}  // namespace

TEMPLATE_TEST_CASE("adam: cpu matches reference over several steps", "[adam][reference]", float, double) {
  using T = TestType;
  const double tol = kTol<T>;
  uint64_t seed = 100;
  for (const Hyper& hyper : kHypers) {
    // Vector tails, and 40001 past the size at which the CPU kernel goes multi-threaded.
    for (int64_t n : {int64_t(1), int64_t(7), int64_t(1031), int64_t(40001)}) {
      // Step 1 is where the bias corrections matter most; at step 1000 beta1's has vanished (0.9^1000 is
      // 2e-46) but beta2's has not (1 - 0.999^1000 = 0.63).
      for (int64_t first_step : {int64_t(1), int64_t(1000)}) {
        const std::string what = std::string(hyper.name) + ", n=" + std::to_string(n) + ", first step " +
                                 std::to_string(first_step);
        INFO(what);
        const auto p0 = random_vector<T>(n, seed += 10, -1, 1);
        // A late first step starts from moments a run would have by then.
        const auto m0 =
            first_step == 1 ? std::vector<T>(size_t(n), T(0)) : random_vector<T>(n, seed + 1, -0.1, 0.1);
        const auto v0 =
            first_step == 1 ? std::vector<T>(size_t(n), T(0)) : random_vector<T>(n, seed + 2, 0, 0.01);
        auto p_cpu = p0, m_cpu = m0, v_cpu = v0, p_ref = p0, m_ref = m0, v_ref = v0;
        AdamHyper h = hyper.h;
        for (int k = 0; k < 5; ++k) {
          h.step = first_step + k;
          CAPTURE(h.step);
          // Gradients of very different sizes, as parameters of different layers get.
          const double scale = k % 2 ? 1e-3 : 1.0;
          const auto grad = random_vector<T>(n, seed + 3 + uint64_t(k), -scale, scale);
          cpu::adam_step(h, p_cpu.data(), grad.data(), m_cpu.data(), v_cpu.data(), n);
          ref::adam_step(h, p_ref.data(), grad.data(), m_ref.data(), v_ref.data(), n);
          require_close(p_cpu, p_ref, tol, tol, "param, " + what);
          require_close(m_cpu, m_ref, tol, tol, "m, " + what);
          require_close(v_cpu, v_ref, tol * tol, tol, "v, " + what);
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("adam: a 10-step trajectory follows the update written out", "[adam]", float, double) {
  using T = TestType;
  const double tol = kTol<T>;
  // Minimize sum (p - target)^2, so each gradient depends on the previous updates. Index 3 sits at its
  // target 0 and has zero gradient throughout: it must stay exactly 0 (0 / (0 + eps)) unless weight
  // decay pulls it; index 2 sits at its target but weight decay still moves it.
  const std::vector<double> p0 = {0.5, -1.5, 2.0, 0.0, 1e-3};
  const std::vector<double> target = {-0.5, 1.0, 2.0, 0.0, 0.25};
  for (const Hyper& hyper : kHypers) {
    INFO(hyper.name);
    const double lr = hyper.h.lr, beta1 = hyper.h.beta1, beta2 = hyper.h.beta2, eps = hyper.h.eps,
                 weight_decay = hyper.h.weight_decay;
    std::vector<T> p(p0.begin(), p0.end()), m(p0.size(), T(0)), v(p0.size(), T(0)), grad(p0.size());
    std::vector<double> p_expected = p0, m_expected(p0.size(), 0.0), v_expected(p0.size(), 0.0);
    double beta1_t = 1, beta2_t = 1;  // beta^t, built up by multiplication rather than pow
    AdamHyper h = hyper.h;
    for (int64_t t = 1; t <= 10; ++t) {
      CAPTURE(t);
      for (size_t i = 0; i < p.size(); ++i) grad[i] = T(2) * (p[i] - T(target[i]));
      h.step = t;
      cpu::adam_step(h, p.data(), grad.data(), m.data(), v.data(), int64_t(p.size()));

      // Kingma & Ba with bias-corrected moments; PyTorch's form is the same with the corrections moved
      // onto lr and sqrt(v): lr m_hat / (sqrt(v_hat) + eps) = lr / (1 - beta1^t) m / (sqrt(v) /
      // sqrt(1 - beta2^t) + eps).
      beta1_t *= beta1;
      beta2_t *= beta2;
      for (size_t i = 0; i < p.size(); ++i) {
        const double g = 2 * (p_expected[i] - target[i]) + weight_decay * p_expected[i];
        m_expected[i] = beta1 * m_expected[i] + (1 - beta1) * g;
        v_expected[i] = beta2 * v_expected[i] + (1 - beta2) * g * g;
        const double m_hat = m_expected[i] / (1 - beta1_t);
        const double v_hat = v_expected[i] / (1 - beta2_t);
        p_expected[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
      }
      require_close(p, p_expected, tol, tol, "param");
      require_close(m, m_expected, tol, tol, "m");
      require_close(v, v_expected, tol, tol, "v");
    }
    if (weight_decay == 0) CHECK(p[3] == T(0));
  }
}

TEST_CASE("adam: the first step moves each parameter by about lr against its gradient", "[adam]") {
  // At t = 1, m_hat = g and v_hat = g^2, so the step is lr g / (|g| + eps): lr times the sign of g
  // whatever the gradient's size, which is why Adam's lr is a step length.
  AdamHyper h;
  h.lr = 2e-4;
  h.beta1 = 0.5;
  h.step = 1;
  std::vector<double> p = {1.0, 1.0, 1.0, 1.0}, m(4, 0.0), v(4, 0.0);
  const std::vector<double> grad = {0.3, -2.0, 1e-3, -1e-6};
  cpu::adam_step(h, p.data(), grad.data(), m.data(), v.data(), 4);
  std::vector<double> expected(4);
  for (size_t i = 0; i < 4; ++i) expected[i] = 1.0 - h.lr * grad[i] / (std::fabs(grad[i]) + h.eps);
  require_close(p, expected, 1e-15, 0.0, "param after step 1");
  CHECK(std::fabs(p[1] - (1.0 + h.lr)) < 1e-11);  // |g| >> eps: one lr, to within lr eps / |g| = 1e-12
}

TEST_CASE("adam: step 0 is rejected rather than dividing by a zero bias correction", "[adam]") {
  AdamHyper h;
  h.step = 0;
  std::vector<float> p(3, 1.0f), g(3, 0.5f), m(3, 0.0f), v(3, 0.0f);
  REQUIRE_THROWS_AS(cpu::adam_step(h, p.data(), g.data(), m.data(), v.data(), 3), cudagan::InvalidArgument);
  CHECK(p == std::vector<float>(3, 1.0f));  // and nothing was written
}
