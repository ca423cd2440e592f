// The blocked GEMM driver behind the implicit-GEMM convolution: C [m, n] (=, +=) A [m, k] * B [k, n], where
// neither A nor B need exist as matrices. The caller supplies packers that write A and B straight into the
// panel layout of the micro-kernel (microkernel.h), so a convolution packs input patches from the image
// itself instead of writing and re-reading an im2col matrix.
//
// Blocking (Goto's scheme, with the vector lanes along n): for each block of nc columns and each block of
// kc reduction steps, B is packed into nr-wide strips [kc][nr] (about kc * nc * 4 bytes, held in L2), and
// for each mr-row strip of A ([kc][mr], in L1) the micro-kernel runs over every B strip. The first
// reduction block stores its tile, the later ones add to it, so every C element is produced by one thread,
// in a fixed order: results do not depend on the thread count.
//
// C need not be a matrix: a Store object puts each tile where it belongs (OffsetStore: rows a stride apart,
// each column at its own offset, vector moves where a strip's columns turn out consecutive).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "cpu/host_memory.h"
#include "cpu/microkernel.h"

namespace cudagan::cpu {

// Uninitialised 64-byte aligned floats (the packed panels), from the host pool (host_memory.h).
class AlignedFloats {
 public:
  AlignedFloats() = default;
  explicit AlignedFloats(int64_t n);
  float* data() { return p_.get(); }
  const float* data() const { return p_.get(); }

 private:
  struct Free {
    Free() : bytes(0) {}
    explicit Free(size_t n) : bytes(n) {}
    void operator()(float* p) const { host_free(p, bytes); }
    size_t bytes;
  };
  std::unique_ptr<float, Free> p_;
};

struct GemmBlocking {
  int64_t kc = 512;  // reduction steps per packed block
  int64_t nc = 384;  // columns per packed B block (a multiple of every kernel's nr)
};

// One thread's scratch for packed_gemm_columns: a B block, its column offsets, one tile; and room for a
// packer to stage one strip ([nr][kc rounded up to 16]).
struct GemmScratch {
  GemmScratch(const MicroKernel& uk, const GemmBlocking& b);
  AlignedFloats b_panel, tile, pack_tmp;
  std::vector<int64_t> col_offsets;
  std::vector<char> strip_contiguous;  // per strip of a block: its columns are one run in C
  std::vector<int64_t> strip_split;    // per strip: where its second half starts in C, from its first column
                                       // (nr / 2 for one run), when both halves are runs; else -1
};

// A packed into kc blocks of mr-row strips: block at reduction step k0 holds ceil(m / mr) strips of
// [min(kc, k - k0)][mr], rows beyond m zero.
class PackedA {
 public:
  PackedA(const MicroKernel& uk, int64_t m, int64_t k, const GemmBlocking& b);
  int64_t m() const { return m_; }
  int64_t k() const { return k_; }
  int64_t strips() const { return strips_; }
  int64_t block_len(int64_t k0) const { return std::min(kc_, k_ - k0); }
  float* strip(int64_t k0, int64_t s) { return buf_.data() + k0 * strips_ * mr_ + s * block_len(k0) * mr_; }
  const float* strip(int64_t k0, int64_t s) const {
    return buf_.data() + k0 * strips_ * mr_ + s * block_len(k0) * mr_;
  }
  // pack(m0, k0, kc, dst): dst [kc][mr] = A[m0 + i][k0 + p] at dst[p * mr + i], 0 for rows >= m.
  // Runs on the OpenMP team (one strip per iteration) unless `parallel` is false (inside a parallel region).
  template <class Pack>
  void pack(const Pack& pack_strip, bool parallel = true);

