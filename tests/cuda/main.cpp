// Catch2 runner for the CUDA backend tests. Listing the tests (CTest's discovery, `--list-*`, `-l`) and help
// never need a GPU. Otherwise, without a usable CUDA device the runner prints one line saying why and exits
// with 77, which CTest reports as "skipped" (SKIP_RETURN_CODE 77; Catch2 v2 has no SKIP of its own).
#define CATCH_CONFIG_RUNNER
#include <cuda_runtime.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>

namespace {

constexpr int kSkipReturnCode = 77;

bool needs_no_device(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (std::strncmp(a, "--list", 6) == 0 || std::strcmp(a, "-l") == 0 || std::strcmp(a, "--help") == 0 ||
        std::strcmp(a, "-h") == 0 || std::strcmp(a, "-?") == 0)
      return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (!needs_no_device(argc, argv)) {
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
      std::printf("cudagan CUDA tests skipped: %s (%s)\n", cudaGetErrorString(status),
                  cudaGetErrorName(status));
      return kSkipReturnCode;
    }
    if (count == 0) {
      std::printf("cudagan CUDA tests skipped: no CUDA device found\n");
      return kSkipReturnCode;
    }
  }
  return Catch::Session().run(argc, argv);
}
