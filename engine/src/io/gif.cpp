// Animated GIF output with giflib: the encoder writes into memory through a custom output
// function, and the bytes go to disk with the engine's atomic writer.
#include "cudagan/io/gif.h"

#include <gif_lib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <unordered_map>

#include "cudagan/io/atomic_file.h"
#include "cudagan/core/error.h"

namespace cudagan {
namespace {

size_t padded_palette_size(size_t colours) {
  size_t n = 2;  // a GIF colour table holds 2^k entries, k >= 1
  while (n < colours) n *= 2;
  return n;
}

// The frame's own colours when there are at most 256 of them (then the GIF is lossless), or an
// empty palette when there are more.
bool exact_palette(const Image& rgb, std::vector<std::array<uint8_t, 3>>& palette,
                   std::vector<uint8_t>& indices) {
  std::unordered_map<uint32_t, uint8_t> index_of;
  const size_t pixels = size_t(rgb.width) * rgb.height;
  indices.resize(pixels);
  for (size_t i = 0; i < pixels; ++i) {
    const uint8_t* p = &rgb.pixels[i * 3];
    const uint32_t key = uint32_t(p[0]) << 16 | uint32_t(p[1]) << 8 | p[2];
    auto it = index_of.find(key);
    if (it == index_of.end()) {
      if (palette.size() == 256) return false;
      it = index_of.emplace(key, uint8_t(palette.size())).first;
      palette.push_back({p[0], p[1], p[2]});
    }
    indices[i] = it->second;
  }
  return true;
}

// More than 256 colours: median cut, then a few rounds of k-means. giflib's own quantizer
// (GifQuantizeBuffer) works on 5 bits per channel and leaves errors of up to ~50 levels on smooth
// gradients, which is most of what a GAN's samples are; this one works on a histogram of 6 bits
// per channel, whose bins keep their exact mean colour, and the k-means rounds pull each palette
// entry to the centre of the pixels it serves.
struct Bin {
  double sum[3] = {0, 0, 0};
  double count = 0;
  float mean(int c) const { return float(sum[c] / count); }
};

struct Box {
  size_t begin, end;  // a range of `order`
  double error;       // summed squared distance of its pixels to their mean, on the widest axis
  int axis;
};

Box make_box(const std::vector<Bin>& bins, const std::vector<uint32_t>& order, size_t begin, size_t end) {
  double n = 0, s[3] = {0, 0, 0}, s2[3] = {0, 0, 0};
  for (size_t i = begin; i < end; ++i) {
    const Bin& b = bins[order[i]];
    n += b.count;
    for (int c = 0; c < 3; ++c) {
      s[c] += b.sum[c];
      s2[c] += double(b.mean(c)) * b.mean(c) * b.count;
    }
  }
  Box box{begin, end, -1, 0};
  for (int c = 0; c < 3; ++c) {
    const double sse = s2[c] - s[c] * s[c] / n;
    if (sse > box.error) box = {begin, end, sse, c};
  }
  return box;
}

void quantized_palette(const Image& rgb, std::vector<std::array<uint8_t, 3>>& palette,
                       std::vector<uint8_t>& indices) {
  const size_t pixels = size_t(rgb.width) * rgb.height;
  auto bin_key = [&](size_t i) {
    const uint8_t* p = &rgb.pixels[i * 3];
    return uint32_t(p[0] >> 2) << 12 | uint32_t(p[1] >> 2) << 6 | uint32_t(p[2] >> 2);
  };
  std::vector<uint32_t> slot(1u << 18, UINT32_MAX);
  std::vector<Bin> bins;
  std::vector<uint32_t> keys;  // each bin's histogram key
  for (size_t i = 0; i < pixels; ++i) {
    uint32_t& s = slot[bin_key(i)];
    if (s == UINT32_MAX) {
      s = uint32_t(bins.size());
      bins.emplace_back();
      keys.push_back(bin_key(i));
    }
    for (int c = 0; c < 3; ++c) bins[s].sum[c] += rgb.pixels[i * 3 + size_t(c)];
    bins[s].count += 1;
  }

  // Median cut: split the box with the largest error at the pixel-weighted median of its axis.
  std::vector<uint32_t> order(bins.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = uint32_t(i);
  std::vector<Box> boxes{make_box(bins, order, 0, order.size())};
  while (boxes.size() < 256) {
    size_t worst = boxes.size();
    for (size_t i = 0; i < boxes.size(); ++i)
      if (boxes[i].end - boxes[i].begin >= 2 && boxes[i].error > 0 &&
          (worst == boxes.size() || boxes[i].error > boxes[worst].error))
        worst = i;
    if (worst == boxes.size()) break;
    const Box box = boxes[worst];
    // Bins sort by their 6-bit coordinate on the axis: exact enough for a median, and cheap.
    const int shift = 12 - 6 * box.axis;
    std::sort(order.begin() + long(box.begin), order.begin() + long(box.end),
              [&](uint32_t a, uint32_t b) { return (keys[a] >> shift & 63) < (keys[b] >> shift & 63); });
    double total = 0, seen = 0;
    for (size_t i = box.begin; i < box.end; ++i) total += bins[order[i]].count;
    size_t split = box.begin + 1;
    for (size_t i = box.begin; i + 1 < box.end && seen + bins[order[i]].count <= total / 2; ++i) {
      seen += bins[order[i]].count;
      split = i + 1;
    }
    boxes[worst] = make_box(bins, order, box.begin, split);
    boxes.push_back(make_box(bins, order, split, box.end));
  }
  std::vector<std::array<float, 3>> centre(boxes.size(), {0, 0, 0});
  for (size_t k = 0; k < boxes.size(); ++k) {
    double n = 0, s[3] = {0, 0, 0};
    for (size_t i = boxes[k].begin; i < boxes[k].end; ++i) {
      n += bins[order[i]].count;
      for (int c = 0; c < 3; ++c) s[c] += bins[order[i]].sum[c];
    }
    for (int c = 0; c < 3; ++c) centre[k][size_t(c)] = float(s[c] / n);
  }

  // k-means rounds over the bins; the last assignment uses the palette as it will be stored. The
  // centres are kept as separate channel arrays so the distance loop vectorizes.
  const size_t k_count = centre.size();
  std::vector<float> mean(bins.size() * 3), cr(k_count), cg(k_count), cb(k_count);
  for (size_t b = 0; b < bins.size(); ++b)
    for (int c = 0; c < 3; ++c) mean[b * 3 + size_t(c)] = bins[b].mean(c);
  std::vector<uint8_t> nearest(bins.size());
  auto assign = [&]() {
    for (size_t k = 0; k < k_count; ++k) {
      cr[k] = centre[k][0];
      cg[k] = centre[k][1];
      cb[k] = centre[k][2];
    }
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < bins.size(); ++b) {
      float d[256];
      const float r = mean[b * 3], g = mean[b * 3 + 1], bl = mean[b * 3 + 2];
      for (size_t k = 0; k < k_count; ++k)
        d[k] = (r - cr[k]) * (r - cr[k]) + (g - cg[k]) * (g - cg[k]) + (bl - cb[k]) * (bl - cb[k]);
      nearest[b] = uint8_t(std::min_element(d, d + k_count) - d);
    }
  };
  // A noisy frame fills up to 2^18 bins; fewer rounds then keep it well under a second.
  const int rounds = bins.size() > 65536 ? 1 : 4;
  for (int round = 0; round < rounds; ++round) {
    assign();
    std::vector<std::array<double, 4>> acc(k_count, {0, 0, 0, 0});
    for (size_t b = 0; b < bins.size(); ++b) {
      for (int c = 0; c < 3; ++c) acc[nearest[b]][size_t(c)] += bins[b].sum[c];
      acc[nearest[b]][3] += bins[b].count;
    }
    for (size_t k = 0; k < k_count; ++k)
      if (acc[k][3] > 0)
        for (int c = 0; c < 3; ++c) centre[k][size_t(c)] = float(acc[k][size_t(c)] / acc[k][3]);
  }
  for (auto& c : centre)
    for (float& v : c) v = std::round(v);
  assign();
  palette.clear();
  for (const auto& c : centre) palette.push_back({uint8_t(c[0]), uint8_t(c[1]), uint8_t(c[2])});
  indices.resize(pixels);
  for (size_t i = 0; i < pixels; ++i) indices[i] = nearest[slot[bin_key(i)]];
}

struct GifCloser {
  void operator()(GifFileType* gif) const {
    int err = 0;
    EGifCloseFile(gif, &err);
  }
};
using GifHandle = std::unique_ptr<GifFileType, GifCloser>;

int append_output(GifFileType* gif, const GifByteType* data, int len) {
  auto* out = static_cast<std::vector<uint8_t>*>(gif->UserData);
  out->insert(out->end(), data, data + len);
  return len;
}

struct MapDeleter {
  void operator()(ColorMapObject* map) const { GifFreeMapObject(map); }
};

std::unique_ptr<ColorMapObject, MapDeleter> make_map(const std::vector<std::array<uint8_t, 3>>& palette) {
  std::vector<GifColorType> colours(padded_palette_size(palette.size()), GifColorType{0, 0, 0});
  for (size_t i = 0; i < palette.size(); ++i) colours[i] = {palette[i][0], palette[i][1], palette[i][2]};
  ColorMapObject* map = GifMakeMapObject(int(colours.size()), colours.data());
  CUDAGAN_CHECK(map, "GIF colour map allocation failed");
  return std::unique_ptr<ColorMapObject, MapDeleter>(map);
}

}  // namespace

void GifAnimation::add_frame(const Image& frame) {
  CUDAGAN_CHECK(frame.channels == 1 || frame.channels == 3,
                "GifAnimation: frames must be gray (1 channel) or RGB (3), got ", frame.channels,
                " channels");
  CUDAGAN_CHECK(frame.width > 0 && frame.height > 0 && frame.width <= 65535 && frame.height <= 65535,
                "GifAnimation: frame size ", frame.width, "x", frame.height, " is not 1..65535 on each side");
  CUDAGAN_CHECK(frame.pixels.size() == size_t(frame.width) * frame.height * frame.channels,
                "GifAnimation: the frame holds ", frame.pixels.size(),
                " bytes, not width * height * channels");
  CUDAGAN_CHECK(frames_.empty() || (frame.width == width_ && frame.height == height_), "GifAnimation: frame ",
                frames_.size(), " is ", frame.width, "x", frame.height, " but the animation is ", width_, "x",
                height_);
  Frame f;
  if (frame.channels == 1) {
    for (int v = 0; v < 256; ++v) f.palette.push_back({uint8_t(v), uint8_t(v), uint8_t(v)});
    f.indices = frame.pixels;
  } else if (!exact_palette(frame, f.palette, f.indices)) {
    quantized_palette(frame, f.palette, f.indices);
  }
  width_ = frame.width;
  height_ = frame.height;
  frames_.push_back(std::move(f));
}

void GifAnimation::clear() {
  frames_.clear();
  width_ = height_ = 0;
}

void GifAnimation::save(const std::string& path, int delay_centiseconds, bool loop) const {
  CUDAGAN_CHECK(!frames_.empty(), "cannot write '", path, "': the animation has no frames");
  CUDAGAN_CHECK(delay_centiseconds >= 0 && delay_centiseconds <= 65535, "cannot write '", path,
                "': the frame delay must be 0..65535 centiseconds, got ", delay_centiseconds);
  std::vector<uint8_t> bytes;
  int err = 0;
  GifHandle gif(EGifOpen(&bytes, append_output, &err));
  auto check = [&](int status, const char* what) {
    CUDAGAN_CHECK(status == GIF_OK, "cannot write '", path, "': giflib failed to ", what, ": ",
                  GifErrorString(gif->Error));
  };
  CUDAGAN_CHECK(gif, "cannot write '", path, "': giflib: ", GifErrorString(err));
  EGifSetGifVersion(gif.get(), true);  // GIF89a: needed for the delay and loop extensions

  check(EGifPutScreenDesc(gif.get(), width_, height_, 8, 0, make_map(frames_[0].palette).get()),
        "write the screen descriptor");
  if (loop) {
    // The NETSCAPE2.0 application extension: sub-block {1, loop count 0 = forever (little-endian)}.
    const uint8_t loop_block[3] = {1, 0, 0};
    check(EGifPutExtensionLeader(gif.get(), APPLICATION_EXT_FUNC_CODE), "start the loop extension");
    check(EGifPutExtensionBlock(gif.get(), 11, "NETSCAPE2.0"), "write the loop extension");
    check(EGifPutExtensionBlock(gif.get(), 3, loop_block), "write the loop extension");
    check(EGifPutExtensionTrailer(gif.get()), "finish the loop extension");
  }
  GraphicsControlBlock gcb{};
  gcb.DisposalMode = DISPOSE_DO_NOT;  // every frame covers the whole canvas
  gcb.UserInputFlag = false;
  gcb.DelayTime = delay_centiseconds;
  gcb.TransparentColor = NO_TRANSPARENT_COLOR;
  GifByteType gcb_bytes[4];
  const size_t gcb_len = EGifGCBToExtension(&gcb, gcb_bytes);
  std::vector<GifPixelType> row;

  for (const Frame& frame : frames_) {
    check(EGifPutExtension(gif.get(), GRAPHICS_EXT_FUNC_CODE, int(gcb_len), gcb_bytes),
          "write a frame delay");
    check(EGifPutImageDesc(gif.get(), 0, 0, width_, height_, false, make_map(frame.palette).get()),
          "write an image descriptor");
    // EGifPutLine masks the line in place, so it gets a copy: save() leaves the frames untouched.
    for (int y = 0; y < height_; ++y) {
      row.assign(frame.indices.begin() + long(y) * width_, frame.indices.begin() + long(y + 1) * width_);
      check(EGifPutLine(gif.get(), row.data(), width_), "encode a frame");
    }
  }
  // Closing writes the trailer and frees the encoder whatever happens.
  const int status = EGifCloseFile(gif.release(), &err);
  CUDAGAN_CHECK(status == GIF_OK, "cannot write '", path,
                "': giflib failed to finish the file: ", GifErrorString(err));
  detail::write_file_atomically(path, bytes.data(), bytes.size());
}

}  // namespace cudagan
