// 2-D convolution on the GPU: im2col + one cuBLAS GEMM per chunk of images, the batch folded into the
// GEMM's N dimension (the scheme of kernels/cpu/conv.cpp, which these results match).
//
//   x [N, C, H, W], w [K, C, KH, KW], y [N, K, OH, OW], P = OH*OW, CKK = C*KH*KW, chunk of n images:
//   im2col:           cols [CKK, n*P],   cols[(c,kh,kw), (i,oh,ow)] = x[i, c, oh*SH - PH + kh, ow*SW - PW +
//   kw]
//                                        (0 where that falls in the padding)
//   forward:          Y [K, n*P]   = W [K, CKK] * cols          then  Y [K, n, P] -> y [n, K, P]
//   backward data:    dY [K, n*P] <- dy [n, K, P];  cols = W^T [CKK, K] * dY;  dx = col2im(cols)
//   backward weight:  dW [K, CKK] = sum over chunks of dY * cols^T   (beta = 1 after the first chunk)
//   col2im:           the adjoint of im2col: each pixel of dx is the sum of the cols entries it produced.
//
// Workspace (ctx.workspace): cols [CKK, n*P] floats, then, when n > 1, the staging [K, n*P] of y or dy
// (at a 256-byte aligned offset). With one image per chunk the staging is skipped, since [K, P] already is
// that image's NCHW layout. n is the largest chunk that fits ctx.workspace_bytes (conv_chunk_images).
//
// Kernels (grid-stride loops, 32-bit index arithmetic whenever every index fits, else 64-bit):
//   im2col:   one thread per (c, i, oh, ow) writes its KH*KW column entries: coalesced writes along ow.
//   col2im:   a gather, one thread per pixel of dx summing the (at most KH*KW) entries that touch it, in the
//             CPU's (kh, kw) order: no atomics, deterministic, bit-identical to cpu::col2im.
//   swap_outer: [A, B, P] -> [B, A, P], the layout change between the GEMM's [K, n, P] and NCHW.
#include <algorithm>
#include <limits>
#include <stdexcept>

#include "cudagan/core/error.h"
#include <string>

#include "conv.h"
#include "cuda/common.cuh"
#include "gemm.h"

