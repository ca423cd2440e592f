// The sliced Wasserstein distance (SWD) between two sets of images, as Progressive GAN defines it (Karras et
// al. 2018, metrics/sliced_wasserstein.py of tkarras/progressive_growing_of_gans): how far apart the
// distributions of local 7x7 patches are, at each level of a Laplacian pyramid from the full resolution down
// to 16x16. Small for two samples of one distribution; it grows as fine detail (the high levels) or coarse
// structure (the 16x16 level) departs from the other set's.
//
//   images [N, C, S, S] float32 in [-1, 1] (the engine's convention), C = 1 or 3 (gray counts as the RGB
//   image with three equal channels), S a power of two >= min_resolution
//   -> Laplacian pyramid per image, levels S, S/2, ..., min_resolution (the last one the Gaussian image)
//   -> per level: patches_per_image random patch_size^2 x 3 patches per image ("descriptors"), normalised per
//      channel over the whole set (mean 0, std 1) -> per level: repeats x directions random unit directions,
//      both sets' descriptors projected on each, sorted, mean |difference| (the 1-D Wasserstein-1 distance
//      between the two projected distributions), averaged over the directions.
//   Result: per level x 1e3, and their mean, the numbers the paper's tables report.
//
// Differences from the reference, both deliberate: the random choices come from cudagan::Rng seeded by
// SwdOptions::seed (so a run is repeatable, and swd_patch_corners / swd_directions give them to other
// implementations); and a channel whose descriptors do not vary (a blank set) is only centred, not divided
// by its zero std, where the reference returns NaN. The per-channel normalisation makes the result
// independent of the value range: [-1, 1] images give what the reference gives for them in [0, 255], given
// the same random choices.
//
// Where it runs: the pyramid on the device of each set's tensor (conv2d with fixed kernels), the projections
// with linear() on that device; patch extraction, sorting (the engine has no sort op) and the means on the
// host. Cost and memory: see sliced_wasserstein below.
#pragma once

#include <cstdint>
#include <vector>

#include "cudagan/core/tensor.h"

namespace cudagan::metrics {

// A channel whose descriptors have a std at or below this (images in [-1, 1]) holds no signal, only rounding:
// it is centred and not scaled (see the top of this file).
inline constexpr double kSwdMinStd = 1e-6;

struct SwdOptions {
  int patches_per_image = 128;  // descriptors per image and level
  int patch_size = 7;           // descriptors are 3 x patch_size x patch_size values
  int directions = 128;         // random directions per repeat
  int repeats = 4;              // the result averages repeats x directions projections
  int min_resolution = 16;      // the smallest pyramid level
  uint64_t seed = 1;            // every random choice (patch positions, directions) derives from it
  int64_t chunk_images = 256;   // images per pyramid pass: bounds the device memory of the pyramid
};

struct SwdResult {
  std::vector<int> resolutions;        // S, S/2, ..., min_resolution
  std::vector<double> per_level_x1e3;  // SWD x 1e3 at each of them
  double average_x1e3 = 0;             // their mean
};

// The SWD between the sets a and b (shapes as at the top; a and b may be on different devices). Either may
// require a gradient (a generator's output): nothing is recorded. Throws cudagan::Error with a one-line
// message for an undefined or empty set, sets of different shapes (the method needs equal counts), a dtype
// other than float32, non-square images, C other than 1 or 3, S not a power of two >= min_resolution, and
// options out of range.
//
// Cost, with D = repeats x directions = 512, P = patches_per_image = 128, d = 3 x patch_size^2 = 147 and
// M = N x P descriptors per set and level: the pyramid, with dense separable operators (O(S) per pixel where
// a 5-tap stencil is O(1), but two GEMM-shaped convolutions), about 1.7 S^3 C multiply-adds per image in all,
// below the projections' cost up to S = 128; per level, the projections, 2 M d D multiply-adds per set
// (19 MFLOP per image), and 2 D sorts of M floats (radix sort, on the OpenMP team).
// Memory: the levels run one after another. On the host one level of one set holds its M x d float
// descriptors (N x 75 kB: 617 MB for 8192 images, whatever S is) plus at most 128 MB of projections. On the
// set's device: the next Gaussian level of the whole set (a quarter of the images' size), one chunk's pyramid
// step, and, for a set on a GPU, a copy of its descriptors and a group of projections.
// Measured on the 2-core development machine (CPU, both cores): 1024 vs 1024 gray 32x32 images in 1.6 s;
// 8192 vs 8192 RGB 64x64 in 36 s at a peak of 3.0 GB resident, 0.8 GB of it the two sets themselves.
SwdResult sliced_wasserstein(const Tensor& a, const Tensor& b, const SwdOptions& o = {});

// The pyramid's two resampling steps, on images [N, C, H, W] (H, W >= 3), on their device, with the 5x5
// Gaussian kernel [1 4 6 4 1]^T [1 4 6 4 1] / 256 and mirrored borders (..., x2, x1 | x0, x1, ...: the
// reference's scipy.ndimage mode 'mirror'). Throws cudagan::Error for other shapes.
Tensor pyramid_down(const Tensor& images);  // blur, then every second pixel -> [N, C, (H+1)/2, (W+1)/2]
Tensor pyramid_up(const Tensor& images);    // zeros between the pixels, then blur x 4 -> [N, C, 2H, 2W]

// The Laplacian pyramid of images [N, C, S, S] (S a power of two >= min_resolution >= 4), on their device:
// level i = G_i - pyramid_up(G_{i+1}), G_0 = the images, G_{i+1} = pyramid_down(G_i); the last level is the
// smallest Gaussian image itself. Sizes S, S/2, ..., down to the smallest >= min_resolution.
std::vector<Tensor> laplacian_pyramid(const Tensor& images, int min_resolution = 16);

// The random choices sliced_wasserstein makes, for an independent implementation to use the same ones.
// The resolutions of the levels for images of size S (S, S/2, ..., >= o.min_resolution).
std::vector<int> swd_resolutions(int image_size, const SwdOptions& o = {});
// The top-left corners of the patches taken from set `set` (0 = a, 1 = b) at pyramid level `level` (0 = the
// full resolution) whose images are resolution x resolution: num_images x patches_per_image pairs (y, x),
// image by image, each coordinate uniform in [0, resolution - patch_size].
std::vector<int32_t> swd_patch_corners(int set, int level, int64_t num_images, int resolution,
                                       const SwdOptions& o = {});
// The directions used at pyramid level `level`: [repeats x directions, 3 x patch_size^2] float32 on the CPU,
// unit rows (Gaussian, then normalised), row r x directions + j being direction j of repeat r; the columns in
// the descriptors' order (channel, row, column of the patch).
Tensor swd_directions(int level, const SwdOptions& o = {});

}  // namespace cudagan::metrics
