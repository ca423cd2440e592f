// 8-bit images on the host, and the sample grids of a training run: a batch of generator outputs
// [N, C, H, W] in [-1, 1] tiled into one picture (as torchvision.utils.make_grid with
// normalize=True, value_range=(-1, 1)) and written as PNG. Every write is atomic: a crash never
// leaves a half-written file, only the old one or the new one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cudagan/core/tensor.h"

namespace cudagan {

// Interleaved (HWC) 8-bit pixels, rows top to bottom; channels 1 (gray), 2 (gray+alpha), 3 (RGB)
// or 4 (RGBA). An aggregate: Image{w, h, c, pixels} works.
struct Image {
  int width = 0, height = 0, channels = 0;
  std::vector<uint8_t> pixels;  // width * height * channels bytes

  // width x height x channels, every byte `fill`; throws cudagan::Error on a bad size.
  static Image blank(int width, int height, int channels, uint8_t fill = 0);
  uint8_t& at(int x, int y, int c = 0) { return pixels[(size_t(y) * width + x) * channels + c]; }
  uint8_t at(int x, int y, int c = 0) const { return pixels[(size_t(y) * width + x) * channels + c]; }
};

// A value in [-1, 1] as a byte: round((v + 1) / 2 * 255), clamped to 0..255, half up, so -1 -> 0,
// 0 -> 128, 1 -> 255 (torchvision's save_image rounds the same way). NaN becomes 0.
uint8_t unit_to_byte(double v);

// Tiles images [N, C, H, W] (or one image [C, H, W]; C = 1 or 3; float32 or float64; any device)
// into a grid of min(N, nrow) columns and ceil(N / nrow) rows, `padding` black pixels between
// the images and around the border. Gray images give a 1-channel grid, RGB a 3-channel one.
Image make_grid(const Tensor& images, int nrow = 8, int padding = 2);

// make_grid, then write_png.
void save_image_grid(const Tensor& images, const std::string& path, int nrow = 8, int padding = 2);

// Writes a PNG atomically; throws cudagan::Error naming the path and the OS error.
void write_png(const std::string& path, const Image& image);

// Reads a PNG, JPEG, BMP, ... with stb_image; `channels` 0 keeps the file's channel count, 1..4
// converts. Throws cudagan::Error naming the path and the reason.
Image read_image(const std::string& path, int channels = 0);

}  // namespace cudagan
