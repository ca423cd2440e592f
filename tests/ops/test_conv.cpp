// The CPU convolution kernels against the direct-loop reference:
//   im2col / col2im bit for bit; conv2d forward, backward data and backward weight;
//   conv_transpose2d composed exactly as the engine composes it (forward = conv2d_backward_data,
//   backward data = conv2d_forward, backward weight = conv2d_backward_weight on transpose_geometry())
//   against the reference's own scatter-form transposed convolution.
// Outputs start as NaN on the CPU side: the kernels must overwrite them, never accumulate into them.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "conv.h"
#include "reference/conv.h"
#include "support/compare.h"

namespace cudagan::cpu::detail {
// Defined in kernels/cpu/conv.cpp and deliberately not in conv.h: images per GEMM chunk. Used only to
// prove that the "chunked" case below really runs several chunks.
int conv_chunk_images(const ConvGeometry& g, int64_t elem_bytes);
}  // namespace cudagan::cpu::detail

namespace {

using cudagan::ConvGeometry;
using cudagan::conv_geometry;
using cudagan::describe;
using cudagan::reference::ConvTransposeGeometry;
using cudagan::test::random_vector;
using cudagan::test::require_close;
using cudagan::test::require_equal;
namespace cpu = cudagan::cpu;
namespace ref = cudagan::reference;

struct Tolerance {
  double atol, rtol;
};

// Every output is a sum of n products of values in [-1, 1], computed in T on both sides but in different
// orders (the BLAS in register blocks with FMA, the reference one product at a time), so the two differ
// by rounding that grows with n while the sums themselves grow only like sqrt(n): atol scales with n.
// Measured worst |diff| for n from 3 to 122k: 2e-8 n to 8e-8 n in float, at most 1e-16 n in double; the
// bounds below (atol 1e-5 / 1e-13 up to n = 16, rtol 1e-4 / 1e-12) leave a margin of 10 or more, while
// an indexing bug gives errors of order 1.
template <class T>
Tolerance tolerance(int64_t n) {
  const double scale = std::max(1.0, double(n) / 16.0);
  if constexpr (std::is_same_v<T, float>) return {1e-5 * scale, 1e-4};
  return {1e-13 * scale, 1e-12};
}

ConvTransposeGeometry conv_t(int batch, int c, int h, int w, int k, int kh, int kw, int sh, int sw, int ph,
                             int pw) {
  ConvTransposeGeometry t;
  t.batch = batch;
  t.in_channels = c, t.in_h = h, t.in_w = w;
  t.out_channels = k;
  t.kernel_h = kh, t.kernel_w = kw;
  t.stride_h = sh, t.stride_w = sw;
  t.pad_h = ph, t.pad_w = pw;
  return t;
}

// A chunk holds ~16 MiB of scratch, (C*KH*KW + K) * OH*OW elements per image: 1.1 MB in float and 2.2 MB in
// double here, so 16 images run as 15 + 1 (float) and 7 + 7 + 2 (double), a partial last chunk included.
ConvGeometry chunked_case() { return conv_geometry(16, 8, 61, 61, 3, 3, 3, 1, 1, 1, 1); }

// DCGAN's discriminator layer 2: 64 x 32x32 -> 128 x 16x16, kernel 4, stride 2, pad 1.
ConvGeometry dcgan_case() { return conv_geometry(2, 64, 32, 32, 128, 4, 4, 2, 2, 1, 1); }

// batch, C, H, W, K, KH, KW, SH, SW, PH, PW. Odd and non-square sizes; strides that leave input rows or
// columns unused ((H + 2P - KH) % S != 0); kernels as large as the padded input; separate h/w parameters.
std::vector<ConvGeometry> conv_cases() {
  return {
      conv_geometry(1, 1, 5, 5, 1, 1, 1, 1, 1, 0, 0),
      conv_geometry(5, 3, 7, 9, 4, 3, 3, 1, 1, 1, 1),
      conv_geometry(1, 2, 9, 6, 3, 3, 3, 2, 2, 0, 0),
      conv_geometry(5, 3, 11, 7, 5, 4, 4, 2, 2, 1, 1),
      conv_geometry(2, 4, 8, 13, 3, 3, 3, 2, 2, 2, 2),
      conv_geometry(5, 2, 6, 5, 2, 1, 1, 2, 2, 0, 0),
      conv_geometry(1, 3, 10, 10, 2, 4, 4, 1, 1, 2, 2),
      conv_geometry(3, 2, 7, 12, 3, 3, 1, 1, 2, 2, 0),
      conv_geometry(5, 5, 13, 9, 7, 2, 5, 2, 1, 1, 2),
      conv_geometry(2, 3, 4, 4, 2, 4, 4, 1, 1, 0, 0),
      conv_geometry(5, 16, 4, 4, 1, 4, 4, 2, 2, 0, 0),  // DCGAN's last D layer: one logit, kernel covering the input
      conv_geometry(3, 2, 5, 3, 4, 5, 3, 1, 1, 0, 0),   // the same non-square, several output channels
      conv_geometry(5, 2, 3, 2, 3, 4, 3, 2, 1, 2, 1),
      conv_geometry(1, 1, 1, 1, 4, 3, 3, 1, 1, 1, 1),
      dcgan_case(),
      chunked_case(),
      conv_geometry(4, 32, 32, 32, 24, 4, 4, 2, 2, 1, 1),  // tiles enough for Winograd (with AVX-512)
  };
}

// The transposed convolution's own parameters: batch, Cin, H, W, Cout, KH, KW, SH, SW, PH, PW.
std::vector<ConvTransposeGeometry> transpose_cases() {
  return {
      conv_t(1, 1, 3, 3, 1, 1, 1, 1, 1, 0, 0),
      conv_t(5, 4, 4, 6, 3, 4, 4, 2, 2, 1, 1),
      conv_t(1, 3, 5, 3, 2, 3, 3, 1, 1, 1, 1),
      conv_t(5, 2, 3, 4, 5, 3, 3, 2, 2, 0, 0),
      conv_t(2, 3, 5, 5, 2, 4, 4, 2, 2, 2, 2),
      conv_t(3, 2, 4, 7, 3, 3, 2, 1, 2, 2, 0),
      conv_t(2, 3, 6, 5, 4, 3, 3, 2, 2, 2, 2),
      conv_t(5, 2, 7, 5, 3, 1, 1, 2, 2, 0, 0),
      // DCGAN's generator: the projection of z (100 x 1x1 -> 4x4, stride 1, pad 0) and the layer
      // 128 x 16x16 -> 64 x 32x32 (kernel 4, stride 2, pad 1).
      conv_t(5, 100, 1, 1, 64, 4, 4, 1, 1, 0, 0),
      conv_t(2, 128, 16, 16, 64, 4, 4, 2, 2, 1, 1),
      conv_t(4, 32, 16, 16, 24, 4, 4, 2, 2, 1, 1),  // tiles enough for Winograd (with AVX-512)
  };
}

std::string describe(const ConvTransposeGeometry& t) {
  std::ostringstream s;
  s << "conv_transpose2d N=" << t.batch << " Cin=" << t.in_channels << " " << t.in_h << "x" << t.in_w
    << " -> Cout=" << t.out_channels << " " << t.out_h() << "x" << t.out_w() << ", kernel " << t.kernel_h
    << "x" << t.kernel_w << ", stride " << t.stride_h << "x" << t.stride_w << ", pad " << t.pad_h << "x"
    << t.pad_w;
  return s.str();
}

ConvGeometry engine_geometry(const ConvTransposeGeometry& t) {
  return cudagan::transpose_geometry(t.batch, t.in_channels, t.in_h, t.in_w, t.out_channels, t.kernel_h,
                                     t.kernel_w, t.stride_h, t.stride_w, t.pad_h, t.pad_w);
}

template <class T>
std::vector<T> nan_vector(int64_t n) {
  return std::vector<T>(size_t(n), std::numeric_limits<T>::quiet_NaN());
}

// The whole batch, then its second half: the engine's chunks start anywhere in the batch.
std::vector<std::pair<int, int>> image_ranges(const ConvGeometry& g) {
  return {{0, g.batch}, {g.batch / 2, (g.batch + 1) / 2}};
}

// A seed per shape, so that different cases see different data.
uint64_t seed_of(const std::string& description) { return std::hash<std::string>{}(description) | 1; }

}  // namespace

