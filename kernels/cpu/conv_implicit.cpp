// The implicit-GEMM convolution (conv_implicit.h): forward and backward weight. The machinery they share
// with backward data (conv_implicit_backward_data.cpp) is in conv_implicit_planes.h.
#include "cpu/conv_implicit.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "cpu/conv_implicit_planes.h"
#include "cpu/packed_gemm.h"

namespace cudagan::cpu {

using namespace implicit;

namespace {

// The phase planes of images [0, images) of x, split in one parallel pass (or x itself for stride 1).
struct PhasePlanes {
  PhaseLayout layout;
  AlignedFloats storage;  // uninitialised: every element is written below
  const float* data = nullptr;

  PhasePlanes(const ConvGeometry& g, const float* x, Isa isa, int64_t images) : layout(g) {
    if (g.stride_h == 1 && g.stride_w == 1) {
      data = x;
      return;
    }
    storage = AlignedFloats(images * layout.per_image);
    float* out = storage.data();
    const int64_t planes = images * g.in_channels, in_plane = int64_t(g.in_h) * g.in_w;
    const DeinterleaveFn deinterleave = deinterleave_for(isa);
#pragma omp parallel for schedule(static) if (planes * in_plane >= (int64_t(1) << 15))
    for (int64_t q = 0; q < planes; ++q)
      split_phases(g, layout, x + q * in_plane, out + q * layout.per_channel, deinterleave);
    data = storage.data();
  }
};

// The forward of a strided convolution, on at least as many images as threads: the batch runs in groups of
// whole images (about blk.nc columns each, as many groups as the threads share evenly), and the thread that
// takes a group first splits just those images into its own phase planes, then packs B from them. So B is
// packed from planes its own core has just written, still in L2. Split in one pass for the whole batch
// beforehand, they came back from L3 or memory: that pass and the B packing reading it had been a quarter
// of D.conv2's forward. The reduction blocks are the same, so are the bits.
template <class ColOffset>
void forward_by_image_groups(const ConvGeometry& g, const float* x, const MicroKernel& uk, const GemmBlocking& blk,
                             const PackedA& a, const ColOffset& y_offset, float* y, Isa isa) {
  const int64_t batch = g.batch, p = g.out_pixels(), groups = image_groups(batch, p, blk);
  const int64_t most_images = ceil_div(batch, groups);
  const PhaseLayout layout(g);
  const DeinterleaveFn deinterleave = deinterleave_for(isa);
  const bool parallel = 2.0 * double(a.m()) * double(a.k()) * double(batch * p) >= double(kParallelFlops);
#pragma omp parallel if (parallel && groups > 1)
  {
    GemmScratch s(uk, blk);
    OffsetStore<ColOffset> out(uk, y_offset, y, p, s);
    AlignedFloats mine(most_images * layout.per_image);  // this thread's planes
    const PlaneSource src = patch_source(g, layout, mine.data(), isa);  // columns from the group's first image
#pragma omp for schedule(static)
    for (int64_t gi = 0; gi < groups; ++gi) {
      const int64_t i0 = gi * batch / groups, i1 = (gi + 1) * batch / groups;
      split_channels(g, layout, x, i0, i1, 0, g.in_channels, mine.data(), deinterleave);
      const int64_t j0 = i0 * p, cols = (i1 - i0) * p;
      packed_gemm_columns(
          uk, balanced(blk, uk.nr, cols, 1), a, j0, cols, 0, a.k(), false,
          [&](int64_t k0, int64_t kc, int64_t jb, int64_t nv, float* dst) {
            pack_rows(src, uk.nr, k0, kc, jb - j0, nv, dst);
          },
          out, s);
    }
  }
}

}  // namespace

void conv2d_forward_implicit(const ConvGeometry& g, const float* x, const float* w, float* y, Isa isa) {
  check(g, x, w, y, "conv2d_forward_implicit");
  const MicroKernel uk = microkernel(isa);
  const GemmBlocking blk;
  const int64_t k = g.out_channels, ckk = g.col_rows(), p = g.out_pixels();
  PackedA a(uk, k, ckk, blk);
  pack_a_matrix(uk, a, w, ckk, isa);  // A = w [K][CKK]
  const auto y_offset = [&](int64_t j) { return (j / p) * k * p + j % p; };
  const bool strided = g.stride_h != 1 || g.stride_w != 1;
  if (strided && g.batch >= omp_get_max_threads()) return forward_by_image_groups(g, x, uk, blk, a, y_offset, y, isa);
  const PhasePlanes planes(g, x, isa, g.batch);
  const PlaneSource src = patch_source(g, planes.layout, planes.data, isa);
  run_columns(
      uk, blk, a, 0, int64_t(g.batch) * p,
      [&](int64_t k0, int64_t kc, int64_t j0, int64_t nv, float* dst) { pack_rows(src, uk.nr, k0, kc, j0, nv, dst); },
      y_offset, y, p);
}

void conv2d_backward_weight_implicit(const ConvGeometry& g, const float* x, const float* dy, float* dw, Isa isa) {
  check(g, x, dy, dw, "conv2d_backward_weight_implicit");
  const MicroKernel uk = microkernel(isa);
  const GemmBlocking blk;
  const int64_t k_n = g.out_channels, ckk = g.col_rows(), p = g.out_pixels(), pixels = int64_t(g.batch) * p;
  const bool strided = g.stride_h != 1 || g.stride_w != 1;
  const PhaseLayout layout(g);
  const PlaneSource whole = patch_source(g, layout, x, isa);  // stride 1: x is its own (only) phase

  // The reduction over the batch's pixels runs in fixed slices (a multiple of kc, A's packed slice about
  // 4 MiB at most), each into its own partial dw, added in slice order at the end.
  // dw with at most 64 columns (1 or 3 input channels: DCGAN's image layers) has one column block, so the
  // slices are the only parallelism: at least 8 of them where the batch has the pixels (on DCGAN-32's 1-channel
  // layers one slice had held the pass to one thread, at 12 % of the ceiling). Both by the geometry alone.
  int64_t slice = std::max<int64_t>(blk.kc, (int64_t(1) << 20) / std::max<int64_t>(k_n, 1) / blk.kc * blk.kc);
  if (ckk <= 64) slice = std::min(slice, std::max(blk.kc, ceil_div(ceil_div(pixels, 8), blk.kc) * blk.kc));
  const int64_t slices = std::max<int64_t>(1, (pixels + slice - 1) / slice);
  // Tasks (slice, block of dw's columns) shared evenly by the threads (see balanced()).
  const GemmBlocking cblk = slices % omp_get_max_threads() == 0 ? blk : balanced(blk, uk.nr, ckk);
  const int64_t col_blocks = (ckk + cblk.nc - 1) / cblk.nc, tasks = slices * col_blocks;
  AlignedFloats partials(slices > 1 ? slices * k_n * ckk : 0);  // uninitialised: each slice stores first
  const bool parallel = 2.0 * double(k_n) * double(ckk) * double(pixels) >= double(kParallelFlops);

  // A strided x is split into phase planes by each thread, for the images of one kc block and the channels
  // of its task's dw columns, just before they are packed: read back from that core's L2. (Split for the
  // whole batch beforehand, the planes came back from memory: that pass and the packing from it had been a
  // quarter of D.conv2's backward weight.) The packed values are the same, so are the bits.
  const int64_t taps = int64_t(g.kernel_h) * g.kernel_w, phase_planes = layout.per_channel;
  const int64_t most_channels = std::min<int64_t>(g.in_channels, cblk.nc / taps + 2);
  const int64_t most_images = std::min<int64_t>(g.batch, blk.kc / p + 2);
  const DeinterleaveFn deinterleave = deinterleave_for(isa);

#pragma omp parallel if (parallel && tasks > 1)
  {
    GemmScratch s(uk, blk);
    std::unique_ptr<PackedA> a;
    int64_t packed_slice = -1;
    AlignedFloats mine(strided ? most_images * most_channels * phase_planes : 0);  // this thread's planes
    PlaneSource local = whole;
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t sl = t / col_blocks, cb = t % col_blocks;
      const int64_t first = sl * slice, len = std::min(slice, pixels - first);
      const int64_t r0 = cb * cblk.nc, ncols = std::min(cblk.nc, ckk - r0);
      const int64_t c_lo = r0 / taps, c_n = (r0 + ncols - 1) / taps + 1 - c_lo;  // the task's channels
      if (strided) {  // `mine` holds images [img_lo, img_hi), channels [c_lo, c_lo + c_n), image after image
        local.base = mine.data();
        local.img_stride = c_n * phase_planes;
        for (size_t r = 0; r < local.row_off.size(); ++r) local.row_off[r] = whole.row_off[r] - c_lo * phase_planes;
      }
      int64_t img_lo = -1, img_hi = -1;
      if (sl != packed_slice) {  // A = dy [K, pixels of this slice]
        a = std::make_unique<PackedA>(uk, k_n, len, blk);
        a->pack(
            [&](int64_t m0, int64_t k0, int64_t kc, float* dst) {
              if (isa == Isa::avx512) {  // each image's run of pixels: `rows` channels of dy, p apart
                const int rows = int(std::min<int64_t>(uk.mr, k_n - m0));
                int64_t ji = (first + k0) / p, jp = (first + k0) % p;
                for (int64_t q = 0; q < kc;) {
                  const int64_t run = std::min(kc - q, p - jp);
                  detail::pack_a_avx512(dy + (ji * k_n + m0) * p + jp, p, rows, run, dst + q * uk.mr);
                  q += run, jp = 0, ++ji;
                }
                return;
              }
              for (int i = 0; i < uk.mr; ++i) {
                const int64_t k = m0 + i;
                if (k >= k_n) {
                  for (int64_t q = 0; q < kc; ++q) dst[q * uk.mr + i] = 0.0f;
                  continue;
                }
                // pixel j = first + k0 + q is pixel jp of image ji: walk them without a division each
                int64_t ji = (first + k0) / p, jp = (first + k0) % p;
                for (int64_t q = 0; q < kc;) {
                  const float* row = dy + (ji * k_n + k) * p;
                  const int64_t run = std::min(kc - q, p - jp);
                  for (int64_t t = 0; t < run; ++t) dst[(q + t) * uk.mr + i] = row[jp + t];
                  q += run, jp = 0, ++ji;
                }
              }
            },
            false);
        packed_slice = sl;
      }
      const auto identity = [](int64_t j) { return j; };
      OffsetStore<decltype(identity)> out(uk, identity, slices > 1 ? partials.data() + sl * k_n * ckk : dw, ckk, s);
      packed_gemm_columns(
          uk, cblk, *a, r0, ncols, 0, len, false,
          [&](int64_t k0, int64_t kc, int64_t j0, int64_t nv, float* dst) {
            const int64_t j = first + k0;  // the block's first pixel
            if (!strided) return pack_columns(whole, uk.nr, j, kc, j0, nv, dst, s.pack_tmp.data(), isa == Isa::avx512);
            const int64_t lo = j / p, hi = ceil_div(j + kc, p);
            if (lo != img_lo || hi != img_hi) {  // the first strip of a kc block with other images
              split_channels(g, layout, x, lo, hi, c_lo, c_n, mine.data(), deinterleave);
              img_lo = lo, img_hi = hi;
            }
            pack_columns(local, uk.nr, j - lo * p, kc, j0, nv, dst, s.pack_tmp.data(), isa == Isa::avx512);
          },
          out, s);
    }
  }
  if (slices > 1) {
    const int64_t n = k_n * ckk;
#pragma omp parallel for schedule(static) if (n * slices >= (int64_t(1) << 15))
    for (int64_t e = 0; e < n; ++e) {
      float sum = partials.data()[e];
      for (int64_t sl = 1; sl < slices; ++sl) sum += partials.data()[sl * n + e];
      dw[e] = sum;
    }
  }
}

}  // namespace cudagan::cpu
