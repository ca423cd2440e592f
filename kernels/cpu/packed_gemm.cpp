// The non-template parts of the packed GEMM driver (packed_gemm.h).
#include "cpu/packed_gemm.h"

#include <new>

namespace cudagan::cpu {

AlignedFloats::AlignedFloats(int64_t n) {
  const size_t bytes = size_t(std::max<int64_t>(n, 1)) * sizeof(float);
  p_ = std::unique_ptr<float, Free>(static_cast<float*>(host_alloc(bytes)), Free{bytes});
  if (!p_) throw std::bad_alloc();
}

GemmScratch::GemmScratch(const MicroKernel& uk, const GemmBlocking& b)
    : b_panel(b.kc * ((b.nc + uk.nr - 1) / uk.nr) * uk.nr),
      tile(int64_t(uk.mr) * uk.nr),
      pack_tmp(int64_t(uk.nr) * ((b.kc + 15) / 16 * 16)),
      col_offsets(size_t(b.nc + uk.nr)),
      strip_contiguous(size_t(b.nc / uk.nr + 1)),
      strip_split(size_t(b.nc / uk.nr + 1)) {}

PackedA::PackedA(const MicroKernel& uk, int64_t m, int64_t k, const GemmBlocking& b)
    : mr_(uk.mr), m_(m), k_(k), kc_(b.kc), strips_((m + uk.mr - 1) / uk.mr),
      buf_(std::max<int64_t>(k, 1) * ((m + uk.mr - 1) / uk.mr) * uk.mr) {}

void store_tile(const float* tile, int nr, int mv, int nv, float* c_row0, int64_t row_stride,
                const int64_t* col_offsets, bool contiguous, bool accumulate) {
  for (int i = 0; i < mv; ++i) {
    const float* t = tile + i * nr;
    float* row = c_row0 + i * row_stride;
    if (contiguous) {
      float* d = row + col_offsets[0];
      if (accumulate)
        for (int j = 0; j < nv; ++j) d[j] += t[j];
      else
        for (int j = 0; j < nv; ++j) d[j] = t[j];
    } else if (accumulate) {
      for (int j = 0; j < nv; ++j) row[col_offsets[j]] += t[j];
    } else {
      for (int j = 0; j < nv; ++j) row[col_offsets[j]] = t[j];
    }
  }
}

}  // namespace cudagan::cpu
