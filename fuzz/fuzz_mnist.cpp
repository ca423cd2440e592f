// libFuzzer target: the MNIST idx reader (open_mnist), raw and gzipped. The first byte picks the form (even:
// raw, odd: .gz) and the rest is the images file; the labels file beside it is a valid one for 2 images, so
// that inputs which get past the header reach the pixel and count checks. Every sample of a dataset that
// opens is then loaded. Anything but a cudagan::Error is a bug.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <vector>

#include "cudagan/core/error.h"
#include "cudagan/data/data.h"
#include "fuzz_input.h"

namespace {
void write_labels(const std::string& folder) {
  const uint8_t labels[] = {0, 0, 8, 1, 0, 0, 0, 2, 3, 7};  // magic 2049, count 2, labels 3 and 7
  cudagan::fuzz::write_file(folder + "/train-labels-idx1-ubyte", labels, sizeof labels);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string folder = cudagan::fuzz::scratch().path("mnist");
  static const bool ready = [&] {
    std::filesystem::create_directories(folder);
    write_labels(folder);
    return true;
  }();
  (void)ready;
  const bool gz = data[0] & 1;
  const std::string images = folder + "/train-images-idx3-ubyte", gz_images = images + ".gz";
  std::filesystem::remove(gz ? images : gz_images);
  cudagan::fuzz::write_file(gz ? gz_images : images, data + 1, size - 1);
  try {
    const auto set = cudagan::data::open_mnist(folder, "train", 8);
    std::vector<float> out(size_t(set->sample_numel()));
    for (int64_t i = 0; i < set->size(); ++i) set->load(i, out.data(), nullptr);
  } catch (const cudagan::Error&) {
  }
  return 0;
}
