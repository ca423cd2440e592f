// The packed GEMM micro-kernels (kernels/cpu/microkernel.h) on every instruction set this CPU has: the full
// mr x nr tile against a double-precision sum, and the short-strip variant (the first `rows` rows) against the
// full tile's rows bit for bit, with the rows below it left untouched; storing and accumulating; the tile as
// one run of columns and split into two halves with a gap between them.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/isa.h"
#include "cpu/microkernel.h"
#include "cpu/packed_gemm.h"
#include "support/compare.h"

namespace {

namespace cpu = cudagan::cpu;
using cudagan::test::random_vector;

TEST_CASE("micro-kernels compute their tile, and the short-strip variant exactly its rows", "[gemm][microkernel]") {
  const cpu::Isa isa = GENERATE(from_range(cpu::supported_isas()));
  const int64_t kc = GENERATE(1, 7, 64, 257);
  const bool accumulate = GENERATE(false, true);
  const bool gap = GENERATE(false, true);
  const cpu::MicroKernel uk = cpu::microkernel(isa);
  REQUIRE(uk.rows_fn != nullptr);
  INFO(cpu::isa_name(isa) << ", kc " << kc << (accumulate ? ", accumulating" : ", storing")
                          << (gap ? ", halves 7 columns apart" : ", one run"));
  const int mr = uk.mr, nr = uk.nr, half = nr / 2;
  const int64_t ldc = nr + 12;                      // C's rows apart by more than a tile, as in a real matrix
  const int64_t split = gap ? half + 7 : half;      // where the second half of a row goes
  const auto column = [&](int j) { return j < half ? j : split + j - half; };  // tile column j's place in C
  // The panels are 64-byte aligned in the driver; std::vector<float> is not, so copy into aligned storage.
  cpu::AlignedFloats a(kc * mr), b(kc * nr);
  const std::vector<float> av = random_vector<float>(kc * mr, 11), bv = random_vector<float>(kc * nr, 12);
  std::copy(av.begin(), av.end(), a.data());
  std::copy(bv.begin(), bv.end(), b.data());
  const std::vector<float> c0 = random_vector<float>(mr * ldc, 13);

  std::vector<float> full = c0;
  uk.fn(kc, a.data(), b.data(), full.data(), ldc, split, accumulate);
  std::vector<char> written(size_t(ldc), 0);  // the columns of C a tile row covers
  for (int j = 0; j < nr; ++j) written[size_t(column(j))] = 1;
  for (int i = 0; i < mr; ++i) {
    for (int j = 0; j < nr; ++j) {
      double sum = 0.0;
      for (int64_t p = 0; p < kc; ++p) sum += double(av[size_t(p * mr + i)]) * bv[size_t(p * nr + j)];
      if (accumulate) sum += c0[size_t(i * ldc + column(j))];
      REQUIRE(std::abs(full[size_t(i * ldc + column(j))] - sum) <= 1e-5 * double(kc + 1));
    }
    for (int64_t j = 0; j < ldc; ++j)
      if (!written[size_t(j)]) REQUIRE(full[size_t(i * ldc + j)] == c0[size_t(i * ldc + j)]);
  }

  for (int rows = 1; rows <= mr; ++rows) {
    INFO("rows " << rows);
    std::vector<float> part = c0;
    uk.run(rows, kc, a.data(), b.data(), part.data(), ldc, split, accumulate);
    for (int i = 0; i < mr; ++i)
      for (int64_t j = 0; j < ldc; ++j) {
        const size_t e = size_t(i * ldc + j);
        // the same bits as the full tile in its rows and columns, C as it was everywhere else
        REQUIRE(part[e] == (i < rows && written[size_t(j)] ? full[e] : c0[e]));
      }
  }
}

}  // namespace
