// cpu::gemm (OpenBLAS) against reference::gemm (the triple loop): every transpose combination, odd
// sizes, row strides wider than the rows, alpha/beta, beta = 0 over garbage, empty dimensions.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "gemm.h"
#include "reference/gemm.h"
#include "support/compare.h"

namespace {

using cudagan::test::random_vector;
using cudagan::test::require_close;

struct Tolerance {
  double atol, rtol;
};

// Both sides sum k products of values in [-1, 1] in T, but in different orders (the BLAS in register
// blocks with FMA, the reference one product at a time), so they differ by rounding, not by math. That
// rounding grows with k while the sum itself only grows like sqrt(k), so atol scales with k. Measured
// worst |diff| for k from 3 to 122k: 2e-8 k to 8e-8 k in float, at most 1e-16 k in double; the bounds
// below leave a margin of 10 or more, while an indexing bug gives errors of order 1.
template <class T>
Tolerance tolerance(int64_t k) {
  const double scale = std::max(1.0, double(k) / 16.0);
  if constexpr (std::is_same_v<T, float>) return {1e-5 * scale, 1e-4};
  return {1e-13 * scale, 1e-12};
}

struct GemmShape {
  int64_t m, n, k;
};

// C = alpha op(A) op(B) + beta C with every stored row padded by a few elements, compared over the whole
// buffer: the padding must come back untouched on both sides.
template <class T>
void check_gemm(bool trans_a, bool trans_b, GemmShape s, T alpha, T beta, uint64_t seed) {
  const int64_t a_rows = trans_a ? s.k : s.m, a_cols = trans_a ? s.m : s.k, lda = a_cols + 3;
  const int64_t b_rows = trans_b ? s.n : s.k, b_cols = trans_b ? s.k : s.n, ldb = b_cols + 1;
  const int64_t ldc = s.n + 2;
  const auto a = random_vector<T>(a_rows * lda, seed);
  const auto b = random_vector<T>(b_rows * ldb, seed + 1);
  auto c_cpu = random_vector<T>(s.m * ldc, seed + 2);
  auto c_ref = c_cpu;
  cudagan::cpu::gemm<T>(trans_a, trans_b, s.m, s.n, s.k, alpha, a.data(), lda, b.data(), ldb, beta,
                        c_cpu.data(), ldc);
  cudagan::reference::gemm<T>(trans_a, trans_b, s.m, s.n, s.k, alpha, a.data(), lda, b.data(), ldb, beta,
                              c_ref.data(), ldc);
  const Tolerance tol = tolerance<T>(s.k);
  require_close(c_cpu, c_ref, tol.atol, tol.rtol, "gemm C");
}

}  // namespace

TEMPLATE_TEST_CASE("gemm matches the reference for all transpose combinations", "[gemm][reference]", float,
                   double) {
  const bool trans_a = GENERATE(false, true);
  const bool trans_b = GENERATE(false, true);
  const GemmShape s = GENERATE(values<GemmShape>({{1, 1, 1},
                                                  {7, 5, 3},
                                                  {13, 17, 11},
                                                  {33, 1, 65},
                                                  {1, 31, 29},
                                                  {64, 48, 100},
                                                  {3, 129, 257},
                                                  {97, 101, 1031}}));
  CAPTURE(trans_a, trans_b, s.m, s.n, s.k);
  const uint64_t seed = uint64_t(s.m * 1000003 + s.n * 1009 + s.k) * 4 + trans_a * 2 + trans_b;
  SECTION("alpha 1, beta 0") { check_gemm<TestType>(trans_a, trans_b, s, TestType(1), TestType(0), seed); }
  SECTION("alpha 0.75, beta -0.5") {
    check_gemm<TestType>(trans_a, trans_b, s, TestType(0.75), TestType(-0.5), seed);
  }
}

