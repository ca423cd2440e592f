// The one exception type of the engine. Every error a caller can cause (a shape mismatch, mixed
// devices, a bad file) throws cudagan::Error with a one-line message that names the problem and,
// where there is one, the fix.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace cudagan {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
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
