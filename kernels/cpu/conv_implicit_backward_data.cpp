// The implicit-GEMM convolution (conv_implicit.h): backward data, as one GEMM per sub-pixel phase (or all
// phases stacked in one, for few input channels), on the machinery of conv_implicit_planes.h.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "cpu/conv_implicit.h"
#include "cpu/conv_implicit_planes.h"
#include "cpu/packed_gemm.h"

namespace cudagan::cpu {

using namespace implicit;

namespace {

void interleave_generic(const float* even, const float* odd, int64_t n, float* out) {
  // Pairs, then the last even element of an odd n. (A select between the two source pointers per element,
  // `(x % 2 ? odd : even)[x / 2]`, was vectorised by GCC 12 -O3 under AddressSanitizer into wild reads.)
  int64_t i = 0;
  for (; 2 * i + 1 < n; ++i) {
    out[2 * i] = even[i];
    out[2 * i + 1] = odd[i];
  }
  if (2 * i < n) out[2 * i] = even[i];
}

// Backward data's B: dy seen through the transposed convolution's taps. Rows (k, th, tw), columns the grid
// points (n, u, v) for u in [u_lo, u_lo + nu), v in [v_lo, v_lo + nv); the value is dy[n, k, u - th, v - tw].
PlaneSource tap_source(const ConvGeometry& g, const float* dy, int64_t u_lo, int64_t nu, int64_t v_lo, int64_t nv,
                       int64_t th_n, int64_t tw_n, Isa isa) {
  const int64_t k_n = g.out_channels, oh = g.out_h(), ow = g.out_w();
  PlaneSource src;
  src.copy_run = copy_run_for(isa);
  src.gather_strips = isa == Isa::avx512;
  src.period = th_n * tw_n;
  src.base = dy;
  src.img_stride = k_n * oh * ow;
  src.rows = oh;
  src.cols = ow;
  src.na = nu;
  src.nb = nv;
  src.a0 = u_lo;
  src.b0 = v_lo;
  for (int64_t k = 0; k < k_n; ++k)
    for (int64_t th = 0; th < th_n; ++th)
      for (int64_t tw = 0; tw < tw_n; ++tw) {
        src.row_off.push_back(k * oh * ow);
        src.dh.push_back(int32_t(-th));
        src.dw.push_back(int32_t(-tw));
        src.max_shift = std::max({src.max_shift, th, tw});
      }
  return src;
}

// The backward-data store of the stacked phases (backward_data_stacked): row m of C is (c, fh, fw), column j
// the grid point (n, u, v), which lands on dx[n, c, sh*u + fh - ph, sw*v + fw - pw] when that lies inside dx.
class StackedPhaseStore {
 public:
  StackedPhaseStore(const ConvGeometry& g, int64_t u_lo, int64_t nu, int64_t v_lo, int64_t nv, int nr, float* dx,
                    int64_t nc)
      : g_(g), u_lo_(u_lo), nu_(nu), v_lo_(v_lo), nv_(nv), nr_(nr), dx_(dx), yb_(size_t(nc)), xb_(size_t(nc)),
        base_(size_t(nc)), one_row_(size_t(nc / nr + 1)) {}
  void begin_block(int64_t j0, int64_t ncur) {
    const int64_t per_img = nu_ * nv_, h = g_.in_h, w = g_.in_w, sw = g_.stride_w;
    for (int64_t j = 0; j < ncur; ++j) {
      const int64_t jj = j0 + j, i = jj / per_img, u = u_lo_ + (jj % per_img) / nv_, v = v_lo_ + jj % nv_;
      yb_[size_t(j)] = g_.stride_h * u - g_.pad_h;
      xb_[size_t(j)] = g_.stride_w * v - g_.pad_w;
      base_[size_t(j)] = i * g_.in_channels * h * w + yb_[size_t(j)] * w + xb_[size_t(j)];
    }
    for (int64_t first = 0; first < ncur; first += nr_) {  // a strip on one grid row: dx columns sw apart
      bool row = true;
      for (int64_t j = first + 1; j < std::min<int64_t>(ncur, first + nr_) && row; ++j)
        row = yb_[size_t(j)] == yb_[size_t(first)] && base_[size_t(j)] == base_[size_t(first)] + sw * (j - first);
      one_row_[size_t(first / nr_)] = row;
    }
  }
  float* direct(int64_t, int, int64_t, int, int64_t*) const { return nullptr; }  // phases interleave in dx
  int64_t ldc() const { return 0; }
  void store(int64_t m0, int mv, int64_t first, int nv, const float* tile, bool accumulate) const {
    const int64_t sh = g_.stride_h, sw = g_.stride_w, h = g_.in_h, w = g_.in_w;
    const size_t q0 = size_t(first);
    for (int r = 0; r < mv; ++r) {
      const int64_t m = m0 + r, c = m / (sh * sw), fh = (m / sw) % sh, fw = m % sw;
      float* plane = dx_ + c * h * w + fh * w + fw;
      const float* t = tile + r * nr_;
      if (one_row_[q0 / size_t(nr_)]) {  // one bounds check per row, then a strided run (it had been a quarter
        if (uint64_t(yb_[q0] + fh) >= uint64_t(h)) continue;  // of the pass with both checks per element)
        const int64_t x0 = xb_[q0] + fw;  // dx column of the strip's column j: x0 + sw * j
        const int64_t lo = std::min<int64_t>(nv, x0 < 0 ? ceil_div(-x0, sw) : 0);
        const int64_t hi = std::max<int64_t>(lo, std::min<int64_t>(nv, ceil_div(w - x0, sw)));
        float* d = plane + base_[q0];
        if (accumulate)
          for (int64_t j = lo; j < hi; ++j) d[sw * j] += t[j];
        else
          for (int64_t j = lo; j < hi; ++j) d[sw * j] = t[j];
        continue;
      }
      for (int j = 0; j < nv; ++j) {
        const size_t q = size_t(first + j);
        if (uint64_t(yb_[q] + fh) >= uint64_t(h) || uint64_t(xb_[q] + fw) >= uint64_t(w)) continue;
        float& d = plane[base_[q]];
        d = accumulate ? d + t[j] : t[j];
      }
    }
  }

