#include "quality.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "cudagan/core/autograd.h"
#include "cudagan/core/error.h"
#include "cudagan/nn/modules.h"

namespace fs = std::filesystem;

namespace cudagan::apps {

Tensor evaluation_images(const data::Dataset& data, int64_t count, uint64_t seed) {
  CUDAGAN_CHECK(count > 0, "--eval-images must be positive, got ", count);
  const int64_t n = std::min(count, data.size());
  data::DataLoader loader(data, int(std::min<int64_t>(n, 256)), seed, 2, /*drop_last=*/false);
  std::vector<float> values;
  values.reserve(size_t(n * data.sample_numel()));
  data::Batch batch;
  while (int64_t(values.size()) < n * data.sample_numel() && loader.next(batch)) {
    const std::vector<float> v = batch.images.to_float_vector();
    values.insert(values.end(), v.begin(), v.begin() + std::min<int64_t>(int64_t(v.size()), n * data.sample_numel() - int64_t(values.size())));
  }
  return Tensor::from_vector(values, {n, data.channels(), data.image_size(), data.image_size()});
}

Tensor draw_images(dcgan::Generator& g, const Tensor& noise) {
  NoGradGuard no_grad;
  nn::LocalBatchNorm local(g);
  std::vector<Tensor> saved;
  for (const Tensor& b : g.buffers()) saved.push_back(b.clone());
  Tensor images = g(noise);
  const std::vector<Tensor> buffers = g.buffers();
  for (size_t i = 0; i < buffers.size(); ++i) Tensor(buffers[i]).copy_(saved[i]);
  return images;
}

Tensor generated_images(dcgan::Generator& g, int64_t count, int batch, uint64_t seed, Device device) {
  CUDAGAN_CHECK(count > 0 && batch > 0, "generated_images: count and batch must be positive");
  const dcgan::Architecture a = g.architecture();
  Rng rng(seed);
  std::vector<float> values;
  // A batch of one has no batch statistics: the last, short batch is drawn at the full size and cut.
  for (int64_t done = 0; done < count; done += batch) {
    const std::vector<float> v = draw_images(g, dcgan::sample_noise(batch, a.nz, rng, device)).to_float_vector();
    const int64_t keep = std::min<int64_t>(batch, count - done) * int64_t(v.size() / size_t(batch));
    values.insert(values.end(), v.begin(), v.begin() + keep);
  }
  return Tensor::from_vector(values, {count, a.channels, a.image_size, a.image_size});
}

std::string describe(const metrics::SwdResult& r) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "SWD x1e3 %.2f (", r.average_x1e3);
  std::string s = buf;
  for (size_t i = 0; i < r.resolutions.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%s%d: %.2f", i ? ", " : "", r.resolutions[i], r.per_level_x1e3[i]);
    s += buf;
  }
  return s + ")";
}

std::string find_digit_classifier(const std::string& explicit_path) {
  if (!explicit_path.empty()) {
    CUDAGAN_CHECK(fs::exists(explicit_path), "--classifier '", explicit_path,
                  "' does not exist: give a file written by train_digit_classifier");
    return explicit_path;
  }
  std::vector<fs::path> candidates;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back(exe.parent_path().parent_path() / "share" / "cudagan" / "digit_classifier.safetensors");
#ifdef CUDAGAN_DATA_DIR
  candidates.push_back(fs::path(CUDAGAN_DATA_DIR) / "digit_classifier" / "digit_classifier.safetensors");
#endif
  for (const fs::path& c : candidates)
    if (fs::exists(c, ec)) return c.string();
  return "";
}

std::unique_ptr<digits::Evaluator> digit_evaluator(const std::string& data_path, const dcgan::Architecture& arch,
                                                   int64_t count, uint64_t seed, const std::string& classifier,
                                                   Device device, std::string* why) {
  if (!fs::is_directory(data_path) || !data::has_mnist_split(data_path, "test")) {
    if (why) *why = "the data is not an MNIST folder with its test split";
    return nullptr;
  }
  const std::string path = find_digit_classifier(classifier);
  if (path.empty()) {
    if (why) *why = "no digit classifier was found (give --classifier, or train one with train_digit_classifier)";
    return nullptr;
  }
  const auto test = data::open_mnist(data_path, "test", arch.image_size, arch.channels);
  std::shared_ptr<digits::Classifier> c = digits::load_classifier(path, device);
  return std::make_unique<digits::Evaluator>(std::move(c), evaluation_images(*test, std::min<int64_t>(count, 10000), seed));
}

}  // namespace cudagan::apps
