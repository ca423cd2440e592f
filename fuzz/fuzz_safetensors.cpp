// libFuzzer target: the safetensors reader (load_safetensors) on arbitrary file contents. A file it cannot
// take must end in one cudagan::Error; anything else (a crash, a sanitizer report, another exception, a hang)
// is a bug.
#include <cstddef>
#include <cstdint>

#include "cudagan/core/error.h"
#include "cudagan/io/safetensors.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = cudagan::fuzz::scratch().path("input.safetensors");
  cudagan::fuzz::write_file(path, data, size);
  try {
    const cudagan::SafetensorsFile f = cudagan::load_safetensors(path);
    for (const auto& [name, t] : f.tensors) (void)t.numel();
  } catch (const cudagan::Error&) {
  }
  return 0;
}
