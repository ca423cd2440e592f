// What the Winograd passes (conv_winograd.cpp: forward and backward data; conv_winograd_backward_weight.cpp)
// share: the transform points and the tiling of an output plane into 2x2 tiles. Internal to the kernels.
#pragma once

#include <cstdint>

namespace cudagan::cpu::winograd {

constexpr int kPoints = 9;  // transform points xi = (r, s), r, s in {0, 1, 2}

// Whether transform point r reaches output position (tap) o: A^T = [1 1 0; 0 1 1], and G = A^T's transpose
// for the weights, so the same pattern.
inline bool reaches(int point, int out) { return point == 1 || point == 2 * out; }

// The tiles of one image's plane: ty x tx tiles of 2x2 outputs, on a `rows` x `cols` output plane.
struct Tiling {
  int64_t rows, cols, ty, tx, per_image;
  Tiling(int64_t r, int64_t c) : rows(r), cols(c), ty((r + 1) / 2), tx((c + 1) / 2), per_image(ty * tx) {}
};

}  // namespace cudagan::cpu::winograd
