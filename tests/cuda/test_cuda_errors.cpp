// Errors on the GPU: the checking macros throw CudaError (a cudagan::Error) naming the call; errors must not be
// lost or turned into a crash: a failed release of device memory (which runs in Storage's destructor, so it
// must not throw) is reported by the device's next call, and a fault inside a kernel is reported naming the
// kernel that was launched last.
#include <catch2/catch.hpp>

#include <cstdint>

#include "core/backend.h"
#include "cuda/check.h"
#include "cuda_context.h"
#include "cudagan/core/cuda.h"
#include "cudagan/cudagan.h"
#include "elementwise.h"

using namespace cudagan;
using Catch::Matchers::Contains;

namespace {
const Device kGpu = Device::cuda(0);
}

TEST_CASE("cuda runtime: a failed release does not throw and is reported by the next call", "[cuda][errors]") {
  const Tensor before = Tensor::ones({100}, DType::float32, kGpu);
  int host_value = 0;
  // A host address is no pool allocation: cudaFreeAsync rejects it (cudaErrorInvalidValue, not sticky).
  CHECK_NOTHROW(device_free(&host_value, 0, kGpu));
  REQUIRE_THROWS_WITH(cuda_synchronize(kGpu), Contains("cudaFreeAsync") && Contains("cuda:0"));
  // Reported once; the device goes on working.
  CHECK_NOTHROW(cuda_synchronize(kGpu));
  CHECK(add(before, before).to_vector() == std::vector<double>(100, 2.0));
}

// Hidden ([.]): the fault is sticky and ends the process's use of the GPU, so CTest runs it in a process of
// its own (tests/CMakeLists.txt), and compute-sanitizer's run over the whole suite leaves it out.
TEST_CASE("cuda runtime: a fault inside a kernel names the kernel, and later frees do not terminate",
          "[.][cuda][fault]") {
  Tensor survivor = Tensor::ones({1000}, DType::float32, kGpu);
  {
    const Tensor doomed = Tensor::ones({1000}, DType::float32, kGpu);
    // A fill through an address that no allocation owns faults inside the kernel, after the launch returned.
    cuda::fill(cuda_context(kGpu), reinterpret_cast<float*>(uintptr_t(0x100)), 1.0f, int64_t(1) << 20);
  }  // `doomed` is freed with the fault pending or already raised: that must neither throw nor terminate
  REQUIRE_THROWS_WITH(cuda_synchronize(kGpu), Contains("fill_kernel") && Contains("CUDA_LAUNCH_BLOCKING=1"));
  REQUIRE_THROWS(cuda_synchronize(kGpu));  // sticky: the device stays unusable
  REQUIRE_THROWS(Tensor::ones({10}, DType::float32, kGpu).to_vector());
  CHECK_NOTHROW(survivor = Tensor());  // freeing after the fault: recorded, not thrown
}

TEST_CASE("CUDA_CHECK and CUBLAS_CHECK throw CudaError naming the call", "[cuda][check]") {
  REQUIRE_THROWS_AS(CUDA_CHECK(cudaSetDevice(-1)), cuda::CudaError);
  REQUIRE_THROWS_AS(CUDA_CHECK(cudaSetDevice(-1)), cudagan::Error);  // one hierarchy: the root catches it
  REQUIRE_THROWS_WITH(CUDA_CHECK(cudaSetDevice(-1)),
                      Catch::Contains("cudaSetDevice(-1)") && Catch::Contains("cudaErrorInvalidDevice"));
  // The failure is not left behind as the runtime's "last error" for the next launch check to report.
  REQUIRE(cudaGetLastError() == cudaSuccess);
  REQUIRE_THROWS_WITH(CUBLAS_CHECK(CUBLAS_STATUS_INVALID_VALUE),
                      Catch::Contains("CUBLAS_STATUS_INVALID_VALUE"));
  REQUIRE_THROWS_WITH(CURAND_CHECK(CURAND_STATUS_LAUNCH_FAILURE),
                      Catch::Contains("CURAND_STATUS_LAUNCH_FAILURE"));
  REQUIRE_NOTHROW(CUDA_CHECK(cudaSuccess));
}
