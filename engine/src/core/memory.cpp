// Allocation and copies for each device. CUDA memory goes through the device's stream-ordered pool
// (engine/src/cuda/), so no cudaMalloc happens inside a steady-state training step.
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/backend.h"

namespace cudagan {

#if CUDAGAN_HAVE_CUDA
void* cuda_alloc(size_t bytes, Device device);
void cuda_free(void* ptr, size_t bytes, Device device) noexcept;
void cuda_copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
#endif

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
#if CUDAGAN_HAVE_CUDA
  return cuda_alloc(bytes, device);
#else
  throw_no_cuda();
#endif
}

void device_free(void* ptr, size_t bytes, Device device) noexcept {
  if (device.is_cpu()) {
    std::free(ptr);
    return;
  }
#if CUDAGAN_HAVE_CUDA
  cuda_free(ptr, bytes, device);
#else
  (void)ptr, (void)bytes;
#endif
}

void device_copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (bytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, bytes);
    return;
  }
#if CUDAGAN_HAVE_CUDA
  cuda_copy(dst, dst_device, src, src_device, bytes);
#else
  throw_no_cuda();
#endif
}

}  // namespace cudagan
