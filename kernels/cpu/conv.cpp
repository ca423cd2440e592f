// 2-D convolution on the CPU. In float most DCGAN passes run on our own micro-kernels, as Winograd F(2x2, 2x2)
// products (conv_winograd.h) or implicit GEMMs (conv_implicit.h; which ones: winograd_forward, implicit_forward
// and their siblings below); the others, and all of double,
// run as im2col + one BLAS GEMM per chunk of images, the batch folded into the GEMM's N dimension (Caffe's
// scheme without its one-GEMM-per-image loop), described here.
//
//   x [N, C, H, W], w [K, C, KH, KW], y [N, K, OH, OW], P = OH*OW, CKK = C*KH*KW, chunk of n images:
//   im2col:           cols [CKK, n*P],  cols[(c,kh,kw), (i,oh,ow)] = x[i, c, oh*SH-PH+kh, ow*SW-PW+kw]
//                                        (0 where that falls in the padding)
//   forward:          Y [K, n*P]   = W [K, CKK] * cols          then  Y [K, n, P] -> y [n, K, P]
//   backward data:    dY [K, n*P] <- dy [n, K, P];  cols = W^T [CKK, K] * dY;  dx = col2im(cols)
//   backward weight:  dW [K, CKK] = sum over chunks of dY * cols^T   (beta = 1 after the first chunk)
//   col2im:           the adjoint of im2col: every cols entry is added back onto the pixel it came from.
//
// A chunk holds as many images as keep its scratch (cols plus the [K, n*P] staging of y or dy) under
// kChunkBudgetBytes: enough images that the GEMM's N dimension is wide even for small late layers, few
// enough that big early layers do not need a workspace the size of the whole batch's columns. With one image
// per chunk the staging is skipped, since [K, P] already is that image's NCHW layout.
//
// A kernel that covers the whole unpadded input (DCGAN's first generator and last discriminator layers:
// 4x4 kernel on a 4x4 input, one output pixel) makes cols the transpose of x viewed as [N, CKK]; those
// three passes are then single GEMMs on x, dy and w as they lie, with no im2col, col2im or permute
// (`covers_input`). Through im2col those passes ran 5-50x slower: a [CKK, N] scatter, one element per row.
//
// Threads: im2col, col2im and the layout permutes run OpenMP loops over (channel, image) rows, so
// every thread writes its own disjoint rows (col2im needs no atomics) and the results are independent
// of the thread count; the GEMM is threaded by the BLAS.
#include "conv.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "cudagan/core/error.h"
#include <string>
#include <type_traits>
#include <vector>

#include "gemm.h"
#include "cpu/conv_implicit.h"
#include "cpu/conv_winograd.h"
#include "cpu/parallel.h"

