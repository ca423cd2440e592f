// Modules and the optimizer: naming, initialisation, train/eval, batchnorm running statistics,
// and Adam's trajectory against the update written out by hand.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "cudagan/cudagan.h"
#include "support/compare.h"

using namespace cudagan;
using Catch::Matchers::Contains;

TEST_CASE("nn: parameters and buffers are named as PyTorch names them", "[nn]") {
  Rng gen(1);
  nn::Sequential net;
  net.emplace<nn::ConvTranspose2d>(gen, 8, 4, 4, 1, 0, false);
  net.emplace<nn::BatchNorm2d>(4);
  net.emplace<nn::ReLU>();
  net.emplace<nn::Conv2d>(gen, 4, 2, 3, 1, 1, true);
  std::vector<std::string> names;
  for (auto& [name, t] : net.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"0.weight", "1.weight", "1.bias", "3.weight", "3.bias"});
  names.clear();
  for (auto& [name, t] : net.named_buffers()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"1.running_mean", "1.running_var"});
  CHECK(net.parameter_count() == 8 * 4 * 16 + 4 + 4 + 2 * 4 * 9 + 2);
  for (const Tensor& p : net.parameters()) CHECK(p.requires_grad());
}

TEST_CASE("nn: FreezeGuard stops parameter gradients, not the gradient through the module", "[nn]") {
  Rng gen(5);
  nn::Sequential net;
  net.emplace<nn::Conv2d>(gen, 2, 3, 3, 1, 1, true);
  net.emplace<nn::BatchNorm2d>(3);
  std::vector<Tensor> params = net.parameters();
  params[1].requires_grad_(false);  // a bias the user froze: the guard must give it back frozen
  Tensor x = Tensor::randn({2, 2, 5, 5}, gen);
  x.requires_grad_();
  {
    const nn::FreezeGuard frozen(net);
    for (const Tensor& p : params) CHECK_FALSE(p.requires_grad());
    sum(net(x)).backward();
  }
  CHECK(x.grad().defined());
  for (const Tensor& p : params) CHECK_FALSE(p.grad().defined());
  CHECK(params[0].requires_grad());
  CHECK_FALSE(params[1].requires_grad());
  CHECK(params[2].requires_grad());
  CHECK(params[3].requires_grad());
  sum(net(x)).backward();  // and unfrozen, the parameters get gradients again
  CHECK(params[0].grad().defined());
  CHECK_FALSE(params[1].grad().defined());
}

TEST_CASE("nn: Module::apply visits the module, then its sub-modules recursively, in registration order",
          "[nn]") {
  Rng gen(4);
  nn::Sequential net;
  auto conv = net.emplace<nn::Conv2d>(gen, 1, 2, 3);
  auto inner = net.emplace<nn::Sequential>();
  auto bn = inner->emplace<nn::BatchNorm2d>(2);
  auto relu = inner->emplace<nn::ReLU>();
  auto last = net.emplace<nn::Tanh>();
  std::vector<const nn::Module*> seen;
  net.apply([&](nn::Module& m) { seen.push_back(&m); });
  CHECK(seen ==
        std::vector<const nn::Module*>{&net, conv.get(), inner.get(), bn.get(), relu.get(), last.get()});
  // What it is for: finding every layer of a kind, here to change it.
  int count = 0;
  net.apply([&](nn::Module& m) {
    if (auto* b = dynamic_cast<nn::BatchNorm2d*>(&m)) {
      b->momentum = 0.5;
      ++count;
    }
  });
  CHECK(count == 1);
  CHECK(bn->momentum == 0.5);
}

TEST_CASE("nn: default initialisation follows PyTorch's bounds and the seed", "[nn]") {
  Rng g1(5), g2(5);
  nn::Conv2d a(g1, 3, 16, 4), b(g2, 3, 16, 4);
  CHECK(a.weight.to_vector() == b.weight.to_vector());
  const double bound = 1.0 / std::sqrt(3.0 * 16);
  double max_abs = 0;
  for (double v : a.weight.to_vector()) max_abs = std::max(max_abs, std::abs(v));
  CHECK(max_abs <= bound);
  CHECK(max_abs > 0.9 * bound);  // 768 uniform draws fill the range
  REQUIRE_THROWS_WITH(nn::Conv2d(g1, 0, 4, 3), Contains("in_channels"));
}

