// The implicit-GEMM convolution's shared machinery (conv_implicit_planes.h).
#include "cpu/conv_implicit_planes.h"

#include <climits>
#include <cstdlib>
#include <string>

#include "cudagan/core/error.h"

namespace cudagan::cpu::implicit {

namespace {

void deinterleave_generic(const float* src, int64_t n, float* even, float* odd) {
  int64_t i = 0;
  for (; 2 * i + 1 < n; ++i) {
    even[i] = src[2 * i];
    odd[i] = src[2 * i + 1];
  }
  if (2 * i < n) even[i] = src[2 * i];
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

}  // namespace

CopyRunFn copy_run_for(Isa isa) { return isa == Isa::avx512 ? detail::copy_run_avx512 : copy_run_generic; }

void split_channels(const ConvGeometry& g, const PhaseLayout& l, const float* x, int64_t i_lo, int64_t i_hi,
                    int64_t c_lo, int64_t c_n, float* dst, DeinterleaveFn deinterleave) {
  const int64_t in_plane = int64_t(g.in_h) * g.in_w;
  for (int64_t i = i_lo; i < i_hi; ++i)
    for (int64_t c = 0; c < c_n; ++c)
      split_phases(g, l, x + (i * g.in_channels + c_lo + c) * in_plane, dst + ((i - i_lo) * c_n + c) * l.per_channel,
                   deinterleave);
}

DeinterleaveFn deinterleave_for(Isa isa) {
  return isa == Isa::avx512 ? detail::deinterleave_avx512 : deinterleave_generic;
}

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

void pack_a_strip(const MicroKernel& uk, const float* src, int64_t ld, int rows, int64_t kc, float* dst, Isa isa) {
  if (isa == Isa::avx512) return detail::pack_a_avx512(src, ld, rows, kc, dst);
  for (int64_t q = 0; q < kc; ++q)
    for (int i = 0; i < uk.mr; ++i) dst[q * uk.mr + i] = i < rows ? src[i * ld + q] : 0.0f;
}

void pack_a_matrix(const MicroKernel& uk, PackedA& a, const float* src, int64_t ld, Isa isa) {
  const int64_t m = a.m();
  a.pack([&](int64_t m0, int64_t k0, int64_t kc, float* dst) {
    pack_a_strip(uk, src + m0 * ld + k0, ld, int(std::min<int64_t>(uk.mr, m - m0)), kc, dst, isa);
  });
}

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

GemmBlocking balanced(const GemmBlocking& blk, int nr, int64_t n, int64_t threads) {
  int64_t blocks = (n + blk.nc - 1) / blk.nc;
  if (blocks > 1 && threads > 1) blocks = (blocks + threads - 1) / threads * threads;
  GemmBlocking out = blk;
  out.nc = std::min(blk.nc, ((n + blocks - 1) / blocks + nr - 1) / nr * nr);
  return out;
}

int64_t image_groups(int64_t batch, int64_t cols_per_image, const GemmBlocking& blk) {
  const int64_t threads = omp_get_max_threads();
  int64_t groups = ceil_div(batch, std::max<int64_t>(1, blk.nc / cols_per_image));
  if (threads > 1 && groups > 1) groups = std::min(batch, ceil_div(groups, threads) * threads);
  return groups;
}

void check(const ConvGeometry& g, const void* p1, const void* p2, const void* p3, const char* op) {
  if (!g.valid()) throw InvalidArgument(std::string("cpu::") + op + ": invalid convolution geometry " + describe(g));
  if (!p1 || !p2 || !p3) throw InvalidArgument(std::string("cpu::") + op + ": null pointer");
}

}  // namespace cudagan::cpu::implicit