namespace cudagan::cpu {

namespace detail {
// Images per GEMM chunk for geometry g and elements of elem_bytes bytes. Not part of conv.h: it has
// external linkage only so that tests/ops/test_conv.cpp can check that its large case spans several chunks.
int conv_chunk_images(const ConvGeometry& g, int64_t elem_bytes);
}  // namespace detail

namespace {

// 16 MiB, not more: the scratch is a std::vector per call, and glibc serves blocks above its 32 MiB mmap
// threshold with fresh pages every time, whose page faults then cost more than the GEMM (measured on
// DCGAN's 64 -> 128 channel layer, batch 64: 37 GFLOP/s with 64 MiB, 77 with 16 MiB, BLAS alone 167).
// Below the threshold the freed block is reused. 16 MiB still gives GEMMs thousands of columns wide.
constexpr int64_t kChunkBudgetBytes = int64_t(16) << 20;

void check_geometry(const ConvGeometry& g, const char* op) {
  if (!g.valid())
    throw InvalidArgument(std::string("cpu::") + op + ": invalid convolution geometry (batch " +
                                std::to_string(g.batch) + ", channels " + std::to_string(g.in_channels) +
                                " -> " + std::to_string(g.out_channels) + ", input " +
                                std::to_string(g.in_h) + "x" + std::to_string(g.in_w) + ", kernel " +
                                std::to_string(g.kernel_h) + "x" + std::to_string(g.kernel_w) + ", stride " +
                                std::to_string(g.stride_h) + "x" + std::to_string(g.stride_w) + ", pad " +
                                std::to_string(g.pad_h) + "x" + std::to_string(g.pad_w) + ")");
}

void check_range(const ConvGeometry& g, int first, int count, const char* op) {
  if (first < 0 || count < 0 || first + count > g.batch)
    throw InvalidArgument(std::string("cpu::") + op + ": images [" + std::to_string(first) + ", " +
                                std::to_string(first + count) + ") outside a batch of " +
                                std::to_string(g.batch));
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The output positions o in [lo, hi) whose input position o*stride - pad + k lies inside [0, extent):
// the padding is handled once per (kernel offset) instead of once per element.
struct Span {
  int64_t lo, hi;
};
Span valid_span(int64_t extent, int64_t out, int64_t stride, int64_t pad, int64_t k) {
  const int64_t lo = pad - k > 0 ? ceil_div(pad - k, stride) : 0;
  const int64_t hi = extent + pad - k > 0 ? ceil_div(extent + pad - k, stride) : 0;
  const int64_t clamped_hi = std::min(hi, out);
  return {std::min(lo, clamped_hi), clamped_hi};
}

// True when the kernel spans the whole unpadded input, so there is one output pixel per image and
// cols[(c, kh, kw), i] = x[i, c, kh, kw]: cols is x [N, CKK] transposed.
bool covers_input(const ConvGeometry& g) {
  return g.pad_h == 0 && g.pad_w == 0 && g.kernel_h == g.in_h && g.kernel_w == g.in_w;
}

// [K, n, P] (the GEMM's layout) -> [n, K, P] (NCHW). Each (image, channel) row is one contiguous copy.
template <class T>
void knp_to_nkp(const T* src, int64_t n, int64_t k, int64_t p, T* dst) {
#pragma omp parallel for schedule(static) if (n * k * p >= kParallelMinElems)
  for (int64_t r = 0; r < n * k; ++r) {
    const int64_t i = r / k, c = r % k;
    std::memcpy(dst + r * p, src + (c * n + i) * p, size_t(p) * sizeof(T));
  }
}

// [n, K, P] (NCHW) -> [K, n, P].
template <class T>
void nkp_to_knp(const T* src, int64_t n, int64_t k, int64_t p, T* dst) {
#pragma omp parallel for schedule(static) if (n * k * p >= kParallelMinElems)
  for (int64_t r = 0; r < n * k; ++r) {
    const int64_t c = r / n, i = r % n;
    std::memcpy(dst + r * p, src + (i * k + c) * p, size_t(p) * sizeof(T));
  }
}

// One chunk's scratch, sized for the largest chunk and reused by every chunk of the call.
// Uninitialised (new T[n], not a std::vector): im2col and the GEMMs write every element before it is read,
// and zero-filling 16 MiB per call showed as 2.5 % of a DCGAN step in memset.
template <class T>
struct ChunkScratch {
  std::unique_ptr<T[]> cols, staging;
  ChunkScratch(const ConvGeometry& g, int chunk)
      : cols(new T[size_t(g.col_rows() * chunk * g.out_pixels())]),
        staging(chunk > 1 ? new T[size_t(int64_t(g.out_channels) * chunk * g.out_pixels())] : nullptr) {}
};

}  // namespace

// Which float passes run as implicit GEMMs (conv_implicit.h) with our micro-kernels instead of im2col + BLAS:
// measured on DCGAN-64's layers at batch 64 and 128, both implementations alternating in one process, and in
// bench_kernels' ".../im2col" against ".../implicit_avx512" and ".../implicit_avx2" rows, on a 2-core AVX-512
// machine with the apps' threading settings (bench/RESULTS.md, "implicit GEMM").
// AVX-512 (12x32 kernel writing whole tiles into C; packers that load each strip row as two masked loads or
// gathers): the forward wins on every output plane (1.3-1.7x on 16x16 and larger, 1.0-1.3x on 8x8 and 4x4);
// where dx has 16+ channels the backward data wins 1.1-1.4x on 8x8 and larger dy planes and the backward
// weight 1.1-1.3x on 8x8 and larger output planes; on 4x4 planes both are at parity (0.85-1.13x run to run,
// medians 1.0-1.1, DCGAN-32's 128 -> 256 channel layer included), and run implicitly there too.
// On the image layers (3 channels) the backward data loses (0.8-0.95x: it stacks all phases in one 12-row
// GEMM, which packing dominates). Their backward weight, with B rows read 16 columns per masked load
// (gather_rows_dense_avx512), wins since 2026-12-03: 1.0-1.7x at batch 64 and 128 on 3 channels (64x64) and
// 1.07-1.5x on 1 channel (DCGAN-32, 32x32), best of 15 alternating in one process.
// AVX2 (6x16 kernel, runs copied per plane row; against OpenBLAS held to its Haswell kernels): the forward wins
// 1.0-1.35x on 8x8 and larger output planes only, the backward data loses everywhere (0.6-1.1x), and the
// backward weight wins 0.96-1.10x on 8x8 and larger output planes with 16+ input channels.
// The portable micro-kernel was not measured against OpenBLAS's SSE kernels, so CPUs without AVX2 stay on BLAS.
namespace {
bool implicit_available(const ConvGeometry& g) { return g.valid() && !covers_input(g) && best_isa() != Isa::generic; }
bool avx512() { return best_isa() == Isa::avx512; }
bool implicit_forward(const ConvGeometry& g) { return avx512() || g.out_pixels() >= 64; }
bool implicit_backward_data(const ConvGeometry& g) { return avx512() && g.in_channels >= 16; }
bool implicit_backward_weight(const ConvGeometry& g) {
  return avx512() || (g.in_channels >= 16 && g.out_pixels() >= 64);
}
// Winograd F(2x2, 2x2) (conv_winograd.h) on the stride-2 4x4 layers with 16+ channels on both sides, where
// there are tiles enough to pay for transforming the weights (9/4 of them, every call). Measured with AVX-512 on
// 2 threads against the implicit GEMM, both alternating in one process (bench/RESULTS.md, "Winograd"): on
// DCGAN-64's D.conv2-4 at batch 64 (4096, 1024 and 256 tiles) the forward 1.3-1.45x, backward data 1.2-1.35x,
// backward weight 1.25-1.3x on D.conv2-3; on DCGAN-32's layers 1.3-1.4x, but its 8x8 backward data (256 tiles
// per phase) 1.0x. Below 256 tiles it loses: the forward 0.86x on 32 tiles, backward data 0.77x on 128.
// Backward weight also needs its nine dU_xi [K, 4C] to stay near the cache (at most 2^21 floats): D.conv4's
// 4.7M gained only 1.04-1.09x. AVX2 and the portable kernel are not used, their transforms being scalar.
int64_t output_tiles(const ConvGeometry& g) {
  return int64_t(g.batch) * ((g.out_h() + 1) / 2) * ((g.out_w() + 1) / 2);
}
int64_t input_tiles(const ConvGeometry& g) { return int64_t(g.batch) * ((g.in_h + 3) / 4) * ((g.in_w + 3) / 4); }
bool winograd(const ConvGeometry& g) {
  return avx512() && winograd_supported(g) && g.in_channels >= 16 && g.out_channels >= 16;
}
bool winograd_forward(const ConvGeometry& g) { return winograd(g) && output_tiles(g) >= 256; }
bool winograd_backward_data(const ConvGeometry& g) { return winograd(g) && input_tiles(g) >= 256; }
bool winograd_backward_weight(const ConvGeometry& g) {
  return winograd(g) && winograd_backward_weight_supported(g) && output_tiles(g) >= 256 &&
         9 * int64_t(g.out_channels) * 4 * g.in_channels <= (int64_t(1) << 21);
}
}  // namespace

int detail::conv_chunk_images(const ConvGeometry& g, int64_t elem_bytes) {
  const int64_t per_image = (g.col_rows() + g.out_channels) * g.out_pixels() * elem_bytes;
  const int64_t fit = per_image > 0 ? kChunkBudgetBytes / per_image : g.batch;
  return int(std::clamp<int64_t>(fit, 1, std::max(g.batch, 1)));
}

template <class T>
void im2col(const ConvGeometry& g, const T* x, int first, int count, T* cols) {
  check_geometry(g, "im2col");
  check_range(g, first, count, "im2col");
  const int64_t in_w = g.in_w, in_px = g.in_pixels(), out_w = g.out_w(), out_h = g.out_h();
  const int64_t p = g.out_pixels(), ncols = int64_t(count) * p, kk = int64_t(g.kernel_h) * g.kernel_w;
  const int64_t rows = int64_t(g.in_channels) * count;
#pragma omp parallel for schedule(static) if (rows * kk * p >= kParallelMinElems)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = r / count, i = r % count;
    const T* img = x + ((first + i) * g.in_channels + c) * in_px;
    for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
      const Span hs = valid_span(g.in_h, out_h, g.stride_h, g.pad_h, kh);
      for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
        const Span ws = valid_span(in_w, out_w, g.stride_w, g.pad_w, kw);
        T* dst = cols + (c * kk + kh * g.kernel_w + kw) * ncols + i * p;
        std::fill(dst, dst + hs.lo * out_w, T(0));
        const int64_t shift = kw - g.pad_w;  // input column = ow * stride_w + shift
        for (int64_t oh = hs.lo; oh < hs.hi; ++oh) {
          const T* src = img + (oh * g.stride_h - g.pad_h + kh) * in_w;
          T* d = dst + oh * out_w;
          std::fill(d, d + ws.lo, T(0));
          if (g.stride_w == 1) {
            std::copy(src + ws.lo + shift, src + ws.hi + shift, d + ws.lo);
          } else {
            for (int64_t ow = ws.lo; ow < ws.hi; ++ow) d[ow] = src[ow * g.stride_w + shift];
          }
          std::fill(d + ws.hi, d + out_w, T(0));
        }
        std::fill(dst + hs.hi * out_w, dst + p, T(0));
      }
    }
  }
}

