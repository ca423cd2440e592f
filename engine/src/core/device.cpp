#include <cstdlib>

#include "core/backend.h"
#include "cudagan/core/device.h"

namespace cudagan {

Device Device::parse(const std::string& text) {
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda(0);
  if (text.rfind("cuda:", 0) == 0 && text.size() > 5) {
    char* end = nullptr;
    const long index = std::strtol(text.c_str() + 5, &end, 10);
    if (*end == '\0' && index >= 0 && index < 1024) return cuda(int(index));
  }
  throw Error("unknown device '" + text + "': use cpu, cuda or cuda:N");
}

std::string Device::str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }

Device resolve_device(const std::string& name) {
  if (name == "auto") return cuda_available() ? Device::cuda(0) : Device::cpu();
  const Device d = Device::parse(name);
  if (d.is_cpu()) return d;
  CUDAGAN_CHECK(cuda_available(), "device '", name, "' asked for a GPU, but this build or machine has none: ",
                "use cpu (or auto)");
  CUDAGAN_CHECK(d.index < cuda_device_count(), "device '", name, "' is not there: this machine has ",
                cuda_device_count(), " GPU(s), cuda:0 to cuda:", cuda_device_count() - 1);
  return d;
}

void throw_no_cuda() {
  throw Error("this cudagan was built without CUDA: rebuild with the CUDA toolkit installed "
              "(-DCUDAGAN_CUDA=ON) or use the cpu device");
}

}  // namespace cudagan
