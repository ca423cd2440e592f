// Random fills on the GPU with cuRAND's device API, counter-based Philox4x32-10 (no generator state
// anywhere: (seed, offset) determine the output). out: [n].
//   fill_normal:   out[i] = mean + stddev * N(0, 1)                (curand_normal4: Box-Muller)
//   fill_uniform:  out[i] = lo + (hi - lo) * U[0, 1)               (1 - curand_uniform4, which is (0, 1])
// Element i comes from Philox subsequence q = i / 4, value i % 4 of the 4 drawn after skipping `offset`:
// the mapping does not involve the thread or grid, so results are the same for any launch configuration and
// a prefix of a longer fill equals the shorter fill. Each grid-stride iteration initializes its own Philox
// state (curand_init with a subsequence is O(1) for Philox: it only sets the counter).
#include <curand_kernel.h>

#include <stdexcept>

#include "cudagan/core/error.h"
#include <string>

#include "cuda/common.cuh"
#include "random.h"

namespace cudagan::cuda {
namespace {

constexpr int kRandomBlock = 256;
constexpr int kValuesPerDraw = 4;  // curand_normal4 / curand_uniform4

}  // namespace

template <bool kNormal>
static __global__ void fill_random_kernel(float* out, int64_t n, uint64_t seed, uint64_t offset, float a,
                                          float b) {
  const int64_t groups = (n + kValuesPerDraw - 1) / kValuesPerDraw;
  for (int64_t q = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; q < groups;
       q += int64_t(gridDim.x) * blockDim.x) {
    curandStatePhilox4_32_10_t state;
    curand_init(seed, static_cast<unsigned long long>(q), offset, &state);
    float v[kValuesPerDraw];
    if constexpr (kNormal) {
      const float4 r = curand_normal4(&state);
      v[0] = fmaf(b, r.x, a), v[1] = fmaf(b, r.y, a), v[2] = fmaf(b, r.z, a), v[3] = fmaf(b, r.w, a);
    } else {
      // a = lo, b = hi - lo. u in (0, 1] -> 1 - u in [0, 1); rounding can still land lo + b (1 - u) on hi
      // itself for a huge range, so clamp to keep the interval half-open.
      const float4 r = curand_uniform4(&state);
      const float hi = a + b;
      const float u[kValuesPerDraw] = {1.0f - r.x, 1.0f - r.y, 1.0f - r.z, 1.0f - r.w};
      for (int k = 0; k < kValuesPerDraw; ++k) {
        const float x = fmaf(b, u[k], a);
        v[k] = b > 0.0f && x >= hi ? nextafterf(hi, a) : x;
      }
    }
    const int64_t base = q * kValuesPerDraw;
    const int64_t count = n - base < kValuesPerDraw ? n - base : kValuesPerDraw;
    for (int k = 0; k < count; ++k) out[base + k] = v[k];
  }
}

void fill_normal(const KernelContext& ctx, float* out, int64_t n, uint64_t seed, uint64_t offset, float mean,
                 float stddev) {
  if (n <= 0) return;
  fill_random_kernel<true>
      <<<grid_blocks(ceil_div(n, kValuesPerDraw), kRandomBlock), kRandomBlock, 0, ctx.stream>>>(
          out, n, seed, offset, mean, stddev);
  CUDA_CHECK_LAUNCH(ctx, "fill_random_kernel");
}

void fill_uniform(const KernelContext& ctx, float* out, int64_t n, uint64_t seed, uint64_t offset, float lo,
                  float hi) {
  if (!(lo <= hi))
    throw InvalidArgument("cuda::fill_uniform: empty interval [" + std::to_string(lo) + ", " +
                                std::to_string(hi) + ")");
  if (n <= 0) return;
  fill_random_kernel<false>
      <<<grid_blocks(ceil_div(n, kValuesPerDraw), kRandomBlock), kRandomBlock, 0, ctx.stream>>>(
          out, n, seed, offset, lo, hi - lo);
  CUDA_CHECK_LAUNCH(ctx, "fill_random_kernel");
}

}  // namespace cudagan::cuda