template <class T>
void col2im(const ConvGeometry& g, const T* cols, int first, int count, T* dx) {
  check_geometry(g, "col2im");
  check_range(g, first, count, "col2im");
  const int64_t in_w = g.in_w, in_px = g.in_pixels(), out_w = g.out_w(), out_h = g.out_h();
  const int64_t p = g.out_pixels(), ncols = int64_t(count) * p, kk = int64_t(g.kernel_h) * g.kernel_w;
  const int64_t rows = int64_t(g.in_channels) * count;
  // One (channel, image) plane per iteration: the planes are disjoint, so the += needs no atomics, and
  // each pixel receives its contributions in (kh, kw) order whatever the thread count.
#pragma omp parallel for schedule(static) if (rows * kk * p >= kParallelMinElems)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = r / count, i = r % count;
    T* img = dx + ((first + i) * g.in_channels + c) * in_px;
    std::fill(img, img + in_px, T(0));
    for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
      const Span hs = valid_span(g.in_h, out_h, g.stride_h, g.pad_h, kh);
      for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
        const Span ws = valid_span(in_w, out_w, g.stride_w, g.pad_w, kw);
        const T* src = cols + (c * kk + kh * g.kernel_w + kw) * ncols + i * p;
        const int64_t shift = kw - g.pad_w;
        for (int64_t oh = hs.lo; oh < hs.hi; ++oh) {
          T* d = img + (oh * g.stride_h - g.pad_h + kh) * in_w;
          const T* s = src + oh * out_w;
          for (int64_t ow = ws.lo; ow < ws.hi; ++ow) d[ow * g.stride_w + shift] += s[ow];
        }
      }
    }
  }
}

