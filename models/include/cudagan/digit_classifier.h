// A small MNIST digit classifier, trained by cudagan itself (apps/train_digit_classifier.cpp; the committed
// weights and how they were made: data/digit_classifier/README.md), and the quality of generated digits
// measured with it: the Frechet distance of its penultimate features to real digits (FCD, FID's recipe with a
// digit classifier in place of Inception), its mean confidence, and the entropy of the classes it predicts.
//
//   Classifier  [N, 1, 32, 32] in [-1, 1] -> Conv(1->32, 4, 2, 1) + LeakyReLU(0.2)
//               -> Conv(32->64, 4, 2, 1) + BN + LeakyReLU(0.2) -> Conv(64->128, 4, 2, 1) + BN + LeakyReLU(0.2)
//               -> Flatten -> Linear(2048->128) + LeakyReLU(0.2)   = features [N, 128]
//               -> Linear(128->10)                                 = logits [N, 10]
// 428 K parameters (1.7 MB as float32). Images are 32x32 as dcgan_train's --image-size 32 delivers MNIST
// (28x28 resized bilinearly); other sizes are resized by to_classifier_input.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <string>

#include "cudagan/core/rng.h"
#include "cudagan/metrics/frechet.h"
#include "cudagan/nn/modules.h"

namespace cudagan::digits {

inline constexpr int kImageSize = 32;
inline constexpr int kClasses = 10;
inline constexpr int kFeatures = 128;

class Classifier : public nn::Module {
 public:
  explicit Classifier(Rng& gen);  // PyTorch's default initialisation from gen, on the CPU
  Tensor features(const Tensor& images);   // [N, 1, 32, 32] -> [N, kFeatures]
  Tensor logits(const Tensor& features);   // [N, kFeatures] -> [N, kClasses]
  Tensor forward(const Tensor& images) override { return logits(features(images)); }

 private:
  std::shared_ptr<nn::Sequential> body_;
  std::shared_ptr<nn::Linear> head_;
};

// Saves the parameters and buffers (named as named_parameters() names them) with `metadata` (how the weights
// were made), atomically. Throws cudagan::Error as save_safetensors does.
void save_classifier(const std::string& path, const Classifier& c, const std::map<std::string, std::string>& metadata);
// Loads a file save_classifier wrote, in eval mode, on `device`; its metadata into *metadata when given.
// Throws cudagan::Error with one line naming the file for a missing, damaged or mismatched file.
std::unique_ptr<Classifier> load_classifier(const std::string& path, Device device,
                                            std::map<std::string, std::string>* metadata = nullptr);

// Images [N, C, S, S] in [-1, 1] (C 1 or 3, any S) as the classifier takes them: [N, 1, 32, 32] on the CPU.
// RGB becomes gray by ITU-R 601 luma; S = 32 is used as it is, any other size is quantised to 8 bits and
// resized by data::to_chw (area filter when shrinking, bilinear when enlarging), the path MNIST's 28x28
// images take to 32x32. Throws cudagan::Error for another rank or channel count.
Tensor to_classifier_input(const Tensor& images);

struct Quality {
  int64_t images = 0;
  double fcd = 0;                    // Frechet distance of the features to the reference set (lower is better)
  double mean_confidence = 0;        // mean over images of the largest softmax probability
  double class_entropy_bits = 0;     // entropy of the histogram of predicted classes; log2(10) = 3.32 is uniform
  std::array<int64_t, kClasses> predicted{};  // how many images were classified as each digit
};

// Measures image sets against a fixed reference set of real digits (its features' statistics computed once).
class Evaluator {
 public:
  // reference: real digits [N, C, S, S] in [-1, 1] (N >= 2), e.g. MNIST's test split.
  Evaluator(std::shared_ptr<Classifier> classifier, const Tensor& reference);
  // images: [N, C, S, S] in [-1, 1], N >= 2. Runs the classifier in eval mode on its device, outside autograd.
  Quality measure(const Tensor& images) const;
  // The reference set's own confidence, class entropy and counts (fcd 0): what real digits score.
  const Quality& reference() const { return reference_quality_; }

 private:
  struct Outputs;
  Outputs run(const Tensor& images) const;
  std::shared_ptr<Classifier> classifier_;
  metrics::GaussianStats reference_stats_;
  Quality reference_quality_;
};

// "FCD 3.21, confidence 0.962, class entropy 3.31 bits"
std::string describe(const Quality& q);

}  // namespace cudagan::digits
