// The built-in synthetic set: procedurally drawn images (soft coloured discs on a two-colour
// gradient) that need no files, so that training, tests and benchmarks run anywhere. Every image is
// a pure function of its index, drawn in coordinates in [0, 1]^2, so it is the same scene at any
// resolution and decoding is thread-safe by construction.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cudagan/data/data.h"
#include "cudagan/core/error.h"
#include "cudagan/core/rng.h"
#include "data/common.h"

namespace cudagan::data {

namespace {

constexpr uint64_t kSalt = 0x5EED5A17C0FFEEull;  // keeps image i unrelated to a user's Rng(i)
constexpr int kMaxDiscs = 3;

struct Rgb {
  float r, g, b;
};

Rgb mix(const Rgb& a, const Rgb& b, float t) {
  return {a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t};
}

// A saturated colour of hue h in [0, 1) (HSV with S = 0.75, V = 0.95).
Rgb hue_color(double h) {
  const float v = 0.95f, s = 0.75f;
  auto channel = [&](double n) {
    const double k = std::fmod(n + h * 6.0, 6.0);
    return float(v - v * s * std::max(0.0, std::min({k, 4.0 - k, 1.0})));
  };
  return {channel(5.0), channel(3.0), channel(1.0)};
}

struct Disc {
  float cx, cy, radius;
  Rgb color;
};

struct Scene {
  Rgb from, to;          // gradient end colours
  float dx = 0, dy = 0;  // gradient direction (unit)
  int discs = 0;
  Disc disc[kMaxDiscs];
};

Scene make_scene(int64_t index) {
  Rng g(kSalt ^ uint64_t(index));
  auto u = [&](double lo, double hi) { return float(lo + (hi - lo) * g.uniform()); };
  Scene s;
  // Muted, darker backgrounds so the brighter discs stand out.
  s.from = {u(0.05, 0.6), u(0.05, 0.6), u(0.05, 0.6)};
  s.to = {u(0.05, 0.6), u(0.05, 0.6), u(0.05, 0.6)};
  const double angle = 6.283185307179586 * g.uniform();
  s.dx = float(std::cos(angle));
  s.dy = float(std::sin(angle));
  s.discs = 1 + int(g.next_u64() % kMaxDiscs);
  for (int i = 0; i < s.discs; ++i)
    s.disc[i] = {u(0.2, 0.8), u(0.2, 0.8), u(0.08, 0.22), hue_color(g.uniform())};
  return s;
}

class SyntheticDataset final : public Dataset {
 public:
  SyntheticDataset(int image_size, int channels, int64_t size)
      : image_size_(image_size), channels_(channels == 0 ? 3 : channels), size_(size) {}

  int64_t size() const override { return size_; }
  int channels() const override { return channels_; }
  int image_size() const override { return image_size_; }
  std::string name(int64_t index) const override { return cudagan::detail::concat("synthetic #", index); }
  std::string describe() const override {
    return cudagan::detail::concat("synthetic: ", size_, " generated images (soft discs on gradients) as ",
                                   internal::sample_shape_str(channels_, image_size_));
  }

  bool load(int64_t index, float* out, int* label) const override {
    CUDAGAN_CHECK(index >= 0 && index < size_, "sample index ", index, " out of range for ", size_,
                  " synthetic images");
    const Scene scene = make_scene(index);
    const int n = image_size_;
    const size_t plane = size_t(n) * n;
    for (int y = 0; y < n; ++y) {
      for (int x = 0; x < n; ++x) {
        const float px = (x + 0.5f) / n, py = (y + 0.5f) / n;
        const float t =
            std::clamp(((px - 0.5f) * scene.dx + (py - 0.5f) * scene.dy) / 1.4f + 0.5f, 0.0f, 1.0f);
        Rgb c = mix(scene.from, scene.to, t);
        for (int i = 0; i < scene.discs; ++i) {
          const Disc& d = scene.disc[i];
          // Soft edge: 20% of the radius, and never sharper than a pixel (anti-aliasing).
          const float edge = 0.2f * d.radius + 1.0f / n;
          const float dist = std::hypot(px - d.cx, py - d.cy);
          const float a = std::clamp((d.radius - dist) / edge + 0.5f, 0.0f, 1.0f);
          c = mix(c, d.color, a * a * (3.0f - 2.0f * a));  // smoothstep
        }
        const size_t at = size_t(y) * n + x;
        if (channels_ == 3) {
          out[at] = 2.0f * c.r - 1.0f;
          out[plane + at] = 2.0f * c.g - 1.0f;
          out[2 * plane + at] = 2.0f * c.b - 1.0f;
        } else {
          out[at] = 2.0f * (0.299f * c.r + 0.587f * c.g + 0.114f * c.b) - 1.0f;
        }
      }
    }
    if (label) *label = scene.discs - 1;
    return true;
  }

 private:
  int image_size_, channels_;
  int64_t size_;
};

}  // namespace

std::unique_ptr<Dataset> open_synthetic(int image_size, int channels, int64_t size) {
  internal::check_image_size(image_size);
  internal::check_channels(channels);
  CUDAGAN_CHECK(size >= 1, "a synthetic dataset needs at least 1 image, got ", size);
  return std::make_unique<SyntheticDataset>(image_size, channels, size);
}

}  // namespace cudagan::data