TEMPLATE_TEST_CASE("im2col matches the reference bit for bit", "[conv][im2col][reference]", float, double) {
  using T = TestType;
  const ConvGeometry g = GENERATE(from_range(conv_cases()));
  INFO(describe(g));
  const auto x = random_vector<T>(g.input_elems(), seed_of(describe(g)));
  for (const auto& [first, count] : image_ranges(g)) {
    CAPTURE(first, count);
    const int64_t n = g.col_rows() * count * g.out_pixels();
    auto cols = nan_vector<T>(n);
    std::vector<T> cols_ref(cols.size());
    cpu::im2col(g, x.data(), first, count, cols.data());
    ref::im2col(g, x.data(), first, count, cols_ref.data());
    require_equal(cols, cols_ref, "im2col cols");
  }
}

TEMPLATE_TEST_CASE("col2im matches the reference bit for bit", "[conv][im2col][reference]", float, double) {
  using T = TestType;
  const ConvGeometry g = GENERATE(from_range(conv_cases()));
  INFO(describe(g));
  for (const auto& [first, count] : image_ranges(g)) {
    CAPTURE(first, count);
    const auto cols = random_vector<T>(g.col_rows() * count * g.out_pixels(), seed_of(describe(g)) + first);
    // Images outside [first, first + count) must keep their contents; those inside are overwritten.
    auto dx = random_vector<T>(g.input_elems(), 7);
    auto dx_ref = dx;
    std::fill(dx.begin() + int64_t(first) * g.in_channels * g.in_pixels(),
              dx.begin() + int64_t(first + count) * g.in_channels * g.in_pixels(),
              std::numeric_limits<T>::quiet_NaN());
    cpu::col2im(g, cols.data(), first, count, dx.data());
    ref::col2im(g, cols.data(), first, count, dx_ref.data());
    require_equal(dx, dx_ref, "col2im dx");
  }
}

