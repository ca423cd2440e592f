// The implicit-GEMM convolution (conv_implicit.h).
//
// All three passes are GEMMs whose B operand is a window onto image planes: B[r][j] is the value of plane
// row r's plane at (a(j) + dh[r], b(j) + dw[r]), or 0 outside the plane (the padding). `PlaneSource`
// describes such a window, and its `gather` copies one row of B over a range of columns as contiguous runs.
//
//   forward:         planes = the phase planes of x, r = (c, kh, kw), j = (n, oh, ow)
//   backward data:   planes = dy, r = (k, th, tw) of one phase, j = the dx pixels of that phase
//   backward weight: the forward's B, read transposed (r runs along the packed strip, j along the reduction)
#include "cpu/conv_implicit.h"

#include <omp.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cpu/packed_gemm.h"
#include "cudagan/core/error.h"

namespace cudagan::cpu {
namespace detail {
// pack_avx512.cpp
void copy_run_avx512(const float* src, int64_t lo, int64_t hi, int64_t run, float* out);
void transpose_strip_avx512(const float* tmp, int64_t ld, int64_t kc, float* dst);
void gather_strip_avx512(const float* base, const int64_t* row_off, int64_t kc, int64_t tap0, int64_t period,
                         const int32_t* lane_off, const int32_t* lane_a, const int32_t* lane_b, int nv,
                         const int32_t* dh, const int32_t* dw, int32_t rows, int32_t cols, float* dst);
void interleave_avx512(const float* even, const float* odd, int64_t n, float* out);
void deinterleave_avx512(const float* src, int64_t n, float* even, float* odd);
void pack_a_avx512(const float* src, int64_t ld, int rows, int64_t kc, float* dst);
void gather_rows_dense_avx512(const float* base, const int64_t* row_off, const int32_t* dh, const int32_t* dw,
                              int64_t nrows, int64_t img_stride, int64_t per_img, int32_t nb, int32_t rows,
                              int32_t cols, int64_t pix0, int64_t kc, float* tmp, int64_t ld);
}  // namespace detail

namespace {

// out[t] = src[t] for t in [lo, hi), 0 for the rest of [0, run): one contiguous patch run.
using CopyRunFn = void (*)(const float* src, int64_t lo, int64_t hi, int64_t run, float* out);

void copy_run_generic(const float* src, int64_t lo, int64_t hi, int64_t run, float* out) {
  for (int64_t t = 0; t < lo; ++t) out[t] = 0.0f;
  for (int64_t t = lo; t < hi; ++t) out[t] = src[t];
  for (int64_t t = hi; t < run; ++t) out[t] = 0.0f;
}

CopyRunFn copy_run_for(Isa isa) { return isa == Isa::avx512 ? detail::copy_run_avx512 : copy_run_generic; }

// out[2i] = even[i], out[2i + 1] = odd[i] for the n floats of out.
using InterleaveFn = void (*)(const float* even, const float* odd, int64_t n, float* out);

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

// even[i] = src[2i], odd[i] = src[2i + 1] for the n floats of src: one x row into its two column phases.
using DeinterleaveFn = void (*)(const float* src, int64_t n, float* even, float* odd);

void deinterleave_generic(const float* src, int64_t n, float* even, float* odd) {
  int64_t i = 0;
  for (; 2 * i + 1 < n; ++i) {
    even[i] = src[2 * i];
    odd[i] = src[2 * i + 1];
  }
  if (2 * i < n) even[i] = src[2 * i];
}

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t ceil_div(int64_t a, int64_t b) { return floor_div(a + b - 1, b); }

constexpr int64_t kParallelFlops = int64_t(1) << 20;  // below this a pass runs on the calling thread

struct PlaneSource {
  const float* base = nullptr;
  int64_t img_stride = 0, rows = 0, cols = 0;  // one image's planes; each plane rows x cols, row-major
  int64_t na = 0, nb = 0, a0 = 0, b0 = 0;      // columns: images x [a0, a0 + na) x [b0, b0 + nb)
  std::vector<int64_t> row_off;                // per B row: its plane's offset within an image
  std::vector<int32_t> dh, dw;                 // per B row: the shift applied to (a, b)
  int64_t period = 0;                          // rows r and r + period share their shift (0: unknown)
  int64_t max_shift = 0;                       // the largest |dh| or |dw|
  CopyRunFn copy_run = copy_run_generic;
  bool gather_strips = false;                  // pack_rows may use gather_strip_avx512

