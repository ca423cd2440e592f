// Winograd F(2x2, 2x2) backward weight of the stride-2 4x4 convolutions (conv_winograd.h): the adjoint of the
// forward's three steps. With V_xi the forward's transformed input and dM_xi = (A dY A^T)[r][s] the output
// gradient of each 2x2 tile carried back through A^T (each a sum of one, two or four of its dY),
//   dU_xi [K, R] = sum over tiles of dM_xi [K, tile] * V_xi [R, tile]^T,   then   dw = G^T dU G per tap phase,
// nine GEMMs whose reduction runs over the tiles, 9 multiplies per tile and tap phase where the direct
// backward weight does 16.
//
// The tiles run in fixed slices of the batch (each summed into its own partial dU, the partials added in
// slice order at the end) and dU's columns in blocks; a task (slice, block) transforms chunks of its tiles
// straight into the micro-kernel's panels (dM as A strips [tile][12 k], V as B strips [tile][32 c']) and runs
// the nine GEMMs into its part of dU, each C tile stored by the chunk's first reduction step and added to
// after. Every dw element is summed in an order fixed by the geometry: the bits do not depend on the threads.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "cpu/conv_implicit_planes.h"
#include "cpu/conv_winograd.h"
#include "cpu/conv_winograd_parts.h"
#include "cpu/packed_gemm.h"
#include "cpu/winograd_avx512.h"
#include "cudagan/core/error.h"

