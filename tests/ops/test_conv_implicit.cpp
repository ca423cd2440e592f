// The implicit-GEMM convolution (kernels/cpu/conv_implicit.h) on every instruction set this CPU has, the
// portable path always included, against the direct-loop reference: forward, backward data (the sub-pixel
// phases) and backward weight (the batch's fixed slices), on odd sizes, strides 1 to 3 that leave rows
// unused, paddings 0 to 2, kernels smaller than the stride, batch 1 and more, and sizes that span several
// packed blocks in every dimension, and a dx larger than backward data's staging buffer (images in chunks).
// Outputs start as NaN: every element must be written.
#include <omp.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "conv.h"
#include "cpu/conv_implicit.h"
#include "cpu/isa.h"
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
      conv_geometry(1, 1, 5, 5, 1, 1, 1, 1, 1, 0, 0),
      conv_geometry(5, 3, 7, 9, 4, 3, 3, 1, 1, 1, 1),
      conv_geometry(1, 2, 9, 6, 3, 3, 3, 2, 2, 0, 0),
      conv_geometry(5, 3, 11, 7, 5, 4, 4, 2, 2, 1, 1),
      conv_geometry(2, 4, 8, 13, 3, 3, 3, 2, 2, 2, 2),
      conv_geometry(2, 2, 5, 45, 3, 3, 3, 2, 2, 1, 1),  // x rows split 32 floats at a time, then 13
      conv_geometry(3, 8, 8, 8, 20, 4, 4, 2, 2, 1, 1),  // 4x4 outputs: a 32-column tile is two images' halves
      conv_geometry(3, 4, 4, 8, 7, 3, 3, 2, 2, 1, 1),   // 2x4 outputs: the same for a 16-column (AVX2) tile
      conv_geometry(5, 2, 6, 5, 2, 1, 1, 2, 2, 0, 0),   // kernel smaller than the stride: phases without taps
      conv_geometry(3, 2, 7, 12, 3, 3, 1, 1, 2, 2, 0),
      conv_geometry(5, 5, 13, 9, 7, 2, 5, 2, 1, 1, 2),
      conv_geometry(2, 3, 10, 11, 6, 5, 5, 3, 3, 2, 1),  // stride 3, rows left over
      conv_geometry(2, 3, 4, 4, 2, 4, 4, 1, 1, 0, 0),
      conv_geometry(1, 1, 1, 1, 4, 3, 3, 1, 1, 1, 1),
      conv_geometry(3, 3, 64, 64, 16, 4, 4, 2, 2, 1, 1),  // DCGAN's D.conv1 (narrower): many column blocks
      conv_geometry(2, 64, 16, 16, 40, 4, 4, 2, 2, 1, 1), // CKK 1024: two reduction blocks; K not a tile multiple
      conv_geometry(3, 1, 16, 16, 2048, 3, 3, 1, 1, 1, 1),  // backward weight in two slices of the batch
      conv_geometry(3, 32, 128, 96, 2, 4, 4, 2, 2, 1, 1),   // backward data staged in chunks of images
      conv_geometry(2, 3, 66, 64, 160, 4, 4, 2, 2, 1, 1),   // stacked backward data: two reduction blocks, the
                                                            // 33-wide grid in a 32-wide band and the rest
  };
}

std::vector<float> nans(int64_t n) { return std::vector<float>(size_t(n), std::numeric_limits<float>::quiet_NaN()); }

// As tests/ops/test_conv.cpp: rounding grows with the length n of each sum.
double atol_for(int64_t n) { return 1e-5 * std::max(1.0, double(n) / 16.0); }

}  // namespace

