#include "cudagan/digit_classifier.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "cudagan/core/autograd.h"
#include "cudagan/core/error.h"
#include "cudagan/data/data.h"
#include "cudagan/io/safetensors.h"
#include "cudagan/ops/ops.h"

namespace cudagan::digits {

Classifier::Classifier(Rng& gen) {
  body_ = register_module("body", std::make_shared<nn::Sequential>());
  body_->emplace<nn::Conv2d>(gen, 1, 32, 4, 2, 1);  // 32 -> 16
  body_->emplace<nn::LeakyReLU>(0.2);
  body_->emplace<nn::Conv2d>(gen, 32, 64, 4, 2, 1, false);  // -> 8
  body_->emplace<nn::BatchNorm2d>(64);
  body_->emplace<nn::LeakyReLU>(0.2);
  body_->emplace<nn::Conv2d>(gen, 64, 128, 4, 2, 1, false);  // -> 4
  body_->emplace<nn::BatchNorm2d>(128);
  body_->emplace<nn::LeakyReLU>(0.2);
  body_->emplace<nn::Flatten>();
  body_->emplace<nn::Linear>(gen, 128 * 4 * 4, kFeatures);
  body_->emplace<nn::LeakyReLU>(0.2);
  head_ = register_module("head", std::make_shared<nn::Linear>(gen, kFeatures, kClasses));
}

Tensor Classifier::features(const Tensor& images) {
  CUDAGAN_CHECK(images.dim() == 4 && images.size(1) == 1 && images.size(2) == kImageSize &&
                    images.size(3) == kImageSize,
                "digit classifier: images must be [N, 1, 32, 32], got ", shape_str(images.shape()),
                "; convert them with digits::to_classifier_input");
  return (*body_)(images);
}

Tensor Classifier::logits(const Tensor& features) { return (*head_)(features); }

void save_classifier(const std::string& path, const Classifier& c, const std::map<std::string, std::string>& metadata) {
  nn::NamedTensors all = c.named_parameters();
  for (auto& b : c.named_buffers()) all.push_back(b);
  std::map<std::string, std::string> meta = metadata;
  meta["model"] = "cudagan digit classifier";
  save_safetensors(path, all, meta);
}

std::unique_ptr<Classifier> load_classifier(const std::string& path, Device device,
                                            std::map<std::string, std::string>* metadata) {
  const SafetensorsFile f = load_safetensors(path);
  auto it = f.metadata.find("model");
  CUDAGAN_CHECK(it != f.metadata.end() && it->second == "cudagan digit classifier", "'", path,
                "' is not a digit classifier written by train_digit_classifier");
  Rng unused(0);
  auto c = std::make_unique<Classifier>(unused);
  nn::NamedTensors all = c->named_parameters();
  for (auto& b : c->named_buffers()) all.push_back(b);
  for (auto& [name, t] : all)
    f.load_into(name, t, "it was written for a different network than this version's digits::Classifier");
  c->eval();
  c->to(device);
  if (metadata) *metadata = f.metadata;
  return c;
}

Tensor to_classifier_input(const Tensor& images) {
  CUDAGAN_CHECK(images.defined() && images.dim() == 4 && (images.size(1) == 1 || images.size(1) == 3) &&
                    images.size(2) == images.size(3),
                "digit classifier: images must be [N, 1 or 3, S, S], got ",
                images.defined() ? shape_str(images.shape()) : std::string("an undefined tensor"));
  const int64_t n = images.size(0), c = images.size(1), s = images.size(2);
  const std::vector<float> v = images.to_float_vector();
  const int64_t plane = s * s;
  std::vector<float> gray(size_t(n * plane));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < plane; ++p) {
      const float* img = v.data() + i * c * plane;
      gray[size_t(i * plane + p)] =
          c == 1 ? img[p] : 0.299f * img[p] + 0.587f * img[plane + p] + 0.114f * img[2 * plane + p];
    }
  if (s == kImageSize) return Tensor::from_vector(gray, {n, 1, kImageSize, kImageSize});
  std::vector<float> out(size_t(n * kImageSize * kImageSize));
  std::vector<uint8_t> pixels(static_cast<size_t>(plane));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t p = 0; p < plane; ++p) {
      const float x = std::clamp(gray[size_t(i * plane + p)], -1.0f, 1.0f);
      pixels[size_t(p)] = uint8_t(std::lround((x + 1.0f) * 127.5f));
    }
    data::to_chw(pixels.data(), int(s), int(s), 1, 1, kImageSize, out.data() + i * kImageSize * kImageSize);
  }
  return Tensor::from_vector(out, {n, 1, kImageSize, kImageSize});
}

