// AVX-512 transforms of the Winograd F(2x2, 2x2) forward (conv_winograd.h), compiled with -mavx512f
// (kernels/CMakeLists.txt) and called only where CPUID reports it. Same results, bit for bit, as the generic
// loops in conv_winograd.cpp: the same additions in the same order, 16 lanes at a time.
//   winograd_weights_avx512: U_xi = (G g G^T)[r][s] for a strip of A's rows, straight into the micro-kernel's
//     packed strips: per reduction index the 16 taps of its (up to 12) rows loaded and transposed in
//     registers, so each tap is a vector over the rows, and every U_xi a 12-float store.
//   winograd_input_strip_avx512: V_xi [c'][32 lanes] = (B^T d B)[r][s] for one strip of 32 tiles: each lane's
//     3x3 window gathered (the windows of neighbouring tiles lie 2 or 4 columns apart), masked to the image.
//   winograd_output_strip_avx512: the strip's 2x2 output tiles scattered into y, masked to its edge.
//   winograd_tile_input_avx512, winograd_tile_grad_avx512, winograd_grad_output_avx512: backward weight's
//     transforms (conv_winograd_backward_weight.cpp), one tile at a time with channels along the lanes: V for
//     16 channels per gather (their planes apart), dM for a 12-row A strip, and dw from dU, 16 channels'
//     taps transposed in registers. (Transposing each image channels-last first, for plain loads, was
//     slower: the transposes cost more than the gathers.)
//   winograd_merge_avx512: out[ways * t + s] = src[s][t] for the n positions t of 2 or 4 sources, the merged
//     stream cut into segments of seg_len floats (output rows) stored where they belong: backward data's dx
//     rows from four phases' Y_ij, 16-float stores instead of scatters. (Merging the forward's y rows from
//     two Y_ij the same way gained 1 % on D.conv2 and is not done.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "cpu/transpose16_avx512.h"
#include "cpu/winograd_avx512.h"

namespace cudagan::cpu::detail {

namespace {
// p + delta floats as an address, for a masked store whose base lies before the lanes it writes (only the
// mask's lanes are written, never faulting): computed as an integer, so no pointer points outside its array.
float* shifted(float* p, int64_t delta) {
  return reinterpret_cast<float*>(reinterpret_cast<uintptr_t>(p) + uintptr_t(delta * int64_t(sizeof(float))));
}

// (B^T d B)[r][s] of 16 windows at out + (r * 3 + s) * stride (64-byte aligned), B^T = [1 -1 0; 0 1 0; 0 -1 1]:
// the same additions as conv_winograd_parts.h's input_transform.
void store_input_transform(const __m512 d[3][3], float* out, int64_t stride) {
  __m512 t[3][3];  // B^T d
  for (int q = 0; q < 3; ++q) {
    t[0][q] = _mm512_sub_ps(d[0][q], d[1][q]);
    t[1][q] = d[1][q];
    t[2][q] = _mm512_sub_ps(d[2][q], d[1][q]);
  }
  for (int r = 0; r < 3; ++r) {  // (B^T d) B
    _mm512_store_ps(out + (r * 3 + 0) * stride, _mm512_sub_ps(t[r][0], t[r][1]));
    _mm512_store_ps(out + (r * 3 + 1) * stride, t[r][1]);
    _mm512_store_ps(out + (r * 3 + 2) * stride, _mm512_sub_ps(t[r][2], t[r][1]));
  }
}

__mmask16 lanes(int64_t lo, int64_t hi) {  // lanes [lo, hi) of 16, clamped
  lo = lo < 0 ? 0 : lo;
  hi = hi > 16 ? 16 : hi;
  return hi > lo ? __mmask16(((1u << hi) - 1u) & ~((1u << lo) - 1u)) : __mmask16(0);
}
}  // namespace

void winograd_weights_avx512(const float* w, int rows, int64_t row_ld, int64_t red_n, int64_t red_ld,
                             const int8_t* taps, int phases, bool fold, float* const* dst, int64_t blocks,
                             int64_t kc) {
  constexpr int kMr = 12;  // the 12x32 micro-kernel's A strips
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t q = 0; q < red_n; ++q) {
    __m512 tap[16];  // one row's 16 taps per register, then transposed: one tap of the 16 rows (12 used)
    for (int i = 0; i < 16; ++i) tap[i] = i < rows ? _mm512_loadu_ps(w + i * row_ld + q * red_ld) : zero;
    transpose16_regs(tap);
    for (int ph = 0; ph < phases; ++ph) {
      const int8_t* tp = taps + ph * 4;
      const __m512 g00 = tap[tp[0]], g01 = tap[tp[1]], g10 = tap[tp[2]], g11 = tap[tp[3]];
      const __m512 t[3][2] = {{g00, g01}, {_mm512_add_ps(g00, g10), _mm512_add_ps(g01, g11)}, {g10, g11}};
      const int64_t col = (fold ? ph * red_n : 0) + q, block = col / kc, at = (col % kc) * kMr;
      for (int r = 0; r < 3; ++r) {
        const __m512 o[3] = {t[r][0], _mm512_add_ps(t[r][0], t[r][1]), t[r][1]};
        for (int s = 0; s < 3; ++s) {
          const int64_t m = fold ? r * 3 + s : ph * 9 + r * 3 + s;
          _mm512_mask_storeu_ps(dst[m * blocks + block] + at, __mmask16(0x0FFF), o[s]);
        }
      }
    }
  }
}

