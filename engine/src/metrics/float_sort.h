// radix_sort: v[n] floats -> ascending, in place; scratch grows to 2n uint32. The sort behind the sliced
// Wasserstein distance (metrics/swd.cpp), which sorts 2 x 512 projections of up to 10^6 values per level:
// an LSD radix sort on order-preserving bit patterns, 4 passes of 8 bits (all four histograms counted in one
// read, a pass skipped when every value has the same digit there), about 5-10x std::sort at those sizes.
// NaN has no place in the order; the caller never passes one. -0.0 sorts just before +0.0.
#pragma once

#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

namespace cudagan::metrics {

// The float's bits mapped so that unsigned order is float order: negatives flipped entirely (larger
// magnitude, smaller key), positives with the sign bit set (above every negative).
inline uint32_t float_key(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
inline float key_float(uint32_t k) {
  const uint32_t u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline void radix_sort(float* v, int64_t n, std::vector<uint32_t>& scratch) {
  if (n < 2) return;
  scratch.resize(size_t(2 * n));
  uint32_t* src = scratch.data();
  uint32_t* dst = src + n;
  std::vector<int64_t> count(4 * 256, 0);
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t k = float_key(v[i]);
    src[i] = k;
    for (int p = 0; p < 4; ++p) ++count[size_t(p * 256 + ((k >> (8 * p)) & 255u))];
  }
  for (int p = 0; p < 4; ++p) {
    int64_t* c = count.data() + p * 256;
    if (c[(src[0] >> (8 * p)) & 255u] == n) continue;  // one digit for all: this pass would not move anything
    int64_t at = 0;
    for (int d = 0; d < 256; ++d) at += std::exchange(c[d], at);  // counts -> first positions
    for (int64_t i = 0; i < n; ++i) dst[c[(src[i] >> (8 * p)) & 255u]++] = src[i];
    std::swap(src, dst);
  }
  for (int64_t i = 0; i < n; ++i) v[i] = key_float(src[i]);
}

}  // namespace cudagan::metrics
