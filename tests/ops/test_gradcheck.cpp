// Every differentiable op, and a composite network, checked against finite differences in float64
// (central differences, eps 1e-6, atol 1e-5, rtol 1e-3).
#include <catch2/catch.hpp>

#include "support/gradcheck.h"

using namespace cudagan;
using cudagan::test::grad_input;
using cudagan::test::gradcheck;

TEST_CASE("conv2d gradcheck", "[conv2d][gradcheck]") {
  struct Case { int n, c, h, w, k, kernel, stride, pad; bool bias; };
  const Case cases[] = {{1, 2, 5, 6, 3, 3, 1, 1, true}, {2, 3, 7, 5, 2, 4, 2, 1, false},
                        {2, 1, 6, 6, 2, 1, 1, 0, true}, {1, 2, 5, 4, 3, 3, 2, 2, true}};
  uint64_t seed = 1;
  for (const Case& c : cases) {
    CAPTURE(c.n, c.c, c.h, c.w, c.k, c.kernel, c.stride, c.pad, c.bias);
    std::vector<Tensor> in{grad_input({c.n, c.c, c.h, c.w}, seed++), grad_input({c.k, c.c, c.kernel, c.kernel}, seed++)};
    if (c.bias) in.push_back(grad_input({c.k}, seed++));
    gradcheck([&](const std::vector<Tensor>& t) { return conv2d(t[0], t[1], c.bias ? t[2] : Tensor(), c.stride, c.pad); },
              in, "conv2d");
  }
}

TEST_CASE("conv_transpose2d gradcheck", "[conv_transpose2d][gradcheck]") {
  struct Case { int n, c, h, w, k, kernel, stride, pad; bool bias; };
  const Case cases[] = {{1, 2, 3, 4, 3, 4, 2, 1, true}, {2, 3, 4, 3, 2, 3, 1, 0, false},
                        {1, 2, 1, 1, 3, 4, 1, 0, false}, {2, 2, 3, 3, 2, 3, 2, 2, true}};
  uint64_t seed = 100;
  for (const Case& c : cases) {
    CAPTURE(c.n, c.c, c.h, c.w, c.k, c.kernel, c.stride, c.pad, c.bias);
    std::vector<Tensor> in{grad_input({c.n, c.c, c.h, c.w}, seed++), grad_input({c.c, c.k, c.kernel, c.kernel}, seed++)};
    if (c.bias) in.push_back(grad_input({c.k}, seed++));
    gradcheck([&](const std::vector<Tensor>& t) {
      return conv_transpose2d(t[0], t[1], c.bias ? t[2] : Tensor(), c.stride, c.pad);
    }, in, "conv_transpose2d");
  }
}

TEST_CASE("batch_norm2d gradcheck, training", "[batch_norm2d][gradcheck]") {
  for (bool affine : {true, false}) {
    CAPTURE(affine);
    std::vector<Tensor> in{grad_input({3, 4, 3, 5}, 7)};
    if (affine) {
      in.push_back(grad_input({4}, 8, 0.5, 1.5));
      in.push_back(grad_input({4}, 9));
    }
    Tensor rm = Tensor::zeros({4}, DType::float64), rv = Tensor::ones({4}, DType::float64);
    gradcheck([&](const std::vector<Tensor>& t) {
      return batch_norm2d(t[0], affine ? t[1] : Tensor(), affine ? t[2] : Tensor(), rm, rv, true);
    }, in, "batch_norm2d train");
  }
  // [N, C] input (batchnorm after a linear layer), and batch 1 with spatial extent.
  gradcheck([](const std::vector<Tensor>& t) { return batch_norm2d(t[0], t[1], t[2], {}, {}, true); },
            {grad_input({5, 3}, 10), grad_input({3}, 11), grad_input({3}, 12)}, "batch_norm2d [N, C]");
  gradcheck([](const std::vector<Tensor>& t) { return batch_norm2d(t[0], t[1], t[2], {}, {}, true); },
            {grad_input({1, 2, 3, 3}, 13), grad_input({2}, 14), grad_input({2}, 15)}, "batch_norm2d batch 1");
}

TEST_CASE("batch_norm2d gradcheck, evaluation", "[batch_norm2d][gradcheck]") {
  const Tensor rm = Tensor::from_vector(std::vector<double>{0.1, -0.3, 0.5}, {3});
  const Tensor rv = Tensor::from_vector(std::vector<double>{0.8, 1.5, 0.3}, {3});
  gradcheck([&](const std::vector<Tensor>& t) { return batch_norm2d(t[0], t[1], t[2], rm, rv, false); },
            {grad_input({2, 3, 2, 3}, 20), grad_input({3}, 21), grad_input({3}, 22)}, "batch_norm2d eval");
}

TEST_CASE("batch_norm2d_relu gradcheck, training and evaluation", "[batch_norm2d][gradcheck]") {
  const Tensor rm = Tensor::from_vector(std::vector<double>{0.1, -0.3, 0.5}, {3});
  const Tensor rv = Tensor::from_vector(std::vector<double>{0.8, 1.5, 0.3}, {3});
  for (double slope : {0.0, 0.2}) {
    for (bool training : {true, false}) {
      CAPTURE(slope, training);
      Tensor m = rm.clone(), v = rv.clone();
      gradcheck([&](const std::vector<Tensor>& t) {
        return batch_norm2d_relu(t[0], t[1], t[2], m, v, training, 0.1, 1e-5, slope);
      }, {grad_input({3, 3, 3, 4}, 23), grad_input({3}, 24, 0.5, 1.5), grad_input({3}, 25)}, "batch_norm2d_relu");
    }
  }
}

