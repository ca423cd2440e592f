// Element-wise arithmetic and full reductions over n contiguous elements. out may alias an input.
#pragma once

#include <cstdint>

#include "cudagan/core/error.h"  // InvalidArgument, which the kernels throw

namespace cudagan::cpu {
template <class T> void add(const T* a, const T* b, T* out, int64_t n);  // out = a + b
template <class T> void mul(const T* a, const T* b, T* out, int64_t n);  // out = a * b
template <class T> void scale(const T* x, T alpha, T* out, int64_t n);  // out = alpha * x
template <class T> void axpy(T alpha, const T* x, T* y, int64_t n);     // y += alpha * x
template <class T> void fill(T* out, T value, int64_t n);
template <class T> void sum(const T* x, int64_t n, T* out);  // out[0] = sum of x (accumulated in double)
}  // namespace cudagan::cpu

// CUDA backend (float32, kernels/cuda/elementwise.cu), device pointers, on ctx.stream. sum writes its
// result to device memory; its reduction is deterministic (double partials in ctx.workspace, added in a
// fixed order). copy is a device-to-device copy of n floats.
namespace cudagan::cuda {
struct KernelContext;
void add(const KernelContext& ctx, const float* a, const float* b, float* out, int64_t n);
void mul(const KernelContext& ctx, const float* a, const float* b, float* out, int64_t n);
void scale(const KernelContext& ctx, const float* x, float alpha, float* out, int64_t n);
void axpy(const KernelContext& ctx, float alpha, const float* x, float* y, int64_t n);
void fill(const KernelContext& ctx, float* out, float value, int64_t n);
void sum(const KernelContext& ctx, const float* x, int64_t n, float* out);
void copy(const KernelContext& ctx, float* dst, const float* src, int64_t n);
}  // namespace cudagan::cuda
