// Line plots: size, background, each series' colour in the plot, the legend, and the awkward
// inputs (NaN/Inf, a single point, a constant, many points, nothing at all).
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>

#include "cudagan/core/error.h"
#include "cudagan/io/plot.h"
#include "support/temp_dir.h"

using namespace cudagan;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

using cudagan::test::TempDir;

// Pixels within a small distance of `colour` in every channel.
int count_colour(const Image& image, std::array<uint8_t, 3> colour, int tolerance = 8) {
  int n = 0;
  for (int y = 0; y < image.height; ++y)
    for (int x = 0; x < image.width; ++x) {
      bool near = true;
      for (int c = 0; c < 3; ++c)
        near = near && std::abs(int(image.at(x, y, c)) - int(colour[size_t(c)])) <= tolerance;
      n += near;
    }
  return n;
}

Series curve(const std::string& name, size_t n, double phase, std::array<uint8_t, 3> colour) {
  Series s{name, {}, {}, colour};
  for (size_t i = 0; i < n; ++i) {
    s.x.push_back(double(i));
    s.y.push_back(1.0 + 0.5 * std::sin(0.05 * double(i) + phase) + 0.2 * std::exp(-double(i) / 50.0));
  }
  return s;
}

}  // namespace

TEST_CASE("plot: a loss plot has its size, a white background and every series' colour", "[io]") {
  TempDir dir;
  const std::string path = dir.file("loss.png");
  const std::array<uint8_t, 3> red = {214, 39, 40}, blue = {31, 119, 180};
  save_line_plot(path, {curve("Loss_D", 300, 0.0, red), curve("Loss_G", 300, 2.0, blue)},
                 {"DCGAN losses", "step", "loss", 800, 450});
  const Image image = read_image(path);
  CHECK(image.width == 800);
  CHECK(image.height == 450);
  CHECK(image.channels == 3);
  CHECK(count_colour(image, {255, 255, 255}, 0) > 800 * 450 / 2);  // mostly background
  CHECK(count_colour(image, red) > 300);
  CHECK(count_colour(image, blue) > 300);
  CHECK(count_colour(image, {34, 34, 34}, 30) > 200);  // text: ticks, title, labels
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);
}

TEST_CASE("plot: the legend names a series even where it draws no line, NaN and Inf are skipped", "[io]") {
  const std::array<uint8_t, 3> green = {44, 160, 44}, purple = {148, 103, 189}, pink = {227, 119, 194};
  const double nan = std::nan(""), inf = INFINITY;
  Series data = curve("data", 200, 0.0, green);
  data.y[50] = nan;
  data.y[51] = inf;
  data.x[120] = -inf;
  // Only NaN: nothing to draw, so its colour can come only from its legend entry.
  Series ghost{"only NaN", {0, 1, 2}, {nan, nan, nan}, purple};
  Series unnamed{"", {0, 1}, {nan, nan}, pink};  // no name: no legend entry, no pixels at all
  const Image image = render_line_plot({data, ghost, unnamed}, {"", "", "", 640, 360});
  CHECK(image.width == 640);
  CHECK(image.height == 360);
  CHECK(count_colour(image, green) > 200);
  const int legend_swatch = count_colour(image, purple);
  CHECK(legend_swatch > 20);
  CHECK(legend_swatch < 200);
  CHECK(count_colour(image, pink, 2) == 0);
}

TEST_CASE("plot: a single point, a constant, no data, and many points", "[io]") {
  const std::array<uint8_t, 3> orange = {255, 127, 14}, blue = {31, 119, 180};
  const Image one = render_line_plot({Series{"one", {3.0}, {0.25}, orange}});
  CHECK(count_colour(one, orange) > 10);

  const Image constant = render_line_plot({Series{"flat", {0, 1, 2, 3}, {2, 2, 2, 2}, blue}});
  CHECK(count_colour(constant, blue) > 300);

  const Image empty = render_line_plot({}, {"nothing yet", "step", "loss"});
  CHECK(empty.width == 800);
  CHECK(count_colour(empty, {34, 34, 34}, 30) > 50);  // axes and labels still drawn

  // 200k noisy points: thinned to the per-column envelope, so this stays fast.
  Series noisy{"noisy", {}, {}, blue};
  std::mt19937 rng(1);
  std::normal_distribution<double> noise(0.0, 0.3);
  for (int i = 0; i < 200000; ++i) {
    noisy.x.push_back(i);
    noisy.y.push_back(std::exp(-i / 40000.0) + noise(rng));
  }
  const auto start = std::chrono::steady_clock::now();
  const Image dense = render_line_plot({noisy});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(seconds < 2.0);
  CHECK(count_colour(dense, blue) > 20000);  // the envelope is a filled band
}

TEST_CASE("plot: extreme ranges render without overflow", "[io]") {
  const std::array<uint8_t, 3> blue = {31, 119, 180};
  for (const auto& ys :
       {std::vector<double>{-1e300, 1e300, 0}, std::vector<double>{1e-300, 2e-300, 3e-300},
        std::vector<double>{1e15, 1e15 + 1, 1e15}, std::vector<double>{1.0000001, 1.0000002, 1}}) {
    INFO("y from " << ys[0]);
    const Image image = render_line_plot({Series{"s", {0, 1e6, 2e6}, ys, blue}});
    CHECK(count_colour(image, blue) > 100);
  }
}

TEST_CASE("plot: bad arguments and failed writes say what is wrong", "[io]") {
  REQUIRE_THROWS_WITH(render_line_plot({Series{"bad", {1, 2}, {1}, {0, 0, 0}}}),
                      Contains("'bad'") && Contains("2 x values but 1 y values"));
  REQUIRE_THROWS_WITH(render_line_plot({}, {"", "", "", 100, 100}), Contains("100x100"));
  TempDir dir;
  const std::string bad = dir.file("missing/loss.png");
  REQUIRE_THROWS_WITH(save_line_plot(bad, {}), Contains("cannot write '" + bad + "'"));
  CHECK(fs::is_empty(dir.path));
}