TEST_CASE("activations gradcheck", "[activation][gradcheck]") {
  const Shape shape{2, 3, 4, 5};
  gradcheck([](const std::vector<Tensor>& t) { return relu(t[0]); }, {grad_input(shape, 30)}, "relu");
  gradcheck([](const std::vector<Tensor>& t) { return leaky_relu(t[0], 0.2); }, {grad_input(shape, 31)},
            "leaky_relu");
  gradcheck([](const std::vector<Tensor>& t) { return cudagan::tanh(t[0]); }, {grad_input(shape, 32, -3, 3)},
            "tanh");
  gradcheck([](const std::vector<Tensor>& t) { return sigmoid(t[0]); }, {grad_input(shape, 33, -5, 5)}, "sigmoid");
}

TEST_CASE("bce_with_logits gradcheck", "[bce_with_logits][gradcheck]") {
  const Tensor targets = Tensor::from_vector(test::random_vector<double>(12, 40, 0.0, 1.0), {12});
  const Tensor labels = Tensor::from_vector(std::vector<double>{1, 0, 1, 1, 0, 0}, {6});
  gradcheck([&](const std::vector<Tensor>& t) { return bce_with_logits(t[0], targets); },
            {grad_input({12}, 41, -6, 6)}, "bce_with_logits soft targets");
  gradcheck([&](const std::vector<Tensor>& t) { return bce_with_logits(t[0], labels); },
            {grad_input({6}, 42, -3, 3)}, "bce_with_logits labels");
}

TEST_CASE("cross_entropy_with_logits gradcheck", "[cross_entropy_with_logits][gradcheck]") {
  // Soft rows (weights in [0, 1], not summing to 1: the sum_k t factor of the gradient shows) and one-hot rows.
  const Tensor targets = Tensor::from_vector(test::random_vector<double>(3 * 5, 45, 0.0, 1.0), {3, 5});
  const Tensor labels = Tensor::from_vector(std::vector<double>{0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0}, {4, 3});
  gradcheck([&](const std::vector<Tensor>& t) { return cross_entropy_with_logits(t[0], targets); },
            {grad_input({3, 5}, 46, -4, 4)}, "cross_entropy_with_logits soft targets");
  gradcheck([&](const std::vector<Tensor>& t) { return cross_entropy_with_logits(t[0], labels); },
            {grad_input({4, 3}, 47, -3, 3)}, "cross_entropy_with_logits labels");
}

TEST_CASE("linear gradcheck", "[linear][gradcheck]") {
  gradcheck([](const std::vector<Tensor>& t) { return linear(t[0], t[1], t[2]); },
            {grad_input({4, 5}, 50), grad_input({3, 5}, 51), grad_input({3}, 52)}, "linear");
  gradcheck([](const std::vector<Tensor>& t) { return linear(t[0], t[1]); },
            {grad_input({1, 7}, 53), grad_input({2, 7}, 54)}, "linear without bias");
}

TEST_CASE("arithmetic and shape ops gradcheck", "[arith][gradcheck]") {
  gradcheck([](const std::vector<Tensor>& t) { return add(t[0], t[1]); },
            {grad_input({3, 4}, 60), grad_input({3, 4}, 61)}, "add");
  gradcheck([](const std::vector<Tensor>& t) { return mul(t[0], t[1]); },
            {grad_input({3, 4}, 62), grad_input({3, 4}, 63)}, "mul");
  gradcheck([](const std::vector<Tensor>& t) { return mul(t[0], t[0]); }, {grad_input({5}, 64)}, "mul x*x");
  gradcheck([](const std::vector<Tensor>& t) { return scale(t[0], -2.5); }, {grad_input({2, 3}, 65)}, "scale");
  gradcheck([](const std::vector<Tensor>& t) { return sum(t[0]); }, {grad_input({2, 3, 2}, 66)}, "sum");
  gradcheck([](const std::vector<Tensor>& t) { return mean(t[0]); }, {grad_input({2, 3, 2}, 67)}, "mean");
  gradcheck([](const std::vector<Tensor>& t) { return reshape(t[0], {3, -1}); }, {grad_input({2, 3, 2}, 68)},
            "reshape");
  gradcheck([](const std::vector<Tensor>& t) { return cat({t[0], t[1], t[0]}); },
            {grad_input({2, 3, 2}, 69), grad_input({1, 3, 2}, 70)}, "cat");
}

// The composite of the issue: conv2d -> batch_norm2d -> leaky_relu -> conv_transpose2d -> tanh ->
// bce_with_logits, every parameter checked at once.
TEST_CASE("composite network gradcheck", "[composite][gradcheck]") {
  const Tensor target_values = Tensor::from_vector(test::random_vector<double>(2 * 2 * 6 * 6, 80, 0.0, 1.0), {2, 2, 6, 6});
  Tensor rm = Tensor::zeros({4}, DType::float64), rv = Tensor::ones({4}, DType::float64);
  auto net = [&](const std::vector<Tensor>& t) {
    Tensor h = conv2d(t[0], t[1], Tensor(), 2, 1);                 // [2, 4, 3, 3]
    h = batch_norm2d(h, t[2], t[3], rm, rv, true);
    h = leaky_relu(h, 0.2);
    h = conv_transpose2d(h, t[4], Tensor(), 2, 1);                 // [2, 2, 6, 6]
    return bce_with_logits(cudagan::tanh(h), target_values);
  };
  gradcheck(net,
            {grad_input({2, 3, 6, 6}, 81), grad_input({4, 3, 4, 4}, 82), grad_input({4}, 83, 0.5, 1.5),
             grad_input({4}, 84), grad_input({4, 2, 4, 4}, 85)},
            "conv2d -> batch_norm2d -> leaky_relu -> conv_transpose2d -> tanh -> bce_with_logits");
}
