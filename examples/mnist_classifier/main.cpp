// mnist_classifier: a small convolutional digit classifier trained with the cudagan engine on MNIST,
// then scored on the 10,000 images of the t10k split.
//
//   mnist_classifier --data DIR [--steps 1000] [--batch-size 64] [--lr 1e-3] [--device auto|cpu|cuda[:N]]
//                    [--seed 1] [--workers 2]
//
// DIR holds the MNIST idx files (train-* and t10k-*, raw or .gz), e.g. data/mnist of the cudagan
// repository. The defaults (about one epoch) reach about 98% on the CPU in a couple of minutes;
// `--steps 20` is a smoke test.
//
// The loss: the engine's only classification loss is bce_with_logits, and it has no exp or log op
// to build softmax cross-entropy from (log-sum-exp is not separable into per-element terms, which
// is all bce_with_logits' mean offers). So the network emits 10 logits and each is trained as a
// one-vs-rest binary classifier against the one-hot label with bce_with_logits; the prediction is
// the largest logit. On MNIST that is about as accurate as softmax cross-entropy.
#include <cudagan/cudagan.h>
#include <cudagan/data/data.h>
#include <cudagan/runtime/blas.h>  // blas::ensure_fast_kernels

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <vector>

using namespace cudagan;

namespace {

constexpr int kClasses = 10;

struct Options {
  std::string data;
  int steps = 1000;
  int batch_size = 64;
  double lr = 1e-3;
  std::string device = "auto";
  uint64_t seed = 1;
  int workers = 2;
};

const char* const kUsage =
    "usage: mnist_classifier --data DIR [--steps N] [--batch-size N] [--lr X] [--device auto|cpu|cuda[:N]] "
    "[--seed N] [--workers N]";

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::printf("%s\n", kUsage);
      std::exit(0);
    }
    if (i + 1 >= argc) throw Error("'" + arg + "' needs a value (or is unknown): " + kUsage);
    const std::string value = argv[++i];
    if (arg == "--data")
      o.data = value;
    else if (arg == "--steps")
      o.steps = std::atoi(value.c_str());
    else if (arg == "--batch-size")
      o.batch_size = std::atoi(value.c_str());
    else if (arg == "--lr")
      o.lr = std::atof(value.c_str());
    else if (arg == "--device")
      o.device = value;
    else if (arg == "--seed")
      o.seed = std::strtoull(value.c_str(), nullptr, 10);
    else if (arg == "--workers")
      o.workers = std::atoi(value.c_str());
    else
      throw Error("unknown flag '" + arg + "': " + kUsage);
  }
  CUDAGAN_CHECK(!o.data.empty(), "--data DIR is required (the folder with the MNIST idx files): ", kUsage);
  CUDAGAN_CHECK(o.steps > 0, "--steps must be positive, got ", o.steps);
  CUDAGAN_CHECK(o.batch_size > 0, "--batch-size must be positive, got ", o.batch_size);
  CUDAGAN_CHECK(o.lr > 0, "--lr must be positive, got ", o.lr);
  return o;
}

// [N, 1, 28, 28] -> 10 logits [N, 10].
std::unique_ptr<nn::Sequential> make_classifier(Rng& gen) {
  auto net = std::make_unique<nn::Sequential>();
  net->emplace<nn::Conv2d>(gen, 1, 16, 5, 1, 2, false);  // 28x28
  net->emplace<nn::BatchNorm2d>(16);
  net->emplace<nn::ReLU>();
  net->emplace<nn::Conv2d>(gen, 16, 32, 4, 2, 1, false);  // -> 14x14
  net->emplace<nn::BatchNorm2d>(32);
  net->emplace<nn::ReLU>();
  net->emplace<nn::Conv2d>(gen, 32, 64, 4, 2, 1, false);  // -> 7x7
  net->emplace<nn::BatchNorm2d>(64);
  net->emplace<nn::ReLU>();
  net->emplace<nn::Flatten>();
  net->emplace<nn::Linear>(gen, 64 * 7 * 7, kClasses);
  return net;
}