 private:
  const ConvGeometry& g_;
  int64_t u_lo_, nu_, v_lo_, nv_;
  int nr_;
  float* dx_;
  std::vector<int64_t> yb_, xb_, base_;
  std::vector<char> one_row_;  // per strip of the block
};

// Backward data for few input channels (the image layers: dx with 3 channels): per phase the GEMM would have
// 3 rows, a quarter of a 12-row tile. Every phase reads dy at the same offsets (row u - th for grid row u), so
// all phases fit one GEMM whose rows are (c, fh, fw): A holds each phase's taps (0 where a phase has fewer),
// the columns run over the union of the phases' grids, and the store drops the points outside dx.
void backward_data_stacked(const ConvGeometry& g, const float* dy, const float* w, float* dx, Isa isa) {
  const MicroKernel uk = microkernel(isa);
  const GemmBlocking blk;
  const int64_t sh = g.stride_h, sw = g.stride_w, kh_n = g.kernel_h, kw_n = g.kernel_w;
  const int64_t c_n = g.in_channels, k_n = g.out_channels;
  const int64_t th_n = ceil_div(kh_n, sh), tw_n = ceil_div(kw_n, sw), taps = th_n * tw_n;
  int64_t u_lo = INT64_MAX, u_hi = 0, v_lo = INT64_MAX, v_hi = 0;
  for (int64_t f = 0; f < sh; ++f) {
    u_lo = std::min(u_lo, std::max<int64_t>(0, ceil_div(g.pad_h - f, sh)));
    u_hi = std::max(u_hi, ceil_div(g.in_h + g.pad_h - f, sh));
  }
  for (int64_t f = 0; f < sw; ++f) {
    v_lo = std::min(v_lo, std::max<int64_t>(0, ceil_div(g.pad_w - f, sw)));
    v_hi = std::max(v_hi, ceil_div(g.in_w + g.pad_w - f, sw));
  }
  const int64_t nu = u_hi - u_lo, nv = v_hi - v_lo;

  const int64_t m_n = c_n * sh * sw;
  PackedA a(uk, m_n, k_n * taps, blk);  // A[(c, fh, fw)][(k, th, tw)] = w[k, c, fh + sh*th, fw + sw*tw] or 0
  a.pack([&](int64_t m0, int64_t k0, int64_t kc, float* dst) {
    for (int64_t q = 0; q < kc; ++q) {
      const int64_t r = k0 + q, k = r / taps, th = (r % taps) / tw_n, tw = r % tw_n;
      for (int i = 0; i < uk.mr; ++i) {
        const int64_t m = m0 + i, c = m / (sh * sw), kh = (m / sw) % sh + sh * th, kw = m % sw + sw * tw;
        dst[q * uk.mr + i] = m < m_n && kh < kh_n && kw < kw_n ? w[((k * c_n + c) * kh_n + kh) * kw_n + kw] : 0.0f;
      }
    }
  });
  // The union grid is a strip wider than a multiple of nr (33 = 32 + 1 columns for DCGAN's 64x64 images):
  // its 32-column strips crossed grid rows and were packed with gathers, 49 % of the pass. So the columns
  // run in two bands, a multiple of nr wide and the rest, each strip of the first one a stretch of one grid
  // row (two masked loads per row). The same GEMM per column, so the same bits.
  const int64_t wide = nv > uk.nr ? nv / uk.nr * uk.nr : nv;
  for (const auto& band : {std::pair<int64_t, int64_t>{v_lo, wide}, {v_lo + wide, nv - wide}}) {
    const int64_t band_lo = band.first, band_n = band.second;  // (not a structured binding: the OpenMP region
    if (band_n == 0) continue;                                  // below captures them, which C++17 forbids)
    const PlaneSource src = tap_source(g, dy, u_lo, nu, band_lo, band_n, th_n, tw_n, isa);
    const int64_t n = int64_t(g.batch) * nu * band_n, blocks = (n + blk.nc - 1) / blk.nc;
    const bool parallel = 2.0 * double(m_n) * double(a.k()) * double(n) >= double(kParallelFlops);
#pragma omp parallel if (parallel && blocks > 1)
    {
      GemmScratch s(uk, blk);
      StackedPhaseStore out(g, u_lo, nu, band_lo, band_n, uk.nr, dx, blk.nc);
#pragma omp for schedule(static)
      for (int64_t b = 0; b < blocks; ++b) {
        const int64_t j0 = b * blk.nc;
        packed_gemm_columns(
            uk, blk, a, j0, std::min(blk.nc, n - j0), 0, a.k(), false,
            [&](int64_t k0, int64_t kc, int64_t jb, int64_t cnt, float* dst) {
              pack_rows(src, uk.nr, k0, kc, jb, cnt, dst);
            },
            out, s);
      }
    }
  }
}

// One sub-pixel phase of backward data: the dx pixels (sh * u + fh - pad_h, sw * v + fw - pad_w) for the grid
// points u in [u_lo, u_lo + nu), v in [v_lo, v_lo + nv); its B (dy through the phase's taps) and its A (those
// taps of w).
struct Phase {
  int64_t fh, fw, u_lo, nu, v_lo, nv;
  PlaneSource src;
  std::unique_ptr<PackedA> a;
  std::vector<int64_t> tap_at;  // A's columns (k, tap): tap t's weight within a row w[k, c, :, :]
};

// Packs every phase's A. Strip (m0, k0) of phase ph holds w[k, c, tap_at[t]] for rows c = m0 + i, columns
// (k, t). Where the phases have the same number of taps (DCGAN's 4x4 stride-2 kernels: 2 x 2 each), their
// blocks cover the same k, so one pass reads each row w[k, c, :, :] once (kh * kw consecutive floats) and
// writes its taps to every phase; each phase on its own read a tap from each of mr rows kh * kw floats apart,
// column after column (1.4 % of the DCGAN step).
void pack_phase_weights(const ConvGeometry& g, const float* w, const GemmBlocking& blk, int mr,
                        std::vector<Phase>& phases) {
  if (phases.empty()) return;
  const int64_t c_n = g.in_channels, khw = int64_t(g.kernel_h) * g.kernel_w, taps = int64_t(phases[0].tap_at.size());
  bool together = taps > 0 && blk.kc % taps == 0 && phases.size() <= 64;
  for (const Phase& ph : phases) together = together && int64_t(ph.tap_at.size()) == taps;
  const auto pack = [&](size_t first, size_t count, int64_t m0, int64_t k0, int64_t kc) {
    // (phases [first, first + count) have nt taps each; with several, kc is a multiple of nt)
    const int rows = int(std::min<int64_t>(mr, c_n - m0));
    const int64_t s = m0 / mr, nt = int64_t(phases[first].tap_at.size());
    float* dst[64];
    const int64_t* tap_at[64];
    for (size_t p = 0; p < count; ++p) {
      dst[p] = phases[first + p].a->strip(k0, s);
      tap_at[p] = phases[first + p].tap_at.data();
      for (int64_t q = 0; q < kc; ++q)
        for (int i = rows; i < mr; ++i) dst[p][q * mr + i] = 0.0f;
    }
    for (int64_t q0 = k0 - k0 % nt; q0 < k0 + kc; q0 += nt) {  // the columns of one k
      const int64_t t0 = std::max<int64_t>(0, k0 - q0), t1 = std::min(nt, k0 + kc - q0);
      const float* row = w + (q0 / nt * c_n + m0) * khw;
      for (int i = 0; i < rows; ++i, row += khw)
        for (size_t p = 0; p < count; ++p)
          for (int64_t t = t0; t < t1; ++t) dst[p][(q0 + t - k0) * mr + i] = row[tap_at[p][t]];
    }
  };
  if (together)  // phase 0's strips drive the pass; every phase's strip at the same (m0, k0) is written with it
    return phases[0].a->pack([&](int64_t m0, int64_t k0, int64_t kc, float*) { pack(0, phases.size(), m0, k0, kc); });
  for (size_t p = 0; p < phases.size(); ++p)
    phases[p].a->pack([&](int64_t m0, int64_t k0, int64_t kc, float*) { pack(p, 1, m0, k0, kc); });
}

// Writes images [0, ni) of dx from `staged`, which holds each phase's GEMM result in turn as [c][(n, u, v)].
// Every dx row of a stride-2 convolution interleaves its two column phases (even columns from the phase of
// pad_w % 2, both starting at their first grid point); other strides are copied one pixel at a time.
void spread_phases(const ConvGeometry& g, const std::vector<Phase>& phases, const float* staged, int64_t ni,
                   float* dx, Isa isa, bool parallel) {
  const int64_t sh = g.stride_h, sw = g.stride_w, c_n = g.in_channels, h = g.in_h, wd = g.in_w;
  std::vector<const float*> block(size_t(sh * sw), nullptr);  // each phase's [c][(n, u, v)] in `staged`
  for (const Phase& ph : phases) {
    block[size_t(ph.fh * sw + ph.fw)] = staged;
    staged += c_n * ni * ph.nu * ph.nv;
  }
  const Phase* by_phase[64] = {};
  const bool pairs = sw == 2 && sh * sw <= 64 && wd >= 2;
  if (pairs)
    for (const Phase& ph : phases) by_phase[ph.fh * sw + ph.fw] = &ph;
  const InterleaveFn interleave = isa == Isa::avx512 ? detail::interleave_avx512 : interleave_generic;
  const int64_t planes = ni * c_n;
#pragma omp parallel for schedule(static) if (parallel && planes * h * wd >= (int64_t(1) << 15))
  for (int64_t q = 0; q < planes; ++q) {
    const int64_t i = q / c_n, c = q % c_n;
    float* plane = dx + q * h * wd;
    if (pairs) {
      const int64_t fe = g.pad_w % 2, fo = 1 - fe;
      for (int64_t y = 0; y < h; ++y) {
        const int64_t fh = (y + g.pad_h) % sh, u = (y + g.pad_h) / sh;
        const Phase &e = *by_phase[fh * sw + fe], &o = *by_phase[fh * sw + fo];
        const float* even = block[size_t(fh * sw + fe)] + c * ni * e.nu * e.nv + (i * e.nu + u - e.u_lo) * e.nv;
        const float* odd = block[size_t(fh * sw + fo)] + c * ni * o.nu * o.nv + (i * o.nu + u - o.u_lo) * o.nv;
        interleave(even, odd, wd, plane + y * wd);
      }
      continue;
    }
    for (const Phase& ph : phases) {
      const float* src = block[size_t(ph.fh * sw + ph.fw)] + c * ni * ph.nu * ph.nv + i * ph.nu * ph.nv;
      for (int64_t u = 0; u < ph.nu; ++u) {
        float* row = plane + (sh * (ph.u_lo + u) + ph.fh - g.pad_h) * wd + sw * ph.v_lo + ph.fw - g.pad_w;
        for (int64_t v = 0; v < ph.nv; ++v) row[sw * v] = src[u * ph.nv + v];
      }
    }
  }
}

// Stack the phases when one phase's rows (dx's channels) would fill less than a tile.
bool stack_phases(const ConvGeometry& g, Isa isa) { return g.in_channels < microkernel(isa).mr; }

}  // namespace

void conv2d_backward_data_implicit(const ConvGeometry& g, const float* dy, const float* w, float* dx, Isa isa) {
  check(g, dy, w, dx, "conv2d_backward_data_implicit");
  if (stack_phases(g, isa)) return backward_data_stacked(g, dy, w, dx, isa);
  const MicroKernel uk = microkernel(isa);
  const GemmBlocking blk;
  const int64_t sh = g.stride_h, sw = g.stride_w, kh_n = g.kernel_h, kw_n = g.kernel_w;
  const int64_t c_n = g.in_channels, k_n = g.out_channels, h = g.in_h, wd = g.in_w;
  const int64_t dx_image = c_n * h * wd;

  // Phase (fh, fw): the dx pixels with (y + pad_h) % sh == fh and (x + pad_w) % sw == fw. Pixel
  // y = sh * u + fh - pad_h receives the taps kh = fh + sh * th from dy row u - th. Every dx pixel belongs to
  // exactly one phase, so the phases' GEMMs together write each pixel once.
  std::vector<Phase> phases;
  for (int64_t fh = 0; fh < sh; ++fh)
    for (int64_t fw = 0; fw < sw; ++fw) {
      const int64_t u_lo = std::max<int64_t>(0, ceil_div(g.pad_h - fh, sh)), u_hi = ceil_div(h + g.pad_h - fh, sh);
      const int64_t v_lo = std::max<int64_t>(0, ceil_div(g.pad_w - fw, sw)), v_hi = ceil_div(wd + g.pad_w - fw, sw);
      const int64_t nu = u_hi - u_lo, nv = v_hi - v_lo;
      if (nu <= 0 || nv <= 0) continue;
      const int64_t th_n = fh < kh_n ? ceil_div(kh_n - fh, sh) : 0, tw_n = fw < kw_n ? ceil_div(kw_n - fw, sw) : 0;
      std::vector<int64_t> tap_at;  // tap (th, tw)'s weight within a row w[k, c, :, :]
      for (int64_t th = 0; th < th_n; ++th)
        for (int64_t tw = 0; tw < tw_n; ++tw) tap_at.push_back((fh + sh * th) * kw_n + fw + sw * tw);
      // A[c][(k, th, tw)] = w[k, c, fh + sh*th, fw + sw*tw], packed below
      auto a = std::make_unique<PackedA>(uk, c_n, k_n * int64_t(tap_at.size()), blk);
      phases.push_back({fh, fw, u_lo, nu, v_lo, nv, tap_source(g, dy, u_lo, nu, v_lo, nv, th_n, tw_n, isa),
                        std::move(a), std::move(tap_at)});
    }
  pack_phase_weights(g, w, blk, uk.mr, phases);

  // Each phase's GEMM stores its tiles into a dense [c][(n, u, v)] block of `staged` with vector stores (stored
  // straight into dx, sh * sw apart, they cost a quarter of the pass on 4x4 dy planes), then one pass spreads the
  // phases onto dx. The batch runs in groups of whole images: on at least as many images as threads, each
  // thread takes a group (about blk.nc columns per phase, as many groups as the threads share evenly) and runs
  // all its phases into its own `staged`, so the group's dy is read by the four phases from its core's L2 (a
  // chunk of the batch at a time, each phase's columns shared out among the threads, read dy from L3 or memory
  // four times over: its packing had been a sixth of D.conv2's backward data). Fewer images than threads go
  // in chunks that keep `staged` near 4 MiB. The same GEMMs in both cases, so the same bits.
  const int64_t threads = omp_get_max_threads(), grid = phases.empty() ? 1 : phases[0].nu * phases[0].nv;
  const int64_t groups = g.batch >= threads ? image_groups(g.batch, grid, blk) : 0;
  const auto run_group = [&](int64_t i0, int64_t ni, float* staged, GemmScratch* s, bool parallel) {
    float* block = staged;
    for (const Phase& ph : phases) {
      const int64_t per_img = ph.nu * ph.nv, j0 = i0 * per_img, n = ni * per_img;
      const auto pack = [&](int64_t k0, int64_t kc, int64_t jb, int64_t nv, float* dst) {
        pack_rows(ph.src, uk.nr, k0, kc, jb, nv, dst);  // columns (n, u, v) of the whole batch
      };
      const auto column = [j0](int64_t j) { return j - j0; };
      if (parallel) {
        run_columns(uk, blk, *ph.a, j0, n, pack, column, block, n);
      } else {
        OffsetStore<decltype(column)> out(uk, column, block, n, *s);
        packed_gemm_columns(uk, balanced(blk, uk.nr, n, 1), *ph.a, j0, n, 0, ph.a->k(), false, pack, out, *s);
      }
      block += c_n * n;
    }
    spread_phases(g, phases, staged, ni, dx + i0 * dx_image, isa, parallel);
  };
  if (groups > 0) {
    const int64_t most_images = ceil_div(g.batch, groups);
    const bool parallel = 2.0 * double(c_n) * double(k_n) * double(kh_n * kw_n) * double(g.batch) *
                              double(g.out_pixels()) >= double(kParallelFlops);
#pragma omp parallel if (parallel && groups > 1)
    {
      GemmScratch s(uk, blk);
      AlignedFloats staged(most_images * dx_image);  // uninitialised: the phases' GEMMs write every element
#pragma omp for schedule(static)
      for (int64_t gi = 0; gi < groups; ++gi) {
        const int64_t i0 = gi * g.batch / groups, i1 = (gi + 1) * g.batch / groups;
        run_group(i0, i1 - i0, staged.data(), &s, false);
      }
    }
    return;
  }
  const int64_t chunk = std::clamp<int64_t>((int64_t(1) << 20) / std::max<int64_t>(dx_image, 1), 1, g.batch);
  AlignedFloats staged(chunk * dx_image);  // uninitialised: the phases' GEMMs write every element
  for (int64_t i0 = 0; i0 < g.batch; i0 += chunk)
    run_group(i0, std::min<int64_t>(chunk, g.batch - i0), staged.data(), nullptr, true);
}

}  // namespace cudagan::cpu
