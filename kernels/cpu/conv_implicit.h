// The implicit-GEMM convolution (float): the three passes of conv.h computed by the packed GEMM driver
// (packed_gemm.h) with the micro-kernel of a given instruction set, packing input patches straight from
// the images into the micro-kernel's panels. No im2col matrix, no col2im scatter, no layout permutes:
//
//   forward          y [K, (n, oh, ow)]   = w [K, CKK] * patches of x
//   backward data    dx, one GEMM per sub-pixel phase: the stride-s transposed convolution splits into
//                    s_h * s_w stride-1 convolutions of dy with the taps of w that reach that phase
//                    (for DCGAN's 4x4 stride-2 kernels: four 2x2 convolutions), each stored densely
//                    and then spread onto dx (a stride-2 dx row interleaves two phases' rows); with few
//                    input channels (images) all phases stacked in one GEMM that stores straight to dx
//   backward weight  dw [K, CKK]          = dy [K, (n, oh, ow)] * patches of x, transposed
//
// A stride-s input is first split into its s_h * s_w phase planes (space-to-depth), so every patch row the
// packers read is a contiguous run of one plane; the forward (per group of images) and backward weight (per
// reduction block and block of dw's columns) split it on the thread that then packs from it, so the planes
// are read back from that core's L2. With AVX-512 a 32-column strip is packed
// row by row with two masked loads (or gathers, where its columns cross plane rows) at offsets worked out
// once per kernel tap.
//
// Results depend only on the geometry, never on the thread count: every output element is summed by one
// thread in a fixed order (backward weight sums fixed slices of the batch, then adds the slices in order).
// cpu::conv2d_* (conv.h) choose between this and im2col + BLAS per geometry; tests call both.
#pragma once

#include "conv.h"
#include "cpu/isa.h"

namespace cudagan::cpu {

void conv2d_forward_implicit(const ConvGeometry& g, const float* x, const float* w, float* y, Isa isa);
void conv2d_backward_data_implicit(const ConvGeometry& g, const float* dy, const float* w, float* dx, Isa isa);
void conv2d_backward_weight_implicit(const ConvGeometry& g, const float* x, const float* dy, float* dw, Isa isa);

}  // namespace cudagan::cpu
