// Data loading: the pixel pipeline (crop, channel conversion, area resize) on known patterns; image
// folders, MNIST idx files and the synthetic set written or generated here; their errors; and the
// DataLoader's order, completeness, determinism across worker counts, skip() and shutdown.
#include <catch2/catch.hpp>
#include <stb_image_write.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "cudagan/data/data.h"
#include "cudagan/core/error.h"

using namespace cudagan;
using namespace cudagan::data;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// A fresh folder under the system temp directory, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    const auto ticks = std::chrono::steady_clock::now().time_since_epoch().count();
    path_ = fs::temp_directory_path() /
            ("cudagan_test_data_" + std::to_string(ticks) + "_" + std::to_string(counter++));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  std::string str() const { return path_.string(); }
  // `relative` under this folder, its parent folders created.
  std::string file(const std::string& relative) const {
    const fs::path p = path_ / relative;
    fs::create_directories(p.parent_path());
    return p.string();
  }

 private:
  fs::path path_;
};

float expected(double v) { return float(v) / 127.5f - 1.0f; }  // the pipeline's scaling

// w x h pixels of c channels, pixel (x, y) channel k = f(x, y, k).
template <class F>
std::vector<uint8_t> image(int w, int h, int c, F f) {
  std::vector<uint8_t> p(size_t(w) * h * c);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k) p[(size_t(y) * w + x) * c + k] = uint8_t(f(x, y, k));
  return p;
}

