// The per-device GPU runtime: a stream, a cuBLAS handle bound to it, a stream-ordered memory pool,
// a workspace arena for kernel scratch, a record of the last kernel launched, and byte counters.
// Created on first use of a device and kept for the life of the process (never destroyed: tearing
// down CUDA objects during static destruction races the driver's own shutdown).
//
// Why a process-wide table rather than a context the caller passes around: the public API is
// PyTorch-like (`tensor.to(Device::cuda(0))`), so ops must find a device's stream from the tensor
// alone. The kernels themselves still receive everything explicitly in a KernelContext.
//
// Three rules keep errors honest:
// - every entry point that may launch or allocate makes its device current first (cudaSetDevice), so an
//   op on cuda:1 never lands on whatever device the thread used last;
// - freeing never throws (it runs in Storage's destructor, often during unwinding from another error): a
//   failure is kept and thrown by the device's next checked call;
// - a kernel fault found by a later call names the last kernel launched on that device.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/backend.h"
#include "cuda/check.h"
#include "cuda_context.h"
#include "cudagan/core/cuda.h"

namespace cudagan {

namespace {

constexpr size_t kWorkspaceBytes = size_t(256) << 20;  // im2col columns of a whole DCGAN-64 batch

// One CUDA event, destroyed when it goes out of scope (destroying a pending event is allowed: the driver
// releases it once it completes).
class ScopedEvent {
 public:
  ScopedEvent() { CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming)); }
  ~ScopedEvent() { (void)cudaEventDestroy(event_); }
  ScopedEvent(const ScopedEvent&) = delete;
  ScopedEvent& operator=(const ScopedEvent&) = delete;
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

class DeviceRuntime {
 public:
  explicit DeviceRuntime(int index) : index_(index) {
    CUDA_CHECK(cudaSetDevice(index));
    ctx_.last_launch = &last_launch_;
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

  // Makes this device current for the calling thread and reports an error kept from an earlier release.
  // Every checked entry point starts here.
  void activate() {
    int current = -1;
    if (cudaGetDevice(&current) != cudaSuccess || current != index_) CUDA_CHECK(cudaSetDevice(index_));
    std::string deferred;
    {
      std::lock_guard<std::mutex> lock(deferred_mutex_);
      deferred.swap(deferred_);
    }
    if (!deferred.empty()) throw cuda::CudaError(deferred);
  }

  const cuda::KernelContext& context() {
    activate();
    return ctx_;
  }
  void set_allow_tf32(bool allow) { ctx_.allow_tf32 = allow; }
  bool allow_tf32() const { return ctx_.allow_tf32; }
  int index() const { return index_; }
  const cuda::LaunchRecord* last_launch() const { return &last_launch_; }

  void* allocate(size_t bytes) {
    activate();
    if (bytes == 0) return nullptr;
    void* p = nullptr;
    const cudaError_t status = cudaMallocAsync(&p, bytes, stream_);
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();  // clear the sticky-free error state of the runtime API
      throw Error(detail::concat("CUDA out of memory on cuda:", index_, " allocating ", bytes >> 20, " MiB (",
                                 bytes, " bytes) with ", current_.load() >> 20,
                                 " MiB in use by cudagan: use a smaller batch size or image size"));
    }
    CUDA_CHECK_AFTER(&last_launch_, status);
    const size_t now = current_ += bytes;
    size_t peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
    }
    return p;
  }

