// Batch-normalization kernels: the CPU backend against the reference (float and double, training and
// evaluation, with and without affine, batch 1 and 5, odd spatial sizes, many channels), the running
// statistics and evaluation mode against the formulas written out here, and the reference's own
// backward against finite differences, so that the oracle is checked too. The synchronised (cross-replica)
// passes at the end: against the reference, and, run on slices of a batch with their sums added as an
// all-reduce would, against the training passes on the whole batch.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "activation.h"
#include "batchnorm.h"
#include "reference/batchnorm.h"
#include "support/compare.h"

namespace {

using cudagan::BatchNormGeometry;
using cudagan::test::random_vector;
using cudagan::test::require_close;
using cudagan::test::require_equal;
namespace cpu = cudagan::cpu;
namespace ref = cudagan::reference;

// Float: the CPU kernel does its per-element arithmetic in float (a few roundings of 6e-8 on O(1)
// values; |xhat| stays below ~4 here) while the reference works in long double, so 1e-5 relative, and
// absolute for values that cancel to near 0, is ~100x the observed error. Double: the same few roundings
// at 1.1e-16, plus sums of up to 1280 terms in another order; 1e-12 keeps a similar margin, and a wrong
// formula is off by 1e-3 or more.
template <class T>
constexpr double kTol = std::is_same_v<T, float> ? 1e-5 : 1e-12;

// PyTorch's defaults, which DCGAN uses.
constexpr double kEps = 1e-5, kMomentum = 0.1;

struct Shape {
  int n, c, h, w;
};

// Batch 1 and 5; 1x1 (batch norm after a linear layer), including one value per channel; odd spatial
// sizes; many channels; more than 1024 values per channel; and one tensor of 64k elements, past the
// size at which the CPU kernels go multi-threaded.
const Shape kShapes[] = {{1, 3, 1, 1},  {5, 4, 1, 1},   {1, 8, 3, 5},   {5, 7, 7, 7},
                         {2, 64, 4, 4}, {3, 130, 3, 5}, {5, 3, 16, 16}, {4, 16, 32, 32}};

std::string describe(const Shape& s, bool affine) {
  return "N=" + std::to_string(s.n) + " C=" + std::to_string(s.c) + " H=" + std::to_string(s.h) +
         " W=" + std::to_string(s.w) + (affine ? " affine" : " no affine");
}

BatchNormGeometry geometry(const Shape& s) {
  BatchNormGeometry g;
  g.batch = s.n;
  g.channels = s.c;
  g.spatial = int64_t(s.h) * s.w;
  return g;
}

// Outputs start as NaN, so an element a kernel forgets to write fails the comparison.
template <class T>
std::vector<T> nans(int64_t n) {
  return std::vector<T>(size_t(n), std::numeric_limits<T>::quiet_NaN());
}

template <class T>
struct Inputs {
  std::vector<T> x, dy, gamma, beta, running_mean, running_var;
};

// Every channel gets its own offset and spread, as real activations do, so a kernel that mixes up
// channels cannot hide behind identical statistics.
template <class T>
Inputs<T> make_inputs(const BatchNormGeometry& g, uint64_t seed, double offset_scale = 2) {
  Inputs<T> in;
  const auto u = random_vector<double>(g.elems(), seed, -1, 1);
  const auto offset = random_vector<double>(g.channels, seed + 1, -offset_scale, offset_scale);
  const auto spread = random_vector<double>(g.channels, seed + 2, 0.25, 3);
  in.x.resize(size_t(g.elems()));
  for (int b = 0; b < g.batch; ++b)
    for (int c = 0; c < g.channels; ++c)
      for (int64_t s = 0; s < g.spatial; ++s) {
        const size_t i = size_t((int64_t(b) * g.channels + c) * g.spatial + s);
        in.x[i] = T(offset[size_t(c)] + spread[size_t(c)] * u[i]);
      }
  in.dy = random_vector<T>(g.elems(), seed + 3, -1, 1);
  in.gamma = random_vector<T>(g.channels, seed + 4, -1.5, 1.5);
  in.beta = random_vector<T>(g.channels, seed + 5, -0.5, 0.5);
  in.running_mean = random_vector<T>(g.channels, seed + 6, -1, 1);
  in.running_var = random_vector<T>(g.channels, seed + 7, 0.2, 2);
  return in;
}

}  // namespace

