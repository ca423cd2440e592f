// The AVX-512 transforms of the Winograd convolution (winograd_avx512.cpp, compiled with -mavx512f and called
// only where CPUID reports it), declared for conv_winograd.cpp and conv_winograd_backward_weight.cpp. Only
// declarations: the AVX-512 file includes it too, so no inline code may live here (see microkernel_avx512.cpp).
#pragma once

#include <cstdint>

namespace cudagan::cpu::detail {

// Forward and backward data (32-lane strips).
void winograd_weights_avx512(const float* w, int rows, int64_t row_ld, int64_t red_n, int64_t red_ld,
                             const int8_t* taps, int phases, bool fold, float* const* dst, int64_t blocks,
                             int64_t kc);
void winograd_input_strip_avx512(const float* x, int64_t c_n, int64_t plane, int phases, const int32_t* shift,
                                 const uint32_t* ok, const int32_t* lane_off, float* v, int64_t xi_stride);
void winograd_output_strip_avx512(const float* ybuf, int64_t ij_stride, int64_t k_stride, int64_t k_n, float* y,
                                  int64_t y_plane, const int32_t* shift, const uint32_t* ok, const int32_t* lane_off);
void winograd_merge_avx512(const float* const* src, int ways, int64_t n, int64_t seg_len, int64_t segs_per_img,
                           int64_t img_stride, int64_t seg_stride, float* dst);

// Backward weight (one tile at a time, channels along the lanes).
void winograd_tile_input_avx512(const float* x, int64_t plane, int64_t c_n, const int32_t* pos, int64_t col0,
                                int64_t cols, float* b, int64_t xi_stride, int64_t strip_stride);
void winograd_tile_grad_avx512(const float* dy, int64_t plane, int64_t k_n, const int32_t* pos, float* a,
                               int64_t xi_stride, int64_t strip_stride);
void winograd_grad_output_avx512(const float* du, int64_t k_n, int64_t c_n, float* dw_row);

}  // namespace cudagan::cpu::detail