TEMPLATE_TEST_CASE("conv2d_forward matches the direct reference", "[conv][reference]", float, double) {
  using T = TestType;
  const ConvGeometry g = GENERATE(from_range(conv_cases()));
  INFO(describe(g));
  const uint64_t seed = seed_of(describe(g));
  const auto x = random_vector<T>(g.input_elems(), seed), w = random_vector<T>(g.weight_elems(), seed + 1);
  auto y = nan_vector<T>(g.output_elems());
  std::vector<T> y_ref(y.size());
  cpu::conv2d_forward(g, x.data(), w.data(), y.data());
  ref::conv2d_forward(g, x.data(), w.data(), y_ref.data());
  const Tolerance tol = tolerance<T>(g.col_rows());
  require_close(y, y_ref, tol.atol, tol.rtol, "conv2d_forward y");
}

TEMPLATE_TEST_CASE("conv2d_backward_data matches the direct reference", "[conv][reference]", float, double) {
  using T = TestType;
  const ConvGeometry g = GENERATE(from_range(conv_cases()));
  INFO(describe(g));
  const uint64_t seed = seed_of(describe(g));
  const auto dy = random_vector<T>(g.output_elems(), seed), w = random_vector<T>(g.weight_elems(), seed + 1);
  auto dx = nan_vector<T>(g.input_elems());
  std::vector<T> dx_ref(dx.size());
  cpu::conv2d_backward_data(g, dy.data(), w.data(), dx.data());
  ref::conv2d_backward_data(g, dy.data(), w.data(), dx_ref.data());
  const Tolerance tol = tolerance<T>(int64_t(g.out_channels) * g.kernel_h * g.kernel_w);
  require_close(dx, dx_ref, tol.atol, tol.rtol, "conv2d_backward_data dx");
}

TEMPLATE_TEST_CASE("conv2d_backward_weight matches the direct reference", "[conv][reference]", float,
                   double) {
  using T = TestType;
  const ConvGeometry g = GENERATE(from_range(conv_cases()));
  INFO(describe(g));
  const uint64_t seed = seed_of(describe(g));
  const auto x = random_vector<T>(g.input_elems(), seed), dy = random_vector<T>(g.output_elems(), seed + 1);
  auto dw = nan_vector<T>(g.weight_elems());
  std::vector<T> dw_ref(dw.size());
  cpu::conv2d_backward_weight(g, x.data(), dy.data(), dw.data());
  ref::conv2d_backward_weight(g, x.data(), dy.data(), dw_ref.data());
  const Tolerance tol = tolerance<T>(g.batch * g.out_pixels());
  require_close(dw, dw_ref, tol.atol, tol.rtol, "conv2d_backward_weight dw");
}

TEMPLATE_TEST_CASE("conv2d chunking: the large case runs several GEMM chunks", "[conv]", float, double) {
  const ConvGeometry g = chunked_case();
  INFO(describe(g));
  const int chunk = cpu::detail::conv_chunk_images(g, sizeof(TestType));
  CAPTURE(chunk);
  REQUIRE(chunk > 1);             // still batched...
  REQUIRE(chunk < g.batch);       // ...but split,
  REQUIRE(g.batch % chunk != 0);  // with a partial last chunk
}

