// GPU runtime controls: memory statistics, math mode and synchronisation, per CUDA device.
// In a build without CUDA, or on a machine without a GPU, each throws cudagan::Error (one line,
// saying so) except cuda_available()/cuda_device_count() in device.h, which answer false/0.
#pragma once

#include <cstddef>

#include "cudagan/core/device.h"

namespace cudagan {

// What the engine's allocator holds on one GPU (its pool may have reserved more from the driver).
struct CudaMemoryStats {
  size_t current_bytes = 0;  // held by live tensors and the workspace
  size_t peak_bytes = 0;     // the most held at once since start (or the last reset)
};

// `device` must be a CUDA device (Device::cuda(n)); a CPU device throws cudagan::Error too.
CudaMemoryStats cuda_memory_stats(Device device);
void cuda_reset_peak_memory(Device device);  // peak_bytes := current_bytes

// TF32 tensor-core GEMMs (10-bit mantissa inputs, fp32 accumulation): off by default, so results
// are exact fp32; turn on for speed where that precision is enough (PyTorch's cuDNN convolutions
// use TF32 by default).
void cuda_set_allow_tf32(Device device, bool allow);
bool cuda_allow_tf32(Device device);

// Waits until every kernel queued on the device has finished (timing, error checks).
void cuda_synchronize(Device device);

}  // namespace cudagan
