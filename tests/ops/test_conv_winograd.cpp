// The Winograd F(2x2, 2x2) convolution (kernels/cpu/conv_winograd.h) on every instruction set this CPU has,
// the portable path always included, against the direct-loop reference: forward, backward data and backward
// weight of stride-2 4x4 kernels with paddings 0 to 3, odd and non-square sizes (partial 2x2 tiles, phases of unequal
// size), batch 1 and more, reductions over two packed blocks, GEMM rows and strips not a multiple of the
// micro-kernel's tile, images with more tiles than a group. Outputs start as NaN: every element must be
// written.
#include <omp.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "conv.h"
#include "cpu/conv_winograd.h"
#include "cpu/isa.h"
#include "cudagan/core/error.h"
#include "reference/conv.h"
#include "support/compare.h"
#include "support/omp_threads.h"

namespace {

using cudagan::ConvGeometry;
using cudagan::conv_geometry;
using cudagan::describe;
using cudagan::test::OmpThreads;
using cudagan::test::random_vector;
using cudagan::test::require_close;
using cudagan::test::require_equal;
namespace cpu = cudagan::cpu;
namespace ref = cudagan::reference;

// batch, C, H, W, K, KH, KW, SH, SW, PH, PW.
std::vector<ConvGeometry> cases() {
  return {
      conv_geometry(1, 1, 4, 4, 1, 4, 4, 2, 2, 1, 1),
      conv_geometry(3, 2, 9, 11, 5, 4, 4, 2, 2, 0, 0),    // odd sizes: partial tiles, unequal phases
      conv_geometry(2, 3, 7, 6, 4, 4, 4, 2, 2, 1, 1),
      conv_geometry(2, 5, 10, 7, 3, 4, 4, 2, 2, 2, 2),
      conv_geometry(3, 4, 5, 9, 13, 4, 4, 2, 2, 3, 3),
      conv_geometry(2, 3, 8, 12, 2, 4, 4, 2, 2, 2, 1),    // different paddings along h and w
      conv_geometry(5, 16, 8, 8, 20, 4, 4, 2, 2, 1, 1),   // 4x4 outputs: 16 tiles, several images per strip
      conv_geometry(2, 8, 64, 64, 7, 4, 4, 2, 2, 1, 1),   // 256 tiles per image: more than a group
      conv_geometry(3, 130, 8, 8, 520, 4, 4, 2, 2, 1, 1), // reductions 4C = 520 and K = 520: two blocks each
      conv_geometry(37, 12, 8, 8, 14, 4, 4, 2, 2, 1, 1),  // groups of unequal size, a short last one
      // backward weight (16k channels): odd sizes and paddings 0-3; K not a tile multiple; several slices
      // of the batch (2048+ tiles) and column blocks; a partial last chunk of tiles
      conv_geometry(2, 16, 9, 11, 5, 4, 4, 2, 2, 0, 0),
      conv_geometry(3, 32, 7, 10, 13, 4, 4, 2, 2, 3, 3),
      conv_geometry(2, 16, 10, 7, 7, 4, 4, 2, 2, 2, 1),
      conv_geometry(5, 48, 64, 64, 20, 4, 4, 2, 2, 1, 1),
      conv_geometry(4, 16, 128, 128, 8, 4, 4, 2, 2, 1, 1),  // 4096 tiles: two slices
      conv_geometry(3, 64, 12, 12, 30, 4, 4, 2, 2, 1, 1),
  };
}

std::vector<float> nans(int64_t n) { return std::vector<float>(size_t(n), std::numeric_limits<float>::quiet_NaN()); }

// As tests/ops/test_conv.cpp: rounding grows with the length n of each sum; the transforms add up to four
// terms on each side of it.
double atol_for(int64_t n) { return 4e-5 * std::max(1.0, double(n) / 16.0); }

}  // namespace

