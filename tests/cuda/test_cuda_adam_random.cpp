// CUDA Adam (single tensor and the fused multi-tensor launch) against cpu::adam_step, cuRAND fills
// (statistics, reproducibility, independence from the launch), and the error-checking macros.
// Adam: the CUDA update mirrors the CPU's float operations without FMA contraction and uses the same
// host-rounded constants, so the trajectories agree to rounding (rtol 1e-6; exact in practice).
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "adam.h"
#include "cuda/check.h"
#include "cuda_context.h"
#include "cuda_test_support.h"
#include "random.h"
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

TEST_CASE("cuda fill_normal has mean 0 and std 1 and is reproducible from seed and offset",
          "[cuda][random]") {
  TestContext tc;
  const int64_t n = 1000003;  // not a multiple of 4: the last Philox draw is partly used
  DeviceBuffer<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n)), c(static_cast<size_t>(n));
  cuda::fill_normal(tc.ctx(), a.get(), n, 1234, 0, 0.0f, 1.0f);
  cuda::fill_normal(tc.ctx(), b.get(), n, 1234, 0, 0.0f, 1.0f);
  cuda::fill_normal(tc.ctx(), c.get(), n, 1234, 4, 0.0f, 1.0f);
  const auto va = a.download(), vb = b.download(), vc = c.download();
  test::require_equal(va, vb, "same seed and offset");

  double sum = 0, sum_sq = 0;
  for (float x : va) {
    REQUIRE(std::isfinite(x));
    sum += x;
    sum_sq += double(x) * x;
  }
  const double mean = sum / double(n), std_dev = std::sqrt(sum_sq / double(n) - mean * mean);
  // Standard errors: 1e-3 for the mean, 7e-4 for the std; 5e-3 is 5 and 7 of them.
  CHECK(std::fabs(mean) < 5e-3);
  CHECK(std::fabs(std_dev - 1.0) < 5e-3);

  // Another offset gives other numbers (equal floats by chance: essentially never).
  int64_t equal = 0;
  for (int64_t i = 0; i < n; ++i) equal += va[size_t(i)] == vc[size_t(i)];
  CHECK(equal < n / 1000);

  // A short fill is a prefix of the long one: the values do not depend on the launch configuration.
  DeviceBuffer<float> short_d(10);
  cuda::fill_normal(tc.ctx(), short_d.get(), 10, 1234, 0, 0.0f, 1.0f);
  test::require_equal(short_d.download(), std::vector<float>(va.begin(), va.begin() + 10), "prefix");

  // mean and stddev are applied.
  cuda::fill_normal(tc.ctx(), b.get(), n, 99, 0, 2.0f, 0.5f);
  const auto vs = b.download();
  double s2 = 0;
  for (float x : vs) s2 += x;
  CHECK(std::fabs(s2 / double(n) - 2.0) < 5e-3 * 0.5);
}

TEST_CASE("cuda fill_uniform stays within lo and hi with the right mean", "[cuda][random]") {
  TestContext tc;
  const int64_t n = 1000001;
  const float lo = -3.0f, hi = 5.0f;
  DeviceBuffer<float> a(static_cast<size_t>(n));
  cuda::fill_uniform(tc.ctx(), a.get(), n, 77, 0, lo, hi);
  const auto v = a.download();
  double sum = 0;
  bool in_range = true;
  for (float x : v) {
    in_range = in_range && x >= lo && x < hi;
    sum += x;
  }
  REQUIRE(in_range);
  // Uniform on [-3, 5): mean 1, std 8 / sqrt(12) = 2.31, standard error of the mean 2.3e-3.
  CHECK(std::fabs(sum / double(n) - 1.0) < 1.2e-2);
  REQUIRE_THROWS_AS(cuda::fill_uniform(tc.ctx(), a.get(), n, 77, 0, 1.0f, 0.0f), cudagan::InvalidArgument);
}

TEST_CASE("CUDA_CHECK and CUBLAS_CHECK throw CudaError naming the call", "[cuda][check]") {
  REQUIRE_THROWS_AS(CUDA_CHECK(cudaSetDevice(-1)), cuda::CudaError);
  REQUIRE_THROWS_AS(CUDA_CHECK(cudaSetDevice(-1)), cudagan::Error);  // one hierarchy: the root catches it
  REQUIRE_THROWS_WITH(CUDA_CHECK(cudaSetDevice(-1)),
                      Catch::Contains("cudaSetDevice(-1)") && Catch::Contains("cudaErrorInvalidDevice"));
  // The failure is not left behind as the runtime's "last error" for the next launch check to report.
  REQUIRE(cudaGetLastError() == cudaSuccess);
  REQUIRE_THROWS_WITH(CUBLAS_CHECK(CUBLAS_STATUS_INVALID_VALUE),
                      Catch::Contains("CUBLAS_STATUS_INVALID_VALUE"));
  REQUIRE_THROWS_WITH(CURAND_CHECK(CURAND_STATUS_LAUNCH_FAILURE),
                      Catch::Contains("CURAND_STATUS_LAUNCH_FAILURE"));
  REQUIRE_NOTHROW(CUDA_CHECK(cudaSuccess));
}
