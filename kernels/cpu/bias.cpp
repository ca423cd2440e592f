// Per-channel bias, CPU backend. y, dy: [outer, channels, inner] (conv: [N, C, H*W]; linear: [N, C, 1]);
// bias, dbias: [channels].
//   add_bias:      y[o, c, i] += bias[c]
//   bias_backward: dbias[c] = sum over o, i of dy[o, c, i]   (accumulated in double, then overwritten)
#include "bias.h"
#include "cpu/parallel.h"

namespace cudagan::cpu {
namespace {

// Channels one thread reduces together when rows are short: for a linear layer (inner == 1) each
// sample then contributes one contiguous run of this many values, so a thread streams memory instead
// of striding down a column. Rows of at least kLongRow values are contiguous enough on their own, and
// one channel per task gives more tasks to spread over the cores.
constexpr int64_t kChannelBlock = 64;
constexpr int64_t kLongRow = 64;

}  // namespace

template <class T>
void add_bias(const T* bias, T* y, int64_t outer, int64_t channels, int64_t inner) {
  const int64_t rows = outer * channels;
#pragma omp parallel for schedule(static) if (rows * inner >= kParallelMinElems)
  for (int64_t r = 0; r < rows; ++r) {
    const T b = bias[r % channels];
    T* yr = y + r * inner;
#pragma omp simd
    for (int64_t i = 0; i < inner; ++i) yr[i] += b;
  }
}

template <class T>
void bias_backward(const T* dy, T* dbias, int64_t outer, int64_t channels, int64_t inner) {
  const int64_t block = inner >= kLongRow ? 1 : kChannelBlock;
  const int64_t blocks = (channels + block - 1) / block;
  // Each channel is reduced by one thread in a fixed order: no atomics, and the result does not
  // depend on the thread count.
#pragma omp parallel for schedule(static) if (outer * channels * inner >= kParallelMinElems)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t c0 = blk * block;
    const int64_t c1 = c0 + block < channels ? c0 + block : channels;
    double acc[kChannelBlock] = {};
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t c = c0; c < c1; ++c) {
        const T* dyr = dy + (o * channels + c) * inner;
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < inner; ++i) s += double(dyr[i]);
        acc[c - c0] += s;
      }
    }
    for (int64_t c = c0; c < c1; ++c) dbias[c] = T(acc[c - c0]);
  }
}

template void add_bias<float>(const float*, float*, int64_t, int64_t, int64_t);
template void add_bias<double>(const double*, double*, int64_t, int64_t, int64_t);
template void bias_backward<float>(const float*, float*, int64_t, int64_t, int64_t);
template void bias_backward<double>(const double*, double*, int64_t, int64_t, int64_t);

}  // namespace cudagan::cpu
