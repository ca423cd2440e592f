// The engine's exceptions, one hierarchy with cudagan::Error at its root, so that
// `catch (const cudagan::Error&)` catches every error the engine raises. Every error a caller can cause (a
// shape mismatch, mixed devices, a bad file) throws cudagan::Error with a one-line message that names the
// problem and, where there is one, the fix. Below it:
//   InvalidArgument     a kernel's precondition failed (kernels/: bad geometry, too small a workspace);
//   cuda::CudaError     a CUDA, cuBLAS or cuRAND call failed (kernels/cuda/check.h).
// This header depends on nothing else of cudagan: it is the one the kernels include too.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace cudagan {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A kernel called with arguments it cannot take; the message names the kernel and the argument.
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

namespace detail {
// Every argument streamed (operator<<) into one string: how CUDAGAN_CHECK builds its message.
template <class... Args> std::string concat(const Args&... args) {
  std::ostringstream s;
  (s << ... << args);
  return s.str();
}
}  // namespace detail

}  // namespace cudagan

// CUDAGAN_CHECK(cond, parts...): throws cudagan::Error(parts...) when cond is false.
#define CUDAGAN_CHECK(cond, ...) \
  do {                           \
    if (!(cond)) throw ::cudagan::Error(::cudagan::detail::concat(__VA_ARGS__)); \
  } while (0)
