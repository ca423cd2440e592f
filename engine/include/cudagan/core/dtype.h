// Element types. float32 is the working type on every device; float64 exists on the CPU backend
// so gradients can be checked against finite differences to tight tolerances.
#pragma once

#include <cstddef>

namespace cudagan {

enum class DType { float32, float64 };

inline size_t dtype_size(DType t) { return t == DType::float32 ? 4 : 8; }  // bytes per element
inline const char* dtype_name(DType t) { return t == DType::float32 ? "float32" : "float64"; }

// The DType of a C++ element type: dtype_of<float>() is float32, dtype_of<double>() float64
// (other types do not compile).
template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::float32; }
template <> constexpr DType dtype_of<double>() { return DType::float64; }

}  // namespace cudagan
