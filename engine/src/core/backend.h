// Engine-internal helpers shared by the ops: argument checks, the backend dispatch (core/dispatch.h),
// and the memory primitives each device provides.
#pragma once

#include <cstddef>

#include "cudagan/core/error.h"
#include "core/dispatch.h"
#include "cudagan/core/tensor.h"

namespace cudagan {

void check_defined(const char* op, const Tensor& t, const char* what);
// Same device and dtype, or an error naming both.
void check_compatible(const char* op, const Tensor& a, const Tensor& b);
void check_rank(const char* op, const Tensor& t, int64_t rank, const char* what);

// Memory on a device. CPU memory is 64-byte aligned; CUDA memory comes from the device's pool.
void* device_alloc(size_t bytes, Device device);
// Never throws: it runs in destructors; a GPU failure is kept and reported by the device's next call.
void device_free(void* ptr, size_t bytes, Device device) noexcept;
void device_copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
// The GPU side of the three (engine/src/runtime/cuda.cpp; absent without CUDA, where nothing calls them).
void* cuda_alloc(size_t bytes, Device device);
void cuda_free(void* ptr, size_t bytes, Device device) noexcept;
void cuda_copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);

// A view of rows [start, start + count) of dimension 0, sharing t's storage; outside autograd (no history,
// no gradient). For ops that split or assemble a batch in place (cat, the metrics' chunks).
Tensor batch_slice(const Tensor& t, int64_t start, int64_t count);

// Per-channel bias over [N, K, ...] (conv2d, conv_transpose2d, linear): y += bias, and its gradient.
void add_channel_bias(const Tensor& bias, const Tensor& y);
Tensor bias_gradient(const Tensor& dy);

}  // namespace cudagan
