// The digit classifier and the digit metrics (cudagan/digit_classifier.h): shapes, saving and loading, the
// committed weights' test accuracy (as data/digit_classifier/README.md states it), and the metric on real data:
// two sets of real digits are close, noise, blank images and one class alone are far, and blur moves the FCD
// up in order; the class entropy shows a single class; resizing to the classifier's input.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "cudagan/core/autograd.h"
#include "cudagan/data/data.h"
#include "cudagan/digit_classifier.h"
#include "cudagan/io/safetensors.h"
#include "cudagan/ops/ops.h"
#include "support/temp_dir.h"

using namespace cudagan;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

const std::string kMnist = std::string(CUDAGAN_SOURCE_DIR) + "/data/mnist";
const std::string kWeights = std::string(CUDAGAN_SOURCE_DIR) + "/data/digit_classifier/digit_classifier.safetensors";

// Samples [first, first + count) of a dataset whose label passes `keep` (all when null), as [n, C, S, S].
Tensor load(const data::Dataset& d, int64_t first, int64_t count, int only_label = -1) {
  std::vector<float> v;
  std::vector<float> one(size_t(d.sample_numel()));
  int64_t n = 0;
  for (int64_t i = first; i < d.size() && n < count; ++i) {
    int label = -1;
    REQUIRE(d.load(i, one.data(), &label));
    if (only_label >= 0 && label != only_label) continue;
    v.insert(v.end(), one.begin(), one.end());
    ++n;
  }
  return Tensor::from_vector(v, {n, d.channels(), d.image_size(), d.image_size()});
}

// Each image replaced by the mean of its 3x3 neighbourhood, `times` times (clamped borders).
Tensor blur(const Tensor& images, int times) {
  std::vector<float> v = images.to_float_vector();
  const int64_t s = images.size(2), planes = images.size(0) * images.size(1);
  for (int t = 0; t < times; ++t) {
    std::vector<float> out(v.size());
    for (int64_t p = 0; p < planes; ++p)
      for (int64_t y = 0; y < s; ++y)
        for (int64_t x = 0; x < s; ++x) {
          float sum = 0;
          for (int64_t dy = -1; dy <= 1; ++dy)
            for (int64_t dx = -1; dx <= 1; ++dx) {
              const int64_t yy = std::clamp<int64_t>(y + dy, 0, s - 1), xx = std::clamp<int64_t>(x + dx, 0, s - 1);
              sum += v[size_t((p * s + yy) * s + xx)];
            }
          out[size_t((p * s + y) * s + x)] = sum / 9;
        }
    v.swap(out);
  }
  return Tensor::from_vector(v, images.shape());
}

}  // namespace

TEST_CASE("digit classifier: shapes, errors, and a save/load round trip", "[models][digits]") {
  Rng gen(3);
  digits::Classifier c(gen);
  CHECK(c.parameter_count() == 428330);
  const Tensor x = Tensor::randn({5, 1, 32, 32}, gen);
  CHECK(c.features(x).shape() == Shape{5, digits::kFeatures});
  CHECK(c(x).shape() == Shape{5, digits::kClasses});
  CHECK_THROWS_WITH(c(Tensor::randn({5, 1, 28, 28}, gen)), Contains("to_classifier_input"));
  c.eval();
  test::TempDir tmp;
  digits::save_classifier(tmp.str("c.safetensors"), c, {{"test_accuracy", "0.5"}});
  std::map<std::string, std::string> meta;
  const auto back = digits::load_classifier(tmp.str("c.safetensors"), Device::cpu(), &meta);
  CHECK(meta.at("test_accuracy") == "0.5");
  CHECK(!back->is_training());
  CHECK(back->forward(x).to_float_vector() == c(x).to_float_vector());
  save_safetensors(tmp.str("other.safetensors"), {{"w", Tensor::zeros({2})}});
  CHECK_THROWS_WITH(digits::load_classifier(tmp.str("other.safetensors"), Device::cpu()),
                    Contains("is not a digit classifier"));
}

