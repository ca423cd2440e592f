// train_digit_classifier MNIST OUT.safetensors: trains the digit classifier of cudagan/digit_classifier.h on
// MNIST's training split with cudagan itself, reports its accuracy on the test split after each epoch, and
// saves the weights with how they were made (the metadata: command, seed, epochs, accuracy). The same command,
// seed and thread count give the same file; data/digit_classifier/README.md records the run that made the
// committed weights.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <map>
#include <string>
#include <vector>

#include "cudagan/core/autograd.h"
#include "cudagan/cudagan.h"
#include "cudagan/data/data.h"
#include "cudagan/digit_classifier.h"
#include "app_main.h"

using namespace cudagan;

namespace {

// Test-split accuracy (eval mode: batchnorm's running statistics).
double accuracy(digits::Classifier& c, const data::Dataset& test, Device device) {
  NoGradGuard no_grad;
  c.eval();
  data::DataLoader loader(test, 1000, 0, 2, /*drop_last=*/false);
  data::Batch batch;
  int64_t right = 0, seen = 0;
  while (loader.next(batch)) {
    const std::vector<float> z = c(batch.images.to(device)).to_float_vector();
    for (size_t i = 0; i < batch.labels.size(); ++i) {
      const float* row = z.data() + i * digits::kClasses;
      right += int(std::max_element(row, row + digits::kClasses) - row) == batch.labels[i];
    }
    seen += int64_t(batch.labels.size());
  }
  c.train();
  return double(right) / double(seen);
}

int run(int argc, char** argv) {
  std::string mnist, out, device_name = "auto";
  int epochs = 3, batch_size = 128, workers = 2;
  double lr = 1e-3;
  uint64_t seed = 1;
  CLI::App app{"Train the digit classifier behind dcgan_train's FCD (Frechet classifier distance) on MNIST"};
  app.add_option("mnist", mnist, "A folder with MNIST's four idx files (data/mnist)")->required();
  app.add_option("out", out, "Where to write the weights (.safetensors)")->required();
  app.add_option("--epochs", epochs, "Passes over the 60,000 training digits")->capture_default_str();
  app.add_option("--batch-size", batch_size, "Digits per step")->capture_default_str();
  app.add_option("--lr", lr, "Adam's learning rate")->capture_default_str();
  app.add_option("--seed", seed, "Initial weights and batch order")->capture_default_str();
  app.add_option("--workers", workers, "Data-loading threads")->capture_default_str();
  app.add_option("--device", device_name, "auto, cpu, cuda or cuda:N")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  CUDAGAN_CHECK(epochs >= 1, "--epochs must be at least 1, got ", epochs);
  CUDAGAN_CHECK(batch_size >= 2, "--batch-size must be at least 2 (batchnorm needs two), got ", batch_size);
  CUDAGAN_CHECK(lr > 0, "--lr must be positive, got ", lr);
  CUDAGAN_CHECK(data::has_mnist_split(mnist, "train") && data::has_mnist_split(mnist, "test"), "'", mnist,
                "' does not hold MNIST's train and t10k idx files; point it at data/mnist");
  const Device device = resolve_device(device_name);
  const auto train = data::open_mnist(mnist, "train", digits::kImageSize, 1);
  const auto test = data::open_mnist(mnist, "test", digits::kImageSize, 1);

  Rng gen(seed);
  digits::Classifier c(gen);
  c.to(device);
  optim::Adam opt(c.named_parameters(), {lr, 0.9, 0.999, 1e-8, 0.0});
  data::DataLoader loader(*train, batch_size, seed, workers);
  std::printf("train_digit_classifier: %s; device %s; %lld parameters\n", train->describe().c_str(),
              device.str().c_str(), (long long)c.parameter_count());
  double acc = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int epoch = 0; epoch < epochs; ++epoch) {
    loader.start_epoch(epoch);
    data::Batch batch;
    double loss_sum = 0;
    int64_t steps = 0;
    while (loader.next(batch)) {
      const int64_t n = int64_t(batch.labels.size());
      std::vector<float> onehot(size_t(n * digits::kClasses), 0.0f);
      for (int64_t i = 0; i < n; ++i) onehot[size_t(i * digits::kClasses + batch.labels[size_t(i)])] = 1.0f;
      const Tensor targets = Tensor::from_vector(onehot, {n, digits::kClasses}, device);
      opt.zero_grad();
      Tensor loss = cross_entropy_with_logits(c(batch.images.to(device)), targets);
      loss.backward();
      opt.step();
      loss_sum += loss.item();
      ++steps;
    }
    acc = accuracy(c, *test, device);
    std::printf("epoch %d/%d: mean training loss %.4f, test accuracy %.2f%% (%.0f s)\n", epoch + 1, epochs,
                loss_sum / double(steps), 100 * acc,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    std::fflush(stdout);
  }
  c.eval();
  char acc_text[32];
  std::snprintf(acc_text, sizeof acc_text, "%.4f", acc);
  std::string command = "train_digit_classifier MNIST OUT";
  for (int i = 3; i < argc; ++i) command += std::string(" ") + argv[i];
  digits::save_classifier(out, c, {{"test_accuracy", acc_text}, {"epochs", std::to_string(epochs)},
                                   {"batch_size", std::to_string(batch_size)}, {"lr", std::to_string(lr)},
                                   {"seed", std::to_string(seed)}, {"command", command},
                                   {"data", "MNIST train (60000 digits) at 32x32; accuracy on t10k (10000)"}});
  std::printf("wrote %s: test accuracy %.2f%%\n", out.c_str(), 100 * acc);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return cudagan::apps::run_tool("train_digit_classifier", argc, argv, run); }