TEST_CASE("Winograd convolution matches the reference on every instruction set", "[conv][winograd]") {
  const cpu::Isa isa = GENERATE(from_range(cpu::supported_isas()));
  const ConvGeometry g = GENERATE(from_range(cases()));
  INFO(cpu::isa_name(isa) << ": " << describe(g));
  REQUIRE(cpu::winograd_supported(g));
  const uint64_t seed = std::hash<std::string>{}(describe(g)) | 1;
  const auto x = random_vector<float>(g.input_elems(), seed), w = random_vector<float>(g.weight_elems(), seed + 1);
  const auto dy = random_vector<float>(g.output_elems(), seed + 2);

  auto y = nans(g.output_elems());
  std::vector<float> y_ref(y.size());
  cpu::conv2d_forward_winograd(g, x.data(), w.data(), y.data(), isa);
  ref::conv2d_forward(g, x.data(), w.data(), y_ref.data());
  require_close(y, y_ref, atol_for(g.col_rows()), 1e-4, "forward y");

  auto dx = nans(g.input_elems());
  std::vector<float> dx_ref(dx.size());
  cpu::conv2d_backward_data_winograd(g, dy.data(), w.data(), dx.data(), isa);
  ref::conv2d_backward_data(g, dy.data(), w.data(), dx_ref.data());
  require_close(dx, dx_ref, atol_for(int64_t(g.out_channels) * 16), 1e-4, "backward data dx");

  if (!cpu::winograd_backward_weight_supported(g)) return;  // C not a multiple of 16
  auto dw = nans(g.weight_elems());
  std::vector<float> dw_ref(dw.size());
  cpu::conv2d_backward_weight_winograd(g, x.data(), dy.data(), dw.data(), isa);
  ref::conv2d_backward_weight(g, x.data(), dy.data(), dw_ref.data());
  require_close(dw, dw_ref, atol_for(g.batch * g.out_pixels()), 1e-4, "backward weight dw");
}

TEST_CASE("Winograd convolution gives the same bits on 1 thread and on several", "[conv][winograd]") {
  const ConvGeometry g = conv_geometry(6, 32, 16, 16, 40, 4, 4, 2, 2, 1, 1);
  const cpu::Isa isa = cpu::best_isa();
  const auto x = random_vector<float>(g.input_elems(), 21), w = random_vector<float>(g.weight_elems(), 22);
  const auto dy = random_vector<float>(g.output_elems(), 23);
  const auto run = [&](int threads) {
    const OmpThreads team(threads);
    std::vector<float> y(size_t(g.output_elems())), dx(size_t(g.input_elems())), dw(size_t(g.weight_elems()));
    cpu::conv2d_forward_winograd(g, x.data(), w.data(), y.data(), isa);
    cpu::conv2d_backward_data_winograd(g, dy.data(), w.data(), dx.data(), isa);
    cpu::conv2d_backward_weight_winograd(g, x.data(), dy.data(), dw.data(), isa);
    y.insert(y.end(), dx.begin(), dx.end());
    y.insert(y.end(), dw.begin(), dw.end());
    return y;
  };
  // 1, 2 and 4 threads group the batch differently (6, 6 and 4 groups of whole images; backward weight's
  // columns in 2, 2 and 4 blocks); 8 leaves threads idle.
  const auto one = run(1);
  require_equal(one, run(2), "y, dx and dw on 2 threads");
  require_equal(one, run(4), "y, dx and dw on 4 threads");
  require_equal(one, run(8), "y, dx and dw on 8 threads");
}

TEST_CASE("Winograd convolution takes the stride-2 4x4 kernels only", "[conv][winograd]") {
  CHECK_FALSE(cpu::winograd_supported(conv_geometry(2, 3, 8, 8, 4, 3, 3, 2, 2, 1, 1)));  // 3x3 kernel
  CHECK_FALSE(cpu::winograd_supported(conv_geometry(2, 3, 8, 8, 4, 4, 4, 1, 1, 1, 1)));  // stride 1
  CHECK_FALSE(cpu::winograd_supported(conv_geometry(2, 3, 8, 8, 4, 4, 4, 2, 2, 4, 4)));  // padding 4
  const ConvGeometry g = conv_geometry(1, 1, 8, 8, 1, 4, 4, 1, 1, 1, 1);
  std::vector<float> x(size_t(g.input_elems())), w(size_t(g.weight_elems())), y(size_t(g.output_elems()));
  CHECK_THROWS_AS(cpu::conv2d_forward_winograd(g, x.data(), w.data(), y.data(), cpu::Isa::generic),
                  cudagan::InvalidArgument);
  CHECK_THROWS_AS(cpu::conv2d_backward_data_winograd(g, y.data(), w.data(), x.data(), cpu::Isa::generic),
                  cudagan::InvalidArgument);
  CHECK_THROWS_AS(cpu::conv2d_backward_weight_winograd(g, x.data(), y.data(), w.data(), cpu::Isa::generic),
                  cudagan::InvalidArgument);
  const ConvGeometry c12 = conv_geometry(1, 12, 8, 8, 1, 4, 4, 2, 2, 1, 1);  // backward weight: 16k channels only
  CHECK(cpu::winograd_supported(c12));
  CHECK_FALSE(cpu::winograd_backward_weight_supported(c12));
}