TEST_CASE("to_classifier_input: 32x32 as it is, other sizes resized as MNIST is, RGB by luma", "[models][digits]") {
  const auto at32 = data::open_mnist(kMnist, "test", 32, 1), at64 = data::open_mnist(kMnist, "test", 64, 3);
  const Tensor a = load(*at32, 0, 20), b = digits::to_classifier_input(load(*at64, 0, 20));
  CHECK(digits::to_classifier_input(a).to_float_vector() == a.to_float_vector());
  REQUIRE(b.shape() == a.shape());
  // 28 -> 64 -> 32 is not 28 -> 32, but close: the mean absolute difference is a small part of the range 2.
  const std::vector<float> va = a.to_float_vector(), vb = b.to_float_vector();
  double diff = 0;
  for (size_t i = 0; i < va.size(); ++i) diff += std::fabs(va[i] - vb[i]);
  CHECK(diff / double(va.size()) < 0.05);
  CHECK_THROWS_WITH(digits::to_classifier_input(Tensor::zeros({2, 2, 8, 8})), Contains("[N, 1 or 3, S, S]"));
}

TEST_CASE("digit classifier: the committed weights have the test accuracy their metadata states", "[models][digits]") {
  REQUIRE(fs::exists(kWeights));
  std::map<std::string, std::string> meta;
  auto c = digits::load_classifier(kWeights, Device::cpu(), &meta);
  const auto test = data::open_mnist(kMnist, "test", 32, 1);
  NoGradGuard no_grad;
  int64_t right = 0;
  std::vector<float> one(size_t(test->sample_numel()));
  for (int64_t first = 0; first < test->size(); first += 1000) {
    std::vector<float> batch;
    std::vector<int> labels;
    for (int64_t i = first; i < first + 1000; ++i) {
      int label = -1;
      REQUIRE(test->load(i, one.data(), &label));
      batch.insert(batch.end(), one.begin(), one.end());
      labels.push_back(label);
    }
    const std::vector<float> z = (*c)(Tensor::from_vector(batch, {1000, 1, 32, 32})).to_float_vector();
    for (size_t i = 0; i < labels.size(); ++i)
      right += int(std::max_element(z.begin() + std::ptrdiff_t(i * 10), z.begin() + std::ptrdiff_t(i * 10 + 10)) -
                   (z.begin() + std::ptrdiff_t(i * 10))) == labels[i];
  }
  const double accuracy = double(right) / double(test->size());
  CHECK(accuracy > 0.985);
  // The metadata was written from the same computation (train_digit_classifier's last evaluation).
  CHECK(accuracy == Approx(std::stod(meta.at("test_accuracy"))).margin(1e-4));
}

TEST_CASE("digit metrics: real digits are close, noise, blank and one class far, blur in order", "[models][digits]") {
  REQUIRE(fs::exists(kWeights));
  std::shared_ptr<digits::Classifier> c = digits::load_classifier(kWeights, Device::cpu());
  const auto test = data::open_mnist(kMnist, "test", 32, 1), train = data::open_mnist(kMnist, "train", 32, 1);
  const digits::Evaluator eval(c, load(*test, 0, 2000));
  const digits::Quality& ref = eval.reference();
  CHECK(ref.images == 2000);
  CHECK(ref.mean_confidence > 0.97);
  CHECK(ref.class_entropy_bits > 3.25);  // 10 classes in about equal numbers: log2(10) = 3.32
  const Tensor real = load(*train, 0, 2000);
  const digits::Quality same = eval.measure(real);
  INFO("real " << digits::describe(same));
  Rng gen(5);
  const digits::Quality noise = eval.measure(2.0 * Tensor::rand({2000, 1, 32, 32}, gen) + Tensor::full({2000, 1, 32, 32}, -1.0));
  const digits::Quality blank = eval.measure(Tensor::full({2000, 1, 32, 32}, -1.0));
  const digits::Quality ones = eval.measure(load(*train, 0, 2000, 1));
  INFO("noise " << digits::describe(noise) << "; blank " << digits::describe(blank) << "; ones "
                << digits::describe(ones));
  CHECK(noise.fcd > 20 * same.fcd);
  CHECK(blank.fcd > 20 * same.fcd);
  CHECK(ones.fcd > 10 * same.fcd);
  CHECK(same.class_entropy_bits > 3.25);
  CHECK(ones.class_entropy_bits < 0.2);  // mode collapse: almost everything is a 1
  CHECK(blank.class_entropy_bits == 0);  // one image, 2000 times: one class
  double previous = same.fcd;
  for (int times : {1, 2, 4}) {
    const digits::Quality q = eval.measure(blur(real, times));
    INFO("blur x" << times << ": " << digits::describe(q));
    CHECK(q.fcd > previous);
    previous = q.fcd;
  }
}