  // A stretch of consecutive columns within one row of one image: grid point (a, b) onwards, len columns,
  // written at out + out_off.
  struct Run {
    int64_t img_off, a, b, len, out_off;
  };

  // Splits columns [j0, j0 + len) into their runs (at most len of them); returns how many.
  int64_t make_runs(int64_t j0, int64_t len, Run* runs) const {
    const int64_t per_img = na * nb;
    int64_t img = j0 / per_img, rem = j0 % per_img, ai = rem / nb, bi = rem % nb, count = 0, done = 0;
    while (done < len) {
      const int64_t run = std::min(len - done, nb - bi);
      runs[count++] = {img * img_stride, a0 + ai, b0 + bi, run, done};
      done += run;
      bi += run;
      if (bi == nb) {
        bi = 0;
        if (++ai == na) ai = 0, ++img;
      }
    }
    return count;
  }

  // out[(run.out_off + t) * stride] = B[r][column t of the run] for every run.
  void gather(int64_t r, const Run* runs, int64_t count, float* out, int64_t stride) const {
    const int64_t roff = row_off[size_t(r)], dhr = dh[size_t(r)], dwr = dw[size_t(r)];
    for (int64_t q = 0; q < count; ++q) {
      const Run& u = runs[q];
      const int64_t arow = u.a + dhr, run = u.len;
      float* o = out + u.out_off * stride;
      int64_t lo = 0, hi = 0;  // valid columns of the run: [lo, hi)
      const float* src = base;  // never read when the run is all padding
      if (arow >= 0 && arow < rows) {
        const int64_t c0 = u.b + dwr;  // plane column of the run's first element
        lo = std::clamp<int64_t>(-c0, 0, run);
        hi = std::clamp<int64_t>(cols - c0, lo, run);
        src = base + u.img_off + roff + arow * cols + c0;
      }
      if (stride == 1) {  // runs are short (a plane row): no memcpy call, masked vectors where the CPU has them
        copy_run(src, lo, hi, run, o);
      } else {
        for (int64_t t = 0; t < lo; ++t) o[t * stride] = 0.0f;
        for (int64_t t = lo; t < hi; ++t) o[t * stride] = src[t];
        for (int64_t t = hi; t < run; ++t) o[t * stride] = 0.0f;
      }
    }
  }
};

// x split into its stride phases: plane (c, ph, pw) holds x[c, a*sh + ph, b*sw + pw] at (a, b), 0 where that
// lies beyond the image, so a shifted window never needs to know the phase. Stride 1 uses x as it is.
struct PhaseLayout {
  int64_t rows, cols;  // of each plane
  int64_t per_image;   // floats of one image's C * sh * sw planes
  explicit PhaseLayout(const ConvGeometry& g)
      : rows(ceil_div(g.in_h, g.stride_h)), cols(ceil_div(g.in_w, g.stride_w)),
        per_image(int64_t(g.in_channels) * g.stride_h * g.stride_w * rows * cols) {}
};

// One x plane (h x w, at src) into its sh * sw phase planes at dst. With a column stride of 2 each x row is
// read once and split into both of its phase rows (AVX-512: two loads and two permutes per 32 floats); the
// pass had been 4.4 % of the DCGAN step as strided scalar copies.
void split_phases(const ConvGeometry& g, const PhaseLayout& l, const float* src, float* dst,
                  DeinterleaveFn deinterleave) {
  const int64_t sh = g.stride_h, sw = g.stride_w, h = g.in_h, w = g.in_w, rows = l.rows, cols = l.cols;
  const int64_t plane = rows * cols;
  for (int64_t ph = 0; ph < sh; ++ph)
    for (int64_t a = 0; a < rows; ++a) {
      const int64_t hh = a * sh + ph;
      float* d = dst + ph * sw * plane + a * cols;  // phase (ph, pw)'s row a is at d + pw * plane
      if (hh >= h) {
        for (int64_t pw = 0; pw < sw; ++pw) std::fill(d + pw * plane, d + pw * plane + cols, 0.0f);
        continue;
      }
      const float* s = src + hh * w;
      if (sw == 2) {
        deinterleave(s, w, d, d + plane);
        if (w % 2) d[plane + cols - 1] = 0.0f;  // the odd phase's last column lies beyond the row
        continue;
      }
      for (int64_t pw = 0; pw < sw; ++pw) {
        const int64_t valid = (w - pw + sw - 1) / sw;  // columns b with b*sw + pw < w
        for (int64_t b = 0; b < valid; ++b) d[pw * plane + b] = s[b * sw + pw];
        for (int64_t b = valid; b < cols; ++b) d[pw * plane + b] = 0.0f;
      }
    }
}

DeinterleaveFn deinterleave_for(Isa isa) {
  return isa == Isa::avx512 ? detail::deinterleave_avx512 : deinterleave_generic;
}

// The phase planes of images [0, images) of x, split in one parallel pass (or x itself for stride 1).
struct PhasePlanes {
  PhaseLayout layout;
  AlignedFloats storage;  // uninitialised: every element is written below
  const float* data = nullptr;

