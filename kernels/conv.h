// Convolution kernels: the compute behind conv2d and conv_transpose2d.
//
//   conv2d:            x [N, C, H, W] * w [K, C, KH, KW] -> y [N, K, OH, OW]
//   backward data:     dy [N, K, OH, OW], w               -> dx [N, C, H, W]
//   backward weight:   x, dy                              -> dw [K, C, KH, KW]
//
// A transposed convolution is the backward-data pass of the convolution that maps its output back
// to its input (Caffe's deconvolution), so both ops share one geometry: for conv_transpose2d,
// "input" below is the transposed convolution's *output* and "output" its input, and the weight
// [K, C, KH, KW] is PyTorch's ConvTranspose2d layout [in_channels, out_channels, KH, KW].
//
// CPU and CUDA implement these with im2col + one GEMM per chunk of images, the batch folded into
// the GEMM's N dimension: cols [C*KH*KW, chunk*OH*OW]. Outputs are overwritten, never accumulated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "cudagan/core/error.h"  // InvalidArgument, which the kernels throw

namespace cudagan {

struct ConvGeometry {
  int batch = 1;
  int in_channels = 1, in_h = 1, in_w = 1;  // C, H, W
  int out_channels = 1;                     // K
  int kernel_h = 1, kernel_w = 1;
  int stride_h = 1, stride_w = 1;
  int pad_h = 0, pad_w = 0;

  int out_h() const { return (in_h + 2 * pad_h - kernel_h) / stride_h + 1; }
  int out_w() const { return (in_w + 2 * pad_w - kernel_w) / stride_w + 1; }
  int64_t col_rows() const { return int64_t(in_channels) * kernel_h * kernel_w; }
  int64_t out_pixels() const { return int64_t(out_h()) * out_w(); }
  int64_t in_pixels() const { return int64_t(in_h) * in_w; }
  int64_t input_elems() const { return int64_t(batch) * in_channels * in_pixels(); }
  int64_t output_elems() const { return int64_t(batch) * out_channels * out_pixels(); }
  int64_t weight_elems() const { return int64_t(out_channels) * col_rows(); }
  // 2 x multiply-adds of the forward pass (each backward pass costs the same).
  double flops() const { return 2.0 * double(output_elems()) * double(col_rows()); }
  bool valid() const {
    return batch > 0 && in_channels > 0 && out_channels > 0 && kernel_h > 0 && kernel_w > 0 &&
           stride_h > 0 && stride_w > 0 && pad_h >= 0 && pad_w >= 0 && in_h + 2 * pad_h >= kernel_h &&
           in_w + 2 * pad_w >= kernel_w;
  }
};

// A convolution from its eleven numbers, in the order every test and benchmark writes them: batch,
// C, H, W, K, KH, KW, SH, SW, PH, PW.
inline ConvGeometry conv_geometry(int batch, int in_channels, int in_h, int in_w, int out_channels, int kernel_h,
                                  int kernel_w, int stride_h, int stride_w, int pad_h, int pad_w) {
  ConvGeometry g;
  g.batch = batch;
  g.in_channels = in_channels;
  g.in_h = in_h;
  g.in_w = in_w;
  g.out_channels = out_channels;
  g.kernel_h = kernel_h;
  g.kernel_w = kernel_w;
  g.stride_h = stride_h;
  g.stride_w = stride_w;
  g.pad_h = pad_h;
  g.pad_w = pad_w;
  return g;
}

// The convolution whose backward-data pass is conv_transpose2d(x [N, C_in, H, W], w [C_in, C_out, KH, KW]):
// its input is the transposed convolution's output [N, C_out, (H-1)*s - 2p + KH, ...].
inline ConvGeometry transpose_geometry(int batch, int in_channels, int in_h, int in_w, int out_channels,
                                       int kernel_h, int kernel_w, int stride_h, int stride_w, int pad_h,
                                       int pad_w) {
  return conv_geometry(batch, out_channels, (in_h - 1) * stride_h - 2 * pad_h + kernel_h,
                       (in_w - 1) * stride_w - 2 * pad_w + kernel_w, in_channels, kernel_h, kernel_w, stride_h,
                       stride_w, pad_h, pad_w);
}

// One line for test and benchmark names: "conv2d N=5 C=3 7x9 -> K=4 7x9, kernel 3x3, stride 1x1, pad 1x1".
inline std::string describe(const ConvGeometry& g) {
  const auto x = [](int a, int b) { return std::to_string(a) + "x" + std::to_string(b); };
  return "conv2d N=" + std::to_string(g.batch) + " C=" + std::to_string(g.in_channels) + " " + x(g.in_h, g.in_w) +
         " -> K=" + std::to_string(g.out_channels) + " " + x(int(g.out_h()), int(g.out_w())) + ", kernel " +
         x(g.kernel_h, g.kernel_w) + ", stride " + x(g.stride_h, g.stride_w) + ", pad " + x(g.pad_h, g.pad_w);
}

namespace cpu {
// cols [C*KH*KW, count*OH*OW] from images [first, first+count) of x [N, C, H, W]; zero padding.
template <class T> void im2col(const ConvGeometry& g, const T* x, int first, int count, T* cols);
// The adjoint of im2col: scatters (adds) cols back into images [first, first+count) of dx,
// which it first zeroes.
template <class T> void col2im(const ConvGeometry& g, const T* cols, int first, int count, T* dx);

// The three passes, each on the faster of two implementations for its geometry: in float the implicit GEMM
// of cpu/conv_implicit.h where it wins, otherwise (and in double always) the im2col + BLAS passes below.
template <class T> void conv2d_forward(const ConvGeometry& g, const T* x, const T* w, T* y);
template <class T> void conv2d_backward_data(const ConvGeometry& g, const T* dy, const T* w, T* dx);
template <class T> void conv2d_backward_weight(const ConvGeometry& g, const T* x, const T* dy, T* dw);

// The im2col + BLAS passes on any geometry (the tests and benchmarks compare them with the implicit ones).
template <class T> void conv2d_forward_im2col(const ConvGeometry& g, const T* x, const T* w, T* y);
template <class T> void conv2d_backward_data_im2col(const ConvGeometry& g, const T* dy, const T* w, T* dx);
template <class T> void conv2d_backward_weight_im2col(const ConvGeometry& g, const T* x, const T* dy, T* dw);
}  // namespace cpu

}  // namespace cudagan

