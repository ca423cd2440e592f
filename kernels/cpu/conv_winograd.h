// Winograd F(2x2, 2x2) for DCGAN's stride-2 4x4 convolutions (float, CPU): the same result as the direct
// convolution with 9 multiplies per 2x2 output tile and input phase instead of 16 (1.78x fewer), the
// products still run by our packed micro-kernels (microkernel.h).
//
// A 4x4 stride-2 convolution is four 2x2 stride-1 convolutions, one per tap phase (a, b) in {0, 1}^2:
//   y[k, oy, ox] = sum over c, a, b, u, v of  w[k, c, 2u + a, 2v + b] * x[c, 2(oy + u) + a - p, 2(ox + v) + b - p]
// so the reduction runs over R = 4C rows c' = (a, b, c), each a 2x2 convolution. On each 2x2 output tile
// (ty, tx), F(2, 2) in both directions (Lavin and Gray 2015, with the points 0, 1 and infinity) gives
//   Y = A^T [ sum over c' of (G g G^T) . (B^T d B) ] A,    d = the 3x3 input window of that tile and phase,
//   B^T = [1 -1 0; 0 1 0; 0 -1 1],  G = [1 0; 1 1; 0 1],  A^T = [1 1 0; 0 1 1],
// every coefficient 0 or +-1, so the transforms are additions and lose no precision to scaling. The sum over
// c' is nine GEMMs, one per transform point xi = (r, s):  M_xi [K, tiles] = U_xi [K, R] * V_xi [R, tiles].
//
// Backward data (the transposed convolution) splits the other way: dx's four phases (al, be) are four
// stride-1 2x2 correlations of dy with the flipped taps that reach them,
//   dx[c, 2m + al, 2n + be] = sum over k, u, v of  w[k, c, 2(1 - u) + ka, 2(1 - v) + kb] * dy[k, m + u + d, n + v + e]
// (ka = (al + p) % 2, d = (al + p - ka) / 2 - 1, likewise along w), each the same Winograd product with
// reduction K and rows C, on its own tiling of that phase's plane.
//
// The batch runs in groups of whole images of about 128 tiles on the OpenMP team; a thread transforms its
// group's input into the micro-kernel's strip layout (V, so the GEMMs need no packing), runs the nine GEMMs,
// and folds each M_xi into the four output positions it reaches (A^T's ones), then writes the tiles out. Each
// output is summed in a fixed order (the kc blocks of the reduction, then xi in order): results depend on the
// geometry only, never on the thread count. The weights are transformed on every call (9/4 of their size per
// phase set), which small batches do not pay back: cpu::conv2d_* (conv.h) choose it by the tile count.
#pragma once

#include "conv.h"
#include "cpu/isa.h"

namespace cudagan::cpu {

// Stride 2x2, kernel 4x4, padding 0-3 on each side, and a valid geometry.
bool winograd_supported(const ConvGeometry& g);

// y [N, K, OH, OW] = conv(x [N, C, H, W], w [K, C, 4, 4]); throws InvalidArgument where not supported.
void conv2d_forward_winograd(const ConvGeometry& g, const float* x, const float* w, float* y, Isa isa);

// dx [N, C, H, W] = the adjoint of the forward applied to dy [N, K, OH, OW] (the transposed convolution).
void conv2d_backward_data_winograd(const ConvGeometry& g, const float* dy, const float* w, float* dx, Isa isa);

// Backward weight (conv_winograd_backward_weight.cpp) also needs a multiple of 16 input channels.
bool winograd_backward_weight_supported(const ConvGeometry& g);

// dw [K, C, 4, 4] = the weight gradient of the forward for x and dy (overwritten).
void conv2d_backward_weight_winograd(const ConvGeometry& g, const float* x, const float* dy, float* dw, Isa isa);

}  // namespace cudagan::cpu
