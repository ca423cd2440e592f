// The pixel pipeline of every image dataset: 8-bit interleaved HWC -> center crop -> channel
// conversion -> separable resize (area when shrinking, bilinear when enlarging) -> CHW in [-1, 1].
//
// The resize is our own rather than stb_image_resize's default: stbir shrinks with a Mitchell
// filter (negative lobes, ringing) and would need a per-call allocation of its own; an exact area
// filter is what torchvision's antialiased resize and OpenCV's INTER_AREA approximate, gives exact
// block means for integer factors (testable), and costs little next to JPEG decoding.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cudagan/data.h"
#include "cudagan/error.h"
#include "data_common.h"

namespace cudagan::data {

namespace internal {

void check_image_size(int image_size) {
  CUDAGAN_CHECK(image_size >= 1, "image size must be at least 1 pixel, got ", image_size,
                ": pass a positive image size");
}

void check_channels(int channels) {
  CUDAGAN_CHECK(channels == 0 || channels == 1 || channels == 3, "channels must be 0 (auto), 1 (grayscale)",
                " or 3 (RGB), got ", channels);
}

std::string sample_shape_str(int channels, int image_size) {
  return cudagan::detail::concat(channels, "x", image_size, "x", image_size);
}

}  // namespace internal

std::string Dataset::name(int64_t index) const { return cudagan::detail::concat("sample #", index); }

namespace {

// The weights of a 1-D resampling from n to m samples, for each output o: taps
// weights[offset[o] .. offset[o] + count[o]) applied to inputs first[o], first[o] + 1, ...
struct Resampler {
  std::vector<int> first, count, offset;
  std::vector<float> weights;
};

Resampler make_resampler(int n, int m) {
  Resampler r;
  r.first.resize(m);
  r.count.resize(m);
  r.offset.resize(m);
  const double scale = double(n) / m;
  for (int o = 0; o < m; ++o) {
    r.offset[o] = int(r.weights.size());
    if (n >= m) {
      // Area: output o averages the input interval [o * scale, (o + 1) * scale), each input pixel
      // weighted by its overlap with that interval.
      const double lo = o * scale, hi = (o + 1) * scale;
      const int i0 = int(std::floor(lo));
      const int i1 = std::min(n, int(std::ceil(hi)));
      r.first[o] = i0;
      for (int i = i0; i < i1; ++i) {
        const double overlap = std::min(hi, double(i + 1)) - std::max(lo, double(i));
        r.weights.push_back(float(overlap / scale));
      }
    } else {
      // Bilinear with half-pixel centres (align_corners=False), edges clamped.
      const double x = std::max(0.0, (o + 0.5) * scale - 0.5);
      const int i0 = std::min(int(x), n - 1);
      const int i1 = std::min(i0 + 1, n - 1);
      const float f = float(x - i0);
      r.first[o] = i0;
      if (i1 == i0 || f == 0.0f) {
        r.weights.push_back(1.0f);
      } else {
        r.weights.push_back(1.0f - f);
        r.weights.push_back(f);
      }
    }
    r.count[o] = int(r.weights.size()) - r.offset[o];
  }
  return r;
}

}  // namespace

void to_chw(const uint8_t* pixels, int width, int height, int channels, int out_channels, int out_size,
            float* out) {
  CUDAGAN_CHECK(width > 0 && height > 0, "to_chw: image of ", width, "x", height, " pixels has no pixels");
  CUDAGAN_CHECK(channels >= 1 && channels <= 4, "to_chw: ", channels, " channels per pixel; expected 1 to 4");
  CUDAGAN_CHECK(out_channels == 1 || out_channels == 3, "to_chw: out_channels must be 1 or 3, got ",
                out_channels);
  internal::check_image_size(out_size);

  const int side = std::min(width, height);
  const int x0 = (width - side) / 2, y0 = (height - side) / 2;
  const Resampler rs = make_resampler(side, out_size);
  // Vertical pass first: it runs over whole contiguous rows of 8-bit pixels (vectorizable) and
  // leaves the horizontal pass, with its short gathers, only out_size rows. Only the channels that
  // matter are resampled horizontally (gray, or R, G, B: alpha is dropped); the channel conversion
  // is linear, so it is applied last, on the small image.
  const int kc = channels >= 3 ? 3 : 1;
  const int span = side * channels;  // the crop's bytes in one row
  std::vector<float> line(static_cast<size_t>(span));
  const size_t plane = size_t(out_size) * out_size;
  // v in [0, 255] -> [-1, 1]; a convex combination stays in range up to rounding: clamp that away.
  auto scaled = [](float v) { return std::clamp(v / 127.5f - 1.0f, -1.0f, 1.0f); };
  for (int oy = 0; oy < out_size; ++oy) {
    std::fill(line.begin(), line.end(), 0.0f);
    const float* wy = rs.weights.data() + rs.offset[oy];
    for (int t = 0; t < rs.count[oy]; ++t) {
      const uint8_t* src = pixels + (size_t(y0 + rs.first[oy] + t) * width + x0) * channels;
      const float w = wy[t];
      for (int i = 0; i < span; ++i) line[size_t(i)] += w * float(src[i]);
    }
    float* dst = out + size_t(oy) * out_size;
    for (int ox = 0; ox < out_size; ++ox) {
      const float* wx = rs.weights.data() + rs.offset[ox];
      const float* p = line.data() + size_t(rs.first[ox]) * channels;
      float v[3] = {0.0f, 0.0f, 0.0f};
      for (int t = 0; t < rs.count[ox]; ++t)
        for (int k = 0; k < kc; ++k) v[k] += wx[t] * p[size_t(t) * channels + k];
      if (kc == 1) {  // gray (+ alpha): replicated into every output channel
        for (int c = 0; c < out_channels; ++c) dst[c * plane + ox] = scaled(v[0]);
      } else if (out_channels == 3) {
        for (int c = 0; c < 3; ++c) dst[c * plane + ox] = scaled(v[c]);
      } else {  // ITU-R BT.601 luma
        dst[ox] = scaled(0.299f * v[0] + 0.587f * v[1] + 0.114f * v[2]);
      }
    }
  }
}

}  // namespace cudagan::data
