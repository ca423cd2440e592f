// Engine-internal helpers shared by the ops: argument checks, dtype dispatch to the CPU kernels,
// and the memory primitives each device provides.
#pragma once

#include <cstddef>

#include "cudagan/core/error.h"
#include "cudagan/core/tensor.h"

namespace cudagan {
namespace cuda {
struct KernelContext;
}

// Runs f(T{}) with T = float or double, the tensor element type (CPU kernels are templates).
template <class F> void dispatch_float(DType dtype, F&& f) {
  if (dtype == DType::float32)
    f(float{});
  else
    f(double{});
}

void check_defined(const char* op, const Tensor& t, const char* what);
// Same device and dtype, or an error naming both.
void check_compatible(const char* op, const Tensor& a, const Tensor& b);
void check_rank(const char* op, const Tensor& t, int64_t rank, const char* what);

// Memory on a device. CPU memory is 64-byte aligned; CUDA memory comes from the device's pool.
void* device_alloc(size_t bytes, Device device);
// Never throws: it runs in destructors; a GPU failure is kept and reported by the device's next call.
void device_free(void* ptr, size_t bytes, Device device) noexcept;
void device_copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
[[noreturn]] void throw_no_cuda();

// Per-channel bias over [N, K, ...] (conv2d, conv_transpose2d, linear): y += bias, and its gradient.
void add_channel_bias(const Tensor& bias, const Tensor& y);
Tensor bias_gradient(const Tensor& dy);

#if CUDAGAN_HAVE_CUDA
// The kernel context (stream, cuBLAS handle, workspace) of a CUDA device; see engine/src/cuda/.
const cuda::KernelContext& cuda_context(Device device);
#endif

}  // namespace cudagan