// CUDA backend (float32, kernels/cuda/conv.cu). All pointers are device memory; the launchers run on
// ctx.stream and take their im2col columns from ctx.workspace, processing as many images per GEMM as fit.
namespace cudagan::cuda {
struct KernelContext;
// Workspace bytes one call needs to process `chunk` images per GEMM (columns, plus the [K, chunk*OH*OW]
// staging of y or dy when chunk > 1). conv_workspace_bytes(g, 1) is the minimum; g.batch the fastest.
size_t conv_workspace_bytes(const ConvGeometry& g, int chunk);
// Images per GEMM chunk the convolution launchers use with `workspace_bytes` of workspace (0: not even one).
int conv_chunk_images(const ConvGeometry& g, size_t workspace_bytes);

// As cpu::im2col / cpu::col2im, on the device; bit-identical to them (col2im gathers instead of
// scattering, adding each pixel's contributions in the CPU's (kh, kw) order, without atomics).
void im2col(const KernelContext& ctx, const ConvGeometry& g, const float* x, int first, int count,
            float* cols);
void col2im(const KernelContext& ctx, const ConvGeometry& g, const float* cols, int first, int count,
            float* dx);

void conv2d_forward(const KernelContext& ctx, const ConvGeometry& g, const float* x, const float* w,
                    float* y);
void conv2d_backward_data(const KernelContext& ctx, const ConvGeometry& g, const float* dy, const float* w,
                          float* dx);
void conv2d_backward_weight(const KernelContext& ctx, const ConvGeometry& g, const float* x, const float* dy,
                            float* dw);
}  // namespace cudagan::cuda
