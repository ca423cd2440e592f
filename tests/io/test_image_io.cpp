// Image grids and PNG output: exact layout and pixel values, gray and RGB, read back from disk;
// atomic writes that leave nothing behind on failure.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "cudagan/core/error.h"
#include "cudagan/io/image_io.h"
#include "cudagan/core/tensor.h"
#include "support/temp_dir.h"

using namespace cudagan;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

using cudagan::test::TempDir;

size_t count_entries(const fs::path& dir) {
  return size_t(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

}  // namespace

TEST_CASE("image_io: values in -1..1 become bytes, rounding half up", "[io]") {
  CHECK(unit_to_byte(-1.0) == 0);
  CHECK(unit_to_byte(0.0) == 128);  // 127.5 rounds up, as torchvision's save_image does
  CHECK(unit_to_byte(1.0) == 255);
  CHECK(unit_to_byte(0.5) == 191);  // 191.25
  CHECK(unit_to_byte(-3.0) == 0);   // clamped
  CHECK(unit_to_byte(7.0) == 255);
  CHECK(unit_to_byte(std::nan("")) == 0);
}

TEST_CASE("image_io: gray grid layout, padding and values are exact", "[io]") {
  // Three 2x3 images of constant -1, 0 and 1, two per row, padding 1: a 9x7 grid whose fourth cell
  // stays black like the padding.
  std::vector<float> values;
  for (float v : {-1.0f, 0.0f, 1.0f}) values.insert(values.end(), 6, v);
  const Tensor images = Tensor::from_vector(values, {3, 1, 2, 3});
  const Image grid = make_grid(images, 2, 1);
  REQUIRE(grid.width == 9);
  REQUIRE(grid.height == 7);
  REQUIRE(grid.channels == 1);
  std::vector<int> expected(9 * 7, 0);
  const int cell_value[3] = {0, 128, 255};
  for (int i = 0; i < 3; ++i)
    for (int y = 0; y < 2; ++y)
      for (int x = 0; x < 3; ++x)
        expected[size_t((i / 2 * 3 + 1 + y) * 9 + (i % 2) * 4 + 1 + x)] = cell_value[i];
  for (int y = 0; y < 7; ++y)
    for (int x = 0; x < 9; ++x) {
      INFO("pixel (" << x << ", " << y << ")");
      CHECK(int(grid.at(x, y)) == expected[size_t(y * 9 + x)]);
    }

  // The same picture on disk.
  TempDir dir;
  const std::string path = dir.file("grid.png");
  save_image_grid(images, path, 2, 1);
  const Image back = read_image(path);
  CHECK(back.width == 9);
  CHECK(back.height == 7);
  CHECK(back.channels == 1);
  CHECK(back.pixels == grid.pixels);
  CHECK(count_entries(dir.path) == 1);  // no temporary left beside it
}

TEST_CASE("image_io: rows and columns are not transposed, float64 and 3-D input", "[io]") {
  // One 2x3 image with a distinct value per pixel, no padding: pixel (x, y) holds v[y * 3 + x].
  const std::vector<double> v = {-1.0, -0.6, -0.2, 0.2, 0.6, 1.0};
  const Image grid = make_grid(Tensor::from_vector(v, {1, 2, 3}), 8, 0);
  REQUIRE(grid.width == 3);
  REQUIRE(grid.height == 2);
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 3; ++x) CHECK(grid.at(x, y) == unit_to_byte(v[size_t(y * 3 + x)]));
}