TEST_CASE("nn: batchnorm running statistics follow the formula, eval mode uses them", "[nn][batch_norm2d]") {
  nn::BatchNorm2d bn(2);
  const std::vector<float> x1{1, 2, 3, 4, 10, 20, 30, 40}, x2{0, 0, 4, 4, -1, 1, -3, 3};  // [2, 2, 1, 2]
  auto stats = [](const std::vector<float>& x, int c, double& mean, double& var_unbiased) {
    const double v[4] = {x[size_t(c * 2)], x[size_t(c * 2 + 1)], x[size_t(4 + c * 2)], x[size_t(5 + c * 2)]};
    mean = (v[0] + v[1] + v[2] + v[3]) / 4;
    var_unbiased = 0;
    for (double e : v) var_unbiased += (e - mean) * (e - mean);
    var_unbiased /= 3;
  };
  std::vector<double> rm{0, 0}, rv{1, 1};
  for (const auto& x : {x1, x2}) {
    bn(Tensor::from_vector(x, {2, 2, 1, 2}));
    for (int c = 0; c < 2; ++c) {
      double m, v;
      stats(x, c, m, v);
      rm[size_t(c)] = 0.9 * rm[size_t(c)] + 0.1 * m;
      rv[size_t(c)] = 0.9 * rv[size_t(c)] + 0.1 * v;
    }
  }
  test::require_close(bn.running_mean.to_vector(), rm, 1e-6, 1e-6, "running_mean");
  test::require_close(bn.running_var.to_vector(), rv, 1e-5, 1e-6, "running_var");

  bn.eval();
  const std::vector<float> probe{1, -1, 2, 0.5f};
  const std::vector<double> y = bn(Tensor::from_vector(probe, {1, 2, 1, 2})).to_vector();
  std::vector<double> expected;
  for (int i = 0; i < 4; ++i) {
    const size_t c = size_t(i / 2);
    expected.push_back((probe[size_t(i)] - rm[c]) / std::sqrt(rv[c] + 1e-5));  // gamma 1, beta 0
  }
  test::require_close(y, expected, 1e-6, 1e-5, "eval output");
  const std::vector<double> rm_after = bn.running_mean.to_vector();
  test::require_close(rm_after, rm, 1e-6, 1e-6, "running_mean unchanged by eval");
}

TEST_CASE("optim: Adam follows PyTorch's update for 10 steps", "[optim][adam]") {
  const optim::Adam::Options o{0.01, 0.8, 0.95, 1e-6, 0.1};
  Tensor p = Tensor::from_vector(std::vector<double>{0.5, -1.5, 2.0}, {3});
  p.requires_grad_(true);
  optim::Adam adam({p}, o);
  std::vector<double> ref{0.5, -1.5, 2.0}, m(3, 0), v(3, 0);
  for (int t = 1; t <= 10; ++t) {
    adam.zero_grad();
    sum(mul(p, p)).backward();  // grad 2p
    adam.step();
    for (size_t i = 0; i < 3; ++i) {
      const double g = 2 * ref[i] + o.weight_decay * ref[i];
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * g;
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * g * g;
      const double step_size = o.lr / (1 - std::pow(o.beta1, t));
      const double denom = std::sqrt(v[i]) / std::sqrt(1 - std::pow(o.beta2, t)) + o.eps;
      ref[i] -= step_size * m[i] / denom;
    }
    test::require_close(p.to_vector(), ref, 1e-14, 1e-12, "Adam step " + std::to_string(t));
  }
  CHECK(adam.state("0").step == 10);
}

TEST_CASE("optim: Adam skips parameters without a gradient", "[optim][adam]") {
  Tensor a = Tensor::ones({2}), b = Tensor::ones({2});
  a.requires_grad_(true);
  b.requires_grad_(true);
  optim::Adam adam({a, b});
  sum(a).backward();
  adam.step();
  CHECK(a.to_vector() != std::vector<double>{1, 1});
  CHECK(b.to_vector() == std::vector<double>{1, 1});
  CHECK(adam.state("0").step == 1);
  CHECK(adam.state_of(b).step == 0);
  CHECK_FALSE(adam.state("1").exp_avg.defined());
  REQUIRE_THROWS_WITH(optim::Adam({a}, {0.1, 1.5, 0.9, 1e-8, 0}), Contains("betas"));
}

