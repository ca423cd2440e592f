// What every CUDA launcher receives: the stream to launch on, the cuBLAS handle bound to it, the
// math mode and a scratch arena. The engine owns one per device and passes it explicitly; kernels
// keep no state of their own. This header needs no CUDA headers, so engine code that never touches
// the GPU can still name it.
#pragma once

#include <cstddef>

struct CUstream_st;
struct cublasContext;

namespace cudagan::cuda {

// The last kernel a context launched, so that an error inside a kernel, which surfaces only at a later
// synchronising call, can name its likely culprit. Written by CUDA_CHECK_LAUNCH (kernels/cuda/check.h); a
// device's context is used from one thread at a time, as its stream is.
struct LaunchRecord {
  const char* kernel = nullptr;  // a string literal
  const char* file = nullptr;
  int line = 0;
  unsigned long long count = 0;  // launches recorded so far
};

struct KernelContext {
  CUstream_st* stream = nullptr;     // cudaStream_t
  cublasContext* cublas = nullptr;   // cublasHandle_t, already bound to `stream`
  bool allow_tf32 = false;           // TF32 tensor-op GEMMs; off means exact fp32
  void* workspace = nullptr;         // device scratch (im2col columns, Adam segment tables)
  size_t workspace_bytes = 0;
  LaunchRecord* last_launch = nullptr;  // optional: where CUDA_CHECK_LAUNCH records each launch
};

}  // namespace cudagan::cuda
