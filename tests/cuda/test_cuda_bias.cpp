// CUDA per-channel bias (forward add, backward reduction) against the CPU backend: the add is exact, the
// reduction accumulates in double on both backends and rounds once (rtol 1e-6).
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "bias.h"
#include "cuda/check.h"
#include "cuda_context.h"
#include "cuda_test_support.h"
#include "support/compare.h"

using namespace cudagan;
using test::DeviceBuffer;
using test::TestContext;

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
