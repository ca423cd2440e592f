// The tape itself: accumulation, ordering, release, no-grad, and its error messages.
#include <catch2/catch.hpp>

#include "cudagan/cudagan.h"
#include "support/compare.h"

using namespace cudagan;
using Catch::Matchers::Contains;

namespace {
Tensor leaf(std::vector<double> values) {
  Tensor t = Tensor::from_vector(values, {int64_t(values.size())});
  t.requires_grad_(true);
  return t;
}
}  // namespace

TEST_CASE("autograd: a diamond graph sums both paths", "[autograd]") {
  Tensor a = leaf({1.0, -2.0, 3.0});
  Tensor y = sum(add(mul(a, a), a));  // dy/da = 2a + 1
  y.backward();
  test::require_close(a.grad().to_vector(), std::vector<double>{3.0, -3.0, 7.0}, 0, 1e-15, "d(a*a + a)/da");
}

TEST_CASE("autograd: gradients accumulate across backward calls until zeroed", "[autograd]") {
  Tensor a = leaf({1.0, 2.0});
  sum(scale(a, 3.0)).backward();
  sum(scale(a, 3.0)).backward();
  test::require_close(a.grad().to_vector(), std::vector<double>{6.0, 6.0}, 0, 1e-15, "accumulated");
  a.zero_grad();
  CHECK_FALSE(a.grad().defined());
  sum(a).backward();
  test::require_close(a.grad().to_vector(), std::vector<double>{1.0, 1.0}, 0, 1e-15, "after zero_grad");
}

TEST_CASE("autograd: the graph is released after backward, a second backward is an error", "[autograd]") {
  Tensor a = leaf({0.5, 1.5});
  Tensor y = sum(mul(a, a));
  y.backward();
  REQUIRE(y.grad_fn());
  CHECK(y.grad_fn()->released());
  CHECK(y.grad_fn()->inputs().empty());  // saved tensors freed
  REQUIRE_THROWS_WITH(y.backward(), Contains("second time") && Contains("forward pass again"));
}

TEST_CASE("autograd: backward on a tensor that needs no gradient is an error", "[autograd]") {
  Tensor a = Tensor::from_vector(std::vector<double>{1.0, 2.0}, {2});
  Tensor y = sum(mul(a, a));
  CHECK_FALSE(y.requires_grad());
  REQUIRE_THROWS_WITH(y.backward(), Contains("does not require grad"));
  Tensor b = leaf({1.0, 2.0});
  REQUIRE_THROWS_WITH(mul(b, b).backward(), Contains("one-element"));
}

TEST_CASE("autograd: NoGradGuard records nothing and restores the mode", "[autograd]") {
  Tensor a = leaf({1.0, 2.0});
  {
    NoGradGuard guard;
    CHECK_FALSE(grad_enabled());
    Tensor y = mul(a, a);
    CHECK_FALSE(y.requires_grad());
    CHECK_FALSE(y.grad_fn());
  }
  CHECK(grad_enabled());
  CHECK(mul(a, a).requires_grad());
}

TEST_CASE("autograd: only inputs that require gradients receive them", "[autograd]") {
  Tensor a = leaf({1.0, 2.0});
  Tensor c = Tensor::from_vector(std::vector<double>{5.0, 7.0}, {2});
  sum(mul(a, c)).backward();
  test::require_close(a.grad().to_vector(), std::vector<double>{5.0, 7.0}, 0, 1e-15, "d(a*c)/da");
  CHECK_FALSE(c.grad().defined());
}

TEST_CASE("autograd: detach cuts the graph", "[autograd]") {
  Tensor a = leaf({2.0});
  Tensor y = add(mul(a, a), mul(a.detach(), a.detach()));  // only the first term reaches a
  y.backward();
  test::require_close(a.grad().to_vector(), std::vector<double>{4.0}, 0, 1e-15, "detached term");
}

TEST_CASE("autograd: a chain of 20000 ops back-propagates without recursion", "[autograd]") {
  Tensor a = leaf({1.0});
  Tensor h = a;
  for (int i = 0; i < 20000; ++i) h = scale(h, 1.0);
  h.backward();
  test::require_close(a.grad().to_vector(), std::vector<double>{1.0}, 0, 1e-15, "deep chain");
}

TEST_CASE("autograd: backward with an explicit output gradient", "[autograd]") {
  Tensor a = leaf({1.0, 2.0, 3.0});
  Tensor y = scale(a, 2.0);
  y.backward(Tensor::from_vector(std::vector<double>{1.0, 10.0, 100.0}, {3}));
  test::require_close(a.grad().to_vector(), std::vector<double>{2.0, 20.0, 200.0}, 0, 1e-15, "vjp");
  REQUIRE_THROWS_WITH(scale(a, 2.0).backward(Tensor::ones({2}, DType::float64)), Contains("does not match"));
}

TEST_CASE("autograd: ops reject mixed dtypes naming both", "[autograd][errors]") {
  Tensor a = Tensor::ones({2}, DType::float32), b = Tensor::ones({2}, DType::float64);
  REQUIRE_THROWS_WITH(add(a, b), Contains("float32") && Contains("float64"));
  REQUIRE_THROWS_WITH(add(a, Tensor::ones({3})), Contains("[2]") && Contains("[3]"));
}