TEMPLATE_TEST_CASE("batchnorm training: cpu matches reference in forward and backward",
                   "[batchnorm][reference]", float, double) {
  using T = TestType;
  const double tol = kTol<T>;
  const T eps = T(kEps), momentum = T(kMomentum);
  uint64_t seed = 1000;
  for (const Shape& shape : kShapes) {
    for (bool affine : {true, false}) {
      const std::string what = describe(shape, affine);
      INFO(what);
      const BatchNormGeometry g = geometry(shape);
      const int64_t c = g.channels;
      const Inputs<T> in = make_inputs<T>(g, seed += 10);
      const T* gamma = affine ? in.gamma.data() : nullptr;
      const T* beta = affine ? in.beta.data() : nullptr;

      auto y_cpu = nans<T>(g.elems()), mean_cpu = nans<T>(c), invstd_cpu = nans<T>(c);
      auto y_ref = nans<T>(g.elems()), mean_ref = nans<T>(c), invstd_ref = nans<T>(c);
      auto rm_cpu = in.running_mean, rv_cpu = in.running_var, rm_ref = in.running_mean,
           rv_ref = in.running_var;
      cpu::batch_norm_forward_train<T>(g, in.x.data(), gamma, beta, eps, momentum, y_cpu.data(),
                                       mean_cpu.data(), invstd_cpu.data(), rm_cpu.data(), rv_cpu.data());
      ref::batch_norm_forward_train<T>(g, in.x.data(), gamma, beta, eps, momentum, y_ref.data(),
                                       mean_ref.data(), invstd_ref.data(), rm_ref.data(), rv_ref.data());
      require_close(y_cpu, y_ref, tol, tol, "y, " + what);
      require_close(mean_cpu, mean_ref, tol, tol, "saved mean, " + what);
      require_close(invstd_cpu, invstd_ref, tol, tol, "saved invstd, " + what);
      require_close(rm_cpu, rm_ref, tol, tol, "running mean, " + what);
      require_close(rv_cpu, rv_ref, tol, tol, "running var, " + what);

      // Both backwards read the reference's saved statistics, so a forward difference cannot leak in.
      auto dx_cpu = nans<T>(g.elems()), dgamma_cpu = nans<T>(c), dbeta_cpu = nans<T>(c);
      auto dx_ref = nans<T>(g.elems()), dgamma_ref = nans<T>(c), dbeta_ref = nans<T>(c);
      cpu::batch_norm_backward_train<T>(g, in.x.data(), in.dy.data(), gamma, mean_ref.data(),
                                        invstd_ref.data(), dx_cpu.data(), dgamma_cpu.data(),
                                        dbeta_cpu.data());
      ref::batch_norm_backward_train<T>(g, in.x.data(), in.dy.data(), gamma, mean_ref.data(),
                                        invstd_ref.data(), dx_ref.data(), dgamma_ref.data(),
                                        dbeta_ref.data());
      require_close(dx_cpu, dx_ref, tol, tol, "dx, " + what);
      require_close(dgamma_cpu, dgamma_ref, tol, tol, "dgamma, " + what);
      require_close(dbeta_cpu, dbeta_ref, tol, tol, "dbeta, " + what);
    }
  }
}

TEMPLATE_TEST_CASE("batchnorm evaluation: cpu matches reference in forward and backward",
                   "[batchnorm][reference]", float, double) {
  using T = TestType;
  const double tol = kTol<T>;
  const T eps = T(kEps);
  uint64_t seed = 2000;
  for (const Shape& shape : kShapes) {
    for (bool affine : {true, false}) {
      const std::string what = describe(shape, affine);
      INFO(what);
      const BatchNormGeometry g = geometry(shape);
      const int64_t c = g.channels;
      const Inputs<T> in = make_inputs<T>(g, seed += 10);
      const T* gamma = affine ? in.gamma.data() : nullptr;
      const T* beta = affine ? in.beta.data() : nullptr;
      const T* rm = in.running_mean.data();
      const T* rv = in.running_var.data();

      auto y_cpu = nans<T>(g.elems()), y_ref = nans<T>(g.elems());
      cpu::batch_norm_forward_eval<T>(g, in.x.data(), gamma, beta, rm, rv, eps, y_cpu.data());
      ref::batch_norm_forward_eval<T>(g, in.x.data(), gamma, beta, rm, rv, eps, y_ref.data());
      require_close(y_cpu, y_ref, tol, tol, "y, " + what);

      auto dx_cpu = nans<T>(g.elems()), dgamma_cpu = nans<T>(c), dbeta_cpu = nans<T>(c);
      auto dx_ref = nans<T>(g.elems()), dgamma_ref = nans<T>(c), dbeta_ref = nans<T>(c);
      cpu::batch_norm_backward_eval<T>(g, in.x.data(), in.dy.data(), gamma, rm, rv, eps, dx_cpu.data(),
                                       dgamma_cpu.data(), dbeta_cpu.data());
      ref::batch_norm_backward_eval<T>(g, in.x.data(), in.dy.data(), gamma, rm, rv, eps, dx_ref.data(),
                                       dgamma_ref.data(), dbeta_ref.data());
      require_close(dx_cpu, dx_ref, tol, tol, "dx, " + what);
      require_close(dgamma_cpu, dgamma_ref, tol, tol, "dgamma, " + what);
      require_close(dbeta_cpu, dbeta_ref, tol, tol, "dbeta, " + what);
    }
  }
}

