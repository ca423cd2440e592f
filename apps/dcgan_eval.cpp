// dcgan_eval CHECKPOINT DATA: the quality metrics dcgan_train writes to metrics.csv, for any checkpoint, so
// that runs can be compared: the sliced Wasserstein distance (x 1e3, per pyramid level and their average;
// lower is better) between --eval-images real images of DATA and as many images of the checkpoint's
// generator. The same seed and count give the same real set and noise as dcgan_train's evaluations of a run
// with that --seed. --baseline measures two disjoint sets of real images against each other instead (the
// checkpoint gives only the image size and channels): the value a perfect generator would approach. On an
// MNIST folder it also prints the digit classifier's FCD to the test split, mean confidence and class entropy
// (for --baseline: those of real training digits).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <vector>

#include "cudagan/cudagan.h"
#include "cudagan/data/data.h"
#include "cudagan/dcgan_checkpoint.h"
#include "app_main.h"
#include "quality.h"

using namespace cudagan;

namespace {

int run(int argc, char** argv) {
  std::string checkpoint, data_path, device_name = "auto", classifier;
  int64_t images = 8192;
  int batch = 128;
  uint64_t seed = 1;
  bool eval_bn = false, baseline = false;
  CLI::App app{"Measure a DCGAN checkpoint's images against real ones (sliced Wasserstein distance)"};
  app.add_option("checkpoint", checkpoint, "A checkpoint written by dcgan_train")->required();
  app.add_option("data", data_path, "The real images: an image folder, an MNIST folder or 'synthetic'")->required();
  app.add_option("--eval-images", images, "Real (and as many generated) images")->capture_default_str();
  app.add_option("--batch-size", batch, "Generated images per batch (batchnorm's batch statistics)")
      ->capture_default_str();
  app.add_option("--seed", seed, "The training run's --seed: the same real images and noise as its evaluations")
      ->capture_default_str();
  app.add_flag("--eval-bn", eval_bn, "Use batchnorm's running statistics instead of the batch's");
  app.add_flag("--baseline", baseline, "Real against real: two disjoint sets of --eval-images images of DATA");
  app.add_option("--device", device_name, "auto, cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--classifier", classifier, "The digit classifier for the FCD (default: the one shipped)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  CUDAGAN_CHECK(images >= 2 && images <= 1000000, "--eval-images must be between 2 and 1000000, got ", images);
  CUDAGAN_CHECK(batch >= 2, "--batch-size must be at least 2, got ", batch);
  CUDAGAN_CHECK(std::filesystem::exists(checkpoint), "checkpoint '", checkpoint, "' does not exist");
  const Device device = resolve_device(device_name);
  bool verified = true;
  auto g = dcgan::load_generator(checkpoint, device, &verified);
  if (!verified) std::fprintf(stderr, "%s\n", dcgan::unverified_checkpoint_note(checkpoint).c_str());
  if (eval_bn) g->eval();
  const dcgan::Architecture arch = g->architecture();
  const auto dataset = data::open_dataset(data_path, arch.image_size, arch.channels);
  const auto digit_metrics = apps::digit_evaluator(data_path, arch, images, seed + 3, classifier, device, nullptr);
  if (baseline) {
    const Tensor both = apps::evaluation_images(*dataset, 2 * images, seed + 1);
    const int64_t half = both.size(0) / 2;
    CUDAGAN_CHECK(half >= 2, "--baseline needs at least 4 images in ", data_path);
    const std::vector<float> v = both.to_float_vector();
    const Shape shape{half, arch.channels, arch.image_size, arch.image_size};
    const auto mid = v.begin() + half * int64_t(v.size() / size_t(both.size(0)));
    const metrics::SwdResult r = metrics::sliced_wasserstein(Tensor::from_vector(std::vector<float>(v.begin(), mid), shape),
                                                             Tensor::from_vector(std::vector<float>(mid, mid + (mid - v.begin())), shape));
    std::printf("baseline: %lld real images against %lld others of %s\n%s\n", (long long)half, (long long)half,
                dataset->describe().c_str(), apps::describe(r).c_str());
    if (digit_metrics)
      std::printf("%s (%lld real digits against %lld of the test split)\n",
                  digits::describe(digit_metrics->measure(Tensor::from_vector(std::vector<float>(v.begin(), mid), shape)))
                      .c_str(),
                  (long long)half, (long long)digit_metrics->reference().images);
    return 0;
  }
  const Tensor real = apps::evaluation_images(*dataset, images, seed + 1);  // as dcgan_train's evaluations
  const Tensor fake = apps::generated_images(*g, real.size(0), batch, seed + 2, device);
  const metrics::SwdResult r = metrics::sliced_wasserstein(real, fake);
  std::printf("%s: %lld generated images against %lld of %s\n%s\n", checkpoint.c_str(), (long long)fake.size(0),
              (long long)real.size(0), dataset->describe().c_str(), apps::describe(r).c_str());
  if (digit_metrics)
    std::printf("%s (against %lld digits of the test split)\n", digits::describe(digit_metrics->measure(fake)).c_str(),
                (long long)digit_metrics->reference().images);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return cudagan::apps::run_tool("dcgan_eval", argc, argv, run); }
