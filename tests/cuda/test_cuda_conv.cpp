// CUDA convolution kernels against the CPU backend on the same random inputs.
//   conv2d forward / backward: against cpu:: in double (the same float inputs widened), with a
//     tolerance relative to each element's sum of |terms| (dot_tolerance: twice the worst-case fp32 bound for
//     the reduction length, at least 1e-5), since an fp32 reduction's error is bounded by that, not by the
//     result, which can cancel to near zero;
//   im2col / col2im: bit-exact against cpu::im2col / cpu::col2im (pure data movement, and col2im adds in the
//     CPU's order).
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "conv.h"
#include "cuda/check.h"
#include "cuda_context.h"
#include "cuda_test_support.h"
#include "gemm.h"
#include "support/compare.h"

using namespace cudagan;
using test::DeviceBuffer;
using test::TestContext;

namespace {

// Odd sizes, stride 1/2, padding 0/1/2, batch 1 and > 1, DCGAN's 4x4 stride-2 layers, a transposed
// convolution's geometry, and shapes whose kernels launch well over 1024 threads.
std::vector<ConvGeometry> conv_geometries() {
  return {
      conv_geometry(1, 1, 5, 5, 1, 3, 3, 1, 1, 0, 0),
      conv_geometry(2, 3, 7, 9, 5, 3, 3, 1, 1, 1, 1),
      conv_geometry(3, 4, 13, 11, 6, 4, 4, 2, 2, 2, 2),
      conv_geometry(5, 3, 33, 31, 8, 4, 4, 2, 2, 1, 1),
      conv_geometry(2, 5, 9, 12, 3, 5, 3, 2, 1, 0, 2),
      conv_geometry(4, 16, 8, 8, 7, 1, 1, 1, 1, 0, 0),
      transpose_geometry(3, 12, 4, 4, 6, 4, 4, 2, 2, 1, 1),  // ConvTranspose2d 12 -> 6, 4x4 -> 8x8
      conv_geometry(2, 64, 16, 16, 32, 4, 4, 2, 2, 1, 1),
  };
}

struct ConvData {
  std::vector<float> x, w, dy;
};

ConvData conv_data(const ConvGeometry& g, uint64_t seed) {
  return {test::random_vector<float>(g.input_elems(), seed),
          test::random_vector<float>(g.weight_elems(), seed + 1),
          test::random_vector<float>(g.output_elems(), seed + 2)};
}

// The three passes on the GPU with the given workspace, compared with cpu:: in double.
void check_conv(const ConvGeometry& g, const ConvData& d, size_t workspace_bytes, const std::string& what) {
  TestContext tc(workspace_bytes);
  DeviceBuffer<float> x(d.x), w(d.w), dy(d.dy), y(size_t(g.output_elems())), dx(size_t(g.input_elems())),
      dw(size_t(g.weight_elems()));
  // NaN everywhere first: the launchers must overwrite every output element (no accumulation into garbage).
  y.fill_bytes(0xFF);
  dx.fill_bytes(0xFF);
  dw.fill_bytes(0xFF);
  cuda::conv2d_forward(tc.ctx(), g, x.get(), w.get(), y.get());
  cuda::conv2d_backward_data(tc.ctx(), g, dy.get(), w.get(), dx.get());
  cuda::conv2d_backward_weight(tc.ctx(), g, x.get(), dy.get(), dw.get());
  tc.sync();

  const auto xd = test::to_double(d.x), wd = test::to_double(d.w), dyd = test::to_double(d.dy);
  const auto xa = test::abs_double(d.x), wa = test::abs_double(d.w), dya = test::abs_double(d.dy);
  std::vector<double> y_ref(d.dy.size()), y_scale(d.dy.size()), dx_ref(d.x.size()), dx_scale(d.x.size()),
      dw_ref(d.w.size()), dw_scale(d.w.size());
  cpu::conv2d_forward<double>(g, xd.data(), wd.data(), y_ref.data());
  cpu::conv2d_forward<double>(g, xa.data(), wa.data(), y_scale.data());
  cpu::conv2d_backward_data<double>(g, dyd.data(), wd.data(), dx_ref.data());
  cpu::conv2d_backward_data<double>(g, dya.data(), wa.data(), dx_scale.data());
  cpu::conv2d_backward_weight<double>(g, xd.data(), dyd.data(), dw_ref.data());
  cpu::conv2d_backward_weight<double>(g, xa.data(), dya.data(), dw_scale.data());

  const int64_t kk = int64_t(g.kernel_h) * g.kernel_w;
  test::require_close_scaled(y.download(), y_ref, y_scale, test::dot_tolerance(g.col_rows()),
                             what + " forward");
  test::require_close_scaled(dx.download(), dx_ref, dx_scale, test::dot_tolerance(g.out_channels * kk),
                             what + " backward data");
  test::require_close_scaled(dw.download(), dw_ref, dw_scale, test::dot_tolerance(g.batch * g.out_pixels()),
                             what + " backward weight");
}

}  // namespace

