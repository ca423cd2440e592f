// The GPU runtime of a build without CUDA (compiled instead of runtime/cuda.cpp): no GPU is visible, and
// each control says that this build has none.
#include "core/backend.h"
#include "cudagan/core/cuda.h"

namespace cudagan {
bool cuda_available() { return false; }
int cuda_device_count() { return 0; }
CudaMemoryStats cuda_memory_stats(Device) { throw_no_cuda(); }
void cuda_reset_peak_memory(Device) { throw_no_cuda(); }
void cuda_set_allow_tf32(Device, bool) { throw_no_cuda(); }
bool cuda_allow_tf32(Device) { throw_no_cuda(); }
void cuda_synchronize(Device) { throw_no_cuda(); }
}  // namespace cudagan
