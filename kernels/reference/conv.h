// Reference convolutions, the oracle for cpu:: and cuda::. Naive direct loops straight from the
// definitions: no im2col, no GEMM, nothing shared with the backends, every sum accumulated in T.
//
//   conv2d (ConvGeometry g, see conv.h), x [N, C, H, W], w [K, C, KH, KW], y [N, K, OH, OW]:
//     y[n,k,oh,ow]  = sum_{c,kh,kw} x[n, c, oh*SH - PH + kh, ow*SW - PW + kw] * w[k,c,kh,kw]   (0 outside x)
//     dx[n,c,ih,iw] = sum_{k,kh,kw : ih = oh*SH - PH + kh, iw = ow*SW - PW + kw} dy[n,k,oh,ow] * w[k,c,kh,kw]
//     dw[k,c,kh,kw] = sum_{n,oh,ow} x[n, c, oh*SH - PH + kh, ow*SW - PW + kw] * dy[n,k,oh,ow]
//
//   conv_transpose2d (ConvTransposeGeometry t, below), in its own terms (PyTorch's ConvTranspose2d
//   without output_padding, groups or dilation), x [N, Cin, H, W], w [Cin, Cout, KH, KW],
//   y [N, Cout, OH, OW] with OH = (H-1)*SH - 2*PH + KH, OW likewise. Written in the scatter form:
//     every input pixel x[n,ci,ih,iw] adds x * w[ci,co,kh,kw] onto y[n, co, ih*SH - PH + kh, iw*SW - PW + kw]
//     (contributions landing outside y are dropped); its adjoints:
//     dx[n,ci,ih,iw] = sum_{co,kh,kw} dy[n, co, ih*SH - PH + kh, iw*SW - PW + kw] * w[ci,co,kh,kw]
//     dw[ci,co,kh,kw] = sum_{n,ih,iw} x[n,ci,ih,iw] * dy[n, co, ih*SH - PH + kh, iw*SW - PW + kw]
//   These deliberately do not go through transpose_geometry(): the tests check the backends' composition
//   (conv_transpose2d = conv2d's backward-data pass) against them.
//
// im2col/col2im here have cpu::'s signatures and produce bit-identical results (col2im adds each
// pixel's contributions in the same (kh, kw) order), so data movement can be compared exactly.
#pragma once

#include <cstdint>

#include "../conv.h"

namespace cudagan::reference {

// The parameters of a transposed convolution as its user states them.
struct ConvTransposeGeometry {
  int batch = 1;
  int in_channels = 1, in_h = 1, in_w = 1;  // Cin, H, W of x
  int out_channels = 1;                     // Cout
  int kernel_h = 1, kernel_w = 1;
  int stride_h = 1, stride_w = 1;
  int pad_h = 0, pad_w = 0;

  int out_h() const { return (in_h - 1) * stride_h - 2 * pad_h + kernel_h; }
  int out_w() const { return (in_w - 1) * stride_w - 2 * pad_w + kernel_w; }
  int64_t input_elems() const { return int64_t(batch) * in_channels * in_h * in_w; }
  int64_t output_elems() const { return int64_t(batch) * out_channels * out_h() * out_w(); }
  int64_t weight_elems() const { return int64_t(in_channels) * out_channels * kernel_h * kernel_w; }
};

namespace conv_detail {
// Index of element (a, b, c, d) of a contiguous [., B, C, D] array.
inline int64_t at4(int64_t a, int64_t b, int64_t c, int64_t d, int64_t nb, int64_t nc, int64_t nd) {
  return ((a * nb + b) * nc + c) * nd + d;
}
}  // namespace conv_detail

// cols [C*KH*KW, count*OH*OW] from images [first, first+count) of x, one element at a time.
template <class T>
void im2col(const ConvGeometry& g, const T* x, int first, int count, T* cols) {
  const int64_t oh_n = g.out_h(), ow_n = g.out_w(), ncols = int64_t(count) * oh_n * ow_n;
  for (int64_t row = 0; row < g.col_rows(); ++row) {
    const int64_t c = row / (g.kernel_h * g.kernel_w);
    const int64_t kh = row / g.kernel_w % g.kernel_h, kw = row % g.kernel_w;
    for (int64_t col = 0; col < ncols; ++col) {
      const int64_t n = col / (oh_n * ow_n), oh = col / ow_n % oh_n, ow = col % ow_n;
      const int64_t ih = oh * g.stride_h - g.pad_h + kh, iw = ow * g.stride_w - g.pad_w + kw;
      const bool inside = ih >= 0 && ih < g.in_h && iw >= 0 && iw < g.in_w;
      cols[row * ncols + col] =
          inside ? x[conv_detail::at4(first + n, c, ih, iw, g.in_channels, g.in_h, g.in_w)] : T(0);
    }
  }
}

// Gather form of col2im: each pixel of images [first, first+count) of dx is the sum, over (kh, kw) in
// order, of the cols entries that im2col would have copied it to. Other images are left untouched.
template <class T>
void col2im(const ConvGeometry& g, const T* cols, int first, int count, T* dx) {
  const int64_t oh_n = g.out_h(), ow_n = g.out_w(), ncols = int64_t(count) * oh_n * ow_n;
  for (int64_t n = 0; n < count; ++n)
    for (int64_t c = 0; c < g.in_channels; ++c)
      for (int64_t ih = 0; ih < g.in_h; ++ih)
        for (int64_t iw = 0; iw < g.in_w; ++iw) {
          T acc = T(0);
          for (int64_t kh = 0; kh < g.kernel_h; ++kh)
            for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
              const int64_t sh = ih + g.pad_h - kh, sw = iw + g.pad_w - kw;  // = oh*SH, ow*SW
              if (sh < 0 || sw < 0 || sh % g.stride_h != 0 || sw % g.stride_w != 0) continue;
              const int64_t oh = sh / g.stride_h, ow = sw / g.stride_w;
              if (oh >= oh_n || ow >= ow_n) continue;
              const int64_t row = (c * g.kernel_h + kh) * g.kernel_w + kw;
              acc += cols[row * ncols + (n * oh_n + oh) * ow_n + ow];
            }
          dx[conv_detail::at4(first + n, c, ih, iw, g.in_channels, g.in_h, g.in_w)] = acc;
        }
}