TEMPLATE_TEST_CASE(
    "batchnorm running statistics after two steps follow the momentum formula and eval uses them",
    "[batchnorm][running]", float, double) {
  using T = TestType;
  const double tol = kTol<T>;
  const Shape shapes[] = {{5, 3, 3, 5}, {2, 4, 1, 1}, {1, 6, 7, 7}};
  uint64_t seed = 3000;
  for (const Shape& shape : shapes) {
    const std::string what = describe(shape, true);
    INFO(what);
    const BatchNormGeometry g = geometry(shape);
    const int64_t c = g.channels, n = g.count();
    const auto gamma = random_vector<T>(c, seed + 1, -1.5, 1.5),
               beta = random_vector<T>(c, seed + 2, -0.5, 0.5);
    // A fresh BatchNorm starts from mean 0, variance 1.
    std::vector<T> rm_cpu(size_t(c), T(0)), rv_cpu(size_t(c), T(1)), rm_ref = rm_cpu, rv_ref = rv_cpu;
    std::vector<double> rm_expected(size_t(c), 0.0), rv_expected(size_t(c), 1.0);
    std::vector<T> x;
    for (int step = 1; step <= 2; ++step) {
      CAPTURE(step);
      x = make_inputs<T>(g, seed += 10).x;
      auto y = nans<T>(g.elems()), mean = nans<T>(c), invstd = nans<T>(c), y_ref = y;
      cpu::batch_norm_forward_train<T>(g, x.data(), gamma.data(), beta.data(), T(kEps), T(kMomentum),
                                       y.data(), mean.data(), invstd.data(), rm_cpu.data(), rv_cpu.data());
      ref::batch_norm_forward_train<T>(g, x.data(), gamma.data(), beta.data(), T(kEps), T(kMomentum),
                                       y_ref.data(), nullptr, nullptr, rm_ref.data(), rv_ref.data());

      // Written out: the batch mean, the biased variance (normalization) and the unbiased one (running).
      std::vector<double> mean_expected(static_cast<size_t>(c)), invstd_expected(static_cast<size_t>(c));
      for (int ch = 0; ch < g.channels; ++ch) {
        auto at = [&](int b, int64_t s) { return double(x[size_t((int64_t(b) * c + ch) * g.spatial + s)]); };
        double sum = 0, sum_sq_dev = 0;
        for (int b = 0; b < g.batch; ++b)
          for (int64_t s = 0; s < g.spatial; ++s) sum += at(b, s);
        const double batch_mean = sum / double(n);
        for (int b = 0; b < g.batch; ++b)
          for (int64_t s = 0; s < g.spatial; ++s)
            sum_sq_dev += (at(b, s) - batch_mean) * (at(b, s) - batch_mean);
        const double var_biased = sum_sq_dev / double(n), var_unbiased = sum_sq_dev / double(n - 1);
        mean_expected[size_t(ch)] = batch_mean;
        invstd_expected[size_t(ch)] = 1.0 / std::sqrt(var_biased + kEps);
        rm_expected[size_t(ch)] = (1.0 - kMomentum) * rm_expected[size_t(ch)] + kMomentum * batch_mean;
        rv_expected[size_t(ch)] = (1.0 - kMomentum) * rv_expected[size_t(ch)] + kMomentum * var_unbiased;
      }
      require_close(mean, mean_expected, tol, tol, "saved mean, " + what);
      require_close(invstd, invstd_expected, tol, tol, "saved invstd, " + what);
      require_close(rm_cpu, rm_expected, tol, tol, "cpu running mean, " + what);
      require_close(rv_cpu, rv_expected, tol, tol, "cpu running var, " + what);
      require_close(rm_ref, rm_expected, tol, tol, "reference running mean, " + what);
      require_close(rv_ref, rv_expected, tol, tol, "reference running var, " + what);
    }

    // Evaluation normalizes with the running statistics, not with the batch's own.
    const auto dy = random_vector<T>(g.elems(), seed + 3, -1, 1);
    std::vector<double> y_expected(size_t(g.elems())), dx_expected(size_t(g.elems()));
    for (int b = 0; b < g.batch; ++b)
      for (int ch = 0; ch < g.channels; ++ch)
        for (int64_t s = 0; s < g.spatial; ++s) {
          const size_t i = size_t((int64_t(b) * c + ch) * g.spatial + s);
          const double scale = double(gamma[size_t(ch)]) / std::sqrt(rv_expected[size_t(ch)] + kEps);
          y_expected[i] = scale * (double(x[i]) - rm_expected[size_t(ch)]) + double(beta[size_t(ch)]);
          dx_expected[i] = scale * double(dy[i]);
        }
    auto y = nans<T>(g.elems()), dx = nans<T>(g.elems());
    cpu::batch_norm_forward_eval<T>(g, x.data(), gamma.data(), beta.data(), rm_cpu.data(), rv_cpu.data(),
                                    T(kEps), y.data());
    cpu::batch_norm_backward_eval<T>(g, x.data(), dy.data(), gamma.data(), rm_cpu.data(), rv_cpu.data(),
                                     T(kEps), dx.data(), nullptr, nullptr);
    require_close(y, y_expected, tol, tol, "eval y, " + what);
    require_close(dx, dx_expected, tol, tol, "eval dx, " + what);
  }
}

TEMPLATE_TEST_CASE("batchnorm with one value per channel gives y = beta and dx = 0 and finite running stats",
                   "[batchnorm][edge]", float, double) {
  using T = TestType;
  const Shape shape{1, 4, 1, 1};
  const BatchNormGeometry g = geometry(shape);
  const int64_t c = g.channels;
  const Inputs<T> in = make_inputs<T>(g, 4000);
  // The variance of one value is 0 and its unbiased estimate 0/0: PyTorch refuses to train here; the
  // kernels keep the biased 0, so the running variance only decays, and nothing turns into NaN.
  std::vector<double> rv_expected(static_cast<size_t>(c));
  for (size_t i = 0; i < size_t(c); ++i) rv_expected[i] = (1.0 - kMomentum) * double(in.running_var[i]);

  auto y = nans<T>(c), mean = nans<T>(c), invstd = nans<T>(c), rm = in.running_mean, rv = in.running_var;
  auto y_ref = nans<T>(c), rm_ref = in.running_mean, rv_ref = in.running_var;
  cpu::batch_norm_forward_train<T>(g, in.x.data(), in.gamma.data(), in.beta.data(), T(kEps), T(kMomentum),
                                   y.data(), mean.data(), invstd.data(), rm.data(), rv.data());
  ref::batch_norm_forward_train<T>(g, in.x.data(), in.gamma.data(), in.beta.data(), T(kEps), T(kMomentum),
                                   y_ref.data(), nullptr, nullptr, rm_ref.data(), rv_ref.data());
  require_equal(y, in.beta, "cpu y");  // x - mean is exactly 0
  require_equal(y_ref, in.beta, "reference y");
  require_close(rv, rv_expected, kTol<T>, kTol<T>, "cpu running var");
  require_close(rv_ref, rv_expected, kTol<T>, kTol<T>, "reference running var");

  auto dx = nans<T>(c), dx_ref = nans<T>(c);
  const std::vector<T> zeros(size_t(c), T(0));
  cpu::batch_norm_backward_train<T>(g, in.x.data(), in.dy.data(), in.gamma.data(), mean.data(), invstd.data(),
                                    dx.data(), nullptr, nullptr);
  ref::batch_norm_backward_train<T>(g, in.x.data(), in.dy.data(), in.gamma.data(), mean.data(), invstd.data(),
                                    dx_ref.data(), nullptr, nullptr);
  require_equal(dx, zeros, "cpu dx");  // y does not depend on x when x is its own mean
  require_equal(dx_ref, zeros, "reference dx");
}

