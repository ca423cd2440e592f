// AVX-512 helpers of the implicit-GEMM packers (conv_implicit.cpp), compiled with -mavx512f
// (kernels/CMakeLists.txt) and called only where CPUID reports it:
//   copy_run_avx512: out[t] = src[t] for t in [lo, hi) and 0 elsewhere in [0, run), 16 floats per masked load
//     and store; masked-off lanes are never read, so src may end at hi.
//   transpose_strip_avx512: a [32][kc] block (row stride ld) into the micro-kernel's [kc][32] strip, 16 x 16
//     at a time in registers, for the backward-weight packer, whose B is the patch matrix transposed.
// GCC 12's AVX-512 shuffle intrinsics start from _mm512_undefined_ps(), which -Wuninitialized reports once
// they are inlined here: a false positive (GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstdint>

namespace cudagan::cpu::detail {

// Declared in conv_implicit.cpp, which this file does not include (see microkernel_avx512.cpp for why).
void copy_run_avx512(const float* src, int64_t lo, int64_t hi, int64_t run, float* out);
void transpose_strip_avx512(const float* tmp, int64_t ld, int64_t kc, float* dst);

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

namespace {

// Rows q < rows_out of the transpose of the 16 x 16 block at `in` (row stride ld) to out + q * ldo: three
// rounds of shuffles, 32-bit pairs, then 64-bit pairs within 128-bit lanes, then 128-bit lanes twice.
inline void transpose16(const float* in, int64_t ld, float* out, int64_t ldo, int64_t rows_out) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(in + i * ld);
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    r[4 * i + 0] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
  }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
  }
  for (int64_t q = 0; q < rows_out; ++q) _mm512_storeu_ps(out + q * ldo, r[q]);
}

}  // namespace

// tmp [32][ld] (ld a multiple of 16, columns kc..ld zero) -> dst [kc][32].
void transpose_strip_avx512(const float* tmp, int64_t ld, int64_t kc, float* dst) {
  for (int64_t p0 = 0; p0 < kc; p0 += 16) {
    const int64_t rows = kc - p0 < 16 ? kc - p0 : 16;
    transpose16(tmp + p0, ld, dst + p0 * 32, 32, rows);
    transpose16(tmp + 16 * ld + p0, ld, dst + p0 * 32 + 16, 32, rows);
  }
}

}  // namespace cudagan::cpu::detail

#pragma GCC diagnostic pop