template <class T>
void conv2d_forward_im2col(const ConvGeometry& g, const T* x, const T* w, T* y) {
  check_geometry(g, "conv2d_forward");
  const int64_t k = g.out_channels, p = g.out_pixels(), ckk = g.col_rows();
  if (covers_input(g)) {  // y [N, K] = x [N, CKK] * w^T
    gemm<T>(false, true, g.batch, k, ckk, T(1), x, ckk, w, ckk, T(0), y, k);
    return;
  }
  const int chunk = detail::conv_chunk_images(g, sizeof(T));
  ChunkScratch<T> s(g, chunk);
  for (int first = 0; first < g.batch; first += chunk) {
    const int count = std::min(chunk, g.batch - first);
    const int64_t ncols = int64_t(count) * p;
    T* y_chunk = y + int64_t(first) * k * p;
    im2col(g, x, first, count, s.cols.get());
    T* out = count == 1 ? y_chunk : s.staging.get();
    gemm<T>(false, false, k, ncols, ckk, T(1), w, ckk, s.cols.get(), ncols, T(0), out, ncols);
    if (count > 1) knp_to_nkp(out, count, k, p, y_chunk);
  }
}

template <class T>
void conv2d_backward_data_im2col(const ConvGeometry& g, const T* dy, const T* w, T* dx) {
  check_geometry(g, "conv2d_backward_data");
  const int64_t k = g.out_channels, p = g.out_pixels(), ckk = g.col_rows();
  if (covers_input(g)) {  // dx [N, CKK] = dy [N, K] * w
    gemm<T>(false, false, g.batch, ckk, k, T(1), dy, k, w, ckk, T(0), dx, ckk);
    return;
  }
  const int chunk = detail::conv_chunk_images(g, sizeof(T));
  ChunkScratch<T> s(g, chunk);
  for (int first = 0; first < g.batch; first += chunk) {
    const int count = std::min(chunk, g.batch - first);
    const int64_t ncols = int64_t(count) * p;
    const T* dy_chunk = dy + int64_t(first) * k * p;
    if (count > 1) {
      nkp_to_knp(dy_chunk, count, k, p, s.staging.get());
      dy_chunk = s.staging.get();
    }
    gemm<T>(true, false, ckk, ncols, k, T(1), w, ckk, dy_chunk, ncols, T(0), s.cols.get(), ncols);
    col2im(g, s.cols.get(), first, count, dx);
  }
}

