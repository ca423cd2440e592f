// The GPU runtime controls of a build without CUDA: each says so.
#include "core/backend.h"
#include "cudagan/core/cuda.h"

#if !CUDAGAN_HAVE_CUDA
namespace cudagan {
CudaMemoryStats cuda_memory_stats(Device) { throw_no_cuda(); }
void cuda_reset_peak_memory(Device) { throw_no_cuda(); }
void cuda_set_allow_tf32(Device, bool) { throw_no_cuda(); }
bool cuda_allow_tf32(Device) { throw_no_cuda(); }
void cuda_synchronize(Device) { throw_no_cuda(); }
}  // namespace cudagan
#endif