TEST_CASE("batchnorm outputs are optional: a null pointer skips exactly that result", "[batchnorm][cpu]") {
  using T = float;
  const Shape shape{3, 5, 3, 3};
  const BatchNormGeometry g = geometry(shape);
  const int64_t c = g.channels;
  const Inputs<T> in = make_inputs<T>(g, 5000);
  const T eps = T(kEps), momentum = T(kMomentum);
  const T* x = in.x.data();
  const T* dy = in.dy.data();
  const T* rm0 = in.running_mean.data();
  const T* rv0 = in.running_var.data();

  // Everything requested: the baseline. Partial requests must give the same bits (same code path).
  auto y = nans<T>(g.elems()), mean = nans<T>(c), invstd = nans<T>(c), rm = in.running_mean,
       rv = in.running_var;
  cpu::batch_norm_forward_train<T>(g, x, in.gamma.data(), in.beta.data(), eps, momentum, y.data(),
                                   mean.data(), invstd.data(), rm.data(), rv.data());
  {
    auto y2 = nans<T>(g.elems());
    cpu::batch_norm_forward_train<T>(g, x, in.gamma.data(), in.beta.data(), eps, momentum, y2.data(), nullptr,
                                     nullptr, nullptr, nullptr);
    require_equal(y2, y, "train y alone");
    auto mean2 = nans<T>(c), rv2 = in.running_var;
    cpu::batch_norm_forward_train<T>(g, x, nullptr, nullptr, eps, momentum, nullptr, mean2.data(), nullptr,
                                     nullptr, rv2.data());
    require_equal(mean2, mean, "train saved mean alone");
    require_equal(rv2, rv, "train running var alone");
  }
  {
    // No affine is the same as gamma 1, beta 0.
    const std::vector<T> ones(size_t(c), T(1)), zeros(size_t(c), T(0));
    auto y_plain = nans<T>(g.elems()), y_unit = nans<T>(g.elems());
    cpu::batch_norm_forward_train<T>(g, x, nullptr, nullptr, eps, momentum, y_plain.data(), nullptr, nullptr,
                                     nullptr, nullptr);
    cpu::batch_norm_forward_train<T>(g, x, ones.data(), zeros.data(), eps, momentum, y_unit.data(), nullptr,
                                     nullptr, nullptr, nullptr);
    require_equal(y_plain, y_unit, "train y without affine vs gamma 1, beta 0");
  }

  auto dx = nans<T>(g.elems()), dgamma = nans<T>(c), dbeta = nans<T>(c);
  cpu::batch_norm_backward_train<T>(g, x, dy, in.gamma.data(), mean.data(), invstd.data(), dx.data(),
                                    dgamma.data(), dbeta.data());
  {
    auto dx2 = nans<T>(g.elems()), dgamma2 = nans<T>(c), dbeta2 = nans<T>(c);
    cpu::batch_norm_backward_train<T>(g, x, dy, in.gamma.data(), mean.data(), invstd.data(), dx2.data(),
                                      nullptr, nullptr);
    cpu::batch_norm_backward_train<T>(g, x, dy, in.gamma.data(), mean.data(), invstd.data(), nullptr,
                                      dgamma2.data(), nullptr);
    cpu::batch_norm_backward_train<T>(g, x, dy, in.gamma.data(), mean.data(), invstd.data(), nullptr, nullptr,
                                      dbeta2.data());
    require_equal(dx2, dx, "train dx alone");
    require_equal(dgamma2, dgamma, "train dgamma alone");
    require_equal(dbeta2, dbeta, "train dbeta alone");
  }

  auto dx_eval = nans<T>(g.elems()), dgamma_eval = nans<T>(c), dbeta_eval = nans<T>(c);
  cpu::batch_norm_backward_eval<T>(g, x, dy, in.gamma.data(), rm0, rv0, eps, dx_eval.data(),
                                   dgamma_eval.data(), dbeta_eval.data());
  {
    auto dx2 = nans<T>(g.elems()), dgamma2 = nans<T>(c), dbeta2 = nans<T>(c);
    cpu::batch_norm_backward_eval<T>(g, x, dy, in.gamma.data(), rm0, rv0, eps, dx2.data(), nullptr, nullptr);
    cpu::batch_norm_backward_eval<T>(g, x, dy, in.gamma.data(), rm0, rv0, eps, nullptr, dgamma2.data(),
                                     nullptr);
    cpu::batch_norm_backward_eval<T>(g, x, dy, in.gamma.data(), rm0, rv0, eps, nullptr, nullptr,
                                     dbeta2.data());
    require_equal(dx2, dx_eval, "eval dx alone");
    require_equal(dgamma2, dgamma_eval, "eval dgamma alone");
    require_equal(dbeta2, dbeta_eval, "eval dbeta alone");
  }
  // Nothing requested: nothing to do, and nothing may be touched.
  cpu::batch_norm_forward_eval<T>(g, x, nullptr, nullptr, rm0, rv0, eps, nullptr);
  cpu::batch_norm_backward_train<T>(g, x, dy, nullptr, mean.data(), invstd.data(), nullptr, nullptr, nullptr);
}