  // Never throws (see the top): a failure is kept for the next checked call, and one kept earlier and not
  // yet reported goes to stderr so that neither is lost.
  void release(void* p, size_t bytes) noexcept {
    if (!p) return;
    current_ -= bytes;
    int current = -1;
    if (cudaGetDevice(&current) != cudaSuccess || current != index_) (void)cudaSetDevice(index_);
    const cudaError_t status = cudaFreeAsync(p, stream_);
    if (status == cudaSuccess) return;
    (void)cudaGetLastError();
    try {
      std::string what = "CUDA error " + cuda::detail::cuda_status_text(status) + " in cudaFreeAsync on cuda:" +
                         std::to_string(index_) + " (reported at the next call)";
      if (cuda::detail::is_kernel_fault(status)) what += cuda::detail::fault_culprit(&last_launch_);
      std::lock_guard<std::mutex> lock(deferred_mutex_);
      if (!deferred_.empty()) std::fprintf(stderr, "cudagan: %s\n", deferred_.c_str());
      deferred_ = std::move(what);
    } catch (...) {  // no memory even for the message: say what we can
      std::fputs("cudagan: freeing GPU memory failed\n", stderr);
    }
  }

  // Copies in stream order; a copy to the host waits for it, so the caller can read the data.
  void copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
    activate();
    CUDA_CHECK_AFTER(&last_launch_, cudaMemcpyAsync(dst, src, bytes, kind, stream_));
    if (kind == cudaMemcpyDeviceToHost) CUDA_CHECK_AFTER(&last_launch_, cudaStreamSynchronize(stream_));
  }

  void synchronize() {
    activate();
    CUDA_CHECK_AFTER(&last_launch_, cudaStreamSynchronize(stream_));
  }
  CudaMemoryStats stats() const { return {current_.load(), peak_.load()}; }
  void reset_peak() { peak_ = current_.load(); }
  cudaStream_t stream() const { return stream_; }

 private:
  int index_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  cudaMemPool_t pool_ = nullptr;
  cuda::KernelContext ctx_;
  cuda::LaunchRecord last_launch_;
  std::atomic<size_t> current_{0}, peak_{0};
  std::mutex deferred_mutex_;
  std::string deferred_;  // a release's error, not yet reported
};

// dst (on dst_rt's device) := src (on src_rt's), ordered after the work queued on both devices and before
// the work queued on either afterwards, without blocking the host: the source stream waits for the
// destination's queue, copies, and the destination stream waits for the copy.
void copy_between_devices(DeviceRuntime& dst_rt, void* dst, DeviceRuntime& src_rt, const void* src, size_t bytes) {
  dst_rt.activate();
  ScopedEvent dst_ready;
  CUDA_CHECK_AFTER(dst_rt.last_launch(), cudaEventRecord(dst_ready.get(), dst_rt.stream()));
  src_rt.activate();
  ScopedEvent copied;
  CUDA_CHECK_AFTER(src_rt.last_launch(), cudaStreamWaitEvent(src_rt.stream(), dst_ready.get(), 0));
  CUDA_CHECK_AFTER(src_rt.last_launch(),
                   cudaMemcpyPeerAsync(dst, dst_rt.index(), src, src_rt.index(), bytes, src_rt.stream()));
  CUDA_CHECK_AFTER(src_rt.last_launch(), cudaEventRecord(copied.get(), src_rt.stream()));
  dst_rt.activate();
  CUDA_CHECK_AFTER(dst_rt.last_launch(), cudaStreamWaitEvent(dst_rt.stream(), copied.get(), 0));
}

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
void cuda_free(void* ptr, size_t bytes, Device device) noexcept {
  if (!ptr) return;
  try {
    runtime(device).release(ptr, bytes);
  } catch (const std::exception& e) {  // the device table itself failed: nothing to release into
    std::fprintf(stderr, "cudagan: freeing GPU memory on %s failed: %s\n", device.str().c_str(), e.what());
  }
}

void cuda_copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (dst_device.is_cuda() && src_device.is_cuda()) {
    if (dst_device == src_device) {
      runtime(dst_device).copy(dst, src, bytes, cudaMemcpyDeviceToDevice);
    } else {
      copy_between_devices(runtime(dst_device), dst, runtime(src_device), src, bytes);
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
bool cuda_allow_tf32(Device device) { return runtime(device).allow_tf32(); }
void cuda_synchronize(Device device) { runtime(device).synchronize(); }

}  // namespace cudagan
