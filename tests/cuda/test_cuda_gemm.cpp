// CUDA GEMM (cuBLAS, row-major wrapper) against cpu:: in double on the same float inputs, with a tolerance
// relative to each element's sum of |terms| (dot_tolerance), since an fp32 reduction's error is bounded by
// that, not by the result, which can cancel to near zero. TF32 is checked to be in use when asked for.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/check.h"
#include "cuda_context.h"
#include "cuda_test_support.h"
#include "gemm.h"
#include "support/compare.h"

using namespace cudagan;
using test::DeviceBuffer;
using test::TestContext;

TEST_CASE("cuda gemm matches cpu gemm for every transpose combination", "[cuda][gemm]") {
  TestContext tc;
  // m, n, k odd; n > 1024 so cuBLAS sees a wide matrix; leading dimensions padded beyond the row length.
  const int64_t m = 37, n = 1029, k = 65, pad = 3;
  const float alpha = 0.7f, beta = -0.3f;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      const int64_t a_rows = ta ? k : m, a_cols = ta ? m : k, b_rows = tb ? n : k, b_cols = tb ? k : n;
      const int64_t lda = a_cols + pad, ldb = b_cols + pad, ldc = n + pad;
      const auto a = test::random_vector<float>(a_rows * lda, 11);
      const auto b = test::random_vector<float>(b_rows * ldb, 12);
      const auto c = test::random_vector<float>(m * ldc, 13);
      DeviceBuffer<float> a_d(a), b_d(b), c_d(c);
      cuda::gemm(tc.ctx(), ta, tb, m, n, k, alpha, a_d.get(), lda, b_d.get(), ldb, beta, c_d.get(), ldc);

      auto ref = test::to_double(c), scale = test::abs_double(c);
      const auto ad = test::to_double(a), bd = test::to_double(b), aa = test::abs_double(a),
                 ba = test::abs_double(b);
      cpu::gemm<double>(ta, tb, m, n, k, alpha, ad.data(), lda, bd.data(), ldb, beta, ref.data(), ldc);
      cpu::gemm<double>(ta, tb, m, n, k, std::fabs(alpha), aa.data(), lda, ba.data(), ldb, std::fabs(beta),
                        scale.data(), ldc);
      // The padding columns of C are compared too: they must come back untouched.
      test::require_close_scaled(c_d.download(), ref, scale, test::dot_tolerance(k),
                                 std::string("gemm ta=") + (ta ? "T" : "N") + " tb=" + (tb ? "T" : "N"));
    }
  }
}

TEST_CASE("cuda gemm with TF32 tensor-op math stays within TF32 rounding", "[cuda][gemm]") {
  TestContext tc(size_t(1) << 20, /*allow_tf32=*/true);
  const int64_t m = 64, n = 1100, k = 200;
  const auto a = test::random_vector<float>(m * k, 21), b = test::random_vector<float>(k * n, 22);
  DeviceBuffer<float> a_d(a), b_d(b), c_d(size_t(m * n));
  cuda::gemm(tc.ctx(), false, false, m, n, k, 1.0f, a_d.get(), k, b_d.get(), n, 0.0f, c_d.get(), n);
  std::vector<double> ref(size_t(m * n)), scale(size_t(m * n));
  const auto ad = test::to_double(a), bd = test::to_double(b), aa = test::abs_double(a),
             ba = test::abs_double(b);
  cpu::gemm<double>(false, false, m, n, k, 1.0, ad.data(), k, bd.data(), n, 0.0, ref.data(), n);
  cpu::gemm<double>(false, false, m, n, k, 1.0, aa.data(), k, ba.data(), n, 0.0, scale.data(), n);
  // TF32 keeps 10 mantissa bits: each input is off by up to 2^-10 relative (rounded or truncated), so each
  // product by up to ~2^-9 = 2e-3 of |a||b|; 4e-3 leaves room for the fp32 accumulation on top.
  test::require_close_scaled(c_d.download(), ref, scale, 4e-3, "gemm tf32");

  // That bound holds for exact fp32 too; this shows TF32 is in use. Inputs 1 + 2^-13 (not representable in
  // TF32's 10 mantissa bits) times ones, k = 256: fp32 gives 256 + 2^-5 exactly, TF32 inputs give 256.
  const int64_t sq = 256;
  DeviceBuffer<float> x_d(std::vector<float>(size_t(sq * sq), 1.0f + 0x1p-13f)),
      ones_d(std::vector<float>(size_t(sq * sq), 1.0f)), out_d(size_t(sq * sq));
  cuda::gemm(tc.ctx(), false, false, sq, sq, sq, 1.0f, x_d.get(), sq, ones_d.get(), sq, 0.0f, out_d.get(), sq);
  const float tf32_value = out_d.download()[0];
  INFO("TF32 gemm gave " << tf32_value);
  CHECK(tf32_value != 256.0f + 0x1p-5f);
  TestContext exact;  // allow_tf32 false
  cuda::gemm(exact.ctx(), false, false, sq, sq, sq, 1.0f, x_d.get(), sq, ones_d.get(), sq, 0.0f, out_d.get(), sq);
  test::require_equal(out_d.download(), std::vector<float>(size_t(sq * sq), 256.0f + 0x1p-5f), "gemm fp32");
}

TEST_CASE("cuda gemm with k == 0 scales C by beta and ignores NaN when beta is 0", "[cuda][gemm]") {
  TestContext tc;
  const int64_t m = 33, n = 1031;
  const auto c = test::random_vector<float>(m * n, 31);
  DeviceBuffer<float> c_d(c);
  cuda::gemm(tc.ctx(), false, false, m, n, 0, 1.0f, nullptr, 1, nullptr, n, 0.5f, c_d.get(), n);
  std::vector<float> expected(c);
  for (auto& v : expected) v *= 0.5f;
  test::require_equal(c_d.download(), expected, "gemm k=0 beta=0.5");

  c_d.fill_bytes(0xFF);
  cuda::gemm(tc.ctx(), false, false, m, n, 0, 1.0f, nullptr, 1, nullptr, n, 0.0f, c_d.get(), n);
  test::require_equal(c_d.download(), std::vector<float>(size_t(m * n), 0.0f), "gemm k=0 beta=0");
}

TEST_CASE("cuda gemm rejects a leading dimension below the row length", "[cuda][gemm]") {
  TestContext tc;
  DeviceBuffer<float> buf(64);
  REQUIRE_THROWS_AS(
      cuda::gemm(tc.ctx(), false, false, 4, 4, 4, 1.0f, buf.get(), 3, buf.get(), 4, 0.0f, buf.get(), 4),
      cudagan::InvalidArgument);
}