TEST_CASE("implicit-GEMM convolution matches the reference on every instruction set", "[conv][implicit]") {
  const cpu::Isa isa = GENERATE(from_range(cpu::supported_isas()));
  const ConvGeometry g = GENERATE(from_range(cases()));
  INFO(cpu::isa_name(isa) << ": " << describe(g));
  const uint64_t seed = std::hash<std::string>{}(describe(g)) | 1;
  const auto x = random_vector<float>(g.input_elems(), seed), w = random_vector<float>(g.weight_elems(), seed + 1);
  const auto dy = random_vector<float>(g.output_elems(), seed + 2);

  auto y = nans(g.output_elems());
  std::vector<float> y_ref(y.size());
  cpu::conv2d_forward_implicit(g, x.data(), w.data(), y.data(), isa);
  ref::conv2d_forward(g, x.data(), w.data(), y_ref.data());
  require_close(y, y_ref, atol_for(g.col_rows()), 1e-4, "forward y");

  auto dx = nans(g.input_elems());
  std::vector<float> dx_ref(dx.size());
  cpu::conv2d_backward_data_implicit(g, dy.data(), w.data(), dx.data(), isa);
  ref::conv2d_backward_data(g, dy.data(), w.data(), dx_ref.data());
  require_close(dx, dx_ref, atol_for(int64_t(g.out_channels) * g.kernel_h * g.kernel_w), 1e-4, "backward data dx");

  auto dw = nans(g.weight_elems());
  std::vector<float> dw_ref(dw.size());
  cpu::conv2d_backward_weight_implicit(g, x.data(), dy.data(), dw.data(), isa);
  ref::conv2d_backward_weight(g, x.data(), dy.data(), dw_ref.data());
  require_close(dw, dw_ref, atol_for(g.batch * g.out_pixels()), 1e-4, "backward weight dw");
}

TEST_CASE("implicit-GEMM convolution gives the same bits on 1 thread and on several", "[conv][implicit]") {
  // At least 12 input channels, so backward data runs a GEMM per phase, not the stacked one; the second
  // geometry's, over the whole batch, goes in two chunks of images.
  // The third, with 16 dw columns, runs backward weight in 4 slices of the batch.
  const ConvGeometry g = GENERATE(conv_geometry(4, 16, 32, 32, 24, 4, 4, 2, 2, 1, 1),
                                  conv_geometry(3, 32, 128, 96, 2, 4, 4, 2, 2, 1, 1),
                                  conv_geometry(8, 1, 32, 32, 64, 4, 4, 2, 2, 1, 1));
  INFO(describe(g));
  const cpu::Isa isa = cpu::best_isa();
  const auto x = random_vector<float>(g.input_elems(), 11), w = random_vector<float>(g.weight_elems(), 12);
  const auto dy = random_vector<float>(g.output_elems(), 13);
  const auto run = [&](int threads) {
    const OmpThreads team(threads);
    std::vector<float> y(size_t(g.output_elems())), dx(size_t(g.input_elems())), dw(size_t(g.weight_elems()));
    cpu::conv2d_forward_implicit(g, x.data(), w.data(), y.data(), isa);
    cpu::conv2d_backward_data_implicit(g, dy.data(), w.data(), dx.data(), isa);
    cpu::conv2d_backward_weight_implicit(g, x.data(), dy.data(), dw.data(), isa);
    y.insert(y.end(), dx.begin(), dx.end());
    y.insert(y.end(), dw.begin(), dw.end());
    return y;
  };
  // On 1 and 2 threads the forward and backward data split the batch into groups of whole images, each
  // group on one thread; on 8, more threads than images, they go over the whole batch, the columns shared.
  const auto one = run(1);
  require_equal(one, run(2), "y, dx and dw on 2 threads");
  require_equal(one, run(8), "y, dx and dw on 8 threads");
}

TEST_CASE("the CPU kernel set is named for the logs", "[conv][implicit]") {
  CHECK(cpu::isa_supported(cpu::Isa::generic));
  CHECK(cpu::describe_cpu_kernels().find(cpu::isa_name(cpu::best_isa())) == 0);
  if (!cpu::isa_supported(cpu::Isa::avx512)) WARN("this CPU has no AVX-512: its micro-kernel is not tested here");
  if (!cpu::isa_supported(cpu::Isa::avx2)) WARN("this CPU has no AVX2: its micro-kernel is not tested here");
}