TEST_CASE("cuda im2col and col2im match the cpu bit for bit", "[cuda][conv]") {
  TestContext tc;
  for (const ConvGeometry& g : conv_geometries()) {
    const std::string what = describe(g);
    const auto x = test::random_vector<float>(g.input_elems(), 41);
    DeviceBuffer<float> x_d(x);
    // The whole batch, and a window [first, first + count) inside it.
    const int first = g.batch > 1 ? 1 : 0, count = g.batch > 2 ? g.batch - 2 : 1;
    for (auto [f, c] : {std::pair<int, int>(0, g.batch), std::pair<int, int>(first, count)}) {
      const size_t cols_n = size_t(g.col_rows() * c * g.out_pixels());
      DeviceBuffer<float> cols_d(cols_n);
      cols_d.fill_bytes(0xFF);
      cuda::im2col(tc.ctx(), g, x_d.get(), f, c, cols_d.get());
      std::vector<float> cols(cols_n);
      cpu::im2col<float>(g, x.data(), f, c, cols.data());
      test::require_equal(cols_d.download(), cols,
                          what + " im2col [" + std::to_string(f) + ", +" + std::to_string(c) + ")");

      // col2im writes only images [f, f + c): the others must keep their (random, finite) contents.
      const auto col_in = test::random_vector<float>(int64_t(cols_n), 43);
      auto dx = test::random_vector<float>(g.input_elems(), 44);
      DeviceBuffer<float> col_d(col_in), dx_d(dx);
      cuda::col2im(tc.ctx(), g, col_d.get(), f, c, dx_d.get());
      cpu::col2im<float>(g, col_in.data(), f, c, dx.data());
      test::require_equal(dx_d.download(), dx,
                          what + " col2im [" + std::to_string(f) + ", +" + std::to_string(c) + ")");
    }
  }
}

TEST_CASE("cuda conv2d forward and backward match the cpu", "[cuda][conv]") {
  for (const ConvGeometry& g : conv_geometries()) {
    const ConvData d = conv_data(g, 51);
    // Enough workspace for the whole batch in one chunk.
    check_conv(g, d, cuda::conv_workspace_bytes(g, g.batch), describe(g));
  }
}

TEST_CASE("cuda conv2d with a small workspace runs several chunks and gives the same results",
          "[cuda][conv]") {
  for (const ConvGeometry& g :
       {conv_geometry(5, 3, 33, 31, 8, 4, 4, 2, 2, 1, 1), conv_geometry(7, 6, 9, 10, 5, 3, 3, 1, 1, 1, 1),
        transpose_geometry(5, 12, 4, 4, 6, 4, 4, 2, 2, 1, 1)}) {
    const ConvData d = conv_data(g, 61);
    // Two images per chunk: chunks of 2, 2, ..., and a last chunk of one image (the no-staging path) for odd
    // batches.
    const size_t two = cuda::conv_workspace_bytes(g, 2);
    REQUIRE(cuda::conv_chunk_images(g, two) == 2);
    check_conv(g, d, two, describe(g) + " (chunks of 2)");
    // One image per chunk: no staging at all.
    const size_t one = cuda::conv_workspace_bytes(g, 1);
    REQUIRE(cuda::conv_chunk_images(g, one) == 1);
    check_conv(g, d, one, describe(g) + " (chunks of 1)");
  }
}

