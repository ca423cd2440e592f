// Random fills on the device (kernels/cuda/random.cu): cuRAND's counter-based Philox4x32-10, so there
// is no generator state anywhere; (seed, offset) fully determine the output.
//
//   fill_normal:   out[i] ~ N(mean, stddev^2)
//   fill_uniform:  out[i] ~ U[lo, hi)
//
// Element i takes the values of Philox subsequence i / 4 starting `offset` values in, 4 elements per
// subsequence, so the output does not depend on the launch configuration and a prefix of a long fill
// equals the short fill. One call consumes 4 values of each subsequence: a caller that advances `offset`
// by 4 per call never reuses a number (PyTorch's philox offset convention).
#pragma once

#include <cstdint>

#include "cudagan/core/error.h"  // InvalidArgument, which the kernels throw

namespace cudagan::cuda {
struct KernelContext;
void fill_normal(const KernelContext& ctx, float* out, int64_t n, uint64_t seed, uint64_t offset, float mean,
                 float stddev);
void fill_uniform(const KernelContext& ctx, float* out, int64_t n, uint64_t seed, uint64_t offset, float lo,
                  float hi);
}  // namespace cudagan::cuda
