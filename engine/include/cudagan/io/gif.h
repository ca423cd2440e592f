// An animated GIF built frame by frame: how a training run shows its fixed-noise samples
// improving epoch after epoch (progress.gif). Frames are colour-quantized as they are added, so
// the animation holds one byte per pixel and save() can be called again after every epoch.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "cudagan/io/image_io.h"

namespace cudagan {

class GifAnimation {
 public:
  // Adds a frame: 1 channel (gray, kept exact with a 256-level gray palette) or 3 (RGB: exact when
  // the frame has at most 256 colours, otherwise quantized to 256 by median cut + k-means). Every
  // frame must have the size of the first; throws cudagan::Error otherwise.
  void add_frame(const Image& frame);

  // Writes all frames as an animated GIF, atomically; `delay_centiseconds` per frame (0..65535),
  // repeating forever when `loop`, playing once otherwise. Throws cudagan::Error naming the path
  // when there are no frames or the file cannot be written.
  void save(const std::string& path, int delay_centiseconds = 50, bool loop = true) const;

  size_t frame_count() const { return frames_.size(); }
  int width() const { return width_; }
  int height() const { return height_; }
  void clear();

 private:
  struct Frame {
    std::vector<std::array<uint8_t, 3>> palette;  // 2..256 entries, a power of two
    std::vector<uint8_t> indices;                 // width * height palette indices
  };
  std::vector<Frame> frames_;
  int width_ = 0, height_ = 0;
};

}  // namespace cudagan