TEST_CASE("batchnorm with a fused activation: only relu and leaky_relu with slope >= 0",
          "[batchnorm][cpu]") {
  // Bit-for-bit agreement with the unfused pair is checked through the engine (tests/nn/test_nn.cpp).
  using T = float;
  const BatchNormGeometry g = geometry(Shape{2, 3, 2, 2});
  const Inputs<T> in = make_inputs<T>(g, 77);
  std::vector<T> y(size_t(g.elems())), mean(3), invstd(3);
  const auto forward = [&](cudagan::Activation act, T slope) {
    cpu::batch_norm_forward_train<T>(g, in.x.data(), nullptr, nullptr, T(kEps), T(kMomentum), y.data(), mean.data(),
                                     invstd.data(), nullptr, nullptr, act, true, slope);
  };
  REQUIRE_NOTHROW(forward(cudagan::Activation::leaky_relu, T(0.2)));
  REQUIRE_THROWS_WITH(forward(cudagan::Activation::tanh, T(0)), Catch::Contains("only relu and leaky_relu"));
  REQUIRE_THROWS_WITH(forward(cudagan::Activation::leaky_relu, T(-0.1)), Catch::Contains("slope >= 0"));
}

TEST_CASE("batchnorm statistics keep double precision when the mean is far from zero",
          "[batchnorm][reference]") {
  using T = double;
  // Activations offset by 1e4 with a spread of order 1. A one-pass E[x^2] - E[x]^2 would cancel 1e8
  // against 1e8 and lose ~8 digits of the variance (y off by ~1e-7); the shifted sums must not.
  const Shape shape{5, 7, 7, 7};
  INFO(describe(shape, true));
  const BatchNormGeometry g = geometry(shape);
  const int64_t c = g.channels;
  Inputs<double> in = make_inputs<double>(g, 6000);
  for (double& v : in.x) v += 1e4;

  auto y = nans<double>(g.elems()), mean = nans<double>(c), invstd = nans<double>(c);
  auto y_ref = nans<double>(g.elems()), mean_ref = nans<double>(c), invstd_ref = nans<double>(c);
  cpu::batch_norm_forward_train<T>(g, in.x.data(), in.gamma.data(), in.beta.data(), kEps, kMomentum, y.data(),
                                   mean.data(), invstd.data(), nullptr, nullptr);
  ref::batch_norm_forward_train<T>(g, in.x.data(), in.gamma.data(), in.beta.data(), kEps, kMomentum,
                                   y_ref.data(), mean_ref.data(), invstd_ref.data(), nullptr, nullptr);
  // A mean near 1e4 rounds to within 9e-13 (half an ulp), which moves xhat by up to 9e-13 * invstd
  // (invstd <= 7 here) times |gamma| <= 1.5: 1e-11 absolute. The mean itself: a few ulps, relative.
  require_close(mean, mean_ref, 0.0, 1e-15, "saved mean");
  require_close(invstd, invstd_ref, 0.0, 1e-12, "saved invstd");
  require_close(y, y_ref, 2e-11, 0.0, "y");
}

TEST_CASE("batchnorm reference backward matches finite differences of its forward",
          "[batchnorm][reference][gradcheck]") {
  using T = double;
  // Central differences in double with h = 1e-6: truncation error ~h^2 = 1e-12 and round-off
  // ~1e-16 * |loss| / h ~ 1e-9 (observed: below 1e-9), so atol 1e-8, rtol 1e-7 is tight enough to
  // catch a missing term (the dmean or dvar path contributes O(1) to dx) with room to spare.
  const double h = 1e-6;
  const Shape shapes[] = {{2, 3, 2, 3}, {1, 2, 1, 3}, {3, 2, 1, 1}};
  for (const Shape& shape : shapes) {
    for (bool train : {true, false}) {
      const std::string what = describe(shape, true) + (train ? " train" : " eval");
      INFO(what);
      const BatchNormGeometry g = geometry(shape);
      const int64_t c = g.channels;
      Inputs<double> in = make_inputs<double>(g, 7000);
      const std::vector<double>& w = in.dy;  // loss = sum w * y, so dL/dy = w

      auto loss = [&]() {
        std::vector<double> y(size_t(g.elems()));
        if (train)
          ref::batch_norm_forward_train<T>(g, in.x.data(), in.gamma.data(), in.beta.data(), kEps, kMomentum,
                                           y.data(), nullptr, nullptr, nullptr, nullptr);
        else
          ref::batch_norm_forward_eval<T>(g, in.x.data(), in.gamma.data(), in.beta.data(),
                                          in.running_mean.data(), in.running_var.data(), kEps, y.data());
        double l = 0;
        for (size_t i = 0; i < y.size(); ++i) l += w[i] * y[i];
        return l;
      };
      auto numeric = [&](std::vector<double>& v) {
        std::vector<double> grad(v.size());
        for (size_t i = 0; i < v.size(); ++i) {
          const double keep = v[i];
          v[i] = keep + h;
          const double up = loss();
          v[i] = keep - h;
          const double down = loss();
          v[i] = keep;
          grad[i] = (up - down) / (2 * h);
        }
        return grad;
      };

      auto dx = nans<double>(g.elems()), dgamma = nans<double>(c), dbeta = nans<double>(c);
      if (train) {
        auto mean = nans<double>(c), invstd = nans<double>(c);
        ref::batch_norm_forward_train<T>(g, in.x.data(), in.gamma.data(), in.beta.data(), kEps, kMomentum,
                                         nullptr, mean.data(), invstd.data(), nullptr, nullptr);
        ref::batch_norm_backward_train<T>(g, in.x.data(), w.data(), in.gamma.data(), mean.data(),
                                          invstd.data(), dx.data(), dgamma.data(), dbeta.data());
      } else {
        ref::batch_norm_backward_eval<T>(g, in.x.data(), w.data(), in.gamma.data(), in.running_mean.data(),
                                         in.running_var.data(), kEps, dx.data(), dgamma.data(), dbeta.data());
      }
      require_close(dx, numeric(in.x), 1e-8, 1e-7, "dx, " + what);
      require_close(dgamma, numeric(in.gamma), 1e-8, 1e-7, "dgamma, " + what);
      require_close(dbeta, numeric(in.beta), 1e-8, 1e-7, "dbeta, " + what);
    }
  }
}

