// CUDA activations against the CPU backend on the same random inputs, odd sizes well above 1024 elements.
// Tolerances: relu / leaky_relu select, so exact; the backward passes avoid FMA contraction and so round like
// the CPU (rtol 1e-6, not 0, in case a CPU build ever contracts them); tanh / sigmoid forward: CUDA's tanhf /
// expf are within 2 ulp, glibc's within 1-2: rtol 1e-5, plus a tiny atol for sigmoid's subnormal results near
// -100, where one ulp is a large relative step.
#include <cmath>
#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

#include "activation.h"
#include "cuda/check.h"
#include "cuda_context.h"
#include "cuda_test_support.h"
#include "support/compare.h"

using namespace cudagan;
using test::DeviceBuffer;
using test::TestContext;

namespace {

constexpr int64_t kN = 100003;  // odd, ~98 blocks of 1024

// Random values in [-6, 6] with the special points planted at the front: 0, -0, +-100, +-1e-30.
std::vector<float> activation_input(int64_t n, uint64_t seed) {
  auto x = test::random_vector<float>(n, seed, -6.0, 6.0);
  const float special[] = {0.0f, -0.0f, 100.0f, -100.0f, 1e-30f, -1e-30f, 20.0f, -20.0f};
  for (size_t i = 0; i < std::size(special) && i < x.size(); ++i) x[i] = special[i];
  return x;
}

}  // namespace

TEST_CASE("cuda activations match the cpu", "[cuda][activation]") {
  TestContext tc;
  const float slope = 0.2f;
  const auto x = activation_input(kN, 101);
  const auto dy = test::random_vector<float>(kN, 102);
  DeviceBuffer<float> x_d(x), dy_d(dy), y_d(static_cast<size_t>(kN)), dx_d(static_cast<size_t>(kN));
  for (Activation a : {Activation::relu, Activation::leaky_relu, Activation::tanh, Activation::sigmoid}) {
    const std::string what = activation_name(a);
    std::vector<float> y(static_cast<size_t>(kN)), dx(static_cast<size_t>(kN));
    cpu::activation_forward<float>(a, x.data(), y.data(), kN, slope);
    cuda::activation_forward(tc.ctx(), a, x_d.get(), y_d.get(), kN, slope);
    const bool exact = a == Activation::relu || a == Activation::leaky_relu;
    if (exact)
      test::require_equal(y_d.download(), y, what + " forward");
    else
      test::require_close(y_d.download(), y, 1e-30, 1e-5, what + " forward");

    // Backward from the CPU's y (tanh, sigmoid read y), so both sides see identical inputs.
    DeviceBuffer<float> y_cpu_d(y);
    cpu::activation_backward<float>(a, x.data(), y.data(), dy.data(), dx.data(), kN, slope);
    cuda::activation_backward(tc.ctx(), a, exact ? x_d.get() : nullptr, exact ? nullptr : y_cpu_d.get(),
                              dy_d.get(), dx_d.get(), kN, slope);
    test::require_close(dx_d.download(), dx, 0.0, 1e-6, what + " backward");
  }
}

TEST_CASE("cuda activations work in place", "[cuda][activation]") {
  TestContext tc;
  const auto x = activation_input(5003, 111);
  DeviceBuffer<float> xy(x);
  cuda::activation_forward(tc.ctx(), Activation::leaky_relu, xy.get(), xy.get(), 5003, 0.2f);
  std::vector<float> y(x.size());
  cpu::activation_forward<float>(Activation::leaky_relu, x.data(), y.data(), 5003, 0.2f);
  test::require_equal(xy.download(), y, "leaky_relu in place");

  // Backward in place, dx over dy (how the engine reuses a gradient buffer), for each activation; tanh and
  // sigmoid read y, the others x.
  const auto dy = test::random_vector<float>(5003, 112);
  for (Activation a : {Activation::relu, Activation::leaky_relu, Activation::tanh, Activation::sigmoid}) {
    std::vector<float> fwd(x.size()), dx(x.size());
    cpu::activation_forward<float>(a, x.data(), fwd.data(), 5003, 0.2f);
    cpu::activation_backward<float>(a, x.data(), fwd.data(), dy.data(), dx.data(), 5003, 0.2f);
    DeviceBuffer<float> x_d(x), y_d(fwd), grad(dy);
    cuda::activation_backward(tc.ctx(), a, x_d.get(), y_d.get(), grad.get(), grad.get(), 5003, 0.2f);
    test::require_close(grad.download(), dx, 0.0, 1e-6, std::string(activation_name(a)) + " backward in place");
  }
}