TEMPLATE_TEST_CASE("gemm with beta 0 overwrites C without reading it", "[gemm][reference]", float, double) {
  // The conv kernels hand the GEMM freshly allocated or stale output buffers with beta = 0; a NaN left
  // there must not leak into the result (0 * NaN is NaN, so "C *= beta" would be wrong).
  const int64_t m = 9, n = 14, k = 6;
  const auto a = random_vector<TestType>(m * k, 11), b = random_vector<TestType>(k * n, 12);
  std::vector<TestType> c_cpu(size_t(m * n), std::numeric_limits<TestType>::quiet_NaN());
  std::vector<TestType> c_ref(size_t(m * n));
  cudagan::cpu::gemm<TestType>(false, false, m, n, k, 1, a.data(), k, b.data(), n, 0, c_cpu.data(), n);
  cudagan::reference::gemm<TestType>(false, false, m, n, k, 1, a.data(), k, b.data(), n, 0, c_ref.data(), n);
  const Tolerance tol = tolerance<TestType>(k);
  require_close(c_cpu, c_ref, tol.atol, tol.rtol, "gemm C over NaN");
}

TEMPLATE_TEST_CASE("gemm with an empty dimension does no work", "[gemm]", float, double) {
  using T = TestType;
  const auto a = random_vector<T>(12, 21), b = random_vector<T>(12, 22);
  const auto c0 = random_vector<T>(12, 23);
  SECTION("m = 0 or n = 0 leaves C alone, whatever the pointers") {
    auto c = c0;
    cudagan::cpu::gemm<T>(false, false, 0, 4, 3, 1, nullptr, 3, b.data(), 4, 0, c.data(), 4);
    cudagan::cpu::gemm<T>(true, true, 3, 0, 4, 1, a.data(), 3, nullptr, 4, 0, c.data(), 1);
    require_close(c, c0, 0.0, 0.0, "C after empty products");
  }
  SECTION("k = 0 scales C by beta") {
    auto c = c0;
    cudagan::cpu::gemm<T>(false, false, 3, 4, 0, 1, nullptr, 1, nullptr, 4, T(0.5), c.data(), 4);
    std::vector<T> expected(c0);
    for (auto& v : expected) v *= T(0.5);
    require_close(c, expected, 0.0, 0.0, "C after a k = 0 product with beta 0.5");
  }
  SECTION("k = 0 with beta 0 zeroes C, even over NaN") {
    std::vector<T> c(12, std::numeric_limits<T>::quiet_NaN());
    cudagan::cpu::gemm<T>(false, false, 3, 4, 0, 1, nullptr, 1, nullptr, 4, T(0), c.data(), 4);
    require_close(c, std::vector<T>(12, T(0)), 0.0, 0.0, "C after a k = 0 product with beta 0");
  }
}

TEST_CASE("gemm rejects leading dimensions shorter than the stored rows", "[gemm]") {
  std::vector<float> a(64, 1.f), b(64, 1.f), c(64, 0.f);
  // A is [4, 5] untransposed, so lda must be >= 5; transposed it is stored [5, 4] and lda >= 4 is enough.
  REQUIRE_THROWS_AS(
      cudagan::cpu::gemm<float>(false, false, 4, 3, 5, 1, a.data(), 4, b.data(), 3, 0, c.data(), 3),
      cudagan::InvalidArgument);
  REQUIRE_NOTHROW(
      cudagan::cpu::gemm<float>(true, false, 4, 3, 5, 1, a.data(), 4, b.data(), 3, 0, c.data(), 3));
  REQUIRE_THROWS_AS(
      cudagan::cpu::gemm<float>(false, false, 4, 3, 5, 1, a.data(), 5, b.data(), 3, 0, c.data(), 2),
      cudagan::InvalidArgument);
  REQUIRE_THROWS_AS(
      cudagan::cpu::gemm<float>(false, false, -1, 3, 5, 1, a.data(), 5, b.data(), 3, 0, c.data(), 3),
      cudagan::InvalidArgument);
  // One hierarchy: a kernel's precondition error is a cudagan::Error, which is what programs catch.
  REQUIRE_THROWS_AS(
      cudagan::cpu::gemm<float>(false, false, -1, 3, 5, 1, a.data(), 5, b.data(), 3, 0, c.data(), 3),
      cudagan::Error);
}
