// CUDA activations, element-wise arithmetic, bias and BCE-with-logits against the CPU backend on the same
// random inputs. Sizes are odd and well above 1024 elements (several blocks, and for the reductions several
// partials). Tolerances:
//   - selections and single IEEE operations (relu, leaky_relu, add, mul, scale, fill, copy, add_bias): exact;
//   - axpy and the activation backward passes: the CUDA code avoids FMA contraction and so rounds like the
//   CPU;
//     rtol 1e-6 (not 0) in case a CPU build ever contracts them;
//   - tanh / sigmoid forward: CUDA's tanhf / expf are within 2 ulp, glibc's within 1-2: rtol 1e-5, plus a
//   tiny
//     atol for sigmoid's subnormal results near -100 where one ulp is a large relative step;
//   - reductions (sum, bias_backward, BCE loss): both backends accumulate in double and round once: rtol
//   1e-6.
#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "activation.h"
#include "bce.h"
#include "bias.h"
#include "cuda/check.h"
#include "cuda_context.h"
#include "cuda_test_support.h"
#include "elementwise.h"
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

TEST_CASE("cuda element-wise arithmetic matches the cpu", "[cuda][elementwise]") {
  TestContext tc;
  const auto a = test::random_vector<float>(kN, 121), b = test::random_vector<float>(kN, 122);
  DeviceBuffer<float> a_d(a), b_d(b), out_d(static_cast<size_t>(kN));
  std::vector<float> out(static_cast<size_t>(kN));

  cuda::add(tc.ctx(), a_d.get(), b_d.get(), out_d.get(), kN);
  cpu::add<float>(a.data(), b.data(), out.data(), kN);
  test::require_equal(out_d.download(), out, "add");

  cuda::mul(tc.ctx(), a_d.get(), b_d.get(), out_d.get(), kN);
  cpu::mul<float>(a.data(), b.data(), out.data(), kN);
  test::require_equal(out_d.download(), out, "mul");

  cuda::scale(tc.ctx(), a_d.get(), -1.7f, out_d.get(), kN);
  cpu::scale<float>(a.data(), -1.7f, out.data(), kN);
  test::require_equal(out_d.download(), out, "scale");

  auto y = b;
  DeviceBuffer<float> y_d(y);
  cuda::axpy(tc.ctx(), 0.37f, a_d.get(), y_d.get(), kN);
  cpu::axpy<float>(0.37f, a.data(), y.data(), kN);
  test::require_close(y_d.download(), y, 1e-7, 1e-6, "axpy");

  cuda::fill(tc.ctx(), out_d.get(), 2.5f, kN);
  test::require_equal(out_d.download(), std::vector<float>(static_cast<size_t>(kN), 2.5f), "fill");

  cuda::copy(tc.ctx(), out_d.get(), a_d.get(), kN);
  test::require_equal(out_d.download(), a, "copy");

  // In place: out aliases an input.
  cuda::add(tc.ctx(), a_d.get(), b_d.get(), a_d.get(), kN);
  cpu::add<float>(a.data(), b.data(), out.data(), kN);
  test::require_equal(a_d.download(), out, "add in place");
}

TEST_CASE("cuda sum is deterministic and matches the cpu", "[cuda][elementwise]") {
  TestContext tc, other;
  // 1 element, one partial block, and enough for the full 1024 partials (each thread then takes several).
  for (int64_t n : {int64_t(1), int64_t(1000), kN, int64_t(1000003), int64_t(3) << 20}) {
    const auto x = test::random_vector<float>(n, 131, -1.0, 3.0);
    DeviceBuffer<float> x_d(x), out_d(1), again_d(1);
    cuda::sum(tc.ctx(), x_d.get(), n, out_d.get());
    // The repeat runs on another stream with another workspace, poisoned with NaN first: a sum that read a
    // partial it did not write, or whose order of additions depended on timing (atomics), would differ.
    other.poison_workspace();
    cuda::sum(other.ctx(), x_d.get(), n, again_d.get());
    float expected = 0;
    cpu::sum<float>(x.data(), n, &expected);
    test::require_close(out_d.download(), std::vector<float>{expected}, 0.0, 1e-6,
                        "sum n=" + std::to_string(n));
    test::require_equal(again_d.download(), out_d.download(), "sum twice n=" + std::to_string(n));
  }
  DeviceBuffer<float> out_d(std::vector<float>{42.0f});
  cuda::sum(tc.ctx(), nullptr, 0, out_d.get());
  test::require_equal(out_d.download(), std::vector<float>{0.0f}, "sum of nothing");
}

TEST_CASE("cuda sum reports a workspace too small for its partials", "[cuda][elementwise]") {
  TestContext tc(16);  // room for 2 partials; n needs more
  DeviceBuffer<float> x(static_cast<size_t>(kN)), out(1);
  REQUIRE_THROWS_AS(cuda::sum(tc.ctx(), x.get(), kN, out.get()), cudagan::InvalidArgument);
}

