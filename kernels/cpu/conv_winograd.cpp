// Winograd F(2x2, 2x2) for the stride-2 4x4 convolutions (conv_winograd.h): the forward and backward data
// share one core, a product over a group of tiles (input transform, nine GEMMs, fold, output scatter).
// The transforms' AVX-512 versions are in winograd_avx512.cpp; the generic ones here run with the other
// micro-kernels, with the same additions in the same order.
#include "cpu/conv_winograd.h"

#include <omp.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>
#include <vector>

#include "cpu/conv_implicit_planes.h"
#include "cpu/conv_winograd_parts.h"
#include "cpu/packed_gemm.h"
#include "cpu/winograd_avx512.h"
#include "cudagan/core/error.h"

namespace cudagan::cpu {

namespace {

using winograd::kPoints;
using winograd::reaches;
using winograd::Tiling;

constexpr int64_t kGroupTiles = 128;  // tiles per thread's group: V, M and Y of a group stay in L2 or L3
constexpr int kMaxLanes = 32;         // the widest micro-kernel's nr

// What one product's strips share: the input (phases x channels planes, `in_plane` floats apart; window
// point (r, q) of phase ph at in_shift[ph][r * 3 + q] from a lane's origin) and the output (channels
// `out_plane` floats apart; tile position (i, j) at out_shift[i * 2 + j] from a lane's origin).
struct Product {
  int phases = 1;
  int64_t channels = 0, in_plane = 0, out_plane = 0;
  int32_t in_shift[4][kPoints] = {};
  int32_t out_shift[4] = {};
};

// One strip of up to 32 tiles: each lane's input and output origin, relative to its group's first image,
// and which of its window points (per phase) and output positions exist.
struct Strip {
  int nv = 0;
  alignas(64) int32_t in_off[kMaxLanes];
  alignas(64) int32_t out_off[kMaxLanes];
  uint32_t in_ok[4][kPoints], out_ok[4];
};


// The nine U_xi of every phase packed for the micro-kernel: a[ph * 9 + xi]. GEMM row `row` and reduction
// index q read their 16 taps at w + row * row_ld + q * red_ld; taps[ph][u * 2 + v] names the tap of g[u][v].
// Reduction column of (phase, q): fold ? ph * red_n + q (the forward's phases summed in one GEMM) : q.
struct Weights {
  int64_t rows, red_n, row_ld, red_ld;
  int phases;
  bool fold;
  int8_t taps[4][4];
};

// U_xi = G g G^T, with G = [1 0; 1 1; 0 1]: for rows [0, rows) of a strip, into u at ph * ph_stride +
// xi * xi_stride + row * row_stride + q. Serial: the caller runs it per strip of A.
void weights_generic(const float* w, int64_t rows, int64_t row_ld, int64_t red_n, int64_t red_ld, const int8_t* taps,
                     int phases, float* u, int64_t ph_stride, int64_t xi_stride, int64_t row_stride) {
  for (int64_t row = 0; row < rows; ++row)
    for (int64_t q = 0; q < red_n; ++q) {
      const float* wq = w + row * row_ld + q * red_ld;
      for (int ph = 0; ph < phases; ++ph) {
        const int8_t* tp = taps + ph * 4;
        const float g00 = wq[tp[0]], g01 = wq[tp[1]], g10 = wq[tp[2]], g11 = wq[tp[3]];
        const float t[3][2] = {{g00, g01}, {g00 + g10, g01 + g11}, {g10, g11}};  // G g
        for (int r = 0; r < 3; ++r) {
          const float out[3] = {t[r][0], t[r][0] + t[r][1], t[r][1]};  // (G g) G^T
          for (int s = 0; s < 3; ++s) u[ph * ph_stride + (r * 3 + s) * xi_stride + row * row_stride + q] = out[s];
        }
      }
    }
}

std::vector<PackedA> pack_weights(const MicroKernel& uk, const GemmBlocking& blk, const float* w, const Weights& wt,
                                  Isa isa) {
  const int64_t red = wt.fold ? wt.phases * wt.red_n : wt.red_n, sets = wt.fold ? 1 : wt.phases;
  std::vector<PackedA> a;
  a.reserve(size_t(sets * kPoints));
  for (int64_t i = 0; i < sets * kPoints; ++i) a.emplace_back(uk, wt.rows, red, blk);
  const int64_t blocks = (red + blk.kc - 1) / blk.kc;
#pragma omp parallel if (wt.rows * red * sets >= (int64_t(1) << 15))
  {
    // AVX-512 packs the strips directly; the generic path transforms a strip into u, then packs it.
    AlignedFloats u(isa == Isa::avx512 ? 0 : sets * kPoints * uk.mr * red);
    std::vector<float*> dst(size_t(sets * kPoints * blocks));
#pragma omp for schedule(static)
    for (int64_t st = 0; st < a[0].strips(); ++st) {
      const int64_t m0 = st * uk.mr;
      const int rows = int(std::min<int64_t>(uk.mr, wt.rows - m0));
      const float* ws = w + m0 * wt.row_ld;
      if (isa == Isa::avx512) {
        for (int64_t m = 0; m < sets * kPoints; ++m)
          for (int64_t b = 0; b < blocks; ++b) dst[size_t(m * blocks + b)] = a[size_t(m)].strip(b * blk.kc, st);
        detail::winograd_weights_avx512(ws, rows, wt.row_ld, wt.red_n, wt.red_ld, &wt.taps[0][0], wt.phases, wt.fold,
                                        dst.data(), blocks, blk.kc);
        continue;
      }
      const int64_t xi_stride = rows * red, ph_stride = wt.fold ? wt.red_n : kPoints * xi_stride;
      weights_generic(ws, rows, wt.row_ld, wt.red_n, wt.red_ld, &wt.taps[0][0], wt.phases, u.data(), ph_stride,
                      xi_stride, red);
      for (int64_t m = 0; m < sets * kPoints; ++m)
        for (int64_t k0 = 0; k0 < red; k0 += blk.kc)
          implicit::pack_a_strip(uk, u.data() + m * xi_stride + k0, red, rows, a[size_t(m)].block_len(k0),
                                 a[size_t(m)].strip(k0, st), isa);
    }
  }
  return a;
}

// V_xi [ph * C + c][lane] = (B^T d B)[r][s] for one strip (lanes beyond nv zero), into v + xi * xi_stride +
// row * nr, with B^T = [1 -1 0; 0 1 0; 0 -1 1].
void input_strip_generic(const Product& p, const float* x, const Strip& s, int nr, float* v, int64_t xi_stride) {
  for (int ph = 0; ph < p.phases; ++ph)
    for (int64_t c = 0; c < p.channels; ++c) {
      float* out = v + (ph * p.channels + c) * nr;
      for (int j = 0; j < nr; ++j) {
        float d[3][3];
        for (int e = 0; e < kPoints; ++e)
          d[e / 3][e % 3] = j < s.nv && (s.in_ok[ph][e] >> j & 1u)
                                ? x[s.in_off[j] + c * p.in_plane + p.in_shift[ph][e]] : 0.0f;
        winograd::input_transform(d, out + j, xi_stride);
      }
    }
}

// The strip's tiles Y_ij [k][lane] (at ybuf + ij * ij_stride + k * k_stride) into y, where they exist.
void output_strip_generic(const Product& p, const float* ybuf, int64_t ij_stride, int64_t k_stride, int64_t k_n,
                          float* y, const Strip& s) {
  for (int64_t k = 0; k < k_n; ++k)
    for (int ij = 0; ij < 4; ++ij) {
      const float* src = ybuf + ij * ij_stride + k * k_stride;
      float* dst = y + k * p.out_plane + p.out_shift[ij];
      for (int j = 0; j < s.nv; ++j)
        if (s.out_ok[ij] >> j & 1u) dst[s.out_off[j]] = src[j];
    }
}

void add_into(float* dst, const float* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

// The nine GEMMs M_xi = U_xi V_xi of one group (a: its nine U_xi; v: [xi][strip][R][nr]), folded into
// Y_ij [4][K][strips * nr]: each M_xi is added to the positions A^T reaches, in xi order. Where M_xi is the
// first to reach a position it is stored there (and added to the others from there); where it reaches one
// position it accumulates into it; else it goes through mbuf.
void multiply_group(const MicroKernel& uk, const PackedA* a, const float* v, int64_t strips, float* mbuf,
                    float* ybuf) {
  const int mr = uk.mr, nr = uk.nr;
  const int64_t k_n = a[0].m(), r_n = a[0].k(), width = strips * nr, plane = k_n * width;
  const auto gemm = [&](int xi, float* c, bool accumulate) {
    const PackedA& ax = a[xi];
    for (int64_t pc = 0; pc < r_n; pc += ax.block_len(0)) {
      const int64_t kcur = ax.block_len(pc);
      for (int64_t st = 0; st < ax.strips(); ++st) {
        const float* ap = ax.strip(pc, st);
        const int64_t m0 = st * mr;
        const int mv = int(std::min<int64_t>(mr, k_n - m0));
        for (int64_t js = 0; js < strips; ++js)
          uk.run(mv, kcur, ap, v + ((xi * strips + js) * r_n + pc) * nr, c + m0 * width + js * nr, width, nr / 2,
                 accumulate || pc > 0);
      }
    }
  };
  bool ready[4] = {false, false, false, false};
  for (int r = 0; r < 3; ++r)
    for (int s = 0; s < 3; ++s) {
      const int xi = r * 3 + s;
      int targets[4], n = 0, fresh = -1;
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j)
          if (reaches(r, i) && reaches(s, j)) {
            targets[n++] = i * 2 + j;
            if (!ready[i * 2 + j] && fresh < 0) fresh = i * 2 + j;
          }
      if (fresh >= 0) {
        float* m = ybuf + fresh * plane;
        gemm(xi, m, false);
        ready[fresh] = true;
        for (int q = 0; q < n; ++q)
          if (targets[q] != fresh) add_into(ybuf + targets[q] * plane, m, plane);
      } else if (n == 1) {
        gemm(xi, ybuf + targets[0] * plane, true);
      } else {
        gemm(xi, mbuf, false);
        for (int q = 0; q < n; ++q) add_into(ybuf + targets[q] * plane, mbuf, plane);
      }
    }
}

// One thread's buffers for products of at most `strips` strips, `r_n` reduction rows and `k_n` output rows,
// with room for the Y of `products` of them.
struct GroupBuffers {
  AlignedFloats v, mbuf, ybuf;
  std::vector<Strip> strips;
  GroupBuffers(int64_t strips_n, int64_t r_n, int64_t k_n, int nr, int64_t products)
      : v(kPoints * strips_n * r_n * nr), mbuf(k_n * strips_n * nr), ybuf(products * 4 * k_n * strips_n * nr),
        strips(static_cast<size_t>(strips_n)) {}
};

// Runs one product over tiles [t0, t1) of a tiling into ybuf (Y_ij [4][K][strips * nr], lanes the tiles from
// t0), then, given `out`, scatters its tiles there: `lane(t, strip, j)` fills lane j of a strip for tile t.
template <class Lane>
void run_product(const MicroKernel& uk, const PackedA* a, const Product& p, int64_t t0, int64_t t1, const float* in,
                 float* ybuf, float* out, GroupBuffers& b, Isa isa, const Lane& lane) {
  const int nr = uk.nr;
  const int64_t used = (t1 - t0 + nr - 1) / nr, r_n = a[0].k(), k_n = a[0].m(), xi_stride = used * r_n * nr;
  for (int64_t js = 0; js < used; ++js) {
    Strip& st = b.strips[size_t(js)];
    st.nv = int(std::min<int64_t>(nr, t1 - t0 - js * nr));
    for (int e = 0; e < 4; ++e) {
      st.out_ok[e] = 0;
      for (int q = 0; q < kPoints; ++q) st.in_ok[e][q] = 0;
    }
    for (int j = 0; j < kMaxLanes; ++j) {
      st.in_off[j] = st.out_off[j] = 0;
      if (j < st.nv) lane(t0 + js * nr + j, st, j);
    }
    float* vs = b.v.data() + js * r_n * nr;
    if (isa == Isa::avx512)
      detail::winograd_input_strip_avx512(in, p.channels, p.in_plane, p.phases, &p.in_shift[0][0], &st.in_ok[0][0],
                                          st.in_off, vs, xi_stride);
    else
      input_strip_generic(p, in, st, nr, vs, xi_stride);
  }
  multiply_group(uk, a, b.v.data(), used, b.mbuf.data(), ybuf);
  if (!out) return;
  const int64_t width = used * nr;
  for (int64_t js = 0; js < used; ++js) {
    const float* yb = ybuf + js * nr;
    const Strip& st = b.strips[size_t(js)];
    if (isa == Isa::avx512)
      detail::winograd_output_strip_avx512(yb, k_n * width, width, k_n, out, p.out_plane, p.out_shift, st.out_ok,
                                           st.out_off);
    else
      output_strip_generic(p, yb, k_n * width, width, k_n, out, st);
  }
}

// The batch's images in groups of whole images of about kGroupTiles tiles (per_image of them each), as many
// groups as the threads share evenly, and at least one per thread where the batch has the images.
struct Groups {
  int64_t count, images;
  Groups(int64_t batch, int64_t per_image) {
    const int64_t threads = omp_get_max_threads(), per = std::max<int64_t>(1, kGroupTiles / per_image);
    count = std::max((batch + per - 1) / per, std::min(batch, threads));
    if (count > 1) count = std::min(batch, (count + threads - 1) / threads * threads);
    images = (batch + count - 1) / count;
    count = (batch + images - 1) / images;
  }
};

bool int32_offsets(int64_t per_image_floats, int64_t images) {
  return per_image_floats * (images + 1) < INT32_MAX;
}

}  // namespace

bool winograd_supported(const ConvGeometry& g) {
  if (!g.valid() || g.stride_h != 2 || g.stride_w != 2 || g.kernel_h != 4 || g.kernel_w != 4) return false;
  if (g.pad_h > 3 || g.pad_w > 3) return false;
  // A group's offsets are int32 (the AVX-512 gathers'): its images, with the largest group of one image
  // per tile, then of kGroupTiles images.
  const int64_t images = std::min<int64_t>(g.batch, kGroupTiles);
  return int32_offsets(int64_t(g.in_channels) * g.in_pixels(), images) &&
         int32_offsets(int64_t(g.out_channels) * g.out_pixels(), images);
}

namespace {
void check_supported(const ConvGeometry& g, const void* p1, const void* p2, const void* p3, const char* op) {
  implicit::check(g, p1, p2, p3, op);
  if (!winograd_supported(g))
    throw InvalidArgument(std::string("cpu::") + op +
                          ": needs a stride-2 4x4 kernel with padding 0-3");
}

// Runs `body(gi, i0, i1, buffers)` for every group on the OpenMP team.
template <class Body>
void for_groups(const Groups& gr, int64_t batch, double flops, int64_t strips, int64_t r_n, int64_t k_n, int nr,
                int64_t products, const Body& body) {
  const bool parallel = flops >= double(implicit::kParallelFlops);
#pragma omp parallel if (parallel && gr.count > 1)
  {
    GroupBuffers b(strips, r_n, k_n, nr, products);
#pragma omp for schedule(static)
    for (int64_t gi = 0; gi < gr.count; ++gi)
      body(gi * gr.images, std::min(batch, (gi + 1) * gr.images), b);
  }
}
}  // namespace

void conv2d_forward_winograd(const ConvGeometry& g, const float* x, const float* w, float* y, Isa isa) {
  check_supported(g, x, w, y, "conv2d_forward_winograd");
  const MicroKernel uk = microkernel(isa);
  const GemmBlocking blk;
  const int64_t k_n = g.out_channels, c_n = g.in_channels, r_n = 4 * c_n, in_w = g.in_w, out_w = g.out_w();
  const int64_t in_img = c_n * g.in_pixels(), out_img = k_n * g.out_pixels();

  // Phase (a, b) of the taps: g[u][v] = w[k, c, 2u + a, 2v + b], window point (r, q) at x row 4ty + 2r + a - p.
  Weights wt{k_n, c_n, c_n * 16, 16, 4, true, {}};
  Product p;
  p.phases = 4;
  p.channels = c_n;
  p.in_plane = g.in_pixels();
  p.out_plane = g.out_pixels();
  for (int ab = 0; ab < 4; ++ab) {
    const int a = ab / 2, b = ab % 2;
    for (int uv = 0; uv < 4; ++uv) wt.taps[ab][uv] = int8_t((2 * (uv / 2) + a) * 4 + 2 * (uv % 2) + b);
    for (int e = 0; e < kPoints; ++e)
      p.in_shift[ab][e] = int32_t((2 * (e / 3) + a - g.pad_h) * in_w + 2 * (e % 3) + b - g.pad_w);
  }
  for (int ij = 0; ij < 4; ++ij) p.out_shift[ij] = int32_t((ij / 2) * out_w + ij % 2);
  const std::vector<PackedA> a = pack_weights(uk, blk, w, wt, isa);

  const Tiling tl(g.out_h(), out_w);
  const Groups gr(g.batch, tl.per_image);
  const int64_t strips = (gr.images * tl.per_image + uk.nr - 1) / uk.nr;
  const double flops = 2.0 * kPoints * double(k_n) * double(r_n) * double(g.batch * tl.per_image);
  for_groups(gr, g.batch, flops, strips, r_n, k_n, uk.nr, 1, [&](int64_t i0, int64_t i1, GroupBuffers& b) {
    const auto lane = [&](int64_t t, Strip& st, int j) {
      const int64_t n = t / tl.per_image - i0, ty = t % tl.per_image / tl.tx, tx = t % tl.tx;
      st.in_off[j] = int32_t(n * in_img + 4 * ty * in_w + 4 * tx);
      st.out_off[j] = int32_t(n * out_img + 2 * ty * out_w + 2 * tx);
      const uint32_t bit = 1u << j;
      for (int ab = 0; ab < 4; ++ab)
        for (int e = 0; e < kPoints; ++e) {
          const int64_t row = 4 * ty + 2 * (e / 3) + ab / 2 - g.pad_h, col = 4 * tx + 2 * (e % 3) + ab % 2 - g.pad_w;
          if (row >= 0 && row < g.in_h && col >= 0 && col < in_w) st.in_ok[ab][e] |= bit;
        }
      for (int ij = 0; ij < 4; ++ij)
        if (2 * ty + ij / 2 < tl.rows && 2 * tx + ij % 2 < tl.cols) st.out_ok[ij] |= bit;
    };
    run_product(uk, a.data(), p, i0 * tl.per_image, i1 * tl.per_image, x + i0 * in_img, b.ybuf.data(),
                y + i0 * out_img, b, isa, lane);
  });
}

void conv2d_backward_data_winograd(const ConvGeometry& g, const float* dy, const float* w, float* dx, Isa isa) {
  check_supported(g, dy, w, dx, "conv2d_backward_data_winograd");
  const MicroKernel uk = microkernel(isa);
  const GemmBlocking blk;
  const int64_t k_n = g.out_channels, c_n = g.in_channels, h = g.in_h, wd = g.in_w, oh = g.out_h(), ow = g.out_w();
  const int64_t dx_img = c_n * h * wd, dy_img = k_n * oh * ow;

  // Output phase (al, be): dx[c, 2m + al, 2n + be] = sum over k, u, v of g[u][v] dy[k, m + d_al - 1 + u, ...],
  // g[u][v] = w[k, c, 2(1 - u) + ka_al, 2(1 - v) + ka_be], ka = (al + p) % 2, d = (al + p - ka) / 2: each
  // phase a stride-1 2x2 correlation of dy, its own product (reduction K, rows C) on its own tiling.
  Weights wt{c_n, k_n, 16, c_n * 16, 4, false, {}};
  Product p[4];
  int64_t d_h[2], d_w[2], ka_h[2], ka_w[2];
  for (int e = 0; e < 2; ++e) {
    ka_h[e] = (e + g.pad_h) % 2;
    d_h[e] = (e + g.pad_h - ka_h[e]) / 2;
    ka_w[e] = (e + g.pad_w) % 2;
    d_w[e] = (e + g.pad_w - ka_w[e]) / 2;
  }
  std::vector<Tiling> tilings;
  int64_t most_tiles = 0;
  for (int ph = 0; ph < 4; ++ph) {
    const int al = ph / 2, be = ph % 2;
    for (int uv = 0; uv < 4; ++uv)
      wt.taps[ph][uv] = int8_t((2 * (1 - uv / 2) + ka_h[al]) * 4 + 2 * (1 - uv % 2) + ka_w[be]);
    p[ph].phases = 1;
    p[ph].channels = k_n;
    p[ph].in_plane = oh * ow;
    p[ph].out_plane = h * wd;
    for (int e = 0; e < kPoints; ++e) p[ph].in_shift[0][e] = int32_t((e / 3 + d_h[al] - 1) * ow + e % 3 + d_w[be] - 1);
    for (int ij = 0; ij < 4; ++ij) p[ph].out_shift[ij] = int32_t(2 * (ij / 2) * wd + 2 * (ij % 2));
    tilings.emplace_back((h - al + 1) / 2, (wd - be + 1) / 2);
    most_tiles = std::max(most_tiles, tilings.back().per_image);
  }
  const std::vector<PackedA> a = pack_weights(uk, blk, w, wt, isa);

  const Groups gr(g.batch, most_tiles);
  const int64_t strips = (gr.images * most_tiles + uk.nr - 1) / uk.nr;
  const double flops = 2.0 * kPoints * 4 * double(k_n) * double(c_n) * double(g.batch * most_tiles);
  // Padding 1 and sizes a multiple of 4 (AVX-512): the four phases tile dx alike, and a dx row (4ty + 2i + al)
  // interleaves four of their Y_ij (columns 4tx + 2j + be): merged with 16-float stores instead of scattered.
  // (On 8-wide dx rows the scatter is as fast.)
  const bool merge = isa == Isa::avx512 && g.pad_h == 1 && g.pad_w == 1 && h % 4 == 0 && wd % 4 == 0 && wd >= 16;
  for_groups(gr, g.batch, flops, strips, k_n, c_n, uk.nr, merge ? 4 : 1, [&](int64_t i0, int64_t i1, GroupBuffers& b) {
    const int64_t tiles = (i1 - i0) * most_tiles, width = (tiles + uk.nr - 1) / uk.nr * uk.nr;
    float* out = dx + i0 * dx_img;
    for (int ph = 0; ph < 4; ++ph) {
      const Tiling& tl = tilings[size_t(ph)];
      if (tl.per_image == 0) continue;
      const int al = ph / 2, be = ph % 2;
      const auto lane = [&](int64_t t, Strip& st, int j) {
        const int64_t n = t / tl.per_image - i0, ty = t % tl.per_image / tl.tx, tx = t % tl.tx;
        st.in_off[j] = int32_t(n * dy_img + 2 * ty * ow + 2 * tx);
        st.out_off[j] = int32_t(n * dx_img + (4 * ty + al) * wd + 4 * tx + be);
        const uint32_t bit = 1u << j;
        for (int e = 0; e < kPoints; ++e) {
          const int64_t row = 2 * ty + e / 3 + d_h[al] - 1, col = 2 * tx + e % 3 + d_w[be] - 1;
          if (row >= 0 && row < oh && col >= 0 && col < ow) st.in_ok[0][e] |= bit;
        }
        for (int ij = 0; ij < 4; ++ij)
          if (2 * ty + ij / 2 < tl.rows && 2 * tx + ij % 2 < tl.cols) st.out_ok[ij] |= bit;
      };
      run_product(uk, a.data() + ph * kPoints, p[ph], i0 * tl.per_image, i1 * tl.per_image, dy + i0 * dy_img,
                  b.ybuf.data() + (merge ? ph * 4 * c_n * width : 0), merge ? nullptr : out, b, isa, lane);
    }
    if (!merge) return;
    const int64_t tx = tilings[0].tx, ty = tilings[0].ty;
    for (int64_t c = 0; c < c_n; ++c)
      for (int rho = 0; rho < 4; ++rho) {  // dx rows 4ty + rho = 4ty + 2i + al
        const int i = rho / 2, al = rho % 2;
        const float* src[4];
        for (int sigma = 0; sigma < 4; ++sigma) {  // dx columns 4tx + sigma = 4tx + 2j + be
          const int j = sigma / 2, be = sigma % 2;
          src[sigma] = b.ybuf.data() + (((al * 2 + be) * 4 + i * 2 + j) * c_n + c) * width;
        }
        detail::winograd_merge_avx512(src, 4, tiles, 4 * tx, ty, dx_img, 4 * wd, out + c * h * wd + rho * wd);
      }
  });
}

}  // namespace cudagan::cpu
