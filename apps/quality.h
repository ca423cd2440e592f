// How dcgan_train and dcgan_eval measure a generator's images: the sliced Wasserstein distance
// (cudagan/metrics/swd.h) between a fixed set of real images and as many generated ones.
#pragma once

#include <cstdint>
#include <string>

#include "cudagan/data/data.h"
#include "cudagan/dcgan.h"
#include "cudagan/metrics/swd.h"

namespace cudagan::apps {

// The real images an evaluation compares against: min(count, data.size()) images of `data`, the first of
// the order that `seed` gives, decoded once: [n, C, S, S] on the CPU.
Tensor evaluation_images(const data::Dataset& data, int64_t count, uint64_t seed);

// g's images for `noise` as dcgan_train draws its sample grids: in training mode with this batch's
// statistics, leaving the running statistics as they were (in eval mode with the running ones), outside
// autograd, and without a synchronised batchnorm's collective (nn::LocalBatchNorm: rank 0 draws alone).
Tensor draw_images(dcgan::Generator& g, const Tensor& noise);

// `count` images of g from fixed noise (drawn from `seed`), in batches of `batch`, each drawn by draw_images.
// [count, C, S, S] on the CPU.
Tensor generated_images(dcgan::Generator& g, int64_t count, int batch, uint64_t seed, Device device);

// "SWD x1e3 22.51 (64: 30.13, 32: 21.20, 16: 16.21)"
std::string describe(const metrics::SwdResult& r);

}  // namespace cudagan::apps
