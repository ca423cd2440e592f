// CUDA element-wise arithmetic and sum against the CPU backend on the same random inputs, odd sizes well
// above 1024 elements (several blocks, and for the sum several partials). add, mul, scale, fill and copy are
// single IEEE operations: exact; axpy avoids FMA contraction (rtol 1e-6); sum accumulates in double on both
// backends and rounds once (rtol 1e-6).
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

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

}  // namespace

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
