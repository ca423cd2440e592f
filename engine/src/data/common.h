// Helpers shared by the dataset implementations (engine/src/data_*.cpp); not part of the API.
#pragma once

#include <string>

namespace cudagan::data::internal {

// Throw cudagan::Error with the fix when an argument a user passes is out of range.
void check_image_size(int image_size);
void check_channels(int channels);  // 0 (auto), 1 or 3

// The path of split's MNIST images idx file in `folder` (any accepted spelling), or "".
std::string mnist_images_file(const std::string& folder, const std::string& split);

// The sample shape for describe(): "3x64x64".
std::string sample_shape_str(int channels, int image_size);

}  // namespace cudagan::data::internal