void winograd_input_strip_avx512(const float* x, int64_t c_n, int64_t plane, int phases, const int32_t* shift,
                                 const uint32_t* ok, const int32_t* lane_off, float* v, int64_t xi_stride) {
  const __m512 zero = _mm512_setzero_ps();
  for (int h = 0; h < 2; ++h) {
    const __m512i base = _mm512_load_si512(lane_off + 16 * h);
    for (int ph = 0; ph < phases; ++ph) {
      __mmask16 m[9];
      __m512i at[9];
      for (int e = 0; e < 9; ++e) {
        m[e] = __mmask16(ok[ph * 9 + e] >> (16 * h));
        at[e] = _mm512_add_epi32(base, _mm512_set1_epi32(shift[ph * 9 + e]));
      }
      for (int64_t c = 0; c < c_n; ++c) {
        const float* xc = x + c * plane;
        __m512 d[3][3];
        for (int e = 0; e < 9; ++e) d[e / 3][e % 3] = _mm512_mask_i32gather_ps(zero, m[e], at[e], xc, 4);
        store_input_transform(d, v + (ph * c_n + c) * 32 + 16 * h, xi_stride);
      }
    }
  }
}

void winograd_output_strip_avx512(const float* ybuf, int64_t ij_stride, int64_t k_stride, int64_t k_n, float* y,
                                  int64_t y_plane, const int32_t* shift, const uint32_t* ok, const int32_t* lane_off) {
  for (int h = 0; h < 2; ++h) {
    const __m512i base = _mm512_load_si512(lane_off + 16 * h);
    __mmask16 m[4];
    __m512i at[4];
    for (int ij = 0; ij < 4; ++ij) {
      m[ij] = __mmask16(ok[ij] >> (16 * h));
      at[ij] = _mm512_add_epi32(base, _mm512_set1_epi32(shift[ij]));
    }
    if (!(m[0] | m[1] | m[2] | m[3])) continue;
    for (int64_t k = 0; k < k_n; ++k)
      for (int ij = 0; ij < 4; ++ij)
        _mm512_mask_i32scatter_ps(y + k * y_plane, m[ij], at[ij],
                                  _mm512_load_ps(ybuf + ij * ij_stride + k * k_stride + 16 * h), 4);
  }
}

void winograd_merge_avx512(const float* const* src, int ways, int64_t n, int64_t seg_len, int64_t segs_per_img,
                           int64_t img_stride, int64_t seg_stride, float* dst) {
  alignas(64) int32_t lo_at[16], hi_at[16];
  for (int j = 0; j < 16; ++j) {
    lo_at[j] = (j % 2) * 16 + j / 2;  // a0 b0 a1 b1 ... a7 b7
    hi_at[j] = (j % 2) * 16 + 8 + j / 2;
  }
  const __m512i lo = _mm512_load_si512(lo_at), hi = _mm512_load_si512(hi_at);
  const int64_t total = ways * n;
  for (int64_t j0 = 0; j0 < n; j0 += 16) {
    const __mmask16 live = lanes(0, n - j0);
    __m512 z[4];
    const __m512 a = _mm512_maskz_loadu_ps(live, src[0] + j0), b = _mm512_maskz_loadu_ps(live, src[1] + j0);
    if (ways == 2) {
      z[0] = _mm512_permutex2var_ps(a, lo, b);
      z[1] = _mm512_permutex2var_ps(a, hi, b);
    } else {  // s0 s1 s2 s3 for each position: interleave(interleave(s0, s2), interleave(s1, s3))
      const __m512 c = _mm512_maskz_loadu_ps(live, src[2] + j0), d = _mm512_maskz_loadu_ps(live, src[3] + j0);
      const __m512 x0 = _mm512_permutex2var_ps(a, lo, c), x1 = _mm512_permutex2var_ps(a, hi, c);
      const __m512 y0 = _mm512_permutex2var_ps(b, lo, d), y1 = _mm512_permutex2var_ps(b, hi, d);
      z[0] = _mm512_permutex2var_ps(x0, lo, y0);
      z[1] = _mm512_permutex2var_ps(x0, hi, y0);
      z[2] = _mm512_permutex2var_ps(x1, lo, y1);
      z[3] = _mm512_permutex2var_ps(x1, hi, y1);
    }
    for (int q = 0; q < ways; ++q) {
      const int64_t o = ways * j0 + 16 * q;  // z[q]'s first float in the merged stream
      if (o >= total) break;
      const int64_t end = std::min(total, o + 16);
      for (int64_t sg = o / seg_len; sg * seg_len < end; ++sg) {  // the segments (output row runs) z[q] reaches
        float* at = dst + (sg / segs_per_img) * img_stride + (sg % segs_per_img) * seg_stride;
        const __mmask16 part = lanes(sg * seg_len - o, std::min(end, (sg + 1) * seg_len) - o);
        _mm512_mask_storeu_ps(shifted(at, o - sg * seg_len), part, z[q]);
      }
    }
  }
}

