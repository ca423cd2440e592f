// Image grids and PNG input/output (stb_image, stb_image_write; Debian's libstb holds their
// implementations, so no STB_*_IMPLEMENTATION here).
#include "cudagan/io/image_io.h"

#include <stb_image.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "cudagan/io/atomic_file.h"
#include "cudagan/core/error.h"

namespace cudagan {

Image Image::blank(int width, int height, int channels, uint8_t fill) {
  CUDAGAN_CHECK(width >= 0 && height >= 0 && channels >= 1 && channels <= 4, "invalid image size ", width,
                "x", height, "x", channels);
  return Image{width, height, channels, std::vector<uint8_t>(size_t(width) * height * channels, fill)};
}

uint8_t unit_to_byte(double v) {
  if (!(v == v)) return 0;  // NaN
  const double scaled = std::floor((v + 1.0) * 0.5 * 255.0 + 0.5);
  return uint8_t(std::clamp(scaled, 0.0, 255.0));
}

Image make_grid(const Tensor& images, int nrow, int padding) {
  CUDAGAN_CHECK(images.defined(), "make_grid: the images tensor is undefined");
  Shape shape = images.shape();
  if (shape.size() == 3) shape.insert(shape.begin(), 1);
  CUDAGAN_CHECK(shape.size() == 4, "make_grid expects images [N, C, H, W] or [C, H, W], got ",
                shape_str(images.shape()));
  const int64_t n = shape[0], c = shape[1], h = shape[2], w = shape[3];
  CUDAGAN_CHECK(c == 1 || c == 3, "make_grid expects 1 (gray) or 3 (RGB) channels, got ",
                shape_str(images.shape()));
  CUDAGAN_CHECK(n >= 1 && h >= 1 && w >= 1, "make_grid needs at least one non-empty image, got ",
                shape_str(images.shape()));
  CUDAGAN_CHECK(nrow >= 1, "make_grid: nrow must be at least 1, got ", nrow);
  CUDAGAN_CHECK(padding >= 0, "make_grid: padding must not be negative, got ", padding);

  const int64_t cols = std::min<int64_t>(nrow, n);
  const int64_t rows = (n + cols - 1) / cols;
  const int64_t grid_w = cols * (w + padding) + padding, grid_h = rows * (h + padding) + padding;
  CUDAGAN_CHECK(grid_w <= 1 << 15 && grid_h <= 1 << 15, "make_grid: a ", grid_w, "x", grid_h,
                " grid is too large for an image");
  Image grid = Image::blank(int(grid_w), int(grid_h), int(c));

  // One conversion to double on the host: the grid is small next to a training step.
  const std::vector<double> values = images.detach().to(Device::cpu()).to_vector();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t x0 = (i % cols) * (w + padding) + padding, y0 = (i / cols) * (h + padding) + padding;
    for (int64_t ch = 0; ch < c; ++ch) {
      const double* plane = values.data() + (i * c + ch) * h * w;
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x)
          grid.at(int(x0 + x), int(y0 + y), int(ch)) = unit_to_byte(plane[y * w + x]);
    }
  }
  return grid;
}

void save_image_grid(const Tensor& images, const std::string& path, int nrow, int padding) {
  write_png(path, make_grid(images, nrow, padding));
}

void write_png(const std::string& path, const Image& image) {
  CUDAGAN_CHECK(image.width > 0 && image.height > 0 && image.channels >= 1 && image.channels <= 4,
                "cannot write '", path, "': invalid image size ", image.width, "x", image.height, "x",
                image.channels);
  CUDAGAN_CHECK(image.pixels.size() == size_t(image.width) * image.height * image.channels, "cannot write '",
                path, "': the image holds ", image.pixels.size(), " bytes, not width * height * channels");
  // stb encodes into memory; the bytes then go to disk through the atomic writer.
  std::vector<uint8_t> png;
  auto append = [](void* context, void* data, int size) {
    auto* out = static_cast<std::vector<uint8_t>*>(context);
    const auto* bytes = static_cast<const uint8_t*>(data);
    out->insert(out->end(), bytes, bytes + size);
  };
  const int ok = stbi_write_png_to_func(append, &png, image.width, image.height, image.channels,
                                        image.pixels.data(), image.width * image.channels);
  CUDAGAN_CHECK(ok != 0 && !png.empty(), "cannot write '", path, "': PNG encoding failed");
  detail::write_file_atomically(path, png.data(), png.size());
}

Image read_image(const std::string& path, int channels) {
  CUDAGAN_CHECK(channels >= 0 && channels <= 4, "read_image: channels must be 0..4, got ", channels);
  int w = 0, h = 0, file_channels = 0;
  stbi_uc* data = stbi_load(path.c_str(), &w, &h, &file_channels, channels);
  if (!data) {
    const char* reason = stbi_failure_reason();
    // stb reports a missing file as "can't fopen"; errno still says why.
    std::FILE* probe = std::fopen(path.c_str(), "rb");
    const std::string why = probe ? std::string(reason ? reason : "unknown format") : std::strerror(errno);
    if (probe) std::fclose(probe);
    throw Error(detail::concat("cannot read image '", path, "': ", why));
  }
  Image image;
  image.width = w;
  image.height = h;
  image.channels = channels ? channels : file_channels;
  image.pixels.assign(data, data + size_t(w) * h * image.channels);
  stbi_image_free(data);
  return image;
}

}  // namespace cudagan
