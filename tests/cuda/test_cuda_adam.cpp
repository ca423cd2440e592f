// CUDA Adam (single tensor and the fused multi-tensor launch) against cpu::adam_step: the CUDA update mirrors
// the CPU's float operations without FMA contraction and uses the same host-rounded constants, so the
// trajectories agree to rounding (rtol 1e-6; exact in practice).
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "adam.h"
#include "cuda/check.h"
#include "cuda_context.h"
#include "cuda_test_support.h"
#include "support/compare.h"

using namespace cudagan;
using test::DeviceBuffer;
using test::TestContext;

namespace {

struct HostTensor {
  std::vector<float> p, m, v;
};

}  // namespace

TEST_CASE("cuda adam_step_multi follows cpu adam_step per tensor for 10 steps", "[cuda][adam]") {
  TestContext tc;
  // Odd sizes, an empty tensor in the middle, one far above 1024 elements.
  const std::vector<int64_t> sizes = {1, 1000, 0, 4099, 77777, 3};
  for (double weight_decay : {0.0, 0.01}) {
    AdamHyper h;
    h.lr = 2e-4;
    h.beta1 = 0.5;
    h.beta2 = 0.999;
    h.eps = 1e-8;
    h.weight_decay = weight_decay;

    std::vector<HostTensor> host;
    std::vector<DeviceBuffer<float>> p_d, g_d, m_d, v_d;
    for (size_t s = 0; s < sizes.size(); ++s) {
      HostTensor t{test::random_vector<float>(sizes[s], 200 + s), std::vector<float>(size_t(sizes[s]), 0.0f),
                   std::vector<float>(size_t(sizes[s]), 0.0f)};
      p_d.emplace_back(t.p);
      m_d.emplace_back(t.m);
      v_d.emplace_back(t.v);
      g_d.emplace_back(size_t(sizes[s]));
      host.push_back(std::move(t));
    }
    std::vector<AdamSegment> segments;
    for (size_t s = 0; s < sizes.size(); ++s)
      segments.push_back({p_d[s].get(), g_d[s].get(), m_d[s].get(), v_d[s].get(), sizes[s]});

    for (int step = 1; step <= 10; ++step) {
      h.step = step;
      for (size_t s = 0; s < sizes.size(); ++s) {
        // Gradients of varying scale so that m / sqrt(v) is not trivially +-1.
        const auto grad = test::random_vector<float>(sizes[s], 1000 * uint64_t(step) + s, -3.0, 3.0);
        g_d[s].upload(grad);
        cpu::adam_step<float>(h, host[s].p.data(), grad.data(), host[s].m.data(), host[s].v.data(), sizes[s]);
      }
      cuda::adam_step_multi(tc.ctx(), h, segments.data(), int(segments.size()));
    }
    for (size_t s = 0; s < sizes.size(); ++s) {
      const std::string what = "adam segment " + std::to_string(s) + " (n " + std::to_string(sizes[s]) +
                               ", wd " + std::to_string(weight_decay) + ")";
      test::require_close(p_d[s].download(), host[s].p, 1e-7, 1e-6, what + " param");
      test::require_close(m_d[s].download(), host[s].m, 1e-7, 1e-6, what + " m");
      test::require_close(v_d[s].download(), host[s].v, 1e-9, 1e-6, what + " v");
    }
  }
}

TEST_CASE("cuda adam_step on one tensor matches the cpu", "[cuda][adam]") {
  TestContext tc;
  const int64_t n = 5001;
  AdamHyper h;
  h.step = 3;
  h.weight_decay = 1e-3;
  auto p = test::random_vector<float>(n, 301), m = test::random_vector<float>(n, 302, -0.1, 0.1),
       v = test::random_vector<float>(n, 303, 0.0, 0.01);
  const auto g = test::random_vector<float>(n, 304);
  DeviceBuffer<float> p_d(p), m_d(m), v_d(v), g_d(g);
  cuda::adam_step(tc.ctx(), h, p_d.get(), g_d.get(), m_d.get(), v_d.get(), n);
  cpu::adam_step<float>(h, p.data(), g.data(), m.data(), v.data(), n);
  test::require_close(p_d.download(), p, 1e-7, 1e-6, "adam param");
  test::require_close(m_d.download(), m, 1e-7, 1e-6, "adam m");
  test::require_close(v_d.download(), v, 1e-9, 1e-6, "adam v");
}

TEST_CASE("cuda adam rejects step 0 and a workspace too small for the segment table", "[cuda][adam]") {
  AdamHyper h;
  h.step = 0;
  TestContext tc(64);
  DeviceBuffer<float> buf(16);
  REQUIRE_THROWS_AS(cuda::adam_step(tc.ctx(), h, buf.get(), buf.get(), buf.get(), buf.get(), 16),
                    cudagan::InvalidArgument);
  h.step = 1;
  std::vector<AdamSegment> segments(4, AdamSegment{buf.get(), buf.get(), buf.get(), buf.get(), 4});
  // 4 * 40 bytes of table + 5 * 8 of prefix sums > 64 bytes.
  REQUIRE_THROWS_AS(cuda::adam_step_multi(tc.ctx(), h, segments.data(), 4), cudagan::InvalidArgument);
}
