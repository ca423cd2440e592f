// The pixel pipeline of every image dataset: 8-bit interleaved HWC -> center crop -> separable
// resize (area when shrinking, bilinear when enlarging) -> channel conversion -> CHW in [-1, 1].
// The conversion is linear, so applying it after the resize equals applying it before, on fewer
// pixels.
//
// The resize is our own rather than stb_image_resize's default, which shrinks with a Mitchell
// filter (negative lobes, ringing): an exact area filter is what torchvision's antialiased resize
// and OpenCV's INTER_AREA approximate, gives exact block means for integer factors (testable), and
// costs little next to JPEG decoding (about a seventh of stbi_load's time for a CelebA image).
#include <algorithm>
#include <cmath>
#include <vector>

#include "cudagan/data/data.h"
#include "cudagan/core/error.h"
#include "data/common.h"

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

// One row through the resampler: dst[o * KC + k] = sum_t w_t * src[(first[o] + t) * stride + k],
// for the first KC of the stride interleaved channels (KC fixed at compile time: the inner loops
// unroll).
template <int KC, class T>
void resample_row(const Resampler& r, const T* src, int stride, float* dst) {
  for (size_t o = 0; o < r.first.size(); ++o) {
    const float* w = r.weights.data() + r.offset[o];
    const T* s = src + size_t(r.first[o]) * stride;
    float acc[KC] = {};
    for (int t = 0; t < r.count[o]; ++t)
      for (int k = 0; k < KC; ++k) acc[k] += w[t] * float(s[size_t(t) * stride + k]);
    for (int k = 0; k < KC; ++k) dst[o * KC + k] = acc[k];
  }
}

template <class T>
void resample_row(const Resampler& r, const T* src, int stride, int kc, float* dst) {
  if (kc == 1) {
    resample_row<1>(r, src, stride, dst);
  } else {
    resample_row<3>(r, src, stride, dst);
  }
}

// dst = sum_t w_t * rows[first[o] + t] over whole rows of n values: the pass that vectorizes.
template <class T>
void combine_rows(const Resampler& r, int o, const T* rows, size_t row_stride, int n, float* dst) {
  std::fill(dst, dst + n, 0.0f);
  const float* w = r.weights.data() + r.offset[o];
  for (int t = 0; t < r.count[o]; ++t) {
    const T* src = rows + size_t(r.first[o] + t) * row_stride;
    const float wt = w[t];
    for (int i = 0; i < n; ++i) dst[i] += wt * float(src[i]);
  }
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
  const uint8_t* crop = pixels + (size_t((height - side) / 2) * width + (width - side) / 2) * channels;
  const size_t stride = size_t(width) * channels;  // bytes from one row to the next
  const Resampler rs = make_resampler(side, out_size);
  // Only the channels that matter are resampled (gray, or R, G, B: alpha is dropped); the channel
  // conversion is linear, so it is applied last, on the small image.
  const int kc = channels >= 3 ? 3 : 1;
  const size_t plane = size_t(out_size) * out_size;
  // Output row oy from its out_size x kc interleaved values: channel mapping, then [0, 255] ->
  // [-1, 1] (a convex combination stays in range up to rounding: clamp that away).
  auto emit = [&](int oy, const float* v) {
    auto scaled = [](float x) { return std::clamp(x / 127.5f - 1.0f, -1.0f, 1.0f); };
    float* dst = out + size_t(oy) * out_size;
    for (int x = 0; x < out_size; ++x) {
      const float* p = v + size_t(x) * kc;
      if (kc == 1) {  // gray (+ alpha): replicated into every output channel
        for (int c = 0; c < out_channels; ++c) dst[c * plane + x] = scaled(p[0]);
      } else if (out_channels == 3) {
        for (int c = 0; c < 3; ++c) dst[c * plane + x] = scaled(p[c]);
      } else {  // ITU-R BT.601 luma
        dst[x] = scaled(0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2]);
      }
    }
  };
  // The vertical pass runs over whole contiguous rows (vectorizable), the horizontal one gathers
  // a few taps per output (scalar): the order that gives the horizontal pass fewer rows wins, i.e.
  // vertical first when shrinking, horizontal first when enlarging.
  const int row = out_size * kc;
  if (side > out_size) {
    std::vector<float> line(size_t(side) * channels), resampled(static_cast<size_t>(row));
    for (int oy = 0; oy < out_size; ++oy) {
      combine_rows(rs, oy, crop, stride, side * channels, line.data());
      resample_row(rs, line.data(), channels, kc, resampled.data());
      emit(oy, resampled.data());
    }
  } else {
    std::vector<float> across(size_t(side) * row), line(static_cast<size_t>(row));
    for (int y = 0; y < side; ++y)
      resample_row(rs, crop + y * stride, channels, kc, across.data() + size_t(y) * row);
    for (int oy = 0; oy < out_size; ++oy) {
      combine_rows(rs, oy, across.data(), size_t(row), row, line.data());
      emit(oy, line.data());
    }
  }
}

}  // namespace cudagan::data
