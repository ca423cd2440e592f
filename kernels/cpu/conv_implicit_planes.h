// The implicit-GEMM convolution's shared machinery (conv_implicit.h; internal to the kernels): image planes
// seen as GEMM operands, their packers into the micro-kernel's panels, and the column blocking.
//
// All three passes are GEMMs whose B operand is a window onto image planes: B[r][j] is the value of plane
// row r's plane at (a(j) + dh[r], b(j) + dw[r]), or 0 outside the plane (the padding). `PlaneSource`
// describes such a window, and its `gather` copies one row of B over a range of columns as contiguous runs.
//
//   forward:         planes = the phase planes of x, r = (c, kh, kw), j = (n, oh, ow)
//   backward data:   planes = dy, r = (k, th, tw) of one phase, j = the dx pixels of that phase
//   backward weight: the forward's B, read transposed (r runs along the packed strip, j along the reduction)
//
// conv_implicit.cpp holds the forward and backward weight, conv_implicit_backward_data.cpp backward data,
// conv_implicit_planes.cpp what they share.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "conv.h"
#include "cpu/isa.h"
#include "cpu/packed_gemm.h"

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

namespace implicit {

// out[t] = src[t] for t in [lo, hi), 0 for the rest of [0, run): one contiguous patch run.
using CopyRunFn = void (*)(const float* src, int64_t lo, int64_t hi, int64_t run, float* out);
inline void copy_run_generic(const float* src, int64_t lo, int64_t hi, int64_t run, float* out) {
  for (int64_t t = 0; t < lo; ++t) out[t] = 0.0f;
  for (int64_t t = lo; t < hi; ++t) out[t] = src[t];
  for (int64_t t = hi; t < run; ++t) out[t] = 0.0f;
}
CopyRunFn copy_run_for(Isa isa);

// out[2i] = even[i], out[2i + 1] = odd[i] for the n floats of out.
using InterleaveFn = void (*)(const float* even, const float* odd, int64_t n, float* out);

// even[i] = src[2i], odd[i] = src[2i + 1] for the n floats of src: one x row into its two column phases.
using DeinterleaveFn = void (*)(const float* src, int64_t n, float* even, float* odd);
DeinterleaveFn deinterleave_for(Isa isa);

inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
inline int64_t ceil_div(int64_t a, int64_t b) { return floor_div(a + b - 1, b); }

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
  int64_t rows, cols;   // of each plane
  int64_t per_channel;  // floats of one channel's sh * sw planes
  int64_t per_image;    // floats of one image's C * sh * sw planes
  explicit PhaseLayout(const ConvGeometry& g)
      : rows(ceil_div(g.in_h, g.stride_h)), cols(ceil_div(g.in_w, g.stride_w)),
        per_channel(int64_t(g.stride_h) * g.stride_w * rows * cols), per_image(g.in_channels * per_channel) {}
};

// One x plane (h x w, at src) into its sh * sw phase planes at dst. With a column stride of 2 each x row is
// read once and split into both of its phase rows (AVX-512: two loads and two permutes per 32 floats); the
// pass had been 4.4 % of the DCGAN step as strided scalar copies.
void split_phases(const ConvGeometry& g, const PhaseLayout& l, const float* src, float* dst,
                  DeinterleaveFn deinterleave);

// Channels [c_lo, c_lo + c_n) of images [i_lo, i_hi) of x split into their phase planes at dst, image after
// image (c_n * l.per_channel floats each), on the calling thread.
void split_channels(const ConvGeometry& g, const PhaseLayout& l, const float* x, int64_t i_lo, int64_t i_hi,
                    int64_t c_lo, int64_t c_n, float* dst, DeinterleaveFn deinterleave);

// The forward's B: rows (c, kh, kw) over the phase planes, columns (n, oh, ow).
PlaneSource patch_source(const ConvGeometry& g, const PhaseLayout& layout, const float* planes, Isa isa);

// Packs rows [k0, k0 + kc) x columns [j0, j0 + nv) of `src` into one [kc][nr] strip.
void pack_rows(const PlaneSource& src, int nr, int64_t k0, int64_t kc, int64_t j0, int64_t nv, float* dst);

// Packs the transpose: strip column jj is row r0 + jj of `src`, strip step p its column k0 + p. With
// AVX-512 (nr 32) the rows are gathered contiguously into `tmp` ([32][kc rounded up to 16]) and transposed
// in registers; otherwise each row is scattered into the strip one element at a time.
void pack_columns(const PlaneSource& src, int nr, int64_t k0, int64_t kc, int64_t r0, int64_t nv, float* dst,
                  float* tmp, bool avx512);

// One [kc][mr] strip of A from `rows` (at most mr) rows of a row-major matrix (row stride ld); rows beyond zero.
void pack_a_strip(const MicroKernel& uk, const float* src, int64_t ld, int rows, int64_t kc, float* dst, Isa isa);

// Packs all of A from a row-major matrix (row stride ld) on the OpenMP team.
void pack_a_matrix(const MicroKernel& uk, PackedA& a, const float* src, int64_t ld, Isa isa);

// The column blocking for n columns on the OpenMP team: at most blk.nc columns per block, and a number of
// blocks that the threads share evenly (3 blocks on 2 threads left one idle a third of the time). Column
// blocks never change a result: each element's reduction order is fixed by kc alone.
// (threads 1: just even blocks, for columns one thread runs.)
GemmBlocking balanced(const GemmBlocking& blk, int nr, int64_t n, int64_t threads = omp_get_max_threads());

// How many groups of whole images a batch runs in when each thread takes whole groups: about blk.nc columns
// (cols_per_image each) per group, as many groups as the threads share evenly, at most one per image.
int64_t image_groups(int64_t batch, int64_t cols_per_image, const GemmBlocking& blk);

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

// Throws InvalidArgument naming `op` for an invalid geometry or a null pointer.
void check(const ConvGeometry& g, const void* p1, const void* p2, const void* p3, const char* op);

}  // namespace implicit
}  // namespace cudagan::cpu
