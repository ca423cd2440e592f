// Allocation and copies for each device. CUDA memory goes through the device's stream-ordered pool
// (engine/src/runtime/cuda.cpp), so no cudaMalloc happens inside a steady-state training step.
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/backend.h"

namespace cudagan {

namespace {
constexpr size_t kCpuAlignment = 64;  // a cache line, and the widest vector load (AVX-512)
}

void* device_alloc(size_t bytes, Device device) {
  if (device.is_cpu()) {
    if (bytes == 0) return nullptr;
    const size_t rounded = (bytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
    void* p = std::aligned_alloc(kCpuAlignment, rounded);
    CUDAGAN_CHECK(p, "out of host memory allocating ", bytes, " bytes: use a smaller batch or image size");
    return p;
  }
  if constexpr (kHaveCuda) return cuda_alloc(bytes, device);
  throw_no_cuda();
}

void device_free(void* ptr, size_t bytes, Device device) noexcept {
  if (device.is_cpu()) {
    std::free(ptr);
    return;
  }
  if constexpr (kHaveCuda) cuda_free(ptr, bytes, device);  // without CUDA no GPU memory exists to free
}

void device_copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (bytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, bytes);
    return;
  }
  if constexpr (!kHaveCuda) throw_no_cuda();
  cuda_copy(dst, dst_device, src, src_device, bytes);
}

}  // namespace cudagan
