// Per-channel bias kernels: the CPU backend against the reference (float and double; linear and conv
// layouts; one channel, channel counts around the CPU kernel's block of 64, long and short rows), and
// the backward against sums worked out by hand.
#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "bias.h"
#include "reference/bias.h"
#include "support/compare.h"

namespace {

using cudagan::test::random_vector;
using cudagan::test::require_close;
using cudagan::test::require_equal;
namespace cpu = cudagan::cpu;
namespace ref = cudagan::reference;

// dbias is a sum of up to 12k terms of size <= 1. The CPU kernel accumulates in double and the
// reference in long double; each rounds once to T, so float differs by ~1 ulp (6e-8 relative) and
// double by the double accumulation error, which stays below 1e-14 here (a random walk of 1e-16
// roundings): 1e-12 keeps a 100x margin. Absolute as well as relative, since a sum of random signs can
// land near 0.
template <class T>
constexpr double kTol = std::is_same_v<T, float> ? 1e-5 : 1e-12;

struct Layout {
  int64_t outer, channels, inner;
};

std::string describe(const Layout& l) {
  return "outer=" + std::to_string(l.outer) + " channels=" + std::to_string(l.channels) +
         " inner=" + std::to_string(l.inner);
}

}  // namespace

TEMPLATE_TEST_CASE("bias add and backward: cpu matches reference", "[bias][reference]", float, double) {
  using T = TestType;
  // Single element; linear layers ([N, C, 1]) with channel counts below, at and past a block of 64;
  // conv layers with odd spatial sizes, and rows of 4096 (64x64 RGB, as the generator's output).
  const Layout layouts[] = {{1, 1, 1},   {5, 3, 1},  {1, 7, 15},  {2, 64, 1},   {3, 65, 1},
                            {4, 200, 1}, {5, 65, 3}, {5, 64, 49}, {2, 130, 25}, {3, 3, 4096}};
  uint64_t seed = 100;
  for (const Layout& l : layouts) {
    const std::string what = describe(l);
    INFO(what);
    const int64_t n = l.outer * l.channels * l.inner;
    const auto bias = random_vector<T>(l.channels, seed += 10, -1, 1);
    const auto y0 = random_vector<T>(n, seed + 1, -1, 1);

    // One addition per element, the same in both: the results must match bit for bit.
    auto y_cpu = y0, y_ref = y0;
    cpu::add_bias(bias.data(), y_cpu.data(), l.outer, l.channels, l.inner);
    ref::add_bias(bias.data(), y_ref.data(), l.outer, l.channels, l.inner);
    require_equal(y_cpu, y_ref, "add_bias, " + what);

    // dbias starts as NaN: the backward overwrites, it does not accumulate.
    const auto dy = random_vector<T>(n, seed + 2, -1, 1);
    std::vector<T> db_cpu(size_t(l.channels), std::numeric_limits<T>::quiet_NaN()), db_ref = db_cpu;
    cpu::bias_backward(dy.data(), db_cpu.data(), l.outer, l.channels, l.inner);
    ref::bias_backward(dy.data(), db_ref.data(), l.outer, l.channels, l.inner);
    require_close(db_cpu, db_ref, kTol<T>, kTol<T>, "bias_backward, " + what);
  }
}

TEMPLATE_TEST_CASE("bias backward sums each channel over batch and space (worked by hand)",
                   "[bias][reference]", float, double) {
  using T = TestType;
  // dy[o, c, i] = 6 o + 2 c + i for outer 2, channels 3, inner 2: channel c collects
  // {2c, 2c + 1, 6 + 2c, 7 + 2c}, which sum to 14 + 8c. Small integers: exact in any precision.
  std::vector<T> dy(12);
  for (size_t k = 0; k < dy.size(); ++k) dy[k] = T(k);
  const std::vector<T> expected = {14, 22, 30};
  std::vector<T> db_cpu(3, T(-1)), db_ref(3, T(-1));
  cpu::bias_backward(dy.data(), db_cpu.data(), 2, 3, 2);
  ref::bias_backward(dy.data(), db_ref.data(), 2, 3, 2);
  require_equal(db_cpu, expected, "cpu dbias");
  require_equal(db_ref, expected, "reference dbias");

  // And forward: bias {10, 20, 30} on zeros gives each channel's value in both of its two positions.
  const std::vector<T> bias = {10, 20, 30};
  std::vector<T> y(12, T(0));
  cpu::add_bias(bias.data(), y.data(), 2, 3, 2);
  require_equal(y, std::vector<T>{10, 10, 20, 20, 30, 30, 10, 10, 20, 20, 30, 30}, "cpu add_bias");
}