// Lane l's offset l * plane: 16 channels' planes apart.
__m512i plane_lanes(int64_t plane) {
  return _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                            _mm512_set1_epi32(int32_t(plane)));
}

void winograd_tile_input_avx512(const float* x, int64_t plane, int64_t c_n, const int32_t* pos, int64_t col0,
                                int64_t cols, float* b, int64_t xi_stride, int64_t strip_stride) {
  const __m512i idx = plane_lanes(plane);
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t q0 = 0; q0 < cols; q0 += 16) {  // 16 channels of one tap phase (C is a multiple of 16)
    const int64_t col = col0 + q0, ab = col / c_n, c = col % c_n;
    const int32_t* at = pos + ab * 9;
    __m512 d[3][3];
    for (int e = 0; e < 9; ++e)
      d[e / 3][e % 3] = at[e] >= 0 ? _mm512_i32gather_ps(idx, x + c * plane + at[e], 4) : zero;
    store_input_transform(d, b + (q0 / 32) * strip_stride + q0 % 32, xi_stride);
  }
}

void winograd_tile_grad_avx512(const float* dy, int64_t plane, int64_t k_n, const int32_t* pos, float* a,
                               int64_t xi_stride, int64_t strip_stride) {
  const __m512i idx = plane_lanes(plane);
  const __m512 zero = _mm512_setzero_ps();
  const __mmask16 strip = 0x0FFF;  // the 12x32 kernel's A strips
  for (int64_t k0 = 0; k0 < k_n; k0 += 12) {
    const __mmask16 live = lanes(0, k_n - k0 < 12 ? k_n - k0 : 12);
    __m512 y[2][2];
    for (int ij = 0; ij < 4; ++ij)
      y[ij / 2][ij % 2] = pos[ij] >= 0 ? _mm512_mask_i32gather_ps(zero, live, idx, dy + k0 * plane + pos[ij], 4) : zero;
    __m512 t[2][3];  // dY A^T along columns
    for (int i = 0; i < 2; ++i) {
      t[i][0] = y[i][0];
      t[i][1] = _mm512_add_ps(y[i][0], y[i][1]);
      t[i][2] = y[i][1];
    }
    float* out = a + (k0 / 12) * strip_stride;
    for (int s = 0; s < 3; ++s) {  // then rows
      _mm512_mask_storeu_ps(out + (0 * 3 + s) * xi_stride, strip, t[0][s]);
      _mm512_mask_storeu_ps(out + (1 * 3 + s) * xi_stride, strip, _mm512_add_ps(t[0][s], t[1][s]));
      _mm512_mask_storeu_ps(out + (2 * 3 + s) * xi_stride, strip, t[1][s]);
    }
  }
}

void winograd_grad_output_avx512(const float* du, int64_t k_n, int64_t c_n, float* dw_row) {
  const int64_t r_n = 4 * c_n;
  for (int64_t c0 = 0; c0 < c_n; c0 += 16) {  // C is a multiple of 16
    __m512 tap[16];
    for (int ab = 0; ab < 4; ++ab) {
      __m512 u[3][3];
      for (int xi = 0; xi < 9; ++xi) u[xi / 3][xi % 3] = _mm512_loadu_ps(du + xi * k_n * r_n + ab * c_n + c0);
      for (int uu = 0; uu < 2; ++uu)
        for (int vv = 0; vv < 2; ++vv) {
          const __m512 e0 = _mm512_add_ps(u[uu][vv], u[uu + 1][vv]);
          const __m512 e1 = _mm512_add_ps(u[uu][vv + 1], u[uu + 1][vv + 1]);
          tap[(2 * uu + ab / 2) * 4 + 2 * vv + ab % 2] = _mm512_add_ps(e0, e1);
        }
    }
    transpose16_regs(tap);  // tap[l]: channel c0 + l's 16 taps
    for (int l = 0; l < 16; ++l) _mm512_storeu_ps(dw_row + (c0 + l) * 16, tap[l]);
  }
}

}  // namespace cudagan::cpu::detail

#pragma GCC diagnostic pop
