// Allocation and copies for each device. CUDA memory goes through the device's stream-ordered pool
// (engine/src/runtime/cuda.cpp), host memory through the kernels' host pool (kernels/cpu/host_memory.h), so
// a steady-state training step neither calls cudaMalloc nor maps fresh pages.
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/backend.h"
#include "cpu/host_memory.h"

namespace cudagan {

void* device_alloc(size_t bytes, Device device) {
  if (device.is_cpu()) {
    if (bytes == 0) return nullptr;
    void* p = cpu::host_alloc(bytes);
    CUDAGAN_CHECK(p, "out of host memory allocating ", bytes, " bytes: use a smaller batch or image size");
    return p;
  }
  if constexpr (kHaveCuda) return cuda_alloc(bytes, device);
  throw_no_cuda();
}

void device_free(void* ptr, size_t bytes, Device device) noexcept {
  if (device.is_cpu()) {
    cpu::host_free(ptr, bytes);
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
