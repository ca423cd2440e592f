// Error checking for every CUDA runtime, cuBLAS and cuRAND call, and launch-size helpers.
//
//   CUDA_CHECK(cudaMemcpyAsync(...));   CUBLAS_CHECK(cublasSgemm(...));   CURAND_CHECK(...);
//   kernel<<<grid, block, 0, ctx.stream>>>(...); CUDA_CHECK_LAUNCH(ctx, "kernel");
//
// A failure throws cudagan::cuda::CudaError naming the library, the error, the call as written, and the
// file and line, so a test can REQUIRE_THROWS and a user sees which call failed instead of a bare status
// code. CUDA_CHECK_LAUNCH catches bad launch configurations right away and records the launch in the context's
// LaunchRecord; errors inside a kernel surface at the next synchronizing call, which is checked too, and the
// engine's runtime then names the last kernel recorded.
//
// Host-only header (g++ can compile it): the kernels' .cu files and the CUDA tests include it.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <curand.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda_context.h"
#include "cudagan/core/error.h"

namespace cudagan::cuda {

class CudaError : public Error {
 public:
  using Error::Error;
};

namespace detail {

[[noreturn]] inline void throw_cuda_error(const char* library, const std::string& what, const char* call,
                                          const char* file, int line, const std::string& more = {}) {
  throw CudaError(std::string(library) + " error " + what + " in " + call + " at " + file + ":" +
                  std::to_string(line) + more);
}

inline void record_launch(const KernelContext& ctx, const char* kernel, const char* file, int line) {
  if (LaunchRecord* r = ctx.last_launch) {
    r->kernel = kernel;
    r->file = file;
    r->line = line;
    ++r->count;
  }
}

inline const char* curand_status_name(curandStatus_t s) {
  switch (s) {
    case CURAND_STATUS_SUCCESS:
      return "CURAND_STATUS_SUCCESS";
    case CURAND_STATUS_VERSION_MISMATCH:
      return "CURAND_STATUS_VERSION_MISMATCH";
    case CURAND_STATUS_NOT_INITIALIZED:
      return "CURAND_STATUS_NOT_INITIALIZED";
    case CURAND_STATUS_ALLOCATION_FAILED:
      return "CURAND_STATUS_ALLOCATION_FAILED";
    case CURAND_STATUS_TYPE_ERROR:
      return "CURAND_STATUS_TYPE_ERROR";
    case CURAND_STATUS_OUT_OF_RANGE:
      return "CURAND_STATUS_OUT_OF_RANGE";
    case CURAND_STATUS_LENGTH_NOT_MULTIPLE:
      return "CURAND_STATUS_LENGTH_NOT_MULTIPLE";
    case CURAND_STATUS_DOUBLE_PRECISION_REQUIRED:
      return "CURAND_STATUS_DOUBLE_PRECISION_REQUIRED";
    case CURAND_STATUS_LAUNCH_FAILURE:
      return "CURAND_STATUS_LAUNCH_FAILURE";
    case CURAND_STATUS_PREEXISTING_FAILURE:
      return "CURAND_STATUS_PREEXISTING_FAILURE";
    case CURAND_STATUS_INITIALIZATION_FAILED:
      return "CURAND_STATUS_INITIALIZATION_FAILED";
    case CURAND_STATUS_ARCH_MISMATCH:
      return "CURAND_STATUS_ARCH_MISMATCH";
    case CURAND_STATUS_INTERNAL_ERROR:
      return "CURAND_STATUS_INTERNAL_ERROR";
  }
  return "unknown curandStatus_t";
}

// Errors raised inside a kernel (a device fault) rather than by the call that reports them: they surface at a
// later launch or synchronising call, and are sticky (every later call on the context fails the same way).
inline bool is_kernel_fault(cudaError_t status) {
  switch (status) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorAssert:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorHardwareStackError:
    case cudaErrorLaunchTimeout:
      return true;
    default:
      return false;
  }
}

// For a kernel fault: which launch most likely caused it, from the context's record, and how to be sure.
inline std::string fault_culprit(const LaunchRecord* last) {
  std::string s = "; errors inside a kernel surface at a later call";
  if (last && last->kernel)
    s += ": the last kernel launched before it was " + std::string(last->kernel) + " (launch " +
         std::to_string(last->count) + ", " + last->file + ":" + std::to_string(last->line) + ")";
  return s + "; rerun with CUDA_LAUNCH_BLOCKING=1 to stop at the launch that faults";
}

inline std::string cuda_status_text(cudaError_t status) {
  return std::string(cudaGetErrorName(status)) + " (" + cudaGetErrorString(status) + ")";
}

// `last`, when given, is the launch record of the context the call belongs to: a kernel fault then names it.
inline void check_cuda(cudaError_t status, const char* call, const char* file, int line,
                       const LaunchRecord* last = nullptr) {
  if (status != cudaSuccess) {
    // The runtime also records the error as its "last error"; clear it so the next CUDA_CHECK_LAUNCH does not
    // report this same failure again against an innocent kernel (a sticky error, a device fault, persists
    // anyway and makes every later call fail).
    (void)cudaGetLastError();
    const std::string culprit = is_kernel_fault(status) && last ? fault_culprit(last) : std::string();
    throw_cuda_error("CUDA", cuda_status_text(status), call, file, line, culprit);
  }
}

// After a launch: a bad configuration is this launch's error; a kernel fault is an earlier kernel's, so the
// message names the launch before this one instead (recorded only after the check, for that reason).
inline void check_launch(const KernelContext& ctx, const char* kernel, const char* file, int line) {
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess) {
    const std::string call = std::string("the launch of ") + kernel;
    const std::string culprit = is_kernel_fault(status) ? fault_culprit(ctx.last_launch) : std::string();
    throw_cuda_error("CUDA", cuda_status_text(status), call.c_str(), file, line, culprit);
  }
  record_launch(ctx, kernel, file, line);
}

