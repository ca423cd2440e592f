// Test-only helpers for the CUDA backend tests: a move-only RAII device buffer, a KernelContext with its own
// stream, cuBLAS handle and workspace, and a comparison whose tolerance scales with each element's sum of
// absolute terms (for GEMM-based results, where that, not the result, bounds the rounding error).
// Tests may call cudaMalloc directly; the library never does (DESIGN.md, memory).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cuda/check.h"
#include "cuda_context.h"

namespace cudagan::test {

// n elements of T in device memory. upload / download synchronize the whole device first, so they see (and
// are seen by) every kernel launched before them on any stream.
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t n) : n_(n) {
    if (n_ > 0) CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&ptr_), n_ * sizeof(T)));
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);  // no throw from a destructor; a failure here has already been reported
  }
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : ptr_(std::exchange(other.ptr_, nullptr)), n_(std::exchange(other.n_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    std::swap(ptr_, other.ptr_);
    std::swap(n_, other.n_);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return ptr_; }
  size_t size() const { return n_; }

  void upload(const std::vector<T>& host) {
    REQUIRE(host.size() == n_);
    if (n_ == 0) return;
    CUDA_CHECK(cudaDeviceSynchronize());
    CUDA_CHECK(cudaMemcpy(ptr_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaDeviceSynchronize());
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    CUDA_CHECK(cudaDeviceSynchronize());
    if (n_ > 0) CUDA_CHECK(cudaMemcpy(host.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }
  // Every byte set to `byte`: 0xFF makes every float a NaN, to prove that an output is overwritten.
  void fill_bytes(int byte) {
    if (n_ == 0) return;
    CUDA_CHECK(cudaDeviceSynchronize());
    CUDA_CHECK(cudaMemset(ptr_, byte, n_ * sizeof(T)));
    CUDA_CHECK(cudaDeviceSynchronize());
  }

 private:
  T* ptr_ = nullptr;
  size_t n_ = 0;
};

// A kernel context as the engine builds one: a stream, a cuBLAS handle bound to it, a workspace.
class TestContext {
 public:
  explicit TestContext(size_t workspace_bytes = size_t(64) << 20, bool allow_tf32 = false)
      : workspace_(workspace_bytes) {
    // A blocking stream: it also orders against the legacy default stream of cudaMemcpy / cudaMemset.
    CUDA_CHECK(cudaStreamCreate(&stream_));
    CUBLAS_CHECK(cublasCreate(&cublas_));
    CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
    ctx_.stream = stream_;
    ctx_.cublas = cublas_;
    ctx_.allow_tf32 = allow_tf32;
    ctx_.workspace = workspace_.get();
    ctx_.workspace_bytes = workspace_bytes;
  }
  ~TestContext() {
    if (cublas_) cublasDestroy(cublas_);
    if (stream_) cudaStreamDestroy(stream_);
  }
  TestContext(const TestContext&) = delete;
  TestContext& operator=(const TestContext&) = delete;

  const cuda::KernelContext& ctx() const { return ctx_; }
  void sync() const { CUDA_CHECK(cudaStreamSynchronize(stream_)); }
  // Every workspace byte := 0xFF (NaN floats): a kernel that reads scratch it did not write then shows it.
  void poison_workspace() { workspace_.fill_bytes(0xFF); }

 private:
  DeviceBuffer<unsigned char> workspace_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  cuda::KernelContext ctx_;
};

// Passes when |actual_i - expected_i| <= rel * scale_i for every i (scale_i: the sum of |terms| that formed
// expected_i, e.g. |A| |B| for a GEMM), else fails once naming the worst element.
template <class A, class E, class S>
void require_close_scaled(const std::vector<A>& actual, const std::vector<E>& expected,
                          const std::vector<S>& scale, double rel, const std::string& what) {
  REQUIRE(actual.size() == expected.size());
  REQUIRE(scale.size() == expected.size());
  int64_t worst = -1, bad = 0;
  double worst_ratio = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double diff = std::fabs(double(actual[i]) - double(expected[i]));
    const double tol = rel * std::fabs(double(scale[i]));
    if (!(diff <= tol)) {
      ++bad;
      const double ratio = tol > 0 ? diff / tol : INFINITY;
      if (worst < 0 || !(ratio <= worst_ratio)) worst = int64_t(i), worst_ratio = ratio;
    }
  }
  if (bad == 0) {
    SUCCEED(what << ": " << actual.size() << " elements within " << rel << " x their scale");
    return;
  }
  std::ostringstream msg;
  msg.precision(10);
  msg << what << ": " << bad << " of " << actual.size() << " elements differ; worst at index " << worst
      << ": actual " << double(actual[size_t(worst)]) << ", expected " << double(expected[size_t(worst)])
      << ", tolerance " << rel << " x scale " << double(scale[size_t(worst)]);
  FAIL(msg.str());
}

template <class T>
std::vector<double> to_double(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

template <class T>
std::vector<double> abs_double(const std::vector<T>& v) {
  std::vector<double> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = std::fabs(double(v[i]));
  return out;
}

// Relative tolerance (against the sum of |terms|) for an fp32 dot product of `length` terms in any summation
// order: twice the worst-case bound length * 2^-24, and never below 1e-5.
inline double dot_tolerance(int64_t length) { return std::max(1e-5, double(length) * 1.2e-7); }

}  // namespace cudagan::test