TEST_CASE("cuda bias forward and backward match the cpu", "[cuda][bias]") {
  TestContext tc;
  struct Shape {
    int64_t outer, channels, inner;
  };
  // conv-like, linear-like (inner 1, many channels), and more channels than a grid's y dimension (65535).
  for (Shape s :
       {Shape{3, 5, 1031}, Shape{64, 1024, 1}, Shape{2, 70001, 3}, Shape{1, 1, 1}, Shape{7, 3, 4099}}) {
    const std::string what = "bias [" + std::to_string(s.outer) + ", " + std::to_string(s.channels) + ", " +
                             std::to_string(s.inner) + "]";
    const int64_t n = s.outer * s.channels * s.inner;
    const auto bias = test::random_vector<float>(s.channels, 141);
    auto y = test::random_vector<float>(n, 142);
    DeviceBuffer<float> bias_d(bias), y_d(y), dbias_d(size_t(s.channels));
    cuda::add_bias(tc.ctx(), bias_d.get(), y_d.get(), s.outer, s.channels, s.inner);
    cpu::add_bias<float>(bias.data(), y.data(), s.outer, s.channels, s.inner);
    test::require_equal(y_d.download(), y, what + " add_bias");

    dbias_d.fill_bytes(0xFF);
    std::vector<float> dbias(size_t(s.channels));
    cuda::bias_backward(tc.ctx(), y_d.get(), dbias_d.get(), s.outer, s.channels, s.inner);
    cpu::bias_backward<float>(y.data(), dbias.data(), s.outer, s.channels, s.inner);
    test::require_close(dbias_d.download(), dbias, 1e-6, 1e-6, what + " bias_backward");
  }
}

TEST_CASE("cuda bce with logits matches the cpu, also at logits +-100", "[cuda][bce]") {
  TestContext tc;
  for (int64_t n : {int64_t(1), int64_t(4099), int64_t(1000003)}) {
    const std::string what = "bce n=" + std::to_string(n);
    auto z = test::random_vector<float>(n, 151, -8.0, 8.0);
    auto t = test::random_vector<float>(n, 152, 0.0, 1.0);
    // Saturated logits with agreeing and disagreeing hard targets, and soft targets.
    const float zs[] = {100.0f, -100.0f, 100.0f, -100.0f, 100.0f, -100.0f, 0.0f};
    const float ts[] = {1.0f, 0.0f, 0.0f, 1.0f, 0.5f, 0.5f, 0.5f};
    for (size_t i = 0; i < std::size(zs) && i < size_t(n); ++i) z[i] = zs[i], t[i] = ts[i];
    for (size_t i = std::size(zs); i < size_t(n); i += 3)
      t[i] = t[i] < 0.5f ? 0.0f : 1.0f;  // some hard targets
    DeviceBuffer<float> z_d(z), t_d(t), loss_d(1), dz_d(static_cast<size_t>(n)),
        grad_d(std::vector<float>{0.75f});

    float loss = 0;
    cpu::bce_with_logits_forward<float>(z.data(), t.data(), n, &loss);
    cuda::bce_with_logits_forward(tc.ctx(), z_d.get(), t_d.get(), n, loss_d.get());
    const auto loss_gpu = loss_d.download();
    REQUIRE(std::isfinite(loss_gpu[0]));
    // atol: with n = 1 the loss is log1p(e^-100) ~ 4e-44, a float subnormal.
    test::require_close(loss_gpu, std::vector<float>{loss}, 1e-30, 1e-6, what + " loss");

    // dz = g (sigmoid(z) - t): sigmoid differs by a few ulps between the backends, which sigmoid - t can
    // expose as a large relative error when t ~ sigmoid(z): atol of 1e-6 |g| covers that.
    std::vector<float> dz(static_cast<size_t>(n));
    cpu::bce_with_logits_backward<float>(z.data(), t.data(), n, 0.75f, dz.data());
    const double atol = 1e-6 * 0.75 / double(n);
    cuda::bce_with_logits_backward(tc.ctx(), z_d.get(), t_d.get(), n, 0.75f, dz_d.get());
    test::require_close(dz_d.download(), dz, atol, 1e-5, what + " dlogits (host grad)");
    dz_d.fill_bytes(0xFF);
    cuda::bce_with_logits_backward(tc.ctx(), z_d.get(), t_d.get(), n, static_cast<const float*>(grad_d.get()),
                                   dz_d.get());
    test::require_close(dz_d.download(), dz, atol, 1e-5, what + " dlogits (device grad)");
  }
}

TEST_CASE("cuda bce with logits of nothing is NaN, as on the cpu", "[cuda][bce]") {
  TestContext tc;
  DeviceBuffer<float> loss_d(std::vector<float>{1.0f});
  cuda::bce_with_logits_forward(tc.ctx(), nullptr, nullptr, 0, loss_d.get());
  REQUIRE(std::isnan(loss_d.download()[0]));
}
