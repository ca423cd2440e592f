// How dcgan_train and dcgan_eval measure a generator's images: the sliced Wasserstein distance
// (cudagan/metrics/swd.h) between a fixed set of real images and as many generated ones, and, for MNIST runs,
// the digit classifier's FCD, confidence and class entropy against MNIST's test split
// (cudagan/digit_classifier.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cudagan/data/data.h"
#include "cudagan/dcgan.h"
#include "cudagan/digit_classifier.h"
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

// The digit classifier file: `explicit_path` when given (an error when it does not exist), else the first that
// exists of <executable>/../share/cudagan/digit_classifier.safetensors (an installed cudagan) and the source
// tree's data/digit_classifier/digit_classifier.safetensors (a build tree); "" when neither does.
std::string find_digit_classifier(const std::string& explicit_path);

// The digit metrics for a run on `data_path` with images of `arch`, or null with *why set when they do not
// apply: the data is not an MNIST folder with a test split, or no classifier was found. The reference set is
// min(count, 10000) digits of MNIST's test split at the run's image size and channels (converted to the
// classifier's input as the generated ones are), in the order `seed` gives.
std::unique_ptr<digits::Evaluator> digit_evaluator(const std::string& data_path, const dcgan::Architecture& arch,
                                                   int64_t count, uint64_t seed, const std::string& classifier,
                                                   Device device, std::string* why);

}  // namespace cudagan::apps