TEST_CASE("image_io: RGB grid keeps the channels apart", "[io]") {
  // Image 0 is (R, G, B) = (1, 0, -1), image 1 is (-1, 0, 1); 2x2 each, one row, padding 2.
  std::vector<float> values;
  for (float r : {1.0f, -1.0f})
    for (float c : {r, 0.0f, -r}) values.insert(values.end(), 4, c);
  TempDir dir;
  const std::string path = dir.file("rgb.png");
  save_image_grid(Tensor::from_vector(values, {2, 3, 2, 2}), path);
  const Image back = read_image(path);
  REQUIRE(back.channels == 3);
  REQUIRE(back.width == 2 * (2 + 2) + 2);
  REQUIRE(back.height == 2 + 2 + 2);
  for (int y = 0; y < back.height; ++y)
    for (int x = 0; x < back.width; ++x) {
      const bool in0 = x >= 2 && x < 4 && y >= 2 && y < 4, in1 = x >= 6 && x < 8 && y >= 2 && y < 4;
      const int r = in0 ? 255 : 0, b = in1 ? 255 : 0, g = in0 || in1 ? 128 : 0;
      INFO("pixel (" << x << ", " << y << ")");
      CHECK(int(back.at(x, y, 0)) == r);
      CHECK(int(back.at(x, y, 1)) == g);
      CHECK(int(back.at(x, y, 2)) == b);
    }
  // Conversion on read: one gray channel, ITU-R luma as stb computes it.
  CHECK(read_image(path, 1).channels == 1);
}

TEST_CASE("image_io: bad inputs say what is wrong", "[io]") {
  REQUIRE_THROWS_WITH(make_grid(Tensor::zeros({2, 2, 4, 4})), Contains("1 (gray) or 3 (RGB)"));
  REQUIRE_THROWS_WITH(make_grid(Tensor::zeros({4, 4})), Contains("[N, C, H, W]"));
  REQUIRE_THROWS_WITH(make_grid(Tensor::zeros({1, 1, 4, 4}), 0), Contains("nrow"));
  REQUIRE_THROWS_WITH(make_grid(Tensor::zeros({1, 1, 4, 4}), 8, -1), Contains("padding"));
  REQUIRE_THROWS_WITH(make_grid(Tensor()), Contains("undefined"));

  TempDir dir;
  const std::string missing = dir.file("missing.png");
  REQUIRE_THROWS_WITH(read_image(missing), Contains("cannot read image '" + missing + "'") &&
                                               Contains("No such file or directory"));
  const std::string junk = dir.file("junk.png");
  std::ofstream(junk) << "not an image";
  REQUIRE_THROWS_WITH(read_image(junk), Contains("cannot read image '" + junk + "'"));
}

TEST_CASE("image_io: a failed write names the path and leaves no file behind", "[io]") {
  TempDir dir;
  const Tensor images = Tensor::zeros({1, 1, 4, 4});

  // Opening the temporary fails: the directory does not exist.
  const std::string in_missing_dir = dir.file("no/such/dir/x.png");
  REQUIRE_THROWS_WITH(
      save_image_grid(images, in_missing_dir),
      Contains("cannot write '" + in_missing_dir + "'") && Contains("No such file or directory"));
  CHECK(count_entries(dir.path) == 0);

  // The temporary is written but the rename fails: the target is a non-empty directory.
  const std::string occupied = dir.file("occupied");
  fs::create_directories(fs::path(occupied) / "inside");
  REQUIRE_THROWS_WITH(save_image_grid(images, occupied), Contains("cannot write '" + occupied + "'"));
  CHECK(count_entries(dir.path) == 1);  // only the directory itself: the temporary was removed

  // A parent that is a file.
  const std::string file_parent = dir.file("plain");
  std::ofstream(file_parent) << "x";
  REQUIRE_THROWS_WITH(save_image_grid(images, file_parent + "/x.png"), Contains("Not a directory"));
  CHECK(count_entries(dir.path) == 2);
}

TEST_CASE("image_io: writing again replaces the file whole", "[io]") {
  TempDir dir;
  const std::string path = dir.file("x.png");
  save_image_grid(Tensor::full({1, 1, 3, 3}, -1.0), path, 8, 0);
  save_image_grid(Tensor::full({1, 1, 5, 2}, 1.0), path, 8, 0);
  const Image back = read_image(path);
  CHECK(back.width == 2);
  CHECK(back.height == 5);
  CHECK(back.pixels == std::vector<uint8_t>(10, 255));
  CHECK(count_entries(dir.path) == 1);
}
