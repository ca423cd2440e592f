// What every CUDA launcher receives: the stream to launch on, the cuBLAS handle bound to it, the
// math mode and a scratch arena. The engine owns one per device and passes it explicitly; kernels
// keep no state of their own. This header needs no CUDA headers, so engine code that never touches
// the GPU can still name it.
#pragma once

#include <cstddef>

struct CUstream_st;
struct cublasContext;

namespace cudagan::cuda {

struct KernelContext {
  CUstream_st* stream = nullptr;     // cudaStream_t
  cublasContext* cublas = nullptr;   // cublasHandle_t, already bound to `stream`
  bool allow_tf32 = false;           // TF32 tensor-op GEMMs; off means exact fp32
  void* workspace = nullptr;         // device scratch (im2col columns, Adam segment tables)
  size_t workspace_bytes = 0;
};

}  // namespace cudagan::cuda