namespace cudagan::cuda {
namespace {

constexpr int kIm2colBlock = 256;
constexpr int kCol2imBlock = 256;
constexpr int kSwapBlock = 256;
constexpr size_t kStagingAlign = 256;

size_t align_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

std::string geometry_text(const ConvGeometry& g) {
  return "batch " + std::to_string(g.batch) + ", channels " + std::to_string(g.in_channels) + " -> " +
         std::to_string(g.out_channels) + ", input " + std::to_string(g.in_h) + "x" + std::to_string(g.in_w) +
         ", kernel " + std::to_string(g.kernel_h) + "x" + std::to_string(g.kernel_w) + ", stride " +
         std::to_string(g.stride_h) + "x" + std::to_string(g.stride_w) + ", pad " + std::to_string(g.pad_h) +
         "x" + std::to_string(g.pad_w);
}

void check_geometry(const ConvGeometry& g, const char* op) {
  if (!g.valid())
    throw InvalidArgument(std::string("cuda::") + op + ": invalid convolution geometry (" +
                                geometry_text(g) + ")");
}

void check_range(const ConvGeometry& g, int first, int count, const char* op) {
  if (first < 0 || count < 0 || int64_t(first) + count > g.batch)
    throw InvalidArgument(std::string("cuda::") + op + ": images [" + std::to_string(first) + ", " +
                                std::to_string(int64_t(first) + count) + ") outside a batch of " +
                                std::to_string(g.batch));
}

// The geometry as the kernels read it (ConvGeometry's member functions are host-only).
struct ConvShape {
  int c, h, w, kh, kw, sh, sw, ph, pw, oh, ow;
};

ConvShape shape_of(const ConvGeometry& g) {
  return {g.in_channels, g.in_h,  g.in_w,  g.kernel_h, g.kernel_w, g.stride_h,
          g.stride_w,    g.pad_h, g.pad_w, g.out_h(),  g.out_w()};
}
}  // namespace

// cols [C*KH*KW, count*P] from images [first, first + count) of x. Thread (c, i, p), p = oh*OW + ow.
template <class I>
static __global__ void im2col_kernel(ConvShape s, const float* __restrict__ x, int first, int count,
                                     float* __restrict__ cols) {
  const I p_count = I(s.oh) * I(s.ow);
  const I ncols = I(count) * p_count;
  const I total = I(s.c) * ncols;
  const I in_px = I(s.h) * I(s.w);
  for (I idx = I(blockIdx.x) * I(blockDim.x) + I(threadIdx.x); idx < total;
       idx += I(gridDim.x) * I(blockDim.x)) {
    const I p = idx % p_count;
    const I ci = idx / p_count;  // c * count + i
    const I i = ci % I(count);
    const I c = ci / I(count);
    const int oh = int(p / I(s.ow)), ow = int(p % I(s.ow));
    const float* img = x + ((I(first) + i) * I(s.c) + c) * in_px;
    float* dst = cols + c * I(s.kh) * I(s.kw) * ncols + i * p_count + p;
    const int ih0 = oh * s.sh - s.ph, iw0 = ow * s.sw - s.pw;
    for (int kh = 0; kh < s.kh; ++kh) {
      const int ih = ih0 + kh;
      const bool row_inside = ih >= 0 && ih < s.h;
      for (int kw = 0; kw < s.kw; ++kw) {
        const int iw = iw0 + kw;
        *dst = row_inside && iw >= 0 && iw < s.w ? img[I(ih) * I(s.w) + I(iw)] : 0.0f;
        dst += ncols;
      }
    }
  }
}

// Images [first, first + count) of dx from cols [C*KH*KW, count*P]: thread per pixel (i, c, h, w) adds the
// entries cols[(c, kh, kw), (i, oh, ow)] with oh*SH - PH + kh == h and ow*SW - PW + kw == w.
template <class I>
static __global__ void col2im_kernel(ConvShape s, const float* __restrict__ cols, int first, int count,
                                     float* __restrict__ dx) {
  const I p_count = I(s.oh) * I(s.ow);
  const I ncols = I(count) * p_count;
  const I in_px = I(s.h) * I(s.w);
  const I total = I(count) * I(s.c) * in_px;
  float* out = dx + I(first) * I(s.c) * in_px;
  for (I idx = I(blockIdx.x) * I(blockDim.x) + I(threadIdx.x); idx < total;
       idx += I(gridDim.x) * I(blockDim.x)) {
    const int w = int(idx % I(s.w));
    const I t = idx / I(s.w);
    const int h = int(t % I(s.h));
    const I ic = t / I(s.h);  // i * C + c
    const I c = ic % I(s.c);
    const I i = ic / I(s.c);
    const float* src = cols + c * I(s.kh) * I(s.kw) * ncols + i * p_count;
    float acc = 0.0f;
    for (int kh = 0; kh < s.kh; ++kh) {
      const int th = h + s.ph - kh;  // oh * SH for a contributing oh
      if (th < 0 || th % s.sh != 0) continue;
      const int oh = th / s.sh;
      if (oh >= s.oh) continue;
      for (int kw = 0; kw < s.kw; ++kw) {
        const int tw = w + s.pw - kw;
        if (tw < 0 || tw % s.sw != 0) continue;
        const int ow = tw / s.sw;
        if (ow >= s.ow) continue;
        acc += src[I(kh * s.kw + kw) * ncols + I(oh) * I(s.ow) + I(ow)];
      }
    }
    out[idx] = acc;
  }
}

// dst [B, A, P] from src [A, B, P]: dst[b, a, p] = src[a, b, p]. Thread per dst element: coalesced both ways
// along p.
template <class I>
static __global__ void swap_outer_kernel(const float* __restrict__ src, I a_count, I b_count, I p_count,
                                         float* __restrict__ dst) {
  const I total = a_count * b_count * p_count;
  for (I idx = I(blockIdx.x) * I(blockDim.x) + I(threadIdx.x); idx < total;
       idx += I(gridDim.x) * I(blockDim.x)) {
    const I p = idx % p_count;
    const I r = idx / p_count;  // b * A + a
    const I a = r % a_count;
    const I b = r / a_count;
    dst[idx] = src[(a * b_count + b) * p_count + p];
  }
}

namespace {

void launch_im2col(const KernelContext& ctx, const ConvGeometry& g, const float* x, int first, int count,
                   float* cols) {
  if (count == 0) return;
  const int64_t threads = int64_t(g.in_channels) * count * g.out_pixels();
  const int64_t largest = std::max({threads * g.kernel_h * g.kernel_w, g.input_elems()});
  const unsigned blocks = grid_blocks(threads, kIm2colBlock);
  if (fits_int32(largest))
    im2col_kernel<uint32_t><<<blocks, kIm2colBlock, 0, ctx.stream>>>(shape_of(g), x, first, count, cols);
  else
    im2col_kernel<int64_t><<<blocks, kIm2colBlock, 0, ctx.stream>>>(shape_of(g), x, first, count, cols);
  CUDA_CHECK_LAUNCH(ctx, "im2col_kernel");
}

void launch_col2im(const KernelContext& ctx, const ConvGeometry& g, const float* cols, int first, int count,
                   float* dx) {
  if (count == 0) return;
  const int64_t threads = int64_t(count) * g.in_channels * g.in_pixels();
  const int64_t largest = std::max({g.col_rows() * count * g.out_pixels(), g.input_elems()});
  const unsigned blocks = grid_blocks(threads, kCol2imBlock);
  if (fits_int32(largest))
    col2im_kernel<uint32_t><<<blocks, kCol2imBlock, 0, ctx.stream>>>(shape_of(g), cols, first, count, dx);
  else
    col2im_kernel<int64_t><<<blocks, kCol2imBlock, 0, ctx.stream>>>(shape_of(g), cols, first, count, dx);
  CUDA_CHECK_LAUNCH(ctx, "col2im_kernel");
}

// dst [B, A, P] from src [A, B, P].
void swap_outer(const KernelContext& ctx, const float* src, int64_t a, int64_t b, int64_t p, float* dst) {
  const int64_t total = a * b * p;
  if (total == 0) return;
  const unsigned blocks = grid_blocks(total, kSwapBlock);
  if (fits_int32(total))
    swap_outer_kernel<uint32_t>
        <<<blocks, kSwapBlock, 0, ctx.stream>>>(src, uint32_t(a), uint32_t(b), uint32_t(p), dst);
  else
    swap_outer_kernel<int64_t><<<blocks, kSwapBlock, 0, ctx.stream>>>(src, a, b, p, dst);
  CUDA_CHECK_LAUNCH(ctx, "swap_outer_kernel");
}

// The workspace split for one call: cols first, the staging after it (null when chunks hold one image).
struct ChunkPlan {
  int chunk;
  float* cols;
  float* staging;
};

ChunkPlan plan_chunks(const KernelContext& ctx, const ConvGeometry& g, const char* op) {
  check_geometry(g, op);
  const int chunk = conv_chunk_images(g, ctx.workspace_bytes);
  if (chunk == 0 || ctx.workspace == nullptr)
    throw InvalidArgument(std::string("cuda::") + op + ": the kernel context's workspace (" +
                                std::to_string(ctx.workspace_bytes) +
                                " bytes) is too small for even one image of " + "this convolution (" +
                                geometry_text(g) + "); it needs at least " +
                                std::to_string(conv_workspace_bytes(g, 1)) + " bytes");
  float* cols = static_cast<float*>(ctx.workspace);
  const size_t cols_bytes = size_t(g.col_rows() * chunk * g.out_pixels()) * sizeof(float);
  float* staging =
      chunk > 1
          ? reinterpret_cast<float*>(static_cast<char*>(ctx.workspace) + align_up(cols_bytes, kStagingAlign))
          : nullptr;
  return {chunk, cols, staging};
}

}  // namespace

size_t conv_workspace_bytes(const ConvGeometry& g, int chunk) {
  const size_t cols_bytes = size_t(g.col_rows() * chunk * g.out_pixels()) * sizeof(float);
  if (chunk <= 1) return cols_bytes;
  return align_up(cols_bytes, kStagingAlign) +
         size_t(int64_t(g.out_channels) * chunk * g.out_pixels()) * sizeof(float);
}

int conv_chunk_images(const ConvGeometry& g, size_t workspace_bytes) {
  check_geometry(g, "conv_chunk_images");
  if (conv_workspace_bytes(g, 1) > workspace_bytes) return 0;
  const int64_t p = g.out_pixels();
  // cuBLAS takes the GEMM's N = chunk * P (also the leading dimension) as a 32-bit int.
  const int64_t max_by_int = std::max<int64_t>(1, int64_t(std::numeric_limits<int>::max()) / p);
  const int64_t per_image = (g.col_rows() + g.out_channels) * p * int64_t(sizeof(float));
  int64_t chunk = std::min<int64_t>({int64_t(g.batch), max_by_int, int64_t(workspace_bytes) / per_image});
  chunk = std::max<int64_t>(chunk, 1);
  // The estimate ignores the staging's alignment padding (< 256 bytes): step down until it really fits.
  while (chunk > 1 && conv_workspace_bytes(g, int(chunk)) > workspace_bytes) --chunk;
  return int(chunk);
}

void im2col(const KernelContext& ctx, const ConvGeometry& g, const float* x, int first, int count,
            float* cols) {
  check_geometry(g, "im2col");
  check_range(g, first, count, "im2col");
  launch_im2col(ctx, g, x, first, count, cols);
}

void col2im(const KernelContext& ctx, const ConvGeometry& g, const float* cols, int first, int count,
            float* dx) {
  check_geometry(g, "col2im");
  check_range(g, first, count, "col2im");
  launch_col2im(ctx, g, cols, first, count, dx);
}

void conv2d_forward(const KernelContext& ctx, const ConvGeometry& g, const float* x, const float* w,
                    float* y) {
  const ChunkPlan plan = plan_chunks(ctx, g, "conv2d_forward");
  const int64_t k = g.out_channels, p = g.out_pixels(), ckk = g.col_rows();
  for (int first = 0; first < g.batch; first += plan.chunk) {
    const int count = std::min(plan.chunk, g.batch - first);
    const int64_t ncols = int64_t(count) * p;
    float* y_chunk = y + int64_t(first) * k * p;
    launch_im2col(ctx, g, x, first, count, plan.cols);
    float* out = count == 1 ? y_chunk : plan.staging;
    gemm(ctx, false, false, k, ncols, ckk, 1.0f, w, ckk, plan.cols, ncols, 0.0f, out, ncols);
    if (count > 1) swap_outer(ctx, out, k, count, p, y_chunk);
  }
}

void conv2d_backward_data(const KernelContext& ctx, const ConvGeometry& g, const float* dy, const float* w,
                          float* dx) {
  const ChunkPlan plan = plan_chunks(ctx, g, "conv2d_backward_data");
  const int64_t k = g.out_channels, p = g.out_pixels(), ckk = g.col_rows();
  for (int first = 0; first < g.batch; first += plan.chunk) {
    const int count = std::min(plan.chunk, g.batch - first);
    const int64_t ncols = int64_t(count) * p;
    const float* dy_chunk = dy + int64_t(first) * k * p;
    if (count > 1) {
      swap_outer(ctx, dy_chunk, count, k, p, plan.staging);
      dy_chunk = plan.staging;
    }
    gemm(ctx, true, false, ckk, ncols, k, 1.0f, w, ckk, dy_chunk, ncols, 0.0f, plan.cols, ncols);
    launch_col2im(ctx, g, plan.cols, first, count, dx);
  }
}

void conv2d_backward_weight(const KernelContext& ctx, const ConvGeometry& g, const float* x, const float* dy,
                            float* dw) {
  const ChunkPlan plan = plan_chunks(ctx, g, "conv2d_backward_weight");
  const int64_t k = g.out_channels, p = g.out_pixels(), ckk = g.col_rows();
  for (int first = 0; first < g.batch; first += plan.chunk) {
    const int count = std::min(plan.chunk, g.batch - first);
    const int64_t ncols = int64_t(count) * p;
    const float* dy_chunk = dy + int64_t(first) * k * p;
    if (count > 1) {
      swap_outer(ctx, dy_chunk, count, k, p, plan.staging);
      dy_chunk = plan.staging;
    }
    launch_im2col(ctx, g, x, first, count, plan.cols);
    // beta 0 on the first chunk: dw is overwritten (its old contents are never read, even if NaN).
    gemm(ctx, false, true, k, ckk, ncols, 1.0f, dy_chunk, ncols, plan.cols, ncols, first == 0 ? 0.0f : 1.0f,
         dw, ckk);
  }
}

}  // namespace cudagan::cuda