// The one-vs-rest targets of a batch: [N, 10] with a 1 at each label.
Tensor one_hot(const std::vector<int>& labels, Device device) {
  std::vector<float> v(labels.size() * kClasses, 0.0f);
  for (size_t i = 0; i < labels.size(); ++i) {
    CUDAGAN_CHECK(labels[i] >= 0 && labels[i] < kClasses, "label ", labels[i], " is not a digit");
    v[i * kClasses + size_t(labels[i])] = 1.0f;
  }
  return Tensor::from_vector(v, {int64_t(labels.size()), kClasses}, device);
}

// The fraction of `dataset` whose largest logit is its label (batchnorm in eval mode, no graph).
double accuracy(nn::Module& net, const data::Dataset& dataset, Device device, int workers) {
  net.eval();
  NoGradGuard no_grad;
  data::DataLoader loader(dataset, 500, 0, workers, /*drop_last=*/false);
  data::Batch batch;
  int64_t correct = 0, seen = 0;
  while (loader.next(batch)) {
    const std::vector<float> logits = net(batch.images.to(device)).to_float_vector();
    for (size_t i = 0; i < batch.labels.size(); ++i) {
      const float* row = logits.data() + i * kClasses;
      correct += int(std::max_element(row, row + kClasses) - row) == batch.labels[i];
    }
    seen += int64_t(batch.labels.size());
  }
  net.train();
  return double(correct) / double(seen);
}

int run(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const Device device =
      o.device == "auto" ? (cuda_available() ? Device::cuda() : Device::cpu()) : Device::parse(o.device);
  std::printf("mnist_classifier on %s; BLAS: %s\n", device.str().c_str(), blas::describe().c_str());

  const auto train_set = data::open_mnist(o.data, "train", 28);
  const auto test_set = data::open_mnist(o.data, "test", 28);
  std::printf("train: %s\ntest:  %s\n", train_set->describe().c_str(), test_set->describe().c_str());

  Rng gen(o.seed);
  const auto net = make_classifier(gen);
  net->to(device);
  optim::Adam adam(net->parameters(), {o.lr, 0.9, 0.999, 1e-8, 0.0});
  std::printf("model: %lld parameters; %d steps of %d images\n", (long long)net->parameter_count(), o.steps,
              o.batch_size);

  data::DataLoader loader(*train_set, o.batch_size, o.seed, o.workers);
  data::Batch batch;
  const auto start = std::chrono::steady_clock::now();
  double running_loss = 0;
  int in_running = 0;
  for (int step = 1; step <= o.steps; ++step) {
    if (!loader.next(batch)) {  // the epoch is over: start the next one
      loader.start_epoch(loader.epoch() + 1);
      loader.next(batch);
    }
    adam.zero_grad();
    const Tensor loss = bce_with_logits((*net)(batch.images.to(device)), one_hot(batch.labels, device));
    loss.backward();
    adam.step();
    running_loss += loss.item();
    ++in_running;
    if (step % 100 == 0 || step == o.steps) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("step %5d  epoch %lld  loss %.4f  %.0f img/s\n", step, (long long)loader.epoch(),
                  running_loss / in_running, step * double(o.batch_size) / seconds);
      std::fflush(stdout);  // progress shows up at once when stdout is a file or a pipe
      running_loss = 0;
      in_running = 0;
    }
  }

  const double test_accuracy = accuracy(*net, *test_set, device, o.workers);
  std::printf("test accuracy: %.2f%% of %lld t10k images\n", 100.0 * test_accuracy,
              (long long)test_set->size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  blas::ensure_fast_kernels(argc, argv);  // may restart the program once, before anything else runs
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mnist_classifier: %s\n", e.what());
    return 1;
  }
}
