// Per-channel bias, reference (the oracle the tests compare against). y, dy: [outer, channels, inner]
// (conv: [N, C, H*W]; linear: [N, C, 1]); bias, dbias: [channels]. Naive loops, independent of
// kernels/cpu; the sums are accumulated in long double and rounded to T once, when stored.
//   add_bias:      y[o, c, i] += bias[c]
//   bias_backward: dbias[c] = sum over o, i of dy[o, c, i]   (overwritten)
#pragma once

#include <cstdint>

namespace cudagan::reference {

template <class T>
void add_bias(const T* bias, T* y, int64_t outer, int64_t channels, int64_t inner) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t i = 0; i < inner; ++i) y[(o * channels + c) * inner + i] += bias[c];
}

template <class T>
void bias_backward(const T* dy, T* dbias, int64_t outer, int64_t channels, int64_t inner) {
  for (int64_t c = 0; c < channels; ++c) {
    long double sum = 0;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) sum += static_cast<long double>(dy[(o * channels + c) * inner + i]);
    dbias[c] = T(sum);
  }
}

}  // namespace cudagan::reference