  PhasePlanes(const ConvGeometry& g, const float* x, Isa isa, int64_t images) : layout(g) {
    if (g.stride_h == 1 && g.stride_w == 1) {
      data = x;
      return;
    }
    storage = AlignedFloats(images * layout.per_image);
    float* out = storage.data();
    const int64_t planes = images * g.in_channels, in_plane = int64_t(g.in_h) * g.in_w;
    const int64_t phase_planes = int64_t(g.stride_h) * g.stride_w * layout.rows * layout.cols;
    const DeinterleaveFn deinterleave = deinterleave_for(isa);
#pragma omp parallel for schedule(static) if (planes * in_plane >= (int64_t(1) << 15))
    for (int64_t q = 0; q < planes; ++q)
      split_phases(g, layout, x + q * in_plane, out + q * phase_planes, deinterleave);
    data = storage.data();
  }
};

// The forward's B: rows (c, kh, kw) over the phase planes, columns (n, oh, ow).
PlaneSource patch_source(const ConvGeometry& g, const PhaseLayout& layout, const float* planes, Isa isa) {
  PlaneSource s;
  s.copy_run = copy_run_for(isa);
  s.gather_strips = isa == Isa::avx512;
  s.period = int64_t(g.kernel_h) * g.kernel_w;
  s.base = planes;
  s.img_stride = layout.per_image;
  s.rows = layout.rows;
  s.cols = layout.cols;
  s.na = g.out_h();
  s.nb = g.out_w();
  const int64_t sh = g.stride_h, sw = g.stride_w, plane = layout.rows * layout.cols;
  for (int64_t c = 0; c < g.in_channels; ++c)
    for (int64_t kh = 0; kh < g.kernel_h; ++kh)
      for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
        // input row oh*sh + kh - ph = sh * (oh + th) + phase_h
        const int64_t th = floor_div(kh - g.pad_h, sh), fh = kh - g.pad_h - th * sh;
        const int64_t tw = floor_div(kw - g.pad_w, sw), fw = kw - g.pad_w - tw * sw;
        s.row_off.push_back(((c * sh + fh) * sw + fw) * plane);
        s.dh.push_back(int32_t(th));
        s.dw.push_back(int32_t(tw));
        s.max_shift = std::max({s.max_shift, std::abs(th), std::abs(tw)});
      }
  return s;
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

// The AVX-512 packer of one 32-column strip: every row with the same shift (tap) reads the same offsets
// from its plane, so the offsets and valid lanes are worked out once per tap and strip, and each row becomes
// two masked loads or gathers (the runs of a strip, copied with their clamps row after row, cost a third of
// the backward-data pass on 8x8 planes). Returns false where it does not apply (more than 32 taps, offsets
// beyond int32); pack_rows then copies runs.
bool gather_strip(const PlaneSource& src, int64_t k0, int64_t kc, const PlaneSource::Run* runs, int64_t count,
                  int64_t nv, float* dst) {
  if (src.period <= 0 || src.period > 32 || kc < 2 * src.period) return false;  // the per-tap setup would dominate
  alignas(64) int32_t lane_off[32], lane_a[32], lane_b[32];
  const int64_t img0 = runs[0].img_off, reach = (src.max_shift + 1) * (src.cols + 1);
  if (src.rows > INT32_MAX || src.cols > INT32_MAX) return false;
  int j = 0;
  for (int64_t q = 0; q < count; ++q) {
    const PlaneSource::Run& u = runs[q];
    const int64_t off = u.img_off - img0 + u.a * src.cols + u.b;
    if (off + u.len + reach > INT32_MAX) return false;
    for (int64_t i = 0; i < u.len; ++i, ++j) {
      lane_off[j] = int32_t(off + i);
      lane_a[j] = int32_t(u.a);
      lane_b[j] = int32_t(u.b + i);
    }
  }
  for (; j < 32; ++j) lane_off[j] = lane_a[j] = lane_b[j] = 0;
  detail::gather_strip_avx512(src.base + img0, src.row_off.data() + k0, kc, k0 % src.period, src.period, lane_off,
                              lane_a, lane_b, int(nv), src.dh.data(), src.dw.data(), int32_t(src.rows),
                              int32_t(src.cols), dst);
  return true;
}

// Packs rows [k0, k0 + kc) x columns [j0, j0 + nv) of `src` into one [kc][nr] strip.
void pack_rows(const PlaneSource& src, int nr, int64_t k0, int64_t kc, int64_t j0, int64_t nv, float* dst) {
  PlaneSource::Run runs[64];  // nv <= nr <= 64 columns, so at most 64 runs
  const int64_t count = src.make_runs(j0, nv, runs);
  if (src.gather_strips && nr == 32 && gather_strip(src, k0, kc, runs, count, nv, dst)) return;
  for (int64_t p = 0; p < kc; ++p) {
    float* row = dst + p * nr;
    src.gather(k0 + p, runs, count, row, 1);
    std::fill(row + nv, row + nr, 0.0f);
  }
}

// Packs the transpose: strip column jj is row r0 + jj of `src`, strip step p its column k0 + p. With
// AVX-512 (nr 32) the rows are gathered contiguously into `tmp` ([32][kc rounded up to 16]) and transposed
// in registers; otherwise each row is scattered into the strip one element at a time.
void pack_columns(const PlaneSource& src, int nr, int64_t k0, int64_t kc, int64_t r0, int64_t nv, float* dst,
                  float* tmp, bool avx512) {
  const int64_t per_img = src.na * src.nb;
  if (avx512 && nr == 32 && src.a0 == 0 && src.b0 == 0 && src.cols == src.nb &&
      (src.nb % 16 == 0 || 16 % src.nb == 0) && per_img % 16 == 0 && k0 % 16 == 0 && src.rows <= INT32_MAX &&
      src.cols <= INT32_MAX) {  // each 16 columns one masked load (gather_rows_dense_avx512)
    const int64_t ld = (kc + 15) / 16 * 16;
    detail::gather_rows_dense_avx512(src.base, src.row_off.data() + r0, src.dh.data() + r0, src.dw.data() + r0, nv,
                                     src.img_stride, per_img, int32_t(src.nb), int32_t(src.rows),
                                     int32_t(src.cols), k0, kc, tmp, ld);
    for (int64_t jj = nv; jj < 32; ++jj) std::fill(tmp + jj * ld, tmp + (jj + 1) * ld, 0.0f);
    detail::transpose_strip_avx512(tmp, ld, kc, dst);
    return;
  }
  std::vector<PlaneSource::Run> runs(static_cast<size_t>(kc));
  const int64_t count = src.make_runs(k0, kc, runs.data());
  if (avx512 && nr == 32) {
    const int64_t ld = (kc + 15) / 16 * 16;
    for (int64_t jj = 0; jj < 32; ++jj) {
      float* row = tmp + jj * ld;
      const int64_t filled = jj < nv ? kc : 0;
      if (filled) src.gather(r0 + jj, runs.data(), count, row, 1);
      std::fill(row + filled, row + ld, 0.0f);
    }
    detail::transpose_strip_avx512(tmp, ld, kc, dst);
    return;
  }
  for (int64_t jj = 0; jj < nv; ++jj) src.gather(r0 + jj, runs.data(), count, dst + jj, nr);
  if (nv < nr)
    for (int64_t p = 0; p < kc; ++p) std::fill(dst + p * nr + nv, dst + (p + 1) * nr, 0.0f);
}

// The column blocking for n columns on the OpenMP team: at most blk.nc columns per block, and a number of
// blocks that the threads share evenly (3 blocks on 2 threads left one idle a third of the time). Column
// blocks never change a result: each element's reduction order is fixed by kc alone.
// (threads 1: just even blocks, for columns one thread runs.)
GemmBlocking balanced(const GemmBlocking& blk, int nr, int64_t n, int64_t threads = omp_get_max_threads()) {
  int64_t blocks = (n + blk.nc - 1) / blk.nc;
  if (blocks > 1 && threads > 1) blocks = (blocks + threads - 1) / threads * threads;
  GemmBlocking out = blk;
  out.nc = std::min(blk.nc, ((n + blocks - 1) / blocks + nr - 1) / nr * nr);
  return out;
}

// How many groups of whole images a batch runs in when each thread takes whole groups: about blk.nc columns
// (cols_per_image each) per group, as many groups as the threads share evenly, at most one per image.
int64_t image_groups(int64_t batch, int64_t cols_per_image, const GemmBlocking& blk) {
  const int64_t threads = omp_get_max_threads();
  int64_t groups = ceil_div(batch, std::max<int64_t>(1, blk.nc / cols_per_image));
  if (threads > 1 && groups > 1) groups = std::min(batch, ceil_div(groups, threads) * threads);
  return groups;
}

// Runs columns [n0, n0 + n) of one GEMM over balanced blocks of at most max_blk.nc columns on the OpenMP team.
template <class PackB, class ColOffset>
void run_columns(const MicroKernel& uk, const GemmBlocking& max_blk, const PackedA& a, int64_t n0, int64_t n,
                 const PackB& pack_b, const ColOffset& col_offset, float* c, int64_t row_stride) {
  const GemmBlocking blk = balanced(max_blk, uk.nr, n);
  const int64_t blocks = (n + blk.nc - 1) / blk.nc;
  const bool parallel = 2.0 * double(a.m()) * double(a.k()) * double(n) >= double(kParallelFlops);
#pragma omp parallel if (parallel && blocks > 1)
  {
    GemmScratch s(uk, max_blk);
    OffsetStore<ColOffset> out(uk, col_offset, c, row_stride, s);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t j0 = b * blk.nc;
      packed_gemm_columns(uk, blk, a, n0 + j0, std::min(blk.nc, n - j0), 0, a.k(), false, pack_b, out, s);
    }
  }
}

// The backward-data store of the stacked phases (backward_data_stacked): row m of C is (c, fh, fw), column j
// the grid point (n, u, v), which lands on dx[n, c, sh*u + fh - ph, sw*v + fw - pw] when that lies inside dx.
class StackedPhaseStore {
 public:
  StackedPhaseStore(const ConvGeometry& g, int64_t u_lo, int64_t nu, int64_t v_lo, int64_t nv, int nr, float* dx,
                    int64_t nc)
      : g_(g), u_lo_(u_lo), nu_(nu), v_lo_(v_lo), nv_(nv), nr_(nr), dx_(dx), yb_(size_t(nc)), xb_(size_t(nc)),
        base_(size_t(nc)) {}
  void begin_block(int64_t j0, int64_t ncur) {
    const int64_t per_img = nu_ * nv_, h = g_.in_h, w = g_.in_w;
    for (int64_t j = 0; j < ncur; ++j) {
      const int64_t jj = j0 + j, i = jj / per_img, u = u_lo_ + (jj % per_img) / nv_, v = v_lo_ + jj % nv_;
      yb_[size_t(j)] = g_.stride_h * u - g_.pad_h;
      xb_[size_t(j)] = g_.stride_w * v - g_.pad_w;
      base_[size_t(j)] = i * g_.in_channels * h * w + yb_[size_t(j)] * w + xb_[size_t(j)];
    }
  }
  float* direct(int64_t, int, int64_t, int, int64_t*) const { return nullptr; }  // phases interleave in dx
  int64_t ldc() const { return 0; }
  void store(int64_t m0, int mv, int64_t first, int nv, const float* tile, bool accumulate) const {
    const int64_t sh = g_.stride_h, sw = g_.stride_w, h = g_.in_h, w = g_.in_w;
    for (int r = 0; r < mv; ++r) {
      const int64_t m = m0 + r, c = m / (sh * sw), fh = (m / sw) % sh, fw = m % sw;
      float* plane = dx_ + c * h * w + fh * w + fw;
      const float* t = tile + r * nr_;
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

  const PlaneSource src = tap_source(g, dy, u_lo, nu, v_lo, nv, th_n, tw_n, isa);

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
  const int64_t n = int64_t(g.batch) * nu * nv, blocks = (n + blk.nc - 1) / blk.nc;
  const bool parallel = 2.0 * double(m_n) * double(a.k()) * double(n) >= double(kParallelFlops);
#pragma omp parallel if (parallel && blocks > 1)
  {
    GemmScratch s(uk, blk);
    StackedPhaseStore out(g, u_lo, nu, v_lo, nv, uk.nr, dx, blk.nc);
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
  if (together) {
    const PackedA& a = *phases[0].a;
    const int64_t blocks = (a.k() + blk.kc - 1) / blk.kc, strips = a.strips();
#pragma omp parallel for schedule(static) collapse(2) if (a.m() * a.k() >= (int64_t(1) << 15))
    for (int64_t b = 0; b < blocks; ++b)
      for (int64_t s = 0; s < strips; ++s) pack(0, phases.size(), s * mr, b * blk.kc, a.block_len(b * blk.kc));
    return;
  }
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

// The forward of a strided convolution, on at least as many images as threads: the batch runs in groups of
// whole images (about blk.nc columns each, as many groups as the threads share evenly), and the thread that
// takes a group first splits just those images into its own phase planes, then packs B from them. So B is
// packed from planes its own core has just written, still in L2. Split in one pass for the whole batch
// beforehand, they came back from L3 or memory: that pass and the B packing reading it had been a quarter
// of D.conv2's forward. The reduction blocks are the same, so are the bits.
template <class ColOffset>
void forward_by_image_groups(const ConvGeometry& g, const float* x, const MicroKernel& uk, const GemmBlocking& blk,
                             const PackedA& a, const ColOffset& y_offset, float* y, Isa isa) {
  const int64_t batch = g.batch, p = g.out_pixels(), groups = image_groups(batch, p, blk);
  const int64_t most_images = ceil_div(batch, groups);
  const PhaseLayout layout(g);
  const int64_t in_plane = int64_t(g.in_h) * g.in_w, x_image = g.in_channels * in_plane;
  const int64_t phase_planes = int64_t(g.stride_h) * g.stride_w * layout.rows * layout.cols;
  const DeinterleaveFn deinterleave = deinterleave_for(isa);
  const bool parallel = 2.0 * double(a.m()) * double(a.k()) * double(batch * p) >= double(kParallelFlops);
#pragma omp parallel if (parallel && groups > 1)
  {
    GemmScratch s(uk, blk);
    OffsetStore<ColOffset> out(uk, y_offset, y, p, s);
    AlignedFloats mine(most_images * layout.per_image);  // this thread's planes
    const PlaneSource src = patch_source(g, layout, mine.data(), isa);  // columns from the group's first image
#pragma omp for schedule(static)
    for (int64_t gi = 0; gi < groups; ++gi) {
      const int64_t i0 = gi * batch / groups, i1 = (gi + 1) * batch / groups;
      for (int64_t q = 0; q < (i1 - i0) * g.in_channels; ++q)
        split_phases(g, layout, x + i0 * x_image + q * in_plane, mine.data() + q * phase_planes, deinterleave);
      const int64_t j0 = i0 * p, cols = (i1 - i0) * p;
      packed_gemm_columns(
          uk, balanced(blk, uk.nr, cols, 1), a, j0, cols, 0, a.k(), false,
          [&](int64_t k0, int64_t kc, int64_t jb, int64_t nv, float* dst) {
            pack_rows(src, uk.nr, k0, kc, jb - j0, nv, dst);
          },
          out, s);
    }
  }
}

// Stack the phases when one phase's rows (dx's channels) would fill less than a tile.
bool stack_phases(const ConvGeometry& g, Isa isa) { return g.in_channels < microkernel(isa).mr; }

void check(const ConvGeometry& g, const void* p1, const void* p2, const void* p3, const char* op) {
  if (!g.valid()) throw InvalidArgument(std::string("cpu::") + op + ": invalid convolution geometry " + describe(g));
  if (!p1 || !p2 || !p3) throw InvalidArgument(std::string("cpu::") + op + ": null pointer");
}

}  // namespace

void conv2d_forward_implicit(const ConvGeometry& g, const float* x, const float* w, float* y, Isa isa) {
  check(g, x, w, y, "conv2d_forward_implicit");
  const MicroKernel uk = microkernel(isa);
  const GemmBlocking blk;
  const int64_t k = g.out_channels, ckk = g.col_rows(), p = g.out_pixels();
  PackedA a(uk, k, ckk, blk);
  a.pack([&](int64_t m0, int64_t k0, int64_t kc, float* dst) {
    const float* rows = w + m0 * ckk + k0;  // A = w [K][CKK]: a strip is a transposed block of w's rows
    if (isa == Isa::avx512) return detail::pack_a_avx512(rows, ckk, int(std::min<int64_t>(uk.mr, k - m0)), kc, dst);
    for (int64_t q = 0; q < kc; ++q)
      for (int i = 0; i < uk.mr; ++i) dst[q * uk.mr + i] = m0 + i < k ? rows[i * ckk + q] : 0.0f;
  });
  const auto y_offset = [&](int64_t j) { return (j / p) * k * p + j % p; };
  const bool strided = g.stride_h != 1 || g.stride_w != 1;
  if (strided && g.batch >= omp_get_max_threads()) return forward_by_image_groups(g, x, uk, blk, a, y_offset, y, isa);
  const PhasePlanes planes(g, x, isa, g.batch);
  const PlaneSource src = patch_source(g, planes.layout, planes.data, isa);
  run_columns(
      uk, blk, a, 0, int64_t(g.batch) * p,
      [&](int64_t k0, int64_t kc, int64_t j0, int64_t nv, float* dst) { pack_rows(src, uk.nr, k0, kc, j0, nv, dst); },
      y_offset, y, p);
}

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

void conv2d_backward_weight_implicit(const ConvGeometry& g, const float* x, const float* dy, float* dw, Isa isa) {
  check(g, x, dy, dw, "conv2d_backward_weight_implicit");
  const MicroKernel uk = microkernel(isa);
  const GemmBlocking blk;
  const int64_t k_n = g.out_channels, ckk = g.col_rows(), p = g.out_pixels(), pixels = int64_t(g.batch) * p;
  const bool strided = g.stride_h != 1 || g.stride_w != 1;
  const PhaseLayout layout(g);
  const PlaneSource whole = patch_source(g, layout, x, isa);  // stride 1: x is its own (only) phase

  // The reduction over the batch's pixels runs in fixed slices (a multiple of kc, A's packed slice about
  // 4 MiB at most), each into its own partial dw, added in slice order at the end.
  const int64_t slice = std::max<int64_t>(blk.kc, (int64_t(1) << 20) / std::max<int64_t>(k_n, 1) / blk.kc * blk.kc);
  const int64_t slices = std::max<int64_t>(1, (pixels + slice - 1) / slice);
  // Tasks (slice, block of dw's columns) shared evenly by the threads (see balanced()).
  const GemmBlocking cblk = slices % omp_get_max_threads() == 0 ? blk : balanced(blk, uk.nr, ckk);
  const int64_t col_blocks = (ckk + cblk.nc - 1) / cblk.nc, tasks = slices * col_blocks;
  AlignedFloats partials(slices > 1 ? slices * k_n * ckk : 0);  // uninitialised: each slice stores first
  const bool parallel = 2.0 * double(k_n) * double(ckk) * double(pixels) >= double(kParallelFlops);

  // A strided x is split into phase planes by each thread, for the images of one kc block and the channels
  // of its task's dw columns, just before they are packed: read back from that core's L2. (Split for the
  // whole batch beforehand, the planes came back from memory: that pass and the packing from it had been a
  // quarter of D.conv2's backward weight.) The packed values are the same, so are the bits.
  const int64_t taps = int64_t(g.kernel_h) * g.kernel_w, in_plane = int64_t(g.in_h) * g.in_w;
  const int64_t phase_planes = int64_t(g.stride_h) * g.stride_w * layout.rows * layout.cols;
  const int64_t most_channels = std::min<int64_t>(g.in_channels, cblk.nc / taps + 2);
  const int64_t most_images = std::min<int64_t>(g.batch, blk.kc / p + 2);
  const DeinterleaveFn deinterleave = deinterleave_for(isa);

#pragma omp parallel if (parallel && tasks > 1)
  {
    GemmScratch s(uk, blk);
    std::unique_ptr<PackedA> a;
    int64_t packed_slice = -1;
    AlignedFloats mine(strided ? most_images * most_channels * phase_planes : 0);  // this thread's planes
    PlaneSource local = whole;
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t sl = t / col_blocks, cb = t % col_blocks;
      const int64_t first = sl * slice, len = std::min(slice, pixels - first);
      const int64_t r0 = cb * cblk.nc, ncols = std::min(cblk.nc, ckk - r0);
      const int64_t c_lo = r0 / taps, c_n = (r0 + ncols - 1) / taps + 1 - c_lo;  // the task's channels
      if (strided) {  // `mine` holds images [img_lo, img_hi), channels [c_lo, c_lo + c_n), image after image
        local.base = mine.data();
        local.img_stride = c_n * phase_planes;
        for (size_t r = 0; r < local.row_off.size(); ++r) local.row_off[r] = whole.row_off[r] - c_lo * phase_planes;
      }
      int64_t img_lo = -1, img_hi = -1;
      if (sl != packed_slice) {  // A = dy [K, pixels of this slice]
        a = std::make_unique<PackedA>(uk, k_n, len, blk);
        a->pack(
            [&](int64_t m0, int64_t k0, int64_t kc, float* dst) {
              if (isa == Isa::avx512) {  // each image's run of pixels: `rows` channels of dy, p apart
                const int rows = int(std::min<int64_t>(uk.mr, k_n - m0));
                int64_t ji = (first + k0) / p, jp = (first + k0) % p;
                for (int64_t q = 0; q < kc;) {
                  const int64_t run = std::min(kc - q, p - jp);
                  detail::pack_a_avx512(dy + (ji * k_n + m0) * p + jp, p, rows, run, dst + q * uk.mr);
                  q += run, jp = 0, ++ji;
                }
                return;
              }
              for (int i = 0; i < uk.mr; ++i) {
                const int64_t k = m0 + i;
                if (k >= k_n) {
                  for (int64_t q = 0; q < kc; ++q) dst[q * uk.mr + i] = 0.0f;
                  continue;
                }
                // pixel j = first + k0 + q is pixel jp of image ji: walk them without a division each
                int64_t ji = (first + k0) / p, jp = (first + k0) % p;
                for (int64_t q = 0; q < kc;) {
                  const float* row = dy + (ji * k_n + k) * p;
                  const int64_t run = std::min(kc - q, p - jp);
                  for (int64_t t = 0; t < run; ++t) dst[(q + t) * uk.mr + i] = row[jp + t];
                  q += run, jp = 0, ++ji;
                }
              }
            },
            false);
        packed_slice = sl;
      }
      const auto identity = [](int64_t j) { return j; };
      OffsetStore<decltype(identity)> out(uk, identity, slices > 1 ? partials.data() + sl * k_n * ckk : dw, ckk, s);
      packed_gemm_columns(
          uk, cblk, *a, r0, ncols, 0, len, false,
          [&](int64_t k0, int64_t kc, int64_t j0, int64_t nv, float* dst) {
            const int64_t j = first + k0;  // the block's first pixel
            if (!strided) return pack_columns(whole, uk.nr, j, kc, j0, nv, dst, s.pack_tmp.data(), isa == Isa::avx512);
            const int64_t lo = j / p, hi = ceil_div(j + kc, p);
            if (lo != img_lo || hi != img_hi) {  // the first strip of a kc block with other images
              for (int64_t i = lo; i < hi; ++i)
                for (int64_t c = 0; c < c_n; ++c)
                  split_phases(g, layout, x + (i * g.in_channels + c_lo + c) * in_plane,
                               mine.data() + ((i - lo) * c_n + c) * phase_planes, deinterleave);
              img_lo = lo, img_hi = hi;
            }
            pack_columns(local, uk.nr, j - lo * p, kc, j0, nv, dst, s.pack_tmp.data(), isa == Isa::avx512);
          },
          out, s);
    }
  }
  if (slices > 1) {
    const int64_t n = k_n * ckk;
#pragma omp parallel for schedule(static) if (n * slices >= (int64_t(1) << 15))
    for (int64_t e = 0; e < n; ++e) {
      float sum = partials.data()[e];
      for (int64_t sl = 1; sl < slices; ++sl) sum += partials.data()[sl * n + e];
      dw[e] = sum;
    }
  }
}

}  // namespace cudagan::cpu
