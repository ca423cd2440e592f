// Animated GIF output, decoded again with giflib's DGifSlurp: frames, size, loop extension, delays,
// and exact colours for gray frames and for RGB frames of at most 256 colours.
#include <gif_lib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>

#include "cudagan/core/error.h"
#include "cudagan/io/gif.h"
#include "support/temp_dir.h"

using namespace cudagan;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

using cudagan::test::TempDir;

struct Decoded {
  int width = 0, height = 0;
  std::vector<Image> frames;  // RGB, through each frame's colour map
  std::vector<int> delays;
  bool loops = false;
};

std::string file_signature(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string s(6, '\0');
  in.read(s.data(), 6);
  return s;
}

Decoded decode(const std::string& path) {
  int err = 0;
  std::unique_ptr<GifFileType, void (*)(GifFileType*)> gif(DGifOpenFileName(path.c_str(), &err),
                                                           [](GifFileType* g) {
                                                             int e = 0;
                                                             DGifCloseFile(g, &e);
                                                           });
  REQUIRE(gif);
  REQUIRE(DGifSlurp(gif.get()) == GIF_OK);
  Decoded d;
  d.width = gif->SWidth;
  d.height = gif->SHeight;
  for (int i = 0; i < gif->ImageCount; ++i) {
    const SavedImage& saved = gif->SavedImages[i];
    const ColorMapObject* map = saved.ImageDesc.ColorMap ? saved.ImageDesc.ColorMap : gif->SColorMap;
    REQUIRE(map);
    Image frame = Image::blank(saved.ImageDesc.Width, saved.ImageDesc.Height, 3);
    for (int p = 0; p < frame.width * frame.height; ++p) {
      const GifColorType c = map->Colors[saved.RasterBits[p]];
      frame.pixels[size_t(p) * 3] = c.Red;
      frame.pixels[size_t(p) * 3 + 1] = c.Green;
      frame.pixels[size_t(p) * 3 + 2] = c.Blue;
    }
    d.frames.push_back(std::move(frame));
    GraphicsControlBlock gcb;
    d.delays.push_back(DGifSavedExtensionToGCB(gif.get(), i, &gcb) == GIF_OK ? gcb.DelayTime : -1);
    // DGifSlurp attaches the extensions that precede an image to it; the loop extension is an
    // application block "NETSCAPE2.0" followed by the sub-block {1, count lo, count hi}.
    for (int e = 0; e + 1 < saved.ExtensionBlockCount; ++e) {
      const ExtensionBlock& app = saved.ExtensionBlocks[e];
      const ExtensionBlock& next = saved.ExtensionBlocks[e + 1];
      if (app.Function == APPLICATION_EXT_FUNC_CODE && app.ByteCount == 11 &&
          std::memcmp(app.Bytes, "NETSCAPE2.0", 11) == 0 && next.ByteCount == 3 && next.Bytes[0] == 1 &&
          next.Bytes[1] == 0 && next.Bytes[2] == 0)
        d.loops = true;
    }
  }
  return d;
}

Image gray_frame(int w, int h, int seed) {
  Image f = Image::blank(w, h, 1);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) f.at(x, y) = uint8_t(seed * 60 + x * 10 + y * 3);
  return f;
}

}  // namespace

TEST_CASE("gif: gray frames decode to the exact values, with delays and the loop", "[io]") {
  TempDir dir;
  const std::string path = dir.file("progress.gif");
  GifAnimation gif;
  for (int f = 0; f < 3; ++f) gif.add_frame(gray_frame(5, 4, f));
  CHECK(gif.frame_count() == 3);
  gif.save(path, 7);

  const Decoded d = decode(path);
  CHECK(file_signature(path) == "GIF89a");  // needed for the delay and loop extensions
  CHECK(d.width == 5);
  CHECK(d.height == 4);
  REQUIRE(d.frames.size() == 3);
  CHECK(d.delays == std::vector<int>{7, 7, 7});
  CHECK(d.loops);
  for (int f = 0; f < 3; ++f) {
    const Image expected = gray_frame(5, 4, f);
    for (int p = 0; p < 20; ++p) {
      INFO("frame " << f << " pixel " << p);
      for (int c = 0; c < 3; ++c)
        CHECK(d.frames[size_t(f)].pixels[size_t(p) * 3 + c] == expected.pixels[size_t(p)]);
    }
  }
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);
}

TEST_CASE("gif: without loop it plays once, RGB of few colours is exact, of many is close", "[io]") {
  TempDir dir;
  const std::string path = dir.file("rgb.gif");
  Image few = Image::blank(16, 8, 3), many = Image::blank(64, 32, 3);
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 16; ++x) {
      few.at(x, y, 0) = uint8_t(x * 16);
      few.at(x, y, 1) = uint8_t(y * 32);
      few.at(x, y, 2) = 200;
    }
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 64; ++x) {  // 2048 distinct colours: quantized
      many.at(x, y, 0) = uint8_t(x * 4);
      many.at(x, y, 1) = uint8_t(y * 8);
      many.at(x, y, 2) = uint8_t((x + y) * 2);
    }
  Image few_big = Image::blank(64, 32, 3);  // the small pattern tiled, so both frames have one size
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 64; ++x)
      for (int c = 0; c < 3; ++c) few_big.at(x, y, c) = few.at(x % 16, y % 8, c);
  GifAnimation gif;
  gif.add_frame(few_big);
  gif.add_frame(many);
  gif.add_frame(gray_frame(64, 32, 1));  // gray and RGB frames may mix
  gif.save(path, 100, false);

  const Decoded d = decode(path);
  REQUIRE(d.frames.size() == 3);
  CHECK_FALSE(d.loops);
  CHECK(d.delays == std::vector<int>{100, 100, 100});
  CHECK(d.frames[0].pixels == few_big.pixels);
  int worst = 0;
  for (size_t i = 0; i < many.pixels.size(); ++i)
    worst = std::max(worst, std::abs(int(d.frames[1].pixels[i]) - int(many.pixels[i])));
  INFO("largest quantization error " << worst);
  CHECK(worst <= 8);  // giflib's own GifQuantizeBuffer leaves 48 on this gradient
}

TEST_CASE("gif: bad frames and failed writes say what is wrong", "[io]") {
  TempDir dir;
  GifAnimation gif;
  REQUIRE_THROWS_WITH(gif.save(dir.file("empty.gif")), Contains("empty.gif") && Contains("no frames"));
  gif.add_frame(gray_frame(5, 4, 0));
  REQUIRE_THROWS_WITH(gif.add_frame(gray_frame(4, 5, 0)), Contains("frame 1 is 4x5") && Contains("5x4"));
  REQUIRE_THROWS_WITH(gif.add_frame(Image::blank(5, 4, 4)), Contains("4 channels"));
  REQUIRE_THROWS_WITH(gif.save(dir.file("x.gif"), -1), Contains("delay"));
  const std::string bad = dir.file("missing/x.gif");
  REQUIRE_THROWS_WITH(gif.save(bad),
                      Contains("cannot write '" + bad + "'") && Contains("No such file or directory"));
  CHECK(fs::is_empty(dir.path));
  gif.clear();
  CHECK(gif.frame_count() == 0);
  gif.add_frame(gray_frame(4, 5, 0));  // a cleared animation takes a new size
  CHECK(gif.width() == 4);
}
