// open_dataset: what a data path holds, recognised from the path and the folder's contents.
#include <filesystem>

#include "cudagan/data/data.h"
#include "cudagan/core/error.h"
#include "data/common.h"

namespace fs = std::filesystem;

namespace cudagan::data {

std::unique_ptr<Dataset> open_dataset(const std::string& path, int image_size, int channels) {
  internal::check_image_size(image_size);
  internal::check_channels(channels);
  if (path == "synthetic") return open_synthetic(image_size, channels);
  std::error_code ec;
  CUDAGAN_CHECK(fs::exists(path, ec), "data folder '", path,
                "' does not exist: give a folder of images, a folder with MNIST idx files, or 'synthetic'");
  CUDAGAN_CHECK(fs::is_directory(path, ec), "data path '", path,
                "' is not a folder: give the folder that holds the images or the MNIST idx files");
  // MNIST is recognised by its images file; its labels file is then required (open_mnist says so).
  if (!internal::mnist_images_file(path, "train").empty())
    return open_mnist(path, "train", image_size, channels);
  if (!internal::mnist_images_file(path, "test").empty())
    return open_mnist(path, "test", image_size, channels);
  return open_image_folder(path, image_size, channels);
}

}  // namespace cudagan::data