TEST_CASE("cuda conv2d names the workspace it needs when not even one image fits", "[cuda][conv]") {
  const ConvGeometry g = conv_geometry(2, 3, 16, 16, 4, 3, 3, 1, 1, 1, 1);
  const size_t need = cuda::conv_workspace_bytes(g, 1);
  REQUIRE(cuda::conv_chunk_images(g, need - 1) == 0);
  TestContext tc(need - 1);
  DeviceBuffer<float> x(size_t(g.input_elems())), w(size_t(g.weight_elems())), y(size_t(g.output_elems()));
  REQUIRE_THROWS_WITH(cuda::conv2d_forward(tc.ctx(), g, x.get(), w.get(), y.get()),
                      Catch::Contains(std::to_string(need) + " bytes"));
}

// Hidden ([.]): 9 GB of device memory and too slow under compute-sanitizer; CTest runs it on its own
// (tests/CMakeLists.txt).
TEST_CASE("cuda im2col and col2im take the 64-bit index path past 2^31 column elements", "[.][cuda][conv][large]") {
  TestContext tc;
  // 136 one-channel 512x512 images, 8x8 kernel, stride 1: 64 rows of 136 * 505 * 505 columns = 2.2e9 elements,
  // so every index in the last rows exceeds 2^31 while the input (36M elements) stays small.
  const ConvGeometry g = conv_geometry(136, 1, 512, 512, 1, 8, 8, 1, 1, 0, 0);
  const int64_t pixels = g.out_pixels(), row = int64_t(g.batch) * pixels, total = g.col_rows() * row;
  REQUIRE(total > (int64_t(1) << 31));
  const auto x = test::random_vector<float>(g.input_elems(), 71);
  DeviceBuffer<float> x_d(x), cols_d(static_cast<size_t>(total));
  cols_d.fill_bytes(0xFF);
  cuda::im2col(tc.ctx(), g, x_d.get(), 0, g.batch, cols_d.get());
  tc.sync();
  // Rows 61 (straddling 2^31) and 63 (all past it) against the definition: row (kh, kw), column (n, oh, ow)
  // holds x[n, oh + kh, ow + kw].
  for (int r : {61, 63}) {
    const int kh = r / g.kernel_w, kw = r % g.kernel_w;
    std::vector<float> got(static_cast<size_t>(row)), expected(static_cast<size_t>(row));
    CUDA_CHECK(cudaMemcpy(got.data(), cols_d.get() + int64_t(r) * row, size_t(row) * sizeof(float),
                          cudaMemcpyDeviceToHost));
    for (int n = 0; n < g.batch; ++n)
      for (int oh = 0; oh < g.out_h(); ++oh)
        for (int ow = 0; ow < g.out_w(); ++ow)
          expected[size_t(int64_t(n) * pixels + oh * g.out_w() + ow)] =
              x[size_t((int64_t(n) * g.in_h + oh + kh) * g.in_w + ow + kw)];
    test::require_equal(got, expected, "im2col row " + std::to_string(r) + " of " + std::to_string(g.col_rows()));
  }
  // col2im of those columns adds each pixel once per window that covers it: x times the number of windows.
  DeviceBuffer<float> dx_d(size_t(g.input_elems()));
  dx_d.fill_bytes(0);
  cuda::col2im(tc.ctx(), g, cols_d.get(), 0, g.batch, dx_d.get());
  const auto covers = [](int i, int size, int k) { return std::min(i, size - k) - std::max(0, i - k + 1) + 1; };
  std::vector<double> expected(x.size());
  for (int64_t i = 0; i < g.input_elems(); ++i) {
    const int w = int(i % g.in_w), h = int((i / g.in_w) % g.in_h);
    expected[size_t(i)] = double(x[size_t(i)]) * covers(h, g.in_h, g.kernel_h) * covers(w, g.in_w, g.kernel_w);
  }
  test::require_close(dx_d.download(), expected, 0.0, 1e-5, "col2im of 2.2e9 columns");
}
