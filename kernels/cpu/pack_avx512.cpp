// AVX-512 helpers of the implicit-GEMM packers (conv_implicit_planes.h), compiled with -mavx512f
// (kernels/CMakeLists.txt) and called only where CPUID reports it:
//   copy_run_avx512: out[t] = src[t] for t in [lo, hi) and 0 elsewhere in [0, run), 16 floats per masked load
//     and store; masked-off lanes are never read, so src may end at hi.
//   gather_strip_avx512: one [kc][32] strip of a shifted-window B (conv_implicit_planes.h's PlaneSource) whose 32
//     columns share their row structure: row p reads its plane at the 32 offsets of its tap (computed once
//     per tap, in vectors), masked to the tap's valid lanes; one masked load per 16 lanes where the offsets
//     are consecutive (a strip within one image whose grid rows are the plane's rows), a masked gather
//     otherwise.
//   interleave_avx512: out[2i] = even[i], out[2i + 1] = odd[i] for the n floats of out (a dx row from its
//     two column phases, after the backward data's per-phase GEMMs).
//   deinterleave_avx512: the reverse, even[i] = src[2i] and odd[i] = src[2i + 1] for the n floats of src (an
//     x row split into its two column phases for a stride-2 convolution's phase planes).
//   pack_a_avx512: dst[q * 12 + i] = src[i * ld + q] for q < kc and i < rows (at most 12), 0 for the rest of
//     the 12: one [kc][12] strip of the 12x32 micro-kernel's A from `rows` rows of a row-major matrix, 16 x 16
//     transposes in registers.
//   gather_rows_dense_avx512: rows of a shifted-window B (conv_implicit_planes.h's PlaneSource) over kc
//     consecutive columns, for a window whose grid rows are as wide as its planes (nb == cols, where column
//     (a, b) of an image and the plane offset a * cols + b run together) and nb dividing 16 or 16 dividing
//     nb: 16 columns are then one masked load from one plane, the mask the window's padding. The backward
//     weight's B rows (copied run by run, a run per output row, they were a twentieth of the DCGAN step).
//   transpose_strip_avx512: a [32][kc] block (row stride ld) into the micro-kernel's [kc][32] strip, 16 x 16
//     at a time in registers, for the backward-weight packer, whose B is the patch matrix transposed.
// GCC 12's AVX-512 shuffle intrinsics start from _mm512_undefined_ps(), which -Wuninitialized reports once
// they are inlined here: a false positive (GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <climits>
#include <cstdint>

#include "cpu/transpose16_avx512.h"