template <class T>
void conv2d_forward(const ConvGeometry& g, const T* x, const T* w, T* y) {
  const int64_t oh_n = g.out_h(), ow_n = g.out_w();
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t k = 0; k < g.out_channels; ++k)
      for (int64_t oh = 0; oh < oh_n; ++oh)
        for (int64_t ow = 0; ow < ow_n; ++ow) {
          T acc = T(0);
          for (int64_t c = 0; c < g.in_channels; ++c)
            for (int64_t kh = 0; kh < g.kernel_h; ++kh)
              for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
                const int64_t ih = oh * g.stride_h - g.pad_h + kh, iw = ow * g.stride_w - g.pad_w + kw;
                if (ih < 0 || ih >= g.in_h || iw < 0 || iw >= g.in_w) continue;
                acc += x[conv_detail::at4(n, c, ih, iw, g.in_channels, g.in_h, g.in_w)] *
                       w[conv_detail::at4(k, c, kh, kw, g.in_channels, g.kernel_h, g.kernel_w)];
              }
          y[conv_detail::at4(n, k, oh, ow, g.out_channels, oh_n, ow_n)] = acc;
        }
}

template <class T>
void conv2d_backward_data(const ConvGeometry& g, const T* dy, const T* w, T* dx) {
  const int64_t oh_n = g.out_h(), ow_n = g.out_w();
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t c = 0; c < g.in_channels; ++c)
      for (int64_t ih = 0; ih < g.in_h; ++ih)
        for (int64_t iw = 0; iw < g.in_w; ++iw) {
          T acc = T(0);
          for (int64_t k = 0; k < g.out_channels; ++k)
            for (int64_t kh = 0; kh < g.kernel_h; ++kh)
              for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
                const int64_t sh = ih + g.pad_h - kh, sw = iw + g.pad_w - kw;
                if (sh < 0 || sw < 0 || sh % g.stride_h != 0 || sw % g.stride_w != 0) continue;
                const int64_t oh = sh / g.stride_h, ow = sw / g.stride_w;
                if (oh >= oh_n || ow >= ow_n) continue;
                acc += dy[conv_detail::at4(n, k, oh, ow, g.out_channels, oh_n, ow_n)] *
                       w[conv_detail::at4(k, c, kh, kw, g.in_channels, g.kernel_h, g.kernel_w)];
              }
          dx[conv_detail::at4(n, c, ih, iw, g.in_channels, g.in_h, g.in_w)] = acc;
        }
}

template <class T>
void conv2d_backward_weight(const ConvGeometry& g, const T* x, const T* dy, T* dw) {
  const int64_t oh_n = g.out_h(), ow_n = g.out_w();
  for (int64_t k = 0; k < g.out_channels; ++k)
    for (int64_t c = 0; c < g.in_channels; ++c)
      for (int64_t kh = 0; kh < g.kernel_h; ++kh)
        for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
          T acc = T(0);
          for (int64_t n = 0; n < g.batch; ++n)
            for (int64_t oh = 0; oh < oh_n; ++oh)
              for (int64_t ow = 0; ow < ow_n; ++ow) {
                const int64_t ih = oh * g.stride_h - g.pad_h + kh, iw = ow * g.stride_w - g.pad_w + kw;
                if (ih < 0 || ih >= g.in_h || iw < 0 || iw >= g.in_w) continue;
                acc += x[conv_detail::at4(n, c, ih, iw, g.in_channels, g.in_h, g.in_w)] *
                       dy[conv_detail::at4(n, k, oh, ow, g.out_channels, oh_n, ow_n)];
              }
          dw[conv_detail::at4(k, c, kh, kw, g.in_channels, g.kernel_h, g.kernel_w)] = acc;
        }
}

