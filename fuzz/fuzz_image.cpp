// libFuzzer target: the image decoding path of the folder loader: open_image_folder probes the file's header
// (stbi_info), then load() decodes it (stb_image) and runs the crop, channel conversion and resize. The
// bytes go into one file whose extension the first byte picks (png, jpg, bmp, tga: stb decides by content,
// the loader by name). Anything but a cudagan::Error, or a sample the loader reports undecodable, is a bug.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <vector>

#include "cudagan/core/error.h"
#include "cudagan/data/data.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const char* const kExtensions[] = {"png", "jpg", "bmp", "tga"};
  const std::string folder = cudagan::fuzz::scratch().path("images");
  std::filesystem::remove_all(folder);
  std::filesystem::create_directories(folder);
  cudagan::fuzz::write_file(folder + "/input." + kExtensions[data[0] % 4], data + 1, size - 1);
  try {
    const auto set = cudagan::data::open_image_folder(folder, 16);
    std::vector<float> out(size_t(set->sample_numel()));
    for (int64_t i = 0; i < set->size(); ++i) set->load(i, out.data(), nullptr);
  } catch (const cudagan::Error&) {
  }
  return 0;
}