namespace cudagan::cpu::detail {

// Declared in conv_implicit_planes.h, which this file does not include (see microkernel_avx512.cpp for why).
void copy_run_avx512(const float* src, int64_t lo, int64_t hi, int64_t run, float* out);
void transpose_strip_avx512(const float* tmp, int64_t ld, int64_t kc, float* dst);
void pack_a_avx512(const float* src, int64_t ld, int rows, int64_t kc, float* dst);
void gather_rows_dense_avx512(const float* base, const int64_t* row_off, const int32_t* dh, const int32_t* dw,
                              int64_t nrows, int64_t img_stride, int64_t per_img, int32_t nb, int32_t rows,
                              int32_t cols, int64_t pix0, int64_t kc, float* tmp, int64_t ld);
void gather_strip_avx512(const float* base, const int64_t* row_off, int64_t kc, int64_t tap0, int64_t period,
                         const int32_t* lane_off, const int32_t* lane_a, const int32_t* lane_b, int nv,
                         const int32_t* dh, const int32_t* dw, int32_t rows, int32_t cols, float* dst);

void interleave_avx512(const float* even, const float* odd, int64_t n, float* out);
void deinterleave_avx512(const float* src, int64_t n, float* even, float* odd);

void copy_run_avx512(const float* src, int64_t lo, int64_t hi, int64_t run, float* out) {
  for (int64_t t0 = 0; t0 < run; t0 += 16) {
    // lanes t0 + l with l < 16: stored when < run, loaded when in [lo, hi)
    const int64_t n_store = run - t0 < 16 ? run - t0 : 16;
    const int64_t a = lo - t0 > 0 ? lo - t0 : 0, b = hi - t0 < 16 ? hi - t0 : 16;
    const __mmask16 store = __mmask16((1u << n_store) - 1u);
    const __mmask16 load = b > a ? __mmask16(((1u << b) - 1u) & ~((1u << a) - 1u)) : __mmask16(0);
    _mm512_mask_storeu_ps(out + t0, store, _mm512_maskz_loadu_ps(load, src + t0));
  }
}

void interleave_avx512(const float* even, const float* odd, int64_t n, float* out) {
  const __m512i lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi_idx = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  int64_t x = 0;
  for (; x + 32 <= n; x += 32) {
    const __m512 e = _mm512_loadu_ps(even + x / 2), o = _mm512_loadu_ps(odd + x / 2);
    _mm512_storeu_ps(out + x, _mm512_permutex2var_ps(e, lo_idx, o));
    _mm512_storeu_ps(out + x + 16, _mm512_permutex2var_ps(e, hi_idx, o));
  }
  if (x < n) {  // the last n - x < 32 floats: ceil of half from even, floor of half from odd
    const int64_t rest = n - x, ne = (rest + 1) / 2, no = rest / 2;
    const __m512 e = _mm512_maskz_loadu_ps(__mmask16((1u << ne) - 1u), even + x / 2);
    const __m512 o = _mm512_maskz_loadu_ps(__mmask16((1u << no) - 1u), odd + x / 2);
    const uint32_t store = rest >= 32 ? ~0u : (1u << rest) - 1u;
    _mm512_mask_storeu_ps(out + x, __mmask16(store), _mm512_permutex2var_ps(e, lo_idx, o));
    _mm512_mask_storeu_ps(out + x + 16, __mmask16(store >> 16), _mm512_permutex2var_ps(e, hi_idx, o));
  }
}

void deinterleave_avx512(const float* src, int64_t n, float* even, float* odd) {
  const __m512i even_idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd_idx = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  int64_t x = 0;
  for (; x + 32 <= n; x += 32) {
    const __m512 a = _mm512_loadu_ps(src + x), b = _mm512_loadu_ps(src + x + 16);
    _mm512_storeu_ps(even + x / 2, _mm512_permutex2var_ps(a, even_idx, b));
    _mm512_storeu_ps(odd + x / 2, _mm512_permutex2var_ps(a, odd_idx, b));
  }
  if (x < n) {  // the last n - x < 32 floats: ceil of half to even, floor of half to odd
    const int64_t rest = n - x;
    const uint32_t load = (1u << rest) - 1u;
    const __m512 a = _mm512_maskz_loadu_ps(__mmask16(load), src + x);
    const __m512 b = _mm512_maskz_loadu_ps(__mmask16(load >> 16), src + x + 16);
    const __mmask16 n_even = __mmask16((1u << ((rest + 1) / 2)) - 1u), n_odd = __mmask16((1u << (rest / 2)) - 1u);
    _mm512_mask_storeu_ps(even + x / 2, n_even, _mm512_permutex2var_ps(a, even_idx, b));
    _mm512_mask_storeu_ps(odd + x / 2, n_odd, _mm512_permutex2var_ps(a, odd_idx, b));
  }
}

namespace {

// Rows q < rows_out of the transpose of the 16 x 16 block at `in` (row stride ld) to out + q * ldo.
inline void transpose16(const float* in, int64_t ld, float* out, int64_t ldo, int64_t rows_out) {
  __m512 r[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(in + i * ld);
  transpose16_regs(r);
  for (int64_t q = 0; q < rows_out; ++q) _mm512_storeu_ps(out + q * ldo, r[q]);
}

}  // namespace

// Lane j of the strip reads plane (a[j] + dh[t], b[j] + dw[t]) for row tap t, at offset
// lane_off[j] + dh[t] * cols + dw[t] from the row's plane; valid when inside rows x cols and j < nv, 0 otherwise.
// Per tap: its offsets, its valid lanes, and whether the valid lanes read consecutive floats (then two masked
// loads replace the gathers). Then row p (tap (tap0 + p) % period) reads base + row_off[p] at those offsets.
// Masked-off lanes are never read.
void gather_strip_avx512(const float* base, const int64_t* row_off, int64_t kc, int64_t tap0, int64_t period,
                         const int32_t* lane_off, const int32_t* lane_a, const int32_t* lane_b, int nv,
                         const int32_t* dh, const int32_t* dw, int32_t rows, int32_t cols, float* dst) {
  constexpr int kMaxTaps = 32;
  alignas(64) int32_t offsets[kMaxTaps][32];
  uint32_t masks[kMaxTaps];
  bool consecutive[kMaxTaps];
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i zero_i = _mm512_setzero_si512(), rows_v = _mm512_set1_epi32(rows), cols_v = _mm512_set1_epi32(cols);
  const uint32_t lanes = nv >= 32 ? ~uint32_t(0) : (uint32_t(1) << nv) - 1u;
  for (int64_t t = 0; t < period && t < kMaxTaps; ++t) {
    uint32_t mask = 0;
    __m512i cand[2];  // offset - lane: one value across the valid lanes when they are consecutive
    for (int h = 0; h < 2; ++h) {
      const __m512i a = _mm512_add_epi32(_mm512_loadu_si512(lane_a + 16 * h), _mm512_set1_epi32(dh[t]));
      const __m512i b = _mm512_add_epi32(_mm512_loadu_si512(lane_b + 16 * h), _mm512_set1_epi32(dw[t]));
      const __m512i off =
          _mm512_add_epi32(_mm512_loadu_si512(lane_off + 16 * h), _mm512_set1_epi32(dh[t] * cols + dw[t]));
      const __mmask16 ok = _mm512_cmpge_epi32_mask(a, zero_i) & _mm512_cmplt_epi32_mask(a, rows_v) &
                           _mm512_cmpge_epi32_mask(b, zero_i) & _mm512_cmplt_epi32_mask(b, cols_v) &
                           __mmask16(lanes >> (16 * h));
      mask |= uint32_t(ok) << (16 * h);
      _mm512_store_si512(offsets[t] + 16 * h, off);
      cand[h] = _mm512_sub_epi32(off, _mm512_add_epi32(iota, _mm512_set1_epi32(16 * h)));
    }
    const __mmask16 lo = __mmask16(mask), hi = __mmask16(mask >> 16);
    const int32_t cmin = std::min(lo ? _mm512_mask_reduce_min_epi32(lo, cand[0]) : INT32_MAX,
                                  hi ? _mm512_mask_reduce_min_epi32(hi, cand[1]) : INT32_MAX);
    const int32_t cmax = std::max(lo ? _mm512_mask_reduce_max_epi32(lo, cand[0]) : INT32_MIN,
                                  hi ? _mm512_mask_reduce_max_epi32(hi, cand[1]) : INT32_MIN);
    masks[t] = mask;
    consecutive[t] = mask == 0 || cmin == cmax;
    if (consecutive[t]) offsets[t][0] = mask ? cmin : 0;  // where lane 0 would read
  }
  const __m512 zero = _mm512_setzero_ps();
  int64_t t = tap0;
  for (int64_t p = 0; p < kc; ++p) {
    const float* plane = base + row_off[p];
    const int32_t* off = offsets[t];
    const __mmask16 lo = __mmask16(masks[t]), hi = __mmask16(masks[t] >> 16);
    __m512 a, b;
    if (consecutive[t]) {
      a = _mm512_maskz_loadu_ps(lo, plane + off[0]);
      b = _mm512_maskz_loadu_ps(hi, plane + off[0] + 16);
    } else {
      a = _mm512_mask_i32gather_ps(zero, lo, _mm512_load_si512(off), plane, 4);
      b = _mm512_mask_i32gather_ps(zero, hi, _mm512_load_si512(off + 16), plane, 4);
    }
    _mm512_store_ps(dst + p * 32, a);
    _mm512_store_ps(dst + p * 32 + 16, b);
    if (++t == period) t = 0;
  }
}

// tmp [32][ld] (ld a multiple of 16, columns kc..ld zero) -> dst [kc][32].
void transpose_strip_avx512(const float* tmp, int64_t ld, int64_t kc, float* dst) {
  for (int64_t p0 = 0; p0 < kc; p0 += 16) {
    const int64_t rows = kc - p0 < 16 ? kc - p0 : 16;
    transpose16(tmp + p0, ld, dst + p0 * 32, 32, rows);
    transpose16(tmp + 16 * ld + p0, ld, dst + p0 * 32 + 16, 32, rows);
  }
}

void gather_rows_dense_avx512(const float* base, const int64_t* row_off, const int32_t* dh, const int32_t* dw,
                              int64_t nrows, int64_t img_stride, int64_t per_img, int32_t nb, int32_t rows,
                              int32_t cols, int64_t pix0, int64_t kc, float* tmp, int64_t ld) {
  // Lane l of a 16-column chunk starting at grid column j (a multiple of 16) of an image is the grid point
  // (j / nb + l / nb, j % nb + l % nb): within one grid row when 16 divides nb, 16 / nb whole rows otherwise.
  alignas(64) int32_t a_pat[16], b_pat[16];
  for (int l = 0; l < 16; ++l) a_pat[l] = l / nb, b_pat[l] = l % nb;
  const __m512i a_lane = _mm512_load_si512(a_pat), b_lane = _mm512_load_si512(b_pat);
  const __m512i zero_i = _mm512_setzero_si512(), rows_v = _mm512_set1_epi32(rows), cols_v = _mm512_set1_epi32(cols);
  for (int64_t r = 0; r < nrows; ++r) {
    float* out = tmp + r * ld;
    const float* plane = base + row_off[r];
    const __m512i dh_v = _mm512_set1_epi32(dh[r]), dw_v = _mm512_set1_epi32(dw[r]);
    const int64_t shift = int64_t(dh[r]) * cols + dw[r];
    int64_t img = pix0 / per_img, j = pix0 % per_img;
    for (int64_t t0 = 0; t0 < kc; t0 += 16) {
      const __m512i a = _mm512_add_epi32(_mm512_add_epi32(_mm512_set1_epi32(int32_t(j / nb)), a_lane), dh_v);
      const __m512i b = _mm512_add_epi32(_mm512_add_epi32(_mm512_set1_epi32(int32_t(j % nb)), b_lane), dw_v);
      const __mmask16 live = kc - t0 >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (kc - t0)) - 1u);
      const __mmask16 ok = _mm512_cmpge_epi32_mask(a, zero_i) & _mm512_cmplt_epi32_mask(a, rows_v) &
                           _mm512_cmpge_epi32_mask(b, zero_i) & _mm512_cmplt_epi32_mask(b, cols_v) & live;
      _mm512_store_ps(out + t0, _mm512_maskz_loadu_ps(ok, plane + img * img_stride + j + shift));
      if ((j += 16) == per_img) j = 0, ++img;
    }
  }
}

void pack_a_avx512(const float* src, int64_t ld, int rows, int64_t kc, float* dst) {
  constexpr int kMr = 12;
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t q0 = 0; q0 < kc; q0 += 16) {
    const int64_t n = kc - q0 < 16 ? kc - q0 : 16;
    const __mmask16 cols = __mmask16((1u << n) - 1u);
    __m512 r[16];
    for (int i = 0; i < 16; ++i) r[i] = i < rows ? _mm512_maskz_loadu_ps(cols, src + i * ld + q0) : zero;
    transpose16_regs(r);
    for (int64_t t = 0; t < n; ++t) _mm512_mask_storeu_ps(dst + (q0 + t) * kMr, __mmask16(0x0FFF), r[t]);
  }
}

}  // namespace cudagan::cpu::detail

#pragma GCC diagnostic pop
