// libFuzzer target: dcgan_train's YAML config loader (--config FILE, apps/train_config.cpp) on arbitrary
// file contents, through the same entry point the program uses. A file it cannot take must end in one
// cudagan::Error (or a usage error from the flag parser's exit code); anything else is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "cudagan/core/error.h"
#include "fuzz_input.h"
#include "train_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = cudagan::fuzz::scratch().path("config.yaml");
  cudagan::fuzz::write_file(path, data, size);
  std::string program = "dcgan_train", flag = "--config", file = path;
  char* argv[] = {program.data(), flag.data(), file.data(), nullptr};
  try {
    cudagan::apps::TrainConfig config;
    int exit_code = 0;
    if (cudagan::apps::parse_train_config(3, argv, config, exit_code)) cudagan::apps::validate(config);
  } catch (const cudagan::Error&) {
  }
  return 0;
}
