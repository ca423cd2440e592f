// What the Winograd passes (conv_winograd.cpp: forward and backward data; conv_winograd_backward_weight.cpp)
// share: the transform points and the tiling of an output plane into 2x2 tiles. Internal to the kernels.
#pragma once

#include <cstdint>

namespace cudagan::cpu::winograd {

constexpr int kPoints = 9;  // transform points xi = (r, s), r, s in {0, 1, 2}

// Whether transform point r reaches output position (tap) o: A^T = [1 1 0; 0 1 1], and G = A^T's transpose
// for the weights, so the same pattern.
inline bool reaches(int point, int out) { return point == 1 || point == 2 * out; }

// (B^T d B)[r][s] at out[(r * 3 + s) * stride] for one 3x3 input window d, B^T = [1 -1 0; 0 1 0; 0 -1 1]:
// the portable path's input transform (winograd_avx512.cpp's store_input_transform: the same additions).
inline void input_transform(const float d[3][3], float* out, int64_t stride) {
  float t[3][3];  // B^T d
  for (int q = 0; q < 3; ++q) {
    t[0][q] = d[0][q] - d[1][q];
    t[1][q] = d[1][q];
    t[2][q] = d[2][q] - d[1][q];
  }
  for (int r = 0; r < 3; ++r) {  // (B^T d) B
    out[(r * 3 + 0) * stride] = t[r][0] - t[r][1];
    out[(r * 3 + 1) * stride] = t[r][1];
    out[(r * 3 + 2) * stride] = t[r][2] - t[r][1];
  }
}

// The tiles of one image's plane: ty x tx tiles of 2x2 outputs, on a `rows` x `cols` output plane.
struct Tiling {
  int64_t rows, cols, ty, tx, per_image;
  Tiling(int64_t r, int64_t c) : rows(r), cols(c), ty((r + 1) / 2), tx((c + 1) / 2), per_image(ty * tx) {}
};

}  // namespace cudagan::cpu::winograd
