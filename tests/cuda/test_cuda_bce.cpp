// CUDA BCE-with-logits against the CPU backend, also at logits of +-100: both backends accumulate the loss in
// double and round once (rtol 1e-6).
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "bce.h"
#include "cuda/check.h"
#include "cuda_context.h"
#include "cuda_test_support.h"
#include "support/compare.h"

using namespace cudagan;
using test::DeviceBuffer;
using test::TestContext;

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
