// CUDA softmax cross-entropy on logits against the CPU backend, also at logits of +-100, for K below, at and
// above the warp width: both backends accumulate the loss in double and round once (rtol 1e-6).
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "cross_entropy.h"
#include "cuda/check.h"
#include "cuda_context.h"
#include "cuda_test_support.h"
#include "support/compare.h"

using namespace cudagan;
using test::DeviceBuffer;
using test::TestContext;

TEST_CASE("cuda cross entropy with logits matches the cpu, also at logits +-100", "[cuda][cross_entropy]") {
  TestContext tc;
  struct Size {
    int64_t n, k;
  };
  // 1 x 1; rows shorter than, equal to and longer than a warp; 20001 rows (2501 blocks' worth of 8 rows,
  // clamped to the forward's 1024 partials: the warps loop over rows); 3 x 4099 (a lane walks 129 classes).
  for (const Size s : {Size{1, 1}, Size{7, 3}, Size{33, 32}, Size{33, 129}, Size{20001, 10}, Size{3, 4099}}) {
    const int64_t n = s.n, k = s.k, count = n * k;
    const std::string what = "cross entropy " + std::to_string(n) + "x" + std::to_string(k);
    auto z = test::random_vector<float>(count, 161, -8.0, 8.0);
    auto t = test::random_vector<float>(count, 162, 0.0, 1.0);  // unnormalized soft rows
    // Saturated logits; every third row one-hot, every third a probability row.
    const float zs[] = {100.0f, -100.0f, 100.0f, -100.0f, 0.0f};
    for (size_t i = 0; i < std::size(zs) && i < size_t(count); ++i) z[i * 7 % size_t(count)] = zs[i];
    for (int64_t r = 0; r < n; ++r) {
      float* row = t.data() + r * k;
      if (r % 3 == 1) {
        const int64_t hot = (r * 5) % k;
        for (int64_t j = 0; j < k; ++j) row[j] = j == hot ? 1.0f : 0.0f;
      } else if (r % 3 == 2) {
        double total = 0;
        for (int64_t j = 0; j < k; ++j) total += row[j];
        for (int64_t j = 0; j < k; ++j) row[j] = float(row[j] / total);
      }
    }
    DeviceBuffer<float> z_d(z), t_d(t), loss_d(1), dz_d(static_cast<size_t>(count)),
        grad_d(std::vector<float>{0.75f});

    float loss = 0;
    cpu::cross_entropy_with_logits_forward<float>(z.data(), t.data(), n, k, &loss);
    cuda::cross_entropy_with_logits_forward(tc.ctx(), z_d.get(), t_d.get(), n, k, loss_d.get());
    const auto loss_gpu = loss_d.download();
    REQUIRE(std::isfinite(loss_gpu[0]));
    // atol: with one class the loss is exactly 0.
    test::require_close(loss_gpu, std::vector<float>{loss}, 1e-30, 1e-6, what + " loss");

    // dz = g (softmax(z) sum t - t): the GPU's expf differs by a few ulps from the CPU's double exp, which
    // p sum t - t can expose as a large relative error when the two are close: atol of 1e-6 |g| max(1, sum t)
    // covers that (sum t <= k for the unnormalized rows).
    std::vector<float> dz(static_cast<size_t>(count));
    cpu::cross_entropy_with_logits_backward<float>(z.data(), t.data(), n, k, 0.75f, dz.data());
    double t_sum_max = 1;
    for (int64_t r = 0; r < n; ++r) {
      double total = 0;
      for (int64_t j = 0; j < k; ++j) total += t[size_t(r * k + j)];
      t_sum_max = std::fmax(t_sum_max, total);
    }
    const double atol = 1e-6 * 0.75 / double(n) * t_sum_max;
    cuda::cross_entropy_with_logits_backward(tc.ctx(), z_d.get(), t_d.get(), n, k, 0.75f, dz_d.get());
    test::require_close(dz_d.download(), dz, atol, 1e-5, what + " dlogits (host grad)");
    dz_d.fill_bytes(0xFF);
    cuda::cross_entropy_with_logits_backward(tc.ctx(), z_d.get(), t_d.get(), n, k,
                                             static_cast<const float*>(grad_d.get()), dz_d.get());
    test::require_close(dz_d.download(), dz, atol, 1e-5, what + " dlogits (device grad)");
  }
}

TEST_CASE("cuda cross entropy with logits is deterministic from run to run", "[cuda][cross_entropy]") {
  TestContext tc;
  const int64_t n = 20001, k = 10;
  DeviceBuffer<float> z_d(test::random_vector<float>(n * k, 171, -8.0, 8.0)),
      t_d(test::random_vector<float>(n * k, 172, 0.0, 1.0)), loss_d(1);
  cuda::cross_entropy_with_logits_forward(tc.ctx(), z_d.get(), t_d.get(), n, k, loss_d.get());
  const float first = loss_d.download()[0];
  for (int run = 0; run < 3; ++run) {
    tc.poison_workspace();
    cuda::cross_entropy_with_logits_forward(tc.ctx(), z_d.get(), t_d.get(), n, k, loss_d.get());
    REQUIRE(loss_d.download()[0] == first);
  }
}

TEST_CASE("cuda cross entropy with logits of nothing is NaN, as on the cpu", "[cuda][cross_entropy]") {
  TestContext tc;
  DeviceBuffer<float> loss_d(std::vector<float>{1.0f});
  cuda::cross_entropy_with_logits_forward(tc.ctx(), nullptr, nullptr, 0, 10, loss_d.get());
  REQUIRE(std::isnan(loss_d.download()[0]));
  loss_d.upload(std::vector<float>{1.0f});
  cuda::cross_entropy_with_logits_forward(tc.ctx(), nullptr, nullptr, 5, 0, loss_d.get());
  REQUIRE(std::isnan(loss_d.download()[0]));
}
