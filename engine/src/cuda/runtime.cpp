// The per-device GPU runtime: a stream, a cuBLAS handle bound to it, a stream-ordered memory pool,
// a workspace arena for kernel scratch, and byte counters. Created on first use of a device and
// kept for the life of the process (never destroyed: tearing down CUDA objects during static
// destruction races the driver's own shutdown).
//
// Why a process-wide table rather than a context the caller passes around: the public API is
// PyTorch-like (`tensor.to(Device::cuda(0))`), so ops must find a device's stream from the tensor
// alone. The kernels themselves still receive everything explicitly in a KernelContext.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "backend.h"
#include "cuda/check.h"
#include "cuda_context.h"
#include "cudagan/cuda.h"

namespace cudagan {

namespace {

constexpr size_t kWorkspaceBytes = size_t(256) << 20;  // im2col columns of a whole DCGAN-64 batch

class DeviceRuntime {
 public:
  explicit DeviceRuntime(int index) : index_(index) {
    CUDA_CHECK(cudaSetDevice(index));
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasCreate(&cublas_));
    CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
    // Keep freed blocks in the pool instead of returning them to the driver at each synchronisation:
    // after the first training step, every allocation is served from the pool.
    CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool_, index));
    uint64_t keep_all = UINT64_MAX;
    CUDA_CHECK(cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrReleaseThreshold, &keep_all));
    ctx_.stream = stream_;
    ctx_.cublas = cublas_;
    ctx_.workspace = allocate(kWorkspaceBytes);
    ctx_.workspace_bytes = kWorkspaceBytes;
  }

  const cuda::KernelContext& context() const { return ctx_; }
  void set_allow_tf32(bool allow) { ctx_.allow_tf32 = allow; }

  void* allocate(size_t bytes) {
    if (bytes == 0) return nullptr;
    void* p = nullptr;
    const cudaError_t status = cudaMallocAsync(&p, bytes, stream_);
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();  // clear the sticky-free error state of the runtime API
      throw Error(detail::concat("CUDA out of memory on cuda:", index_, " allocating ", bytes >> 20, " MiB (",
                                 bytes, " bytes) with ", current_.load() >> 20,
                                 " MiB in use by cudagan: use a smaller batch size or image size"));
    }
    CUDA_CHECK(status);
    const size_t now = current_ += bytes;
    size_t peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
    }
    return p;
  }

  void release(void* p, size_t bytes) {
    if (!p) return;
    CUDA_CHECK(cudaFreeAsync(p, stream_));
    current_ -= bytes;
  }

  // Copies in stream order; a copy to the host waits for it, so the caller can read the data.
  void copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, stream_));
    if (kind == cudaMemcpyDeviceToHost) CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  void synchronize() { CUDA_CHECK(cudaStreamSynchronize(stream_)); }
  CudaMemoryStats stats() const { return {current_.load(), peak_.load()}; }
  void reset_peak() { peak_ = current_.load(); }
  cudaStream_t stream() const { return stream_; }

 private:
  int index_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  cudaMemPool_t pool_ = nullptr;
  cuda::KernelContext ctx_;
  std::atomic<size_t> current_{0}, peak_{0};
};

int visible_devices() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return count;
}

DeviceRuntime& runtime(Device device) {
  static std::mutex mutex;
  static auto* runtimes = new std::vector<std::unique_ptr<DeviceRuntime>>();  // never destroyed; see top
  CUDAGAN_CHECK(device.is_cuda(), "internal error: GPU runtime asked for ", device.str());
  std::lock_guard<std::mutex> lock(mutex);
  if (runtimes->empty()) {
    const int count = visible_devices();
    CUDAGAN_CHECK(count > 0, "no CUDA GPU is visible (", device.str(),
                  " requested): run on a machine with an NVIDIA GPU and driver, or use the cpu device");
    runtimes->resize(size_t(count));
  }
  CUDAGAN_CHECK(device.index >= 0 && device.index < int(runtimes->size()), device.str(), " does not exist: ",
                runtimes->size(), " GPU(s) visible (cuda:0 .. cuda:", runtimes->size() - 1, ")");
  auto& slot = (*runtimes)[size_t(device.index)];
  if (!slot) slot = std::make_unique<DeviceRuntime>(device.index);
  return *slot;
}

}  // namespace

bool cuda_available() { return visible_devices() > 0; }
int cuda_device_count() { return visible_devices(); }

const cuda::KernelContext& cuda_context(Device device) { return runtime(device).context(); }

void* cuda_alloc(size_t bytes, Device device) { return runtime(device).allocate(bytes); }
void cuda_free(void* ptr, size_t bytes, Device device) { runtime(device).release(ptr, bytes); }

void cuda_copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (dst_device.is_cuda() && src_device.is_cuda()) {
    if (dst_device == src_device) {
      runtime(dst_device).copy(dst, src, bytes, cudaMemcpyDeviceToDevice);
    } else {  // between GPUs: order after both devices' queued work
      runtime(src_device).synchronize();
      runtime(dst_device).synchronize();
      CUDA_CHECK(cudaMemcpyPeer(dst, dst_device.index, src, src_device.index, bytes));
    }
  } else if (dst_device.is_cuda()) {
    runtime(dst_device).copy(dst, src, bytes, cudaMemcpyHostToDevice);
  } else {
    runtime(src_device).copy(dst, src, bytes, cudaMemcpyDeviceToHost);
  }
}

CudaMemoryStats cuda_memory_stats(Device device) { return runtime(device).stats(); }
void cuda_reset_peak_memory(Device device) { runtime(device).reset_peak(); }
void cuda_set_allow_tf32(Device device, bool allow) { runtime(device).set_allow_tf32(allow); }
bool cuda_allow_tf32(Device device) { return runtime(device).context().allow_tf32; }
void cuda_synchronize(Device device) { runtime(device).synchronize(); }

}  // namespace cudagan