void write_png(const std::string& path, int w, int h, int c, const std::vector<uint8_t>& p) {
  REQUIRE(stbi_write_png(path.c_str(), w, h, c, p.data(), w * c));
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  REQUIRE(f.good());
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::vector<float> load_sample(const Dataset& d, int64_t index, int* label = nullptr) {
  std::vector<float> out(size_t(d.sample_numel()), 99.0f);
  REQUIRE(d.load(index, out.data(), label));
  return out;
}

void require_in_range(const std::vector<float>& v) {
  for (float x : v) REQUIRE((x >= -1.0f && x <= 1.0f));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// the pixel pipeline

TEST_CASE("data: area resize gives exact block means, never nearest", "[data]") {
  // A one-pixel checker of 0 and 200 halved: every output averages two of each, 100 exactly
  // (nearest would give 0 or 200).
  const auto checker = image(8, 8, 1, [](int x, int y, int) { return (x + y) % 2 ? 200 : 0; });
  std::vector<float> out(16);
  to_chw(checker.data(), 8, 8, 1, 1, 4, out.data());
  for (float v : out) CHECK(v == expected(100));
  // 2x2 flat quadrants of 4x4, halved: the quadrant colours; to one pixel: their mean.
  const int quad[2][2] = {{10, 50}, {90, 130}};
  const auto quads = image(4, 4, 1, [&](int x, int y, int) { return quad[y / 2][x / 2]; });
  to_chw(quads.data(), 4, 4, 1, 1, 2, out.data());
  CHECK(out[0] == expected(10));
  CHECK(out[1] == expected(50));
  CHECK(out[2] == expected(90));
  CHECK(out[3] == expected(130));
  to_chw(quads.data(), 4, 4, 1, 1, 1, out.data());
  CHECK(out[0] == Approx(expected(70)).margin(1e-6));
  // A non-integer factor (3 -> 2) weighs the middle pixel half into each output.
  const uint8_t row[9] = {0, 30, 90, 0, 30, 90, 0, 30, 90};
  to_chw(row, 3, 3, 1, 1, 2, out.data());
  CHECK(out[0] == Approx(expected((0 + 15) / 1.5)).margin(1e-6));
  CHECK(out[1] == Approx(expected((15 + 90) / 1.5)).margin(1e-6));
  // The same size is an exact copy.
  to_chw(quads.data(), 4, 4, 1, 1, 4, out.data());
  for (int i = 0; i < 16; ++i) CHECK(out[size_t(i)] == expected(quads[size_t(i)]));
}

TEST_CASE("data: enlarging is bilinear with half-pixel centres", "[data]") {
  const uint8_t px[4] = {0, 100, 200, 40};  // 2x2
  std::vector<float> out(16);
  to_chw(px, 2, 2, 1, 1, 4, out.data());
  // Output x in 0..3 samples input x = -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
  CHECK(out[0] == Approx(expected(0)).margin(1e-6));
  CHECK(out[1] == Approx(expected(25)).margin(1e-6));
  CHECK(out[2] == Approx(expected(75)).margin(1e-6));
  CHECK(out[3] == Approx(expected(100)).margin(1e-6));
  CHECK(out[15] == Approx(expected(40)).margin(1e-6));
}

TEST_CASE("data: center crop keeps the middle of wide and tall images", "[data]") {
  // Thirds of distinct colours: after the crop of a 3:1 image only the middle third remains.
  const uint8_t colors[3][3] = {{255, 0, 0}, {20, 140, 60}, {0, 0, 255}};
  const auto wide = image(60, 20, 3, [&](int x, int, int k) { return colors[x / 20][k]; });
  std::vector<float> out(3 * 10 * 10);
  to_chw(wide.data(), 60, 20, 3, 3, 10, out.data());
  for (int k = 0; k < 3; ++k)
    for (int i = 0; i < 100; ++i) REQUIRE(out[size_t(k * 100 + i)] == expected(colors[1][k]));
  const auto tall = image(20, 60, 3, [&](int, int y, int k) { return colors[y / 20][k]; });
  to_chw(tall.data(), 20, 60, 3, 3, 10, out.data());
  for (int k = 0; k < 3; ++k)
    for (int i = 0; i < 100; ++i) REQUIRE(out[size_t(k * 100 + i)] == expected(colors[1][k]));
  // An odd size (37x23): the crop starts at column 7, 23 wide.
  const auto odd = image(37, 23, 1, [](int x, int, int) { return x >= 7 && x < 30 ? 180 : 0; });
  std::vector<float> one(1);
  to_chw(odd.data(), 37, 23, 1, 1, 1, one.data());
  CHECK(one[0] == Approx(expected(180)).margin(1e-5));
}

TEST_CASE("data: channel conversion: luma, replication, alpha dropped", "[data]") {
  const uint8_t rgb[3] = {200, 100, 50};
  float gray = 0;
  to_chw(rgb, 1, 1, 3, 1, 1, &gray);
  CHECK(gray == Approx(expected(0.299 * 200 + 0.587 * 100 + 0.114 * 50)).margin(1e-5));
  const uint8_t g[2] = {80, 7};  // gray + alpha
  float three[3];
  to_chw(g, 1, 1, 2, 3, 1, three);
  for (float v : three) CHECK(v == expected(80));
  const uint8_t rgba[4] = {10, 20, 30, 0};  // fully transparent: alpha is dropped, not composited
  to_chw(rgba, 1, 1, 4, 3, 1, three);
  CHECK(three[0] == expected(10));
  CHECK(three[1] == expected(20));
  CHECK(three[2] == expected(30));
  REQUIRE_THROWS_WITH(to_chw(rgb, 1, 1, 3, 2, 1, &gray), Contains("out_channels"));
  REQUIRE_THROWS_WITH(to_chw(rgb, 1, 1, 5, 1, 1, &gray), Contains("channels"));
}

// ---------------------------------------------------------------------------------------------
// image folders

TEST_CASE("data: image folder: formats, nesting, skipped files, auto channels", "[data]") {
  TempDir dir;
  const auto rgb = image(32, 32, 3, [](int x, int y, int k) { return (x * 7 + y * 3 + k * 50) % 256; });
  write_png(dir.file("a/rgb.png"), 32, 32, 3, rgb);
  REQUIRE(stbi_write_jpg(dir.file("a/b/photo.JPG").c_str(), 32, 32, 3, rgb.data(), 90));
  write_png(dir.file("gray.png"), 16, 16, 1, image(16, 16, 1, [](int x, int, int) { return x * 16; }));
  write_png(dir.file("rgba.png"), 24, 24, 4, image(24, 24, 4, [](int, int y, int k) { return y * 10 + k; }));
  REQUIRE(stbi_write_bmp(dir.file("pic.bmp").c_str(), 37, 23, 3,
                         image(37, 23, 3, [](int x, int, int) { return x * 6; }).data()));
  REQUIRE(stbi_write_tga(dir.file("nested/deep/odd.Tga").c_str(), 23, 37, 1,
                         image(23, 37, 1, [](int, int y, int) { return y * 6; }).data()));
  std::mt19937 rng(7);
  std::vector<uint8_t> junk(500);
  for (auto& b : junk) b = uint8_t(rng());
  write_bytes(dir.file("nested/corrupt.jpg"), junk);
  write_bytes(dir.file("notes.txt"), {'h', 'i'});
  write_png(dir.file(".hidden.png"), 4, 4, 1, image(4, 4, 1, [](int, int, int) { return 0; }));
  write_png(dir.file(".cache/x.png"), 4, 4, 1, image(4, 4, 1, [](int, int, int) { return 0; }));

  const auto d = open_dataset(dir.str(), 16);
  REQUIRE(d->size() == 6);
  CHECK(d->channels() == 3);  // some images are in colour
  CHECK(d->image_size() == 16);
  CHECK_THAT(d->describe(), Contains("6 images") && Contains("3x16x16") &&
                                Contains("1 skipped as unreadable: nested/corrupt.jpg"));
  // Sorted relative paths, whatever the directory order.
  const std::vector<std::string> names = {"a/b/photo.JPG",       "a/rgb.png", "gray.png",
                                          "nested/deep/odd.Tga", "pic.bmp",   "rgba.png"};
  for (int64_t i = 0; i < d->size(); ++i) {
    CHECK(d->name(i) == names[size_t(i)]);
    int label = 5;
    require_in_range(load_sample(*d, i, &label));
    CHECK(label == -1);
  }
  // gray.png replicated into three equal channels, in the order of its columns.
  const auto g = load_sample(*d, 2);
  CHECK(g[0] == expected(0));
  CHECK(g[15] == expected(240));
  CHECK(g[256 + 15] == expected(240));
  CHECK(g[512 + 15] == expected(240));
  REQUIRE_THROWS_WITH(d->load(6, std::vector<float>(768).data(), nullptr), Contains("out of range"));

  CHECK(open_dataset(dir.str(), 8, 1)->channels() == 1);

  TempDir grays;
  write_png(grays.file("g1.png"), 8, 8, 1, image(8, 8, 1, [](int, int, int) { return 3; }));
  write_png(grays.file("sub/g2.png"), 8, 8, 2, image(8, 8, 2, [](int, int, int) { return 9; }));
  const auto gd = open_dataset(grays.str(), 4);
  CHECK(gd->channels() == 1);  // every image grayscale (alpha or not)
  CHECK(open_dataset(grays.str(), 4, 3)->channels() == 3);
}

TEST_CASE("data: image folder decodes crop + area resize exactly (PNG is lossless)", "[data]") {
  TempDir dir;
  const uint8_t colors[3][3] = {{255, 0, 0}, {20, 140, 60}, {0, 0, 255}};
  write_png(dir.file("wide.png"), 96, 32, 3,
            image(96, 32, 3, [&](int x, int, int k) { return colors[x / 32][k]; }));
  const auto d = open_image_folder(dir.str(), 16);
  const auto v = load_sample(*d, 0);
  for (int k = 0; k < 3; ++k)
    for (int i = 0; i < 256; ++i) REQUIRE(v[size_t(k * 256 + i)] == expected(colors[1][k]));
}

TEST_CASE("data: an image that passes the probe but does not decode is skipped by the loader", "[data]") {
  TempDir dir;
  for (int i = 0; i < 6; ++i)
    write_png(dir.file("img" + std::to_string(i) + ".png"), 8, 8, 1,
              image(8, 8, 1, [&](int, int, int) { return i * 40; }));
  // A PNG cut after its header chunk: stbi_info reads the size, stbi_load finds no pixel data.
  auto bytes = read_bytes(dir.file("img2.png"));
  bytes.resize(33);
  write_bytes(dir.file("img2.png"), bytes);
  const auto d = open_image_folder(dir.str(), 4);
  REQUIRE(d->size() == 6);
  std::vector<float> out(16);
  CHECK_FALSE(d->load(2, out.data(), nullptr));

  for (int workers : {0, 2}) {
    DataLoader loader(*d, 2, 1, workers);  // 3 batches of 2: every image is visited
    loader.start_epoch(0);
    Batch b;
    std::multiset<float> seen;
    while (loader.next(b)) {
      for (int64_t r = 0; r < b.images.size(0); ++r) seen.insert(b.images.data<float>()[r * 16]);
      CHECK(b.images.size(0) == 2);
    }
    CHECK(seen.count(expected(80)) == 0);  // img2's value never appears
    CHECK(loader.skipped() == 1);
    CHECK(loader.skipped_names() == std::vector<std::string>{"img2.png"});
  }
}

TEST_CASE("data: image folder errors name the problem", "[data]") {
  TempDir dir;
  REQUIRE_THROWS_WITH(open_dataset((dir.path() / "missing").string(), 64),
                      Contains("does not exist") && Contains("missing"));
  REQUIRE_THROWS_WITH(open_dataset(dir.str(), 64),
                      Contains("no images (jpg, jpeg, png, bmp, tga) found under"));
  write_bytes(dir.file("readme.txt"), {'x'});
  REQUIRE_THROWS_WITH(open_dataset(dir.str(), 64), Contains("no images"));
  write_bytes(dir.file("bad.png"), {1, 2, 3, 4, 5, 6, 7, 8, 9});
  write_bytes(dir.file("bad2.jpg"), {0xFF, 0xD8, 0});
  REQUIRE_THROWS_WITH(open_dataset(dir.str(), 64),
                      Contains("none of the 2 image files") && Contains("bad.png"));
  write_png(dir.file("ok.png"), 4, 4, 1, image(4, 4, 1, [](int, int, int) { return 1; }));
  REQUIRE_THROWS_WITH(open_dataset(dir.str(), 64, 2), Contains("channels must be 0 (auto), 1"));
  REQUIRE_THROWS_WITH(open_dataset(dir.str(), 0), Contains("image size"));
  REQUIRE_THROWS_WITH(open_dataset(dir.file("ok.png"), 64), Contains("not a folder"));
  CHECK(open_dataset(dir.str(), 64)->size() == 1);
}

// ---------------------------------------------------------------------------------------------
// MNIST

namespace {

void put_u32(std::vector<uint8_t>& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(v >> s));
}

// An idx3 images file of n images of rows x cols, pixel (i, y, x) = (i * 50 + y * 10 + x) % 256,
// and the matching idx1 labels file.
std::vector<uint8_t> idx_images(uint32_t n, uint32_t rows, uint32_t cols, uint32_t magic = 2051) {
  std::vector<uint8_t> b;
  put_u32(b, magic);
  put_u32(b, n);
  put_u32(b, rows);
  put_u32(b, cols);
  for (uint32_t i = 0; i < n; ++i)
    for (uint32_t y = 0; y < rows; ++y)
      for (uint32_t x = 0; x < cols; ++x) b.push_back(uint8_t((i * 50 + y * 10 + x) % 256));
  return b;
}

std::vector<uint8_t> idx_labels(const std::vector<uint8_t>& labels) {
  std::vector<uint8_t> b;
  put_u32(b, 2049);
  put_u32(b, uint32_t(labels.size()));
  b.insert(b.end(), labels.begin(), labels.end());
  return b;
}

void write_gz(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f);
  REQUIRE(gzwrite(f, bytes.data(), unsigned(bytes.size())) == int(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

}  // namespace

TEST_CASE("data: MNIST idx files, raw", "[data]") {
  TempDir dir;
  write_bytes(dir.file("train-images-idx3-ubyte"), idx_images(3, 4, 4));
  write_bytes(dir.file("train-labels-idx1-ubyte"), idx_labels({7, 3, 1}));
  const auto d = open_dataset(dir.str(), 4);
  REQUIRE(d->size() == 3);
  CHECK(d->channels() == 1);
  CHECK_THAT(d->describe(), Contains("MNIST train") && Contains("3 images of 4x4") && Contains("1x4x4"));
  CHECK(d->name(2) == "MNIST train #2");
  for (int i = 0; i < 3; ++i) {
    int label = -5;
    const auto v = load_sample(*d, i, &label);
    CHECK(label == (std::vector<int>{7, 3, 1})[size_t(i)]);
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 4; ++x) REQUIRE(v[size_t(y * 4 + x)] == expected(i * 50 + y * 10 + x));
  }
  // Halved: the means of 2x2 blocks; with 3 channels, replicated.
  const auto half = open_mnist(dir.str(), "train", 2, 3);
  CHECK(half->channels() == 3);
  const auto v = load_sample(*half, 1);
  CHECK(v[0] == Approx(expected(50 + 5.5)).margin(1e-6));
  CHECK(v[3] == Approx(expected(50 + 27.5)).margin(1e-6));
  CHECK(v[4 + 3] == v[3]);
  CHECK(v[8 + 3] == v[3]);
  // Enlarged 4 -> 8 stays in range.
  require_in_range(load_sample(*open_mnist(dir.str(), "train", 8), 2));
}

TEST_CASE("data: MNIST idx files, gzipped, train preferred over t10k", "[data]") {
  TempDir dir;
  write_gz(dir.file("train-images-idx3-ubyte.gz"), idx_images(3, 5, 5));
  write_gz(dir.file("train-labels-idx1-ubyte.gz"), idx_labels({0, 1, 2}));
  write_gz(dir.file("t10k-images-idx3-ubyte.gz"), idx_images(2, 5, 5));
  write_gz(dir.file("t10k-labels-idx1-ubyte.gz"), idx_labels({9, 8}));
  const auto train = open_dataset(dir.str(), 5);
  CHECK(train->size() == 3);
  const auto test = open_mnist(dir.str(), "test", 5);
  REQUIRE(test->size() == 2);
  int label = -1;
  const auto v = load_sample(*test, 1, &label);
  CHECK(label == 8);
  CHECK(v[24] == expected(50 + 44));
  CHECK(has_mnist_split(dir.str(), "train"));
  REQUIRE_THROWS_WITH(open_mnist(dir.str(), "validation"), Contains("'train' or 'test'"));
}

TEST_CASE("data: corrupt MNIST files give errors naming the file", "[data]") {
  TempDir dir;
  const std::string images = dir.file("train-images-idx3-ubyte");
  const std::string labels = dir.file("train-labels-idx1-ubyte");
  write_bytes(labels, idx_labels({1, 2, 3}));

  write_bytes(images, idx_images(3, 4, 4, 2049));
  REQUIRE_THROWS_WITH(open_dataset(dir.str(), 4), Contains(images) && Contains("magic number 2049"));

  auto bytes = idx_images(3, 4, 4);
  bytes.resize(bytes.size() - 5);
  write_bytes(images, bytes);
  REQUIRE_THROWS_WITH(open_dataset(dir.str(), 4), Contains(images) && Contains("truncated"));

  bytes = idx_images(3, 4, 4);
  bytes.push_back(0);
  write_bytes(images, bytes);
  REQUIRE_THROWS_WITH(open_dataset(dir.str(), 4), Contains(images) && Contains("size mismatch"));

  write_bytes(images, idx_images(4, 4, 4));
  REQUIRE_THROWS_WITH(open_dataset(dir.str(), 4), Contains(labels) && Contains("3 labels"));

  // A gzip stream cut short, and one with a damaged body.
  fs::remove(images);
  const std::string gz = dir.file("train-images-idx3-ubyte.gz");
  write_gz(gz, idx_images(3, 4, 4));
  auto packed = read_bytes(gz);
  write_bytes(gz, std::vector<uint8_t>(packed.begin(), packed.begin() + long(packed.size() / 2)));
  REQUIRE_THROWS_WITH(open_dataset(dir.str(), 4), Contains(gz));
  for (size_t i = 12; i < packed.size() - 8; ++i) packed[i] ^= 0x5A;
  write_bytes(gz, packed);
  REQUIRE_THROWS_WITH(open_dataset(dir.str(), 4), Contains(gz));

  fs::remove(labels);
  write_gz(gz, idx_images(3, 4, 4));
  REQUIRE_THROWS_WITH(open_dataset(dir.str(), 4),
                      Contains("train-labels-idx1-ubyte") && Contains("not found"));
}

TEST_CASE("data: found by fuzzing: headers that claim more than the file holds fail before allocating it",
          "[data][fuzz]") {
  TempDir dir;
  // fuzz_mnist: an idx header claiming 2^27 - 1 images of 4x4 (2 GiB) over 16 bytes of pixels. The reader
  // now grows its buffer as data arrives, so this fails at the file's end instead of allocating 2 GiB.
  write_bytes(dir.file("train-labels-idx1-ubyte"), idx_labels({1, 2}));
  auto huge = idx_images(2, 4, 4);
  const uint32_t claimed = (1u << 27) - 1;
  for (int i = 0; i < 4; ++i) huge[size_t(4 + i)] = uint8_t(claimed >> (24 - 8 * i));
  write_bytes(dir.file("train-images-idx3-ubyte"), huge);
  REQUIRE_THROWS_WITH(open_dataset(dir.str(), 4), Contains("train-images-idx3-ubyte") && Contains("truncated"));

  // fuzz_image: a 30-byte TGA header claiming 65535 x 65535 pixels (16 GiB of RGBA) next to a real image: it
  // is skipped at the probe, named with the reason, and never handed to the decoder.
  TempDir images;
  const std::vector<uint8_t> tga = {0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 24, 0, 1, 2, 3};
  write_bytes(images.file("big.tga"), tga);
  write_png(images.file("ok.png"), 4, 4, 1, image(4, 4, 1, [](int x, int, int) { return x * 60; }));
  const auto d = open_dataset(images.str(), 4);
  CHECK(d->size() == 1);
  CHECK_THAT(d->describe(), Contains("skipped as unreadable: big.tga"));
  fs::remove(images.file("ok.png"));  // alone, the folder's error says why
  REQUIRE_THROWS_WITH(open_dataset(images.str(), 4), Contains("big.tga") && Contains("65535x65535 pixels"));
}

TEST_CASE("data: the real MNIST files", "[data]") {
  std::string folder;
  for (const char* candidate : {CUDAGAN_SOURCE_DIR "/../shared/data/mnist", CUDAGAN_SOURCE_DIR "/data/mnist"})
    if (has_mnist_split(candidate, "train")) folder = candidate;
  if (folder.empty()) {
    WARN("skipped: no MNIST idx files in shared/data/mnist or data/mnist (see data/README.md)");
    return;
  }
  const auto d = open_dataset(folder, 28);
  REQUIRE(d->size() == 60000);
  CHECK(d->channels() == 1);
  float lo = 1, hi = -1;
  for (int64_t i : {int64_t(0), int64_t(1), int64_t(59999)}) {
    int label = -1;
    const auto v = load_sample(*d, i, &label);
    if (i == 0) CHECK(label == 5);
    if (i == 1) CHECK(label == 0);
    lo = std::min(lo, *std::min_element(v.begin(), v.end()));
    hi = std::max(hi, *std::max_element(v.begin(), v.end()));
  }
  CHECK(lo == -1.0f);  // black background
  CHECK(hi == 1.0f);   // saturated strokes
  const auto test = open_mnist(folder, "test", 32, 3);
  CHECK(test->size() == 10000);
  int label = -1;
  require_in_range(load_sample(*test, 0, &label));
  CHECK(label == 7);
}

// ---------------------------------------------------------------------------------------------
// synthetic

TEST_CASE("data: the synthetic set is deterministic, varied and in range", "[data]") {
  const auto d = open_dataset("synthetic", 32);
  REQUIRE(d->size() == kSyntheticSize);
  CHECK(d->channels() == 3);
  CHECK_THAT(d->describe(), Contains("synthetic") && Contains("3x32x32"));
  int label = -1;
  const auto a = load_sample(*d, 17, &label);
  CHECK((label >= 0 && label <= 2));
  require_in_range(a);
  CHECK(load_sample(*d, 17) == a);
  CHECK(load_sample(*d, 18) != a);
  const auto [lo, hi] = std::minmax_element(a.begin(), a.end());
  CHECK(*hi - *lo > 0.5f);  // not a flat image
  std::set<int> labels;
  for (int64_t i = 0; i < 30; ++i) {
    load_sample(*d, i, &label);
    labels.insert(label);
  }
  CHECK(labels.size() == 3);
  // Resolution-independent: the 64-pixel image area-halved is close to the 32-pixel one.
  const auto big = load_sample(*open_synthetic(64), 17);
  double diff = 0;
  for (int k = 0; k < 3; ++k)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) {
        const float* p = big.data() + k * 4096 + 2 * y * 64 + 2 * x;
        diff += std::abs((p[0] + p[1] + p[64] + p[65]) / 4 - a[size_t(k * 1024 + y * 32 + x)]);
      }
  CHECK(diff / a.size() < 0.05);
  const auto gray = open_synthetic(8, 1, 5);
  CHECK(gray->channels() == 1);
  CHECK(gray->size() == 5);
  require_in_range(load_sample(*gray, 4));
  REQUIRE_THROWS_WITH(open_synthetic(8, 0, 0), Contains("at least 1"));
}

// ---------------------------------------------------------------------------------------------
// DataLoader

namespace {

// Sample i is filled with the value i and labelled i; samples in `bad` do not decode.
class IndexDataset final : public Dataset {
 public:
  explicit IndexDataset(int64_t n, std::set<int64_t> bad = {}, int sleep_us = 0)
      : n_(n), bad_(std::move(bad)), sleep_us_(sleep_us) {}
  int64_t size() const override { return n_; }
  int channels() const override { return 1; }
  int image_size() const override { return 2; }
  std::string describe() const override { return "index dataset"; }
  std::string name(int64_t index) const override { return "item" + std::to_string(index); }
  bool load(int64_t index, float* out, int* label) const override {
    ++loads;
    if (sleep_us_) std::this_thread::sleep_for(std::chrono::microseconds(sleep_us_));
    if (bad_.count(index)) return false;
    std::fill(out, out + 4, float(index));
    if (label) *label = int(index);
    return true;
  }
  mutable std::atomic<int64_t> loads{0};

 private:
  int64_t n_;
  std::set<int64_t> bad_;
  int sleep_us_;
};

// The labels of every batch of `epoch`, checking that each image holds its label.
std::vector<std::vector<int>> run_epoch(DataLoader& loader, int64_t epoch, int64_t skip = 0) {
  loader.start_epoch(epoch);
  loader.skip(skip);
  std::vector<std::vector<int>> batches;
  Batch b;
  while (loader.next(b)) {
    REQUIRE(b.images.shape() == Shape{int64_t(b.labels.size()), 1, 2, 2});
    for (size_t r = 0; r < b.labels.size(); ++r)
      REQUIRE(b.images.data<float>()[r * 4 + 3] == float(b.labels[r]));
    batches.push_back(b.labels);
  }
  return batches;
}

std::vector<int> flatten(const std::vector<std::vector<int>>& batches) {
  std::vector<int> all;
  for (const auto& b : batches) all.insert(all.end(), b.begin(), b.end());
  return all;
}

}  // namespace

TEST_CASE("data: loader: every sample exactly once per epoch, in a (seed, epoch) order", "[data]") {
  IndexDataset d(103);
  DataLoader keep(d, 10, 42, 2, false);
  REQUIRE(keep.batches_per_epoch() == 11);
  const auto e0 = run_epoch(keep, 0);
  REQUIRE(e0.size() == 11);
  CHECK(e0.back().size() == 3);
  auto all = flatten(e0);
  std::sort(all.begin(), all.end());
  for (int i = 0; i < 103; ++i) REQUIRE(all[size_t(i)] == i);

  DataLoader drop(d, 10, 42, 0);
  REQUIRE(drop.batches_per_epoch() == 10);
  const auto d0 = run_epoch(drop, 0);
  REQUIRE(d0.size() == 10);
  const auto flat = flatten(d0);
  CHECK(std::set<int>(flat.begin(), flat.end()).size() == 100);
  CHECK(std::vector<std::vector<int>>(e0.begin(), e0.begin() + 10) == d0);  // same order either way

  CHECK(run_epoch(drop, 0) == d0);  // the same (seed, epoch): the same order
  CHECK(run_epoch(drop, 1) != d0);  // another epoch: another order
  DataLoader other_seed(d, 10, 43, 0);
  CHECK(run_epoch(other_seed, 0) != d0);
  const auto perm = DataLoader::epoch_permutation(103, 42, 0);
  CHECK(flatten(d0) == std::vector<int>(perm.begin(), perm.begin() + 100));
  CHECK(drop.images_per_second() > 0);
}

TEST_CASE("data: loader: identical batches with 0 and 3 workers, on real decoding too", "[data]") {
  IndexDataset d(257, {}, 20);
  DataLoader serial(d, 16, 7, 0);
  DataLoader parallel(d, 16, 7, 3);
  for (int64_t epoch : {0, 3}) CHECK(run_epoch(serial, epoch) == run_epoch(parallel, epoch));

  const auto s = open_synthetic(16, 3, 64);
  DataLoader a(*s, 8, 1, 0), b(*s, 8, 1, 3);
  a.start_epoch(2);
  b.start_epoch(2);
  Batch x, y;
  while (a.next(x)) {
    REQUIRE(b.next(y));
    REQUIRE(x.labels == y.labels);
    REQUIRE(x.images.to_float_vector() == y.images.to_float_vector());
  }
  CHECK_FALSE(b.next(y));
}

TEST_CASE("data: loader: skip() lands where an uninterrupted epoch is, without decoding", "[data]") {
  IndexDataset d(200);
  for (int workers : {0, 2}) {
    DataLoader full(d, 8, 5, workers);
    const auto all = run_epoch(full, 4);
    DataLoader resumed(d, 8, 5, workers);
    d.loads = 0;
    const auto rest = run_epoch(resumed, 4, 10);
    CHECK(rest == std::vector<std::vector<int>>(all.begin() + 10, all.end()));
    CHECK(d.loads == int64_t(rest.size()) * 8);  // nothing skipped was decoded
    CHECK(resumed.next_batch() == 25);
    resumed.start_epoch(4);
    resumed.skip(1000);  // past the end: the epoch is over
    Batch b;
    CHECK_FALSE(resumed.next(b));
    REQUIRE_THROWS_WITH(resumed.skip(-1), Contains("negative"));
  }
}

TEST_CASE("data: loader: undecodable samples are replaced by the next in the permutation", "[data]") {
  const std::set<int64_t> bad = {5, 17, 18};
  IndexDataset d(42, bad);
  // Without drop_last every position is visited, so every bad sample is met.
  DataLoader serial(d, 6, 9, 0, false), parallel(d, 6, 9, 3, false);
  const auto batches = run_epoch(serial, 1);
  CHECK(run_epoch(parallel, 1) == batches);
  const auto perm = DataLoader::epoch_permutation(42, 9, 1);
  std::vector<int> expect;
  for (size_t p = 0; p < 42; ++p) {
    size_t q = p;
    while (bad.count(perm[q % 42])) ++q;
    expect.push_back(int(perm[q % 42]));
  }
  CHECK(flatten(batches) == expect);
  for (const auto& b : batches) CHECK(b.size() == 6);
  CHECK(serial.skipped() == 3);
  run_epoch(serial, 2);
  CHECK(serial.skipped() == 3);  // distinct samples, not occurrences
  const auto names = serial.skipped_names();
  CHECK(std::set<std::string>(names.begin(), names.end()) ==
        std::set<std::string>{"item5", "item17", "item18"});

  std::set<int64_t> all;
  for (int64_t i = 0; i < 10; ++i) all.insert(i);
  IndexDataset hopeless(10, all);
  for (int workers : {0, 2}) {
    DataLoader loader(hopeless, 4, 1, workers);
    Batch b;
    REQUIRE_THROWS_WITH(loader.next(b), Contains("every one of the 10 samples failed"));
  }
}

TEST_CASE("data: loader: destruction mid-epoch and restarting epochs mid-way", "[data]") {
  IndexDataset d(400, {}, 200);
  const auto t0 = std::chrono::steady_clock::now();
  {
    DataLoader loader(d, 16, 3, 3);
    loader.start_epoch(0);
    Batch b;
    REQUIRE(loader.next(b));
  }  // joins its workers while they prefetch
  {
    DataLoader idle(d, 16, 3, 2);  // never started
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(seconds < 2.0);

  IndexDataset fast(64);
  DataLoader loader(fast, 8, 11, 2);
  loader.start_epoch(0);
  Batch b;
  REQUIRE(loader.next(b));
  REQUIRE(loader.next(b));
  DataLoader fresh(fast, 8, 11, 0);
  CHECK(run_epoch(loader, 1) == run_epoch(fresh, 1));  // epoch 0's in-flight work is dropped
  CHECK(loader.epoch() == 1);

  REQUIRE_THROWS_WITH(DataLoader(fast, 0, 1, 0), Contains("batch size"));
  REQUIRE_THROWS_WITH(DataLoader(fast, 4, 1, -1), Contains("workers"));
}

TEST_CASE("data: loader: shards of a batch, one per rank, together are the unsharded batch", "[data]") {
  const std::set<int64_t> bad = {7, 30};  // replacements happen by position, so shards agree on them too
  IndexDataset d(101, bad);
  DataLoader whole(d, 12, 9, 0);
  const auto expected = run_epoch(whole, 2);
  for (int ranks : {2, 3, 4}) {
    std::vector<std::vector<std::vector<int>>> shards;
    for (int r = 0; r < ranks; ++r) {
      DataLoader part(d, 12, 9, r % 2 == 0 ? 0 : 2, true, Shard{r, ranks});  // workers or not: the same
      CHECK(part.batch_size() == 12);
      CHECK(part.shard_batch_size() == 12 / ranks);
      CHECK(part.batches_per_epoch() == whole.batches_per_epoch());
      shards.push_back(run_epoch(part, 2));
    }
    for (size_t k = 0; k < expected.size(); ++k) {
      std::vector<int> joined;
      for (const auto& shard : shards) {
        REQUIRE(shard.size() == expected.size());
        joined.insert(joined.end(), shard[k].begin(), shard[k].end());
      }
      CHECK(joined == expected[k]);
    }
  }
  // Resuming a shard mid-epoch lands on the same share.
  DataLoader part(d, 12, 9, 0, true, Shard{1, 3});
  const auto all = run_epoch(part, 2);
  CHECK(run_epoch(part, 2, 3) == std::vector<std::vector<int>>(all.begin() + 3, all.end()));
}

TEST_CASE("data: loader: impossible shards are refused with the reason", "[data]") {
  IndexDataset d(50);
  CHECK_THROWS_WITH(DataLoader(d, 10, 1, 0, true, Shard{0, 3}), Contains("does not divide into 3 equal shares"));
  CHECK_THROWS_WITH(DataLoader(d, 10, 1, 0, true, Shard{2, 2}), Contains("must be in [0, count)"));
  CHECK_THROWS_WITH(DataLoader(d, 10, 1, 0, false, Shard{0, 2}), Contains("drops the last partial batch"));
}