// --- synchronised batch norm: the split passes of kernels/batchnorm.h ------------------------------------

namespace {

// sums[0, C) and sums[C, 2C) each against their own scale (double sums of up to 4096 terms in another order
// than the long double reference's: ~1e-14 relative; a wrong term is off by far more than 1e-12), the count
// exactly.
void require_sums_close(const std::vector<double>& actual, const std::vector<double>& expected, int channels,
                        const std::string& what) {
  REQUIRE(actual.size() == size_t(2 * channels + 1));
  REQUIRE(expected.size() == actual.size());
  const auto half = [&](const std::vector<double>& v, int k) {
    return std::vector<double>(v.begin() + int64_t(k) * channels, v.begin() + int64_t(k + 1) * channels);
  };
  cudagan::test::require_close_to_scale(half(actual, 0), half(expected, 0), 1e-12, what + " (first sums)");
  cudagan::test::require_close_to_scale(half(actual, 1), half(expected, 1), 1e-12, what + " (second sums)");
  REQUIRE(actual.back() == expected.back());
}

// N split into `replicas` slices of N / replicas or one more, in order (an uneven split when N is odd).
std::vector<int> split_batch(int batch, int replicas) {
  std::vector<int> sizes;
  for (int r = 0; r < replicas; ++r) sizes.push_back(batch / replicas + (r < batch % replicas ? 1 : 0));
  return sizes;
}

}  // namespace

TEMPLATE_TEST_CASE("batchnorm synchronised passes: cpu matches reference", "[batchnorm][reference][sync]",
                   float, double) {
  using T = TestType;
  const double tol = kTol<T>;
  const T eps = T(kEps), momentum = T(kMomentum);
  uint64_t seed = 8000;
  for (const Shape& shape : kShapes) {
    for (bool affine : {true, false}) {
      const std::string what = describe(shape, affine);
      INFO(what);
      const BatchNormGeometry g = geometry(shape);
      const int c = g.channels;
      const Inputs<T> in = make_inputs<T>(g, seed += 10);
      const T* gamma = affine ? in.gamma.data() : nullptr;

      auto sums_cpu = nans<double>(2 * c + 1), sums_ref = nans<double>(2 * c + 1);
      cpu::batch_norm_channel_sums<T>(g, in.x.data(), sums_cpu.data());
      ref::batch_norm_channel_sums<T>(g, in.x.data(), sums_ref.data());
      require_sums_close(sums_cpu, sums_ref, c, "channel sums, " + what);
      REQUIRE(sums_cpu.back() == double(g.count()));

      // Both from the same sums, so that only the statistics' own arithmetic is compared. The CPU forms
      // E[x^2] - mean^2 in double, the reference in long double: the CPU's variance may be off by a few
      // roundings of E[x^2] (2^-53 each), which is all of it when the variance is 0 (one value per channel),
      // and invstd by that over 2 (var + eps) relative.
      double ex2_max = 0;
      for (int i = 0; i < c; ++i) ex2_max = std::max(ex2_max, sums_cpu[size_t(c + i)] / sums_cpu.back());
      const double var_atol = tol + 4 * std::ldexp(ex2_max, -53);
      auto mean_cpu = nans<T>(c), var_cpu = nans<T>(c), invstd_cpu = nans<T>(c);
      auto mean_ref = nans<T>(c), var_ref = nans<T>(c), invstd_ref = nans<T>(c);
      auto rm_cpu = in.running_mean, rv_cpu = in.running_var, rm_ref = in.running_mean,
           rv_ref = in.running_var;
      cpu::batch_norm_stats_from_sums<T>(c, sums_cpu.data(), eps, momentum, mean_cpu.data(), var_cpu.data(),
                                         invstd_cpu.data(), rm_cpu.data(), rv_cpu.data());
      ref::batch_norm_stats_from_sums<T>(c, sums_cpu.data(), eps, momentum, mean_ref.data(), var_ref.data(),
                                         invstd_ref.data(), rm_ref.data(), rv_ref.data());
      require_close(mean_cpu, mean_ref, tol, tol, "mean, " + what);
      require_close(var_cpu, var_ref, var_atol, tol, "var, " + what);
      const double var_min = double(*std::min_element(var_ref.begin(), var_ref.end()));
      const double invstd_rtol = tol + var_atol / (2 * (var_min + kEps));
      require_close(invstd_cpu, invstd_ref, tol, invstd_rtol, "invstd, " + what);
      require_close(rm_cpu, rm_ref, tol, tol, "running mean, " + what);
      require_close(rv_cpu, rv_ref, tol, tol, "running var, " + what);

      auto bsums_cpu = nans<double>(2 * c + 1), bsums_ref = nans<double>(2 * c + 1);
      auto dgamma_cpu = nans<T>(c), dbeta_cpu = nans<T>(c), dgamma_ref = nans<T>(c), dbeta_ref = nans<T>(c);
      cpu::batch_norm_backward_sums<T>(g, in.x.data(), in.dy.data(), mean_ref.data(), invstd_ref.data(),
                                       bsums_cpu.data(), dgamma_cpu.data(), dbeta_cpu.data());
      ref::batch_norm_backward_sums<T>(g, in.x.data(), in.dy.data(), mean_ref.data(), invstd_ref.data(),
                                       bsums_ref.data(), dgamma_ref.data(), dbeta_ref.data());
      require_sums_close(bsums_cpu, bsums_ref, c, "gradient sums, " + what);
      require_close(dgamma_cpu, dgamma_ref, tol, tol, "dgamma, " + what);
      require_close(dbeta_cpu, dbeta_ref, tol, tol, "dbeta, " + what);

      auto dx_cpu = nans<T>(g.elems()), dx_ref = nans<T>(g.elems());
      cpu::batch_norm_backward_from_sums<T>(g, in.x.data(), in.dy.data(), gamma, mean_ref.data(),
                                            invstd_ref.data(), bsums_cpu.data(), dx_cpu.data());
      ref::batch_norm_backward_from_sums<T>(g, in.x.data(), in.dy.data(), gamma, mean_ref.data(),
                                            invstd_ref.data(), bsums_cpu.data(), dx_ref.data());
      require_close(dx_cpu, dx_ref, tol, tol, "dx, " + what);
    }
  }
}