struct Evaluator::Outputs {
  Tensor features;                  // [N, kFeatures] on the CPU
  Quality quality;                  // without fcd
};

Evaluator::Outputs Evaluator::run(const Tensor& images) const {
  CUDAGAN_CHECK(images.defined() && images.dim() == 4 && images.size(0) >= 2,
                "digit quality: needs at least 2 images [N, C, S, S]");
  const std::vector<float> input = to_classifier_input(images).to_float_vector();
  const int64_t n = images.size(0), per_image = int64_t(kImageSize) * kImageSize;
  const Device device = classifier_->parameters().front().device();
  NoGradGuard no_grad;
  constexpr int64_t kChunk = 500;
  std::vector<float> features, logits;
  features.reserve(size_t(n * kFeatures));
  logits.reserve(size_t(n * kClasses));
  for (int64_t first = 0; first < n; first += kChunk) {
    const int64_t count = std::min(kChunk, n - first);
    const Tensor x = Tensor::from_vector(
        std::vector<float>(input.begin() + first * per_image, input.begin() + (first + count) * per_image),
        {count, 1, kImageSize, kImageSize}, device);
    const Tensor f = classifier_->features(x);
    const std::vector<float> fv = f.to_float_vector(), lv = classifier_->logits(f).to_float_vector();
    features.insert(features.end(), fv.begin(), fv.end());
    logits.insert(logits.end(), lv.begin(), lv.end());
  }
  Outputs o;
  o.features = Tensor::from_vector(features, {n, kFeatures});
  o.quality.images = n;
  double confidence = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* z = logits.data() + i * kClasses;
    const int best = int(std::max_element(z, z + kClasses) - z);
    double total = 0;  // softmax's denominator relative to the largest logit: the top probability is 1 / total
    for (int k = 0; k < kClasses; ++k) total += std::exp(double(z[k]) - double(z[best]));
    confidence += 1.0 / total;
    ++o.quality.predicted[size_t(best)];
  }
  o.quality.mean_confidence = confidence / double(n);
  double entropy = 0;
  for (int64_t count : o.quality.predicted)
    if (count > 0) {
      const double p = double(count) / double(n);
      entropy -= p * std::log2(p);
    }
  o.quality.class_entropy_bits = entropy;
  return o;
}

Evaluator::Evaluator(std::shared_ptr<Classifier> classifier, const Tensor& reference)
    : classifier_(std::move(classifier)) {
  CUDAGAN_CHECK(classifier_, "digit quality: no classifier");
  classifier_->eval();
  Outputs o = run(reference);
  reference_stats_ = metrics::gaussian_stats(o.features);
  reference_quality_ = o.quality;
}

Quality Evaluator::measure(const Tensor& images) const {
  Outputs o = run(images);
  o.quality.fcd = metrics::frechet_distance(reference_stats_, metrics::gaussian_stats(o.features));
  return o.quality;
}

std::string describe(const Quality& q) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "FCD %.3f, confidence %.3f, class entropy %.2f bits", q.fcd, q.mean_confidence,
                q.class_entropy_bits);
  return buf;
}

}  // namespace cudagan::digits