namespace cudagan::cpu {

namespace {

using winograd::kPoints;
using winograd::reaches;
using winograd::Tiling;

constexpr int64_t kChunk = 128;        // tiles per reduction step of the micro-kernel
constexpr int64_t kSliceTiles = 2048;  // about this many tiles per slice of the batch, at most kSlices slices
constexpr int64_t kSlices = 4;
constexpr int64_t kColumns = 128;      // dU columns per block, at most (a multiple of 32)

// Where tile (ty, tx)'s points lie in its image's planes, -1 outside: input window point e of tap phase
// ab (in[ab][e], in x's plane) and output position ij (out[ij], in dy's plane).
struct TilePoints {
  int32_t in[4][kPoints], out[4];
};

TilePoints tile_points(const ConvGeometry& g, int64_t ty, int64_t tx) {
  TilePoints tp;
  for (int ab = 0; ab < 4; ++ab)
    for (int e = 0; e < kPoints; ++e) {
      const int64_t row = 4 * ty + 2 * (e / 3) + ab / 2 - g.pad_h, col = 4 * tx + 2 * (e % 3) + ab % 2 - g.pad_w;
      tp.in[ab][e] = row >= 0 && row < g.in_h && col >= 0 && col < g.in_w ? int32_t(row * g.in_w + col) : -1;
    }
  for (int ij = 0; ij < 4; ++ij) {
    const int64_t row = 2 * ty + ij / 2, col = 2 * tx + ij % 2;
    tp.out[ij] = row < g.out_h() && col < g.out_w() ? int32_t(row * g.out_w() + col) : -1;
  }
  return tp;
}

// B^T d B of one tile for dU's columns [col0, col0 + cols) (c' = ab * C + c), at b + xi * xi_stride +
// ((c' - col0) / 32) * strip_stride + (c' - col0) % 32. The same additions as the forward's input transform.
void tile_input_generic(const float* x, int64_t plane, int64_t c_n, const int32_t* pos, int64_t col0, int64_t cols,
                        float* b, int64_t xi_stride, int64_t strip_stride) {
  for (int64_t q = 0; q < cols; ++q) {
    const int64_t col = col0 + q, ab = col / c_n, c = col % c_n;
    float d[3][3];
    for (int e = 0; e < kPoints; ++e) {
      const int32_t at = pos[ab * kPoints + e];
      d[e / 3][e % 3] = at >= 0 ? x[c * plane + at] : 0.0f;
    }
    winograd::input_transform(d, b + (q / 32) * strip_stride + q % 32, xi_stride);
  }
}

// dM_xi = A dY A^T of one tile for every k, at a + xi * xi_stride + (k / mr) * strip_stride + k % mr: first
// along columns (t[i][s] = the dY[i][j] that s reaches), then rows.
void tile_grad_generic(const float* dy, int64_t plane, int64_t k_n, const int32_t* pos, int mr, float* a,
                       int64_t xi_stride, int64_t strip_stride) {
  for (int64_t k = 0; k < k_n; ++k) {
    float y[2][2];
    for (int ij = 0; ij < 4; ++ij) y[ij / 2][ij % 2] = pos[ij] >= 0 ? dy[k * plane + pos[ij]] : 0.0f;
    float t[2][3];
    for (int i = 0; i < 2; ++i) {
      t[i][0] = y[i][0];
      t[i][1] = y[i][0] + y[i][1];
      t[i][2] = y[i][1];
    }
    float* out = a + (k / mr) * strip_stride + k % mr;
    for (int s = 0; s < 3; ++s) {
      out[(0 * 3 + s) * xi_stride] = t[0][s];
      out[(1 * 3 + s) * xi_stride] = t[0][s] + t[1][s];
      out[(2 * 3 + s) * xi_stride] = t[1][s];
    }
  }
}

// dw[k, c, 2u + a, 2v + b] = (G^T dU G)[u][v] for one row k of dU (du: dU_xi [K][R] for the nine xi): first
// along rows (e[u][s] = dU[u][s] + dU[u + 1][s]), then columns.
void grad_output_generic(const float* du, int64_t k_n, int64_t c_n, float* dw_row) {
  const int64_t r_n = 4 * c_n;
  for (int64_t c = 0; c < c_n; ++c)
    for (int ab = 0; ab < 4; ++ab) {
      float u[3][3];
      for (int xi = 0; xi < kPoints; ++xi) u[xi / 3][xi % 3] = du[xi * k_n * r_n + ab * c_n + c];
      for (int uu = 0; uu < 2; ++uu)
        for (int vv = 0; vv < 2; ++vv) {
          const float e0 = u[uu][vv] + u[uu + 1][vv], e1 = u[uu][vv + 1] + u[uu + 1][vv + 1];
          dw_row[c * 16 + (2 * uu + ab / 2) * 4 + 2 * vv + ab % 2] = e0 + e1;
        }
    }
}

}  // namespace

bool winograd_backward_weight_supported(const ConvGeometry& g) {
  return winograd_supported(g) && g.in_channels % 16 == 0;
}

void conv2d_backward_weight_winograd(const ConvGeometry& g, const float* x, const float* dy, float* dw, Isa isa) {
  implicit::check(g, x, dy, dw, "conv2d_backward_weight_winograd");
  if (!winograd_backward_weight_supported(g))
    throw InvalidArgument("cpu::conv2d_backward_weight_winograd: needs a stride-2 4x4 kernel with padding 0-3 and "
                          "a multiple of 16 input channels");
  const MicroKernel uk = microkernel(isa);
  const bool avx512 = isa == Isa::avx512;
  const int mr = uk.mr, nr = 32;  // B strips 32 wide, the AVX-512 kernel's (the others run plain loops below)
  const int64_t k_n = g.out_channels, c_n = g.in_channels, r_n = 4 * c_n;
  const int64_t in_img = c_n * g.in_pixels(), out_img = k_n * g.out_pixels();
  const Tiling tl(g.out_h(), g.out_w());
  const int64_t tiles = g.batch * tl.per_image, threads = omp_get_max_threads();

  // Fixed slices of the batch's tiles; column blocks (multiples of 32, R = 4C being one) to fill the threads.
  const int64_t slices = std::clamp<int64_t>(tiles / kSliceTiles, 1, kSlices);
  int64_t blocks = (r_n + kColumns - 1) / kColumns;
  while ((slices * blocks) % threads != 0 && blocks < r_n / 32) ++blocks;
  const int64_t per_block = (r_n / 32 + blocks - 1) / blocks * 32;
  blocks = (r_n + per_block - 1) / per_block;
  const int64_t tasks = slices * blocks, a_strips = (k_n + mr - 1) / mr;
  AlignedFloats partial(slices * kPoints * k_n * r_n);  // uninitialised: each slice's first chunk stores

  // Every image has its tiles' points at the same offsets: worked out once.
  std::vector<TilePoints> points;
  points.reserve(size_t(tl.per_image));
  for (int64_t t = 0; t < tl.per_image; ++t) points.push_back(tile_points(g, t / tl.tx, t % tl.tx));

  const bool parallel = 2.0 * kPoints * double(k_n) * double(r_n) * double(tiles) >= double(implicit::kParallelFlops);
#pragma omp parallel if (parallel && tasks > 1)
  {
    AlignedFloats a_panel(kPoints * a_strips * kChunk * mr), b_panel(kPoints * (per_block / nr) * kChunk * nr);
    const int64_t a_xi = a_strips * kChunk * mr, b_xi = (per_block / nr) * kChunk * nr;
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t sl = task / blocks, bl = task % blocks;
      const int64_t t_lo = sl * tiles / slices, t_hi = (sl + 1) * tiles / slices;
      const int64_t col0 = bl * per_block, cols = std::min(per_block, r_n - col0), b_strips = cols / nr;
      float* du = partial.data() + sl * kPoints * k_n * r_n;
      for (int64_t c0 = t_lo; c0 < t_hi; c0 += kChunk) {
        const int64_t len = std::min(kChunk, t_hi - c0);
        for (int64_t p = 0; p < len; ++p) {
          const int64_t t = c0 + p, n = t / tl.per_image;
          const TilePoints& tp = points[size_t(t % tl.per_image)];
          if (avx512) {
            detail::winograd_tile_input_avx512(x + n * in_img, g.in_pixels(), c_n, &tp.in[0][0], col0, cols,
                                               b_panel.data() + p * nr, b_xi, kChunk * nr);
            detail::winograd_tile_grad_avx512(dy + n * out_img, g.out_pixels(), k_n, tp.out, a_panel.data() + p * mr,
                                              a_xi, kChunk * mr);
          } else {
            tile_input_generic(x + n * in_img, g.in_pixels(), c_n, &tp.in[0][0], col0, cols, b_panel.data() + p * nr,
                               b_xi, kChunk * nr);
            tile_grad_generic(dy + n * out_img, g.out_pixels(), k_n, tp.out, mr, a_panel.data() + p * mr, a_xi,
                              kChunk * mr);
          }
        }
        // The A strips hold [len][mr] at a stride of kChunk * mr, the B strips [len][32] at kChunk * 32: each
        // strip's rows are contiguous, as the micro-kernel reads them.
        for (int xi = 0; xi < kPoints; ++xi)
          for (int64_t sa = 0; sa < a_strips; ++sa) {
            const int rows = int(std::min<int64_t>(mr, k_n - sa * mr));
            const float* ap = a_panel.data() + xi * a_xi + sa * kChunk * mr;
            for (int64_t sb = 0; sb < b_strips; ++sb) {
              const float* bp = b_panel.data() + xi * b_xi + sb * kChunk * nr;
              float* c = du + (xi * k_n + sa * mr) * r_n + col0 + sb * nr;
              if (avx512) {
                uk.run(rows, len, ap, bp, c, r_n, nr / 2, c0 > t_lo);
              } else {  // the 16-wide kernels' panels are not this layout: plain loops, for the tests
                for (int i = 0; i < rows; ++i)
                  for (int j = 0; j < nr; ++j) {
                    float sum = 0.0f;
                    for (int64_t p = 0; p < len; ++p) sum += ap[p * mr + i] * bp[p * nr + j];
                    c[i * r_n + j] = c0 > t_lo ? c[i * r_n + j] + sum : sum;
                  }
              }
            }
          }
      }
    }
  }

  // The slices' partials added in order into the first, then dw row by row.
  float* du = partial.data();
  const int64_t n_du = kPoints * k_n * r_n;
#pragma omp parallel for schedule(static) if (parallel && slices > 1)
  for (int64_t i = 0; i < n_du; ++i)
    for (int64_t sl = 1; sl < slices; ++sl) du[i] += du[sl * n_du + i];
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t k = 0; k < k_n; ++k) {
    if (avx512)
      detail::winograd_grad_output_avx512(du + k * r_n, k_n, c_n, dw + k * c_n * 16);
    else
      grad_output_generic(du + k * r_n, k_n, c_n, dw + k * c_n * 16);
  }
}

}  // namespace cudagan::cpu