// The point of the split: each replica sums its slice, the sums are added, and every replica then normalises
// and backpropagates with the global batch's statistics. Concatenated, the replicas' y and dx are the
// training passes' on the whole batch, every replica's running statistics are the whole batch's, and the
// replicas' dgamma / dbeta add up to the whole batch's. One replica (no split) must give the training
// backward bit for bit (same loops, same expressions); the forward differs only by the training kernel's
// shift, within rounding.
TEMPLATE_TEST_CASE(
    "batchnorm synchronised passes over slices of a batch give the training passes of the whole",
    "[batchnorm][sync]", float, double) {
  using T = TestType;
  const double tol = kTol<T>;
  const T eps = T(kEps), momentum = T(kMomentum);
  uint64_t seed = 9000;
  for (const Shape& shape : kShapes) {
    for (int replicas = 1; replicas <= std::min(3, shape.n); ++replicas) {
      const bool affine = replicas != 2;  // both kinds, without tripling the cases
      const std::string what = describe(shape, affine) + ", " + std::to_string(replicas) + " replicas";
      INFO(what);
      const BatchNormGeometry g = geometry(shape);
      const int c = g.channels;
      const Inputs<T> in = make_inputs<T>(g, seed += 10);
      const T* gamma = affine ? in.gamma.data() : nullptr;
      const T* beta = affine ? in.beta.data() : nullptr;

      // The whole batch.
      auto y = nans<T>(g.elems()), mean = nans<T>(c), invstd = nans<T>(c);
      auto rm = in.running_mean, rv = in.running_var;
      cpu::batch_norm_forward_train<T>(g, in.x.data(), gamma, beta, eps, momentum, y.data(), mean.data(),
                                       invstd.data(), rm.data(), rv.data());
      auto dx = nans<T>(g.elems()), dgamma = nans<T>(c), dbeta = nans<T>(c);
      cpu::batch_norm_backward_train<T>(g, in.x.data(), in.dy.data(), gamma, mean.data(), invstd.data(),
                                        dx.data(), dgamma.data(), dbeta.data());

      // The replicas: slices along N, which are contiguous in [N, C, S].
      struct Replica {
        BatchNormGeometry g;
        int64_t offset;  // of its first element in the batch
        std::vector<T> mean, var, invstd, rm, rv, dgamma, dbeta;
      };
      std::vector<Replica> parts;
      int64_t offset = 0;
      for (int n : split_batch(shape.n, replicas)) {
        Replica p;
        p.g = g;
        p.g.batch = n;
        p.offset = offset;
        offset += p.g.elems();
        p.mean = p.var = p.invstd = p.dgamma = p.dbeta = nans<T>(c);
        p.rm = in.running_mean;
        p.rv = in.running_var;
        parts.push_back(std::move(p));
      }
      REQUIRE(offset == g.elems());

      // Forward: sums, added (the all-reduce), statistics, then the evaluation kernel with them.
      std::vector<double> total(size_t(2 * c + 1), 0.0);
      for (const Replica& p : parts) {
        auto sums = nans<double>(2 * c + 1);
        cpu::batch_norm_channel_sums<T>(p.g, in.x.data() + p.offset, sums.data());
        for (size_t i = 0; i < total.size(); ++i) total[i] += sums[i];
      }
      REQUIRE(total.back() == double(g.count()));
      auto y_split = nans<T>(g.elems());
      for (Replica& p : parts) {
        cpu::batch_norm_stats_from_sums<T>(c, total.data(), eps, momentum, p.mean.data(), p.var.data(),
                                           p.invstd.data(), p.rm.data(), p.rv.data());
        cpu::batch_norm_forward_eval<T>(p.g, in.x.data() + p.offset, gamma, beta, p.mean.data(), p.var.data(),
                                        eps, y_split.data() + p.offset);
      }
      require_close(y_split, y, tol, tol, "y, " + what);
      for (const Replica& p : parts) {
        require_close(p.mean, mean, tol, tol, "mean, " + what);
        require_close(p.invstd, invstd, tol, tol, "invstd, " + what);
        require_close(p.rm, rm, tol, tol, "running mean, " + what);
        require_close(p.rv, rv, tol, tol, "running var, " + what);
      }

      // Backward, each replica with its own (identical) statistics.
      std::fill(total.begin(), total.end(), 0.0);
      std::vector<double> dgamma_sum(size_t(c), 0.0), dbeta_sum(size_t(c), 0.0);
      for (Replica& p : parts) {
        auto sums = nans<double>(2 * c + 1);
        cpu::batch_norm_backward_sums<T>(p.g, in.x.data() + p.offset, in.dy.data() + p.offset, p.mean.data(),
                                         p.invstd.data(), sums.data(), p.dgamma.data(), p.dbeta.data());
        for (size_t i = 0; i < total.size(); ++i) total[i] += sums[i];
        for (size_t i = 0; i < size_t(c); ++i)
          dgamma_sum[i] += double(p.dgamma[i]), dbeta_sum[i] += double(p.dbeta[i]);
      }
      auto dx_split = nans<T>(g.elems());
      for (const Replica& p : parts)
        cpu::batch_norm_backward_from_sums<T>(p.g, in.x.data() + p.offset, in.dy.data() + p.offset, gamma,
                                              p.mean.data(), p.invstd.data(), total.data(),
                                              dx_split.data() + p.offset);
      require_close(dx_split, dx, tol, tol, "dx, " + what);
      // Sums of O(n) terms: against their own scale.
      cudagan::test::require_close_to_scale(dgamma_sum, dgamma, tol,
                                            "dgamma summed over the replicas, " + what);
      cudagan::test::require_close_to_scale(dbeta_sum, dbeta, tol, "dbeta summed over the replicas, " + what);

      if (replicas == 1) {
        // Given the training forward's statistics, the split backward is the training backward exactly.
        auto sums = nans<double>(2 * c + 1);
        auto dx1 = nans<T>(g.elems()), dgamma1 = nans<T>(c), dbeta1 = nans<T>(c);
        cpu::batch_norm_backward_sums<T>(g, in.x.data(), in.dy.data(), mean.data(), invstd.data(),
                                         sums.data(), dgamma1.data(), dbeta1.data());
        cpu::batch_norm_backward_from_sums<T>(g, in.x.data(), in.dy.data(), gamma, mean.data(), invstd.data(),
                                              sums.data(), dx1.data());
        require_equal(dx1, dx, "one replica's dx, " + what);
        require_equal(dgamma1, dgamma, "one replica's dgamma, " + what);
        require_equal(dbeta1, dbeta, "one replica's dbeta, " + what);
      }
    }
  }
}