TEST_CASE("optim: Adam rejects a parameter listed twice, also through a copied handle", "[optim][adam]") {
  Tensor a = Tensor::ones({2}), b = Tensor::ones({3});
  a.requires_grad_(true);
  b.requires_grad_(true);
  const Tensor alias = a;  // the same parameter under another handle
  REQUIRE_THROWS_WITH(optim::Adam({a, b, alias}), Contains("parameter 2 [2] is listed twice"));
  CHECK_NOTHROW(optim::Adam({a, b}));
  // Equal values are not the same parameter.
  Tensor twin = Tensor::ones({2});
  twin.requires_grad_(true);
  CHECK_NOTHROW(optim::Adam({a, twin}));
}

TEST_CASE("optim: Adam's state is a dict by parameter name, whatever the order of the list", "[optim][adam]") {
  Rng gen(2);
  nn::Sequential net;
  net.emplace<nn::Linear>(gen, 3, 4);
  net.emplace<nn::Linear>(gen, 4, 2);
  auto named = net.named_parameters();
  optim::Adam forward(named, {0.1, 0.9, 0.999, 1e-8, 0});
  std::reverse(named.begin(), named.end());
  optim::Adam backward(named, {0.1, 0.9, 0.999, 1e-8, 0});
  sum(net(Tensor::ones({5, 3}))).backward();
  forward.step();
  for (const auto& [name, p] : net.named_parameters()) {
    CHECK(forward.state(name).step == 1);
    CHECK(&forward.state(name) == &forward.state_of(p));
    CHECK(forward.state(name).exp_avg.shape() == p.shape());
    CHECK(backward.state(name).step == 0);  // a second optimizer keeps its own state
  }
  CHECK(forward.names() == std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias"});
  REQUIRE_THROWS_WITH(forward.state("2.weight"), Contains("no parameter named '2.weight'"));
  REQUIRE_THROWS_WITH(forward.state_of(Tensor::ones({2})), Contains("not one of its parameters"));
  Tensor x = Tensor::ones({1}), y = Tensor::ones({1});
  x.requires_grad_(true);
  y.requires_grad_(true);
  REQUIRE_THROWS_WITH(optim::Adam({{"w", x}, {"w", y}}, {}), Contains("two parameters are named 'w'"));
}

TEST_CASE("nn: linear and batchnorm reject an empty batch with a message, not a division by zero",
          "[nn][linear][batch_norm2d]") {
  Rng gen(5);
  const Tensor w = Tensor::randn({3, 4}, gen), bias = Tensor::randn({3}, gen);
  REQUIRE_THROWS_WITH(linear(Tensor::empty({0, 4}), w, bias), Contains("linear") && Contains("no rows"));
  REQUIRE_THROWS_WITH(linear(Tensor::empty({0, 4}), w), Contains("no rows"));
  const Tensor mean = Tensor::zeros({3}), var = Tensor::ones({3});
  for (bool training : {true, false}) {
    REQUIRE_THROWS_WITH(batch_norm2d(Tensor::empty({0, 3, 4, 4}), Tensor::ones({3}), Tensor::zeros({3}), mean, var,
                                     training, 0.1, 1e-5),
                        Contains("batch_norm2d") && Contains("empty"));
    REQUIRE_THROWS_WITH(batch_norm2d(Tensor::empty({0, 3}), Tensor(), Tensor(), mean, var, training, 0.1, 1e-5),
                        Contains("empty"));
  }
  nn::BatchNorm2d bn(3);
  bn.eval();
  REQUIRE_THROWS_WITH(bn(Tensor::empty({0, 3, 2, 2})), Contains("empty"));
}

TEST_CASE("nn: a small conv net learns (loss falls)", "[nn][training]") {
  Rng gen(3);
  nn::Sequential net;
  net.emplace<nn::Conv2d>(gen, 1, 4, 3, 1, 1, false);
  net.emplace<nn::BatchNorm2d>(4);
  net.emplace<nn::LeakyReLU>(0.2);
  net.emplace<nn::Flatten>();
  net.emplace<nn::Linear>(gen, 4 * 6 * 6, 1);
  optim::Adam adam(net.parameters(), {0.01, 0.9, 0.999, 1e-8, 0});
  const Tensor x = Tensor::randn({16, 1, 6, 6}, gen);
  std::vector<float> labels;
  const std::vector<double> xv = x.to_vector();
  for (int i = 0; i < 16; ++i) labels.push_back(xv[size_t(i * 36)] > 0 ? 1.0f : 0.0f);  // learnable: top-left pixel
  const Tensor y = Tensor::from_vector(labels, {16, 1});
  double first = 0, last = 0;
  for (int step = 0; step < 60; ++step) {
    adam.zero_grad();
    Tensor loss = bce_with_logits(net(x), y);
    loss.backward();
    adam.step();
    (step == 0 ? first : last) = loss.item();
  }
  INFO("first loss " << first << ", last loss " << last);
  CHECK(last < 0.2 * first);
}

TEMPLATE_TEST_CASE("nn: batch_norm2d_relu equals batch_norm2d then relu / leaky_relu bit for bit on the cpu",
                   "[nn][batch_norm2d]", float, double) {
  const DType dtype = std::is_same_v<TestType, float> ? DType::float32 : DType::float64;
  Rng gen(11);
  for (double slope : {0.0, 0.2}) {
    for (bool training : {true, false}) {
      CAPTURE(slope, training);
      const Tensor x0 = Tensor::randn({4, 3, 5, 6}, gen, dtype), g0 = Tensor::rand({3}, gen, dtype, Device::cpu(), 0.5, 1.5),
                   b0 = Tensor::randn({3}, gen, dtype), dy = Tensor::randn({4, 3, 5, 6}, gen, dtype);
      const Tensor rm0 = Tensor::randn({3}, gen, dtype), rv0 = Tensor::rand({3}, gen, dtype, Device::cpu(), 0.5, 2);
      Tensor x[2], g[2], b[2], rm[2], rv[2], y[2];
      for (int k = 0; k < 2; ++k) {
        x[k] = x0.clone(), g[k] = g0.clone(), b[k] = b0.clone(), rm[k] = rm0.clone(), rv[k] = rv0.clone();
        for (Tensor* t : {&x[k], &g[k], &b[k]}) t->requires_grad_(true);
      }
      const Tensor bn = batch_norm2d(x[0], g[0], b[0], rm[0], rv[0], training);
      y[0] = slope > 0 ? leaky_relu(bn, slope) : relu(bn);
      y[1] = batch_norm2d_relu(x[1], g[1], b[1], rm[1], rv[1], training, 0.1, 1e-5, slope);
      CHECK(y[1].grad_fn()->name() == "batch_norm2d_relu");
      y[0].backward(dy);
      y[1].backward(dy);
      CHECK(y[1].to_vector() == y[0].to_vector());
      CHECK(x[1].grad().to_vector() == x[0].grad().to_vector());
      CHECK(g[1].grad().to_vector() == g[0].grad().to_vector());
      CHECK(b[1].grad().to_vector() == b[0].grad().to_vector());
      CHECK(rm[1].to_vector() == rm[0].to_vector());
      CHECK(rv[1].to_vector() == rv[0].to_vector());
    }
  }
  REQUIRE_THROWS_WITH(batch_norm2d_relu(Tensor::ones({2, 3}), {}, {}, {}, {}, true, 0.1, 1e-5, -0.1),
                      Contains("negative_slope"));
}

TEST_CASE("nn: Sequential runs a BatchNorm2d and the ReLU or LeakyReLU after it as one op", "[nn][batch_norm2d]") {
  Rng gen(12);
  nn::Sequential net;
  net.emplace<nn::Conv2d>(gen, 2, 3, 3, 1, 1);
  net.emplace<nn::BatchNorm2d>(3);
  net.emplace<nn::ReLU>();
  net.emplace<nn::BatchNorm2d>(3);
  net.emplace<nn::LeakyReLU>(0.2);
  net.emplace<nn::BatchNorm2d>(3);
  net.emplace<nn::LeakyReLU>(-0.5);  // a negative slope cannot be fused: runs as its own op
  net.emplace<nn::BatchNorm2d>(3);    // last: nothing to fuse with
  const Tensor x = Tensor::randn({2, 2, 5, 5}, gen);
  std::vector<std::string> ops;
  Tensor h = net(x);
  for (auto node = h.grad_fn(); node; node = node->inputs().empty() ? nullptr : node->inputs()[0].grad_fn())
    ops.push_back(node->name());
  CHECK(ops == std::vector<std::string>{"batch_norm2d", "leaky_relu", "batch_norm2d", "batch_norm2d_relu",
                                        "batch_norm2d_relu", "conv2d"});
}