inline void check_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw_cuda_error("cuBLAS",
                     std::string(cublasGetStatusName(status)) + " (" + cublasGetStatusString(status) + ")",
                     call, file, line);
}

inline void check_curand(curandStatus_t status, const char* call, const char* file, int line) {
  if (status != CURAND_STATUS_SUCCESS)
    throw_cuda_error("cuRAND", curand_status_name(status), call, file, line);
}

}  // namespace detail

// Integer ceiling of a / b for a >= 0, b > 0.
constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Grid-stride kernels never need more blocks than this: past it each thread simply takes more elements.
// A fixed cap (not one derived from the SM count) keeps the partition, and so every reduction's order of
// additions, identical on every GPU.
constexpr int64_t kMaxGridBlocks = int64_t(65535) * 4;

// Blocks for a grid-stride loop over n elements with `block` threads per block: enough for one element
// per thread, at least 1 (a zero-sized grid is a launch error), at most `max_blocks`.
inline unsigned int grid_blocks(int64_t n, int block, int64_t max_blocks = kMaxGridBlocks) {
  return unsigned(std::clamp<int64_t>(ceil_div(std::max<int64_t>(n, 1), block), 1, max_blocks));
}

}  // namespace cudagan::cuda

#define CUDA_CHECK(call) ::cudagan::cuda::detail::check_cuda((call), #call, __FILE__, __LINE__)
// The same for a call on a context whose launches are recorded in `record` (a const LaunchRecord*): a kernel
// fault it reports names the last kernel launched.
#define CUDA_CHECK_AFTER(record, call) ::cudagan::cuda::detail::check_cuda((call), #call, __FILE__, __LINE__, (record))
#define CUBLAS_CHECK(call) ::cudagan::cuda::detail::check_cublas((call), #call, __FILE__, __LINE__)
#define CURAND_CHECK(call) ::cudagan::cuda::detail::check_curand((call), #call, __FILE__, __LINE__)
// After every kernel launch: records it in ctx.last_launch and reports an invalid configuration (grid, block,
// shared memory) at once.
#define CUDA_CHECK_LAUNCH(ctx, kernel) ::cudagan::cuda::detail::check_launch((ctx), (kernel), __FILE__, __LINE__)