TEST_CASE("batchnorm synchronised passes: null outputs are skipped, the sums are always written",
          "[batchnorm][sync]") {
  using T = float;
  const Shape shape{3, 5, 3, 3};
  const BatchNormGeometry g = geometry(shape);
  const int c = g.channels;
  const Inputs<T> in = make_inputs<T>(g, 9500);
  auto sums = nans<double>(2 * c + 1);
  cpu::batch_norm_channel_sums<T>(g, in.x.data(), sums.data());
  auto mean = nans<T>(c), invstd = nans<T>(c), var = nans<T>(c);
  cpu::batch_norm_stats_from_sums<T>(c, sums.data(), T(kEps), T(kMomentum), mean.data(), var.data(),
                                     invstd.data(), nullptr, nullptr);
  {
    auto mean2 = nans<T>(c), rv2 = in.running_var, rv = in.running_var;
    cpu::batch_norm_stats_from_sums<T>(c, sums.data(), T(kEps), T(kMomentum), nullptr, nullptr, nullptr,
                                       nullptr, rv.data());
    cpu::batch_norm_stats_from_sums<T>(c, sums.data(), T(kEps), T(kMomentum), mean2.data(), nullptr, nullptr,
                                       nullptr, rv2.data());
    require_equal(mean2, mean, "mean alone");
    require_equal(rv2, rv, "running var alone");
  }
  auto bsums = nans<double>(2 * c + 1), bsums2 = nans<double>(2 * c + 1);
  auto dgamma = nans<T>(c), dbeta = nans<T>(c);
  cpu::batch_norm_backward_sums<T>(g, in.x.data(), in.dy.data(), mean.data(), invstd.data(), bsums.data(),
                                   dgamma.data(), dbeta.data());
  cpu::batch_norm_backward_sums<T>(g, in.x.data(), in.dy.data(), mean.data(), invstd.data(), bsums2.data(),
                                   nullptr, nullptr);
  require_equal(bsums2, bsums, "gradient sums without dgamma, dbeta");
  // dgamma / dbeta are the sums rounded to T.
  for (int i = 0; i < c; ++i) {
    REQUIRE(dgamma[size_t(i)] == T(bsums[size_t(c + i)]));
    REQUIRE(dbeta[size_t(i)] == T(bsums[size_t(i)]));
  }
  cpu::batch_norm_backward_from_sums<T>(g, in.x.data(), in.dy.data(), nullptr, mean.data(), invstd.data(),
                                        bsums.data(), nullptr);  // nothing wanted, nothing touched
}