 private:
  int mr_;
  int64_t m_, k_, kc_, strips_;
  AlignedFloats buf_;
};

// Stores (or adds) one mr x nr tile (row stride nr) into C: mv valid rows from `c_row0` (row stride
// `row_stride`), nv valid columns at the given offsets.
void store_tile(const float* tile, int nr, int mv, int nv, float* c_row0, int64_t row_stride,
                const int64_t* col_offsets, bool contiguous, bool accumulate);

// Where the driver puts C's tiles: begin_block(j0, ncur) at the start of each block of columns; then for the
// tile of rows [m0, m0 + mv) and block columns [first, first + nv), direct(m0, mv, first, nv, &split) says
// where in C the micro-kernel may write it itself (rows ldc() apart, its second half `split` after its first:
// microkernel.h), or nullptr, and then store(m0, mv, first, nv, tile, accumulate) puts the finished tile.
// OffsetStore is the usual one: C's rows `row_stride` apart, column j at col_offset(j) (computed once per
// block); full-width tiles whose columns are one run in C, or two runs of nr / 2 (a strip across two 4x4
// output planes), go direct, however many rows they have (a separate tile store cost 5 % of the DCGAN step);
// the rest go through store_tile.
template <class ColOffset>
class OffsetStore {
 public:
  OffsetStore(const MicroKernel& uk, const ColOffset& col_offset, float* c, int64_t row_stride, GemmScratch& s)
      : nr_(uk.nr), col_offset_(col_offset), c_(c), row_stride_(row_stride), s_(s) {}
  void begin_block(int64_t j0, int64_t ncur) {
    for (int64_t j = 0; j < ncur; ++j) s_.col_offsets[size_t(j)] = col_offset_(j0 + j);
    for (int64_t first = 0; first < ncur; first += nr_) {
      const int64_t nv = std::min<int64_t>(nr_, ncur - first);
      const int64_t* off = s_.col_offsets.data() + first;
      const auto run = [&](int64_t lo, int64_t hi) {  // columns [lo, hi) of the strip are consecutive in C
        for (int64_t j = lo + 1; j < hi; ++j)
          if (off[j] != off[lo] + (j - lo)) return false;
        return true;
      };
      const int half = nr_ / 2;
      const bool contiguous = run(0, nv);
      s_.strip_contiguous[size_t(first / nr_)] = contiguous;
      int64_t split = -1;
      if (nv == nr_ && contiguous)
        split = half;
      else if (nv == nr_ && run(0, half) && run(half, nr_) && off[half] >= off[0] + half)
        split = off[half] - off[0];
      s_.strip_split[size_t(first / nr_)] = split;
    }
  }
  float* direct(int64_t m0, int /*mv*/, int64_t first, int /*nv*/, int64_t* split) const {
    *split = s_.strip_split[size_t(first / nr_)];
    return *split < 0 ? nullptr : c_ + m0 * row_stride_ + s_.col_offsets[size_t(first)];
  }
  int64_t ldc() const { return row_stride_; }
  void store(int64_t m0, int mv, int64_t first, int nv, const float* tile, bool accumulate) const {
    store_tile(tile, nr_, mv, nv, c_ + m0 * row_stride_, row_stride_, s_.col_offsets.data() + first,
               s_.strip_contiguous[size_t(first / nr_)], accumulate);
  }

 private:
  int nr_;
  const ColOffset& col_offset_;
  float* c_;
  int64_t row_stride_;
  GemmScratch& s_;
};

// Columns [n0, n0 + nlen) of C over reduction steps [k0, k0 + klen) (k0 a multiple of kc; the range ends
// at a.k() or a multiple of kc), serially on the calling thread. accumulate: add to C; otherwise the first
// block stores, which also zeroes C where klen == 0.
//   pack_b(k0, kc, j0, nv, dst): dst [kc][nr] = B[k0 + p][j0 + j] at dst[p * nr + j], 0 for j >= nv.
//   out: a Store (above).
template <class PackB, class Store>
void packed_gemm_columns(const MicroKernel& uk, const GemmBlocking& blk, const PackedA& a, int64_t n0, int64_t nlen,
                         int64_t k0, int64_t klen, bool accumulate, const PackB& pack_b, Store& out, GemmScratch& s) {
  const int mr = uk.mr, nr = uk.nr;
  for (int64_t jc = n0; jc < n0 + nlen; jc += blk.nc) {
    const int64_t ncur = std::min(blk.nc, n0 + nlen - jc), nstrips = (ncur + nr - 1) / nr;
    out.begin_block(jc, ncur);
    if (klen == 0) {  // an empty reduction: C is zero (or unchanged when accumulating)
      if (accumulate) continue;
      std::fill(s.tile.data(), s.tile.data() + mr * nr, 0.0f);
      for (int64_t m0 = 0; m0 < a.m(); m0 += mr)
        for (int64_t js = 0; js < nstrips; ++js)
          out.store(m0, int(std::min<int64_t>(mr, a.m() - m0)), js * nr, int(std::min<int64_t>(nr, ncur - js * nr)),
                    s.tile.data(), false);
      continue;
    }
    for (int64_t pc = k0; pc < k0 + klen; pc += blk.kc) {
      const int64_t kcur = a.block_len(pc);
      for (int64_t js = 0; js < nstrips; ++js) {
        const int64_t first = js * nr;
        pack_b(pc, kcur, jc + first, std::min<int64_t>(nr, ncur - first), s.b_panel.data() + js * kcur * nr);
      }
      const bool acc = accumulate || pc > k0;
      for (int64_t st = 0; st < a.strips(); ++st) {
        const float* ap = a.strip(pc, st);
        const int64_t m0 = st * mr;
        const int mv = int(std::min<int64_t>(mr, a.m() - m0));
        for (int64_t js = 0; js < nstrips; ++js) {
          const float* bp = s.b_panel.data() + js * kcur * nr;
          const int nv = int(std::min<int64_t>(nr, ncur - js * nr));
          int64_t split = 0;
          if (float* c = out.direct(m0, mv, js * nr, nv, &split)) {
            uk.run(mv, kcur, ap, bp, c, out.ldc(), split, acc);
          } else {
            uk.run(mv, kcur, ap, bp, s.tile.data(), nr, nr / 2, false);
            out.store(m0, mv, js * nr, nv, s.tile.data(), acc);
          }
        }
      }
    }
  }
}

template <class Pack>
void PackedA::pack(const Pack& pack_strip, bool parallel) {
  const int64_t blocks = (k_ + kc_ - 1) / kc_;
#pragma omp parallel for schedule(static) collapse(2) if (parallel && m_ * k_ >= (int64_t(1) << 15))
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t s = 0; s < strips_; ++s) pack_strip(s * mr_, b * kc_, block_len(b * kc_), strip(b * kc_, s));
}

}  // namespace cudagan::cpu