TEMPLATE_TEST_CASE("conv_transpose2d_forward through conv2d_backward_data matches the direct reference",
                   "[conv][conv_transpose][reference]", float, double) {
  using T = TestType;
  const ConvTransposeGeometry t = GENERATE(from_range(transpose_cases()));
  INFO(describe(t));
  const ConvGeometry g = engine_geometry(t);
  REQUIRE(g.valid());
  REQUIRE(g.output_elems() == t.input_elems());
  REQUIRE(g.input_elems() == t.output_elems());
  REQUIRE(g.weight_elems() == t.weight_elems());
  const uint64_t seed = seed_of(describe(t));
  const auto x = random_vector<T>(t.input_elems(), seed), w = random_vector<T>(t.weight_elems(), seed + 1);
  auto y = nan_vector<T>(t.output_elems());
  std::vector<T> y_ref(y.size());
  cpu::conv2d_backward_data(g, x.data(), w.data(), y.data());
  ref::conv_transpose2d_forward(t, x.data(), w.data(), y_ref.data());
  const Tolerance tol = tolerance<T>(int64_t(t.in_channels) * t.kernel_h * t.kernel_w);
  require_close(y, y_ref, tol.atol, tol.rtol, "conv_transpose2d_forward y");
}

TEMPLATE_TEST_CASE("conv_transpose2d_backward_data through conv2d_forward matches the direct reference",
                   "[conv][conv_transpose][reference]", float, double) {
  using T = TestType;
  const ConvTransposeGeometry t = GENERATE(from_range(transpose_cases()));
  INFO(describe(t));
  const ConvGeometry g = engine_geometry(t);
  const uint64_t seed = seed_of(describe(t));
  const auto dy = random_vector<T>(t.output_elems(), seed), w = random_vector<T>(t.weight_elems(), seed + 1);
  auto dx = nan_vector<T>(t.input_elems());
  std::vector<T> dx_ref(dx.size());
  cpu::conv2d_forward(g, dy.data(), w.data(), dx.data());
  ref::conv_transpose2d_backward_data(t, dy.data(), w.data(), dx_ref.data());
  const Tolerance tol = tolerance<T>(int64_t(t.out_channels) * t.kernel_h * t.kernel_w);
  require_close(dx, dx_ref, tol.atol, tol.rtol, "conv_transpose2d_backward_data dx");
}

TEMPLATE_TEST_CASE(
    "conv_transpose2d_backward_weight through conv2d_backward_weight matches the direct reference",
    "[conv][conv_transpose][reference]", float, double) {
  using T = TestType;
  const ConvTransposeGeometry t = GENERATE(from_range(transpose_cases()));
  INFO(describe(t));
  const ConvGeometry g = engine_geometry(t);
  const uint64_t seed = seed_of(describe(t));
  const auto x = random_vector<T>(t.input_elems(), seed), dy = random_vector<T>(t.output_elems(), seed + 1);
  auto dw = nan_vector<T>(t.weight_elems());
  std::vector<T> dw_ref(dw.size());
  // The convolution's input is the transposed op's output, so its "x" is dy and its "dy" is x.
  cpu::conv2d_backward_weight(g, dy.data(), x.data(), dw.data());
  ref::conv_transpose2d_backward_weight(t, x.data(), dy.data(), dw_ref.data());
  const Tolerance tol = tolerance<T>(int64_t(t.batch) * t.in_h * t.in_w);
  require_close(dw, dw_ref, tol.atol, tol.rtol, "conv_transpose2d_backward_weight dw");
}

TEST_CASE("conv2d kernels reject an invalid geometry", "[conv]") {
  ConvGeometry g = conv_geometry(1, 1, 2, 2, 1, 5, 5, 1, 1, 1, 1);  // a 5x5 kernel does not fit a padded 4x4 input
  std::vector<float> buf(64, 0.f);
  REQUIRE_THROWS_AS(cpu::conv2d_forward(g, buf.data(), buf.data(), buf.data()), cudagan::InvalidArgument);
  g = conv_geometry(2, 1, 4, 4, 1, 3, 3, 1, 1, 1, 1);
  REQUIRE_THROWS_AS(cpu::im2col(g, buf.data(), 1, 2, buf.data()), cudagan::InvalidArgument);  // images 1..2 of 2
}
