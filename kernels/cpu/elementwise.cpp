// Element-wise arithmetic and a full reduction, CPU backend. Every array is [n] contiguous; an output may be
// one of the inputs (in place), but no partial overlap.
//   add:   out = a + b          mul:  out = a * b          scale: out = alpha * x
//   axpy:  y += alpha * x       fill: out = value          sum:   out[0] = sum_i x_i (accumulated in double)
#include "elementwise.h"
#include "cpu/parallel.h"

namespace cudagan::cpu {
namespace {

// sum reduces over a partition that depends only on n (at most kMaxBlocks blocks of at least kMinBlock
// elements), one double partial per block, added in order: the result is bit-identical whatever the thread
// count and from run to run (an OpenMP `reduction` clause combines thread results in finish order), and the
// blocking also keeps the rounding error near (block + blocks) eps instead of n eps.
constexpr int64_t kMinBlock = 4096;
constexpr int64_t kMaxBlocks = 256;

}  // namespace

// `if (parallel : ...)` rather than a bare `if`: under OpenMP 5 a bare `if` on a combined construct would
// also switch off simd for small n.
template <class T>
void add(const T* a, const T* b, T* out, int64_t n) {
#pragma omp parallel for simd schedule(static) if (parallel : n >= kParallelMinElems)
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

template <class T>
void mul(const T* a, const T* b, T* out, int64_t n) {
#pragma omp parallel for simd schedule(static) if (parallel : n >= kParallelMinElems)
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}

template <class T>
void scale(const T* x, T alpha, T* out, int64_t n) {
#pragma omp parallel for simd schedule(static) if (parallel : n >= kParallelMinElems)
  for (int64_t i = 0; i < n; ++i) out[i] = alpha * x[i];
}

template <class T>
void axpy(T alpha, const T* x, T* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (parallel : n >= kParallelMinElems)
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

template <class T>
void fill(T* out, T value, int64_t n) {
#pragma omp parallel for simd schedule(static) if (parallel : n >= kParallelMinElems)
  for (int64_t i = 0; i < n; ++i) out[i] = value;
}

template <class T>
void sum(const T* x, int64_t n, T* out) {
  if (n <= 0) {
    out[0] = T(0);
    return;
  }
  int64_t block = (n + kMaxBlocks - 1) / kMaxBlocks;
  if (block < kMinBlock) block = kMinBlock;
  const int64_t blocks = (n + block - 1) / block;
  double partial[kMaxBlocks];
#pragma omp parallel for schedule(static) if (n >= kParallelMinElems)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * block, end = begin + block < n ? begin + block : n;
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = begin; i < end; ++i) s += double(x[i]);
    partial[b] = s;
  }
  double total = 0;
  for (int64_t b = 0; b < blocks; ++b) total += partial[b];
  out[0] = T(total);  // written last, so out may point into x
}

template void add<float>(const float*, const float*, float*, int64_t);
template void add<double>(const double*, const double*, double*, int64_t);
template void mul<float>(const float*, const float*, float*, int64_t);
template void mul<double>(const double*, const double*, double*, int64_t);
template void scale<float>(const float*, float, float*, int64_t);
template void scale<double>(const double*, double, double*, int64_t);
template void axpy<float>(float, const float*, float*, int64_t);
template void axpy<double>(double, const double*, double*, int64_t);
template void fill<float>(float*, float, int64_t);
template void fill<double>(double*, double, int64_t);
template void sum<float>(const float*, int64_t, float*);
template void sum<double>(const double*, int64_t, double*);

}  // namespace cudagan::cpu