// y [N, Cout, OH, OW] = conv_transpose2d(x [N, Cin, H, W], w [Cin, Cout, KH, KW]); y is overwritten.
template <class T>
void conv_transpose2d_forward(const ConvTransposeGeometry& t, const T* x, const T* w, T* y) {
  const int64_t oh_n = t.out_h(), ow_n = t.out_w();
  for (int64_t i = 0; i < t.output_elems(); ++i) y[i] = T(0);
  for (int64_t n = 0; n < t.batch; ++n)
    for (int64_t ci = 0; ci < t.in_channels; ++ci)
      for (int64_t ih = 0; ih < t.in_h; ++ih)
        for (int64_t iw = 0; iw < t.in_w; ++iw) {
          const T xv = x[conv_detail::at4(n, ci, ih, iw, t.in_channels, t.in_h, t.in_w)];
          for (int64_t co = 0; co < t.out_channels; ++co)
            for (int64_t kh = 0; kh < t.kernel_h; ++kh)
              for (int64_t kw = 0; kw < t.kernel_w; ++kw) {
                const int64_t oh = ih * t.stride_h - t.pad_h + kh, ow = iw * t.stride_w - t.pad_w + kw;
                if (oh < 0 || oh >= oh_n || ow < 0 || ow >= ow_n) continue;
                y[conv_detail::at4(n, co, oh, ow, t.out_channels, oh_n, ow_n)] +=
                    xv * w[conv_detail::at4(ci, co, kh, kw, t.out_channels, t.kernel_h, t.kernel_w)];
              }
        }
}

// dx [N, Cin, H, W] from dy [N, Cout, OH, OW] and w [Cin, Cout, KH, KW]; dx is overwritten.
template <class T>
void conv_transpose2d_backward_data(const ConvTransposeGeometry& t, const T* dy, const T* w, T* dx) {
  const int64_t oh_n = t.out_h(), ow_n = t.out_w();
  for (int64_t n = 0; n < t.batch; ++n)
    for (int64_t ci = 0; ci < t.in_channels; ++ci)
      for (int64_t ih = 0; ih < t.in_h; ++ih)
        for (int64_t iw = 0; iw < t.in_w; ++iw) {
          T acc = T(0);
          for (int64_t co = 0; co < t.out_channels; ++co)
            for (int64_t kh = 0; kh < t.kernel_h; ++kh)
              for (int64_t kw = 0; kw < t.kernel_w; ++kw) {
                const int64_t oh = ih * t.stride_h - t.pad_h + kh, ow = iw * t.stride_w - t.pad_w + kw;
                if (oh < 0 || oh >= oh_n || ow < 0 || ow >= ow_n) continue;
                acc += dy[conv_detail::at4(n, co, oh, ow, t.out_channels, oh_n, ow_n)] *
                       w[conv_detail::at4(ci, co, kh, kw, t.out_channels, t.kernel_h, t.kernel_w)];
              }
          dx[conv_detail::at4(n, ci, ih, iw, t.in_channels, t.in_h, t.in_w)] = acc;
        }
}

// dw [Cin, Cout, KH, KW] from x [N, Cin, H, W] and dy [N, Cout, OH, OW]; dw is overwritten.
template <class T>
void conv_transpose2d_backward_weight(const ConvTransposeGeometry& t, const T* x, const T* dy, T* dw) {
  const int64_t oh_n = t.out_h(), ow_n = t.out_w();
  for (int64_t ci = 0; ci < t.in_channels; ++ci)
    for (int64_t co = 0; co < t.out_channels; ++co)
      for (int64_t kh = 0; kh < t.kernel_h; ++kh)
        for (int64_t kw = 0; kw < t.kernel_w; ++kw) {
          T acc = T(0);
          for (int64_t n = 0; n < t.batch; ++n)
            for (int64_t ih = 0; ih < t.in_h; ++ih)
              for (int64_t iw = 0; iw < t.in_w; ++iw) {
                const int64_t oh = ih * t.stride_h - t.pad_h + kh, ow = iw * t.stride_w - t.pad_w + kw;
                if (oh < 0 || oh >= oh_n || ow < 0 || ow >= ow_n) continue;
                acc += x[conv_detail::at4(n, ci, ih, iw, t.in_channels, t.in_h, t.in_w)] *
                       dy[conv_detail::at4(n, co, oh, ow, t.out_channels, oh_n, ow_n)];
              }
          dw[conv_detail::at4(ci, co, kh, kw, t.out_channels, t.kernel_h, t.kernel_w)] = acc;
        }
}

}  // namespace cudagan::reference
