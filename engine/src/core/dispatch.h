// The one place where an op chooses its backend by device. An op hands over two functions:
//
//   on_device(y,
//       [&](auto zero) { using T = decltype(zero); cpu::op<T>(x.data<T>(), y.data<T>(), n); },
//       [&](const cuda::KernelContext& ctx) { cuda::op(ctx, x.data<float>(), y.data<float>(), n); });
//
// The CPU function is called with a zero of the element type (float or double: the CPU kernels are
// templates); the CUDA one with the device's KernelContext (stream, cuBLAS handle, workspace), after that
// device was made current, and only for float32 (the only dtype a GPU tensor has). In a build without CUDA
// the second function is never instantiated, so it needs no CUDA library, and a GPU tensor gets the one
// error of throw_no_cuda(), from here.
#pragma once

#include "cuda_context.h"  // cuda::KernelContext; needs no CUDA header
#include "cudagan/core/tensor.h"

namespace cudagan {

#if CUDAGAN_HAVE_CUDA
inline constexpr bool kHaveCuda = true;
#else
inline constexpr bool kHaveCuda = false;
#endif

[[noreturn]] void throw_no_cuda();
// The context of a CUDA device, made current (engine/src/runtime/cuda.cpp; absent without CUDA, where
// nothing calls it).
const cuda::KernelContext& cuda_context(Device device);

// Runs f(T{}) with T = float or double: the CPU kernels' element type for `dtype`.
template <class F> void dispatch_float(DType dtype, F&& f) {
  if (dtype == DType::float32)
    f(float{});
  else
    f(double{});
}

// Runs `cpu` or `cuda` by `device` (see the top of this file).
template <class CpuFn, class CudaFn> void on_device(Device device, DType dtype, CpuFn&& cpu, CudaFn&& cuda) {
  if (device.is_cpu()) return dispatch_float(dtype, cpu);
  if constexpr (kHaveCuda)
    cuda(cuda_context(device));
  else
    throw_no_cuda();
}

// Only the CUDA side, for work that exists only on a GPU device (e.g. one launch for many tensors).
template <class CudaFn> void on_cuda(Device device, CudaFn&& cuda) {
  if constexpr (kHaveCuda)
    cuda(cuda_context(device));
  else
    throw_no_cuda();
}

// The same as on_device, by the device and dtype of `like` (usually the op's output).
template <class CpuFn, class CudaFn> void on_device(const Tensor& like, CpuFn&& cpu, CudaFn&& cuda) {
  on_device(like.device(), like.dtype(), cpu, cuda);
}

}  // namespace cudagan
