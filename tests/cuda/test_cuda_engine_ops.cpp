// Engine ops on the GPU against the same ops on the CPU, through autograd: linear, cat, relu, sigmoid, mean and
// eval-mode batchnorm, each forward and backward from the same random inputs and output gradient. The
// kernel-level tests compare the kernels; these catch what the op layer adds (shapes, strides of views,
// which kernel an op dispatches to, the recorded backward).
#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

#include "cudagan/cudagan.h"
#include "support/compare.h"

using namespace cudagan;
using Catch::Matchers::Contains;

namespace {

const Device kGpu = Device::cuda(0);
using Op = std::function<Tensor(const std::vector<Tensor>&)>;

// out = op(inputs) on each device, then backward from one random output gradient; compares the outputs and
// every input's gradient, each against its own scale (rel: the op's fp32 rounding, stated by the caller).
void compare_op(const Op& op, const std::vector<Tensor>& host_inputs, double rel, const std::string& what) {
  std::vector<Tensor> cpu_in, gpu_in;
  for (const Tensor& t : host_inputs) {
    cpu_in.push_back(t.clone());
    gpu_in.push_back(t.to(kGpu));
    cpu_in.back().requires_grad_(true);
    gpu_in.back().requires_grad_(true);
  }
  const Tensor yc = op(cpu_in), yg = op(gpu_in);
  REQUIRE(yg.device() == kGpu);
  REQUIRE(yg.shape() == yc.shape());
  test::require_close_to_scale(yg.to_vector(), yc.to_vector(), rel, what + " forward");
  Rng gen(99);
  const Tensor dy = Tensor::randn(yc.shape(), gen);
  yc.backward(dy);
  yg.backward(dy.to(kGpu));
  for (size_t i = 0; i < cpu_in.size(); ++i) {
    REQUIRE(gpu_in[i].grad().defined());
    test::require_close_to_scale(gpu_in[i].grad().to_vector(), cpu_in[i].grad().to_vector(), rel,
                                 what + " grad of input " + std::to_string(i));
  }
}

}  // namespace

TEST_CASE("cuda engine ops: linear with and without bias matches the cpu", "[cuda][linear]") {
  Rng gen(1);
  // 1029 rows (more than one block of rows), 67 inputs: each output a dot of 67 terms, each weight gradient
  // one of 1029; 1029 * 2^-24 < 1e-4.
  const Tensor x = Tensor::randn({1029, 67}, gen), w = Tensor::randn({33, 67}, gen), b = Tensor::randn({33}, gen);
  compare_op([](const std::vector<Tensor>& t) { return linear(t[0], t[1], t[2]); }, {x, w, b}, 1e-4, "linear");
  compare_op([](const std::vector<Tensor>& t) { return linear(t[0], t[1]); }, {x, w}, 1e-4, "linear no bias");
}

TEST_CASE("cuda engine ops: cat, relu and sigmoid match the cpu", "[cuda][cat][activation]") {
  Rng gen(2);
  const Tensor a = Tensor::randn({3, 5, 7, 11}, gen), b = Tensor::randn({1, 5, 7, 11}, gen),
               c = Tensor::randn({4, 5, 7, 11}, gen);
  // cat moves data: exact. relu selects: exact. sigmoid: expf within 2 ulp on either side.
  compare_op([](const std::vector<Tensor>& t) { return cat(t); }, {a, b, c}, 0.0, "cat");
  compare_op([](const std::vector<Tensor>& t) { return relu(t[0]); }, {c}, 0.0, "relu");
  compare_op([](const std::vector<Tensor>& t) { return sigmoid(t[0]); }, {c}, 1e-6, "sigmoid");
  // Through a view: relu of a reshaped cat, so the op reads storage it does not own from its start.
  compare_op([](const std::vector<Tensor>& t) { return relu(reshape(cat(t), {-1, 77})); }, {a, b}, 0.0,
             "relu of a reshaped cat");
}

TEST_CASE("cuda engine ops: mean matches the cpu", "[cuda][mean]") {
  Rng gen(3);
  // Both backends accumulate in double and round once.
  compare_op([](const std::vector<Tensor>& t) { return mean(t[0]); }, {Tensor::randn({1000003}, gen, DType::float32,
                                                                                     Device::cpu(), 0.5)},
             1e-6, "mean of 1000003");
  compare_op([](const std::vector<Tensor>& t) { return mean(t[0]); }, {Tensor::randn({1}, gen)}, 0.0, "mean of 1");
  REQUIRE_THROWS_WITH(mean(Tensor::empty({0}, DType::float32, kGpu)), Contains("empty"));
}

TEST_CASE("cuda engine ops: eval-mode batchnorm matches the cpu, also past 65535 channels", "[cuda][batch_norm2d]") {
  Rng gen(4);
  // 70001 channels: more than one grid dimension holds, so the kernels must loop over channel blocks.
  for (const Shape& shape : {Shape{5, 7, 9, 11}, Shape{2, 70001, 1, 3}, Shape{6, 70001}}) {
    const int64_t c = shape[1];
    const Tensor mean_host = Tensor::randn({c}, gen), var_host = Tensor::rand({c}, gen, DType::float32,
                                                                              Device::cpu(), 0.5, 2.0);
    const Tensor x = Tensor::randn(shape, gen), gamma = Tensor::rand({c}, gen, DType::float32, Device::cpu(), 0.5, 1.5),
                 beta = Tensor::randn({c}, gen);
    const Tensor mean_gpu = mean_host.to(kGpu), var_gpu = var_host.to(kGpu);
    compare_op(
        [&](const std::vector<Tensor>& t) {
          const bool on_gpu = t[0].device().is_cuda();
          return batch_norm2d(t[0], t[1], t[2], on_gpu ? mean_gpu : mean_host, on_gpu ? var_gpu : var_host,
                              /*training=*/false);
        },
        {x, gamma, beta}, 1e-5, "batchnorm eval " + shape_str(shape));
    // Eval mode leaves the running statistics alone.
    CHECK(mean_gpu.to_vector() == mean_host.to_vector());
  }
}

TEST_CASE("cuda engine ops: batch_norm2d_relu (the fused kernels in training) matches the cpu", "[cuda][batch_norm2d]") {
  Rng gen(5);
  for (double slope : {0.0, 0.2}) {
    for (const Shape& shape : {Shape{5, 7, 9, 11}, Shape{16, 64, 8, 8}}) {
      const int64_t c = shape[1];
      const Tensor x = Tensor::randn(shape, gen), gamma = Tensor::rand({c}, gen, DType::float32, Device::cpu(), 0.5, 1.5),
                   beta = Tensor::randn({c}, gen);
      // The GPU side fuses the activation into batchnorm's passes; the CPU runs the two kernels. Both reduce
      // over N*H*W in double and round once: the 1e-5 of the batchnorm kernels' own comparison.
      compare_op([slope](const std::vector<Tensor>& t) {
        return batch_norm2d_relu(t[0], t[1], t[2], {}, {}, /*training=*/true, 0.1, 1e-5, slope);
      }, {x, gamma, beta}, 1e-5, "batch_norm2d_relu slope " + std::to_string(slope) + " " + shape_str(shape));
    }
  }
}