template <class T>
void conv2d_backward_weight_im2col(const ConvGeometry& g, const T* x, const T* dy, T* dw) {
  check_geometry(g, "conv2d_backward_weight");
  const int64_t k = g.out_channels, p = g.out_pixels(), ckk = g.col_rows();
  if (covers_input(g)) {  // dw [K, CKK] = dy^T [K, N] * x [N, CKK]
    gemm<T>(true, false, k, ckk, g.batch, T(1), dy, k, x, ckk, T(0), dw, ckk);
    return;
  }
  const int chunk = detail::conv_chunk_images(g, sizeof(T));
  ChunkScratch<T> s(g, chunk);
  for (int first = 0; first < g.batch; first += chunk) {
    const int count = std::min(chunk, g.batch - first);
    const int64_t ncols = int64_t(count) * p;
    const T* dy_chunk = dy + int64_t(first) * k * p;
    if (count > 1) {
      nkp_to_knp(dy_chunk, count, k, p, s.staging.get());
      dy_chunk = s.staging.get();
    }
    im2col(g, x, first, count, s.cols.get());
    // beta 0 on the first chunk: dw is overwritten (its old contents are never read, even if NaN).
    gemm<T>(false, true, k, ckk, ncols, T(1), dy_chunk, ncols, s.cols.get(), ncols, first == 0 ? T(0) : T(1),
            dw, ckk);
  }
}

template <class T>
void conv2d_forward(const ConvGeometry& g, const T* x, const T* w, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    if (implicit_available(g) && winograd_forward(g)) return conv2d_forward_winograd(g, x, w, y, best_isa());
    if (implicit_available(g) && implicit_forward(g))
      return conv2d_forward_implicit(g, x, w, y, best_isa());
  }
  conv2d_forward_im2col(g, x, w, y);
}

template <class T>
void conv2d_backward_data(const ConvGeometry& g, const T* dy, const T* w, T* dx) {
  if constexpr (std::is_same_v<T, float>) {
    if (implicit_available(g) && winograd_backward_data(g))
      return conv2d_backward_data_winograd(g, dy, w, dx, best_isa());
    if (implicit_available(g) && implicit_backward_data(g))
      return conv2d_backward_data_implicit(g, dy, w, dx, best_isa());
  }
  conv2d_backward_data_im2col(g, dy, w, dx);
}

template <class T>
void conv2d_backward_weight(const ConvGeometry& g, const T* x, const T* dy, T* dw) {
  if constexpr (std::is_same_v<T, float>) {
    if (implicit_available(g) && winograd_backward_weight(g))
      return conv2d_backward_weight_winograd(g, x, dy, dw, best_isa());
    if (implicit_available(g) && implicit_backward_weight(g))
      return conv2d_backward_weight_implicit(g, x, dy, dw, best_isa());
  }
  conv2d_backward_weight_im2col(g, x, dy, dw);
}

#define CUDAGAN_INSTANTIATE_CONV(T)                                                   \
  template void im2col<T>(const ConvGeometry&, const T*, int, int, T*);               \
  template void col2im<T>(const ConvGeometry&, const T*, int, int, T*);               \
  template void conv2d_forward<T>(const ConvGeometry&, const T*, const T*, T*);       \
  template void conv2d_backward_data<T>(const ConvGeometry&, const T*, const T*, T*); \
  template void conv2d_backward_weight<T>(const ConvGeometry&, const T*, const T*, T*);       \
  template void conv2d_forward_im2col<T>(const ConvGeometry&, const T*, const T*, T*);        \
  template void conv2d_backward_data_im2col<T>(const ConvGeometry&, const T*, const T*, T*);  \
  template void conv2d_backward_weight_im2col<T>(const ConvGeometry&, const T*, const T*, T*);
CUDAGAN_INSTANTIATE_CONV(float)
CUDAGAN_INSTANTIATE_CONV(double)
#undef CUDAGAN_INSTANTIATE_CONV

}  // namespace cudagan::cpu
