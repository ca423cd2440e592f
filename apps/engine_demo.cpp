// engine_demo: trains a tiny convolutional classifier with the engine, end to end on the CPU (or a
// GPU with --device cuda): is the bar in a noisy 12x12 image horizontal or vertical? It shows the
// pieces working together: tensors, conv/batchnorm/activations, the fused loss, autograd, Adam.
//
//   engine_demo [--steps N] [--device cpu|cuda[:N]] [--seed S]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "cudagan/cudagan.h"
#include "app_main.h"
#include "cudagan/runtime/blas.h"

using namespace cudagan;

namespace {
constexpr int kSize = 12;

// A batch of images with one bright bar (row or column) plus noise; label 1 for horizontal.
void make_batch(Rng& gen, int batch, Device device, Tensor& images, Tensor& labels) {
  std::vector<float> x(static_cast<size_t>(batch) * kSize * kSize), y(static_cast<size_t>(batch));
  for (int b = 0; b < batch; ++b) {
    const bool horizontal = gen.uniform() < 0.5;
    const int line = int(gen.uniform() * kSize);
    y[size_t(b)] = horizontal ? 1.0f : 0.0f;
    for (int r = 0; r < kSize; ++r)
      for (int c = 0; c < kSize; ++c) {
        const bool on = horizontal ? r == line : c == line;
        x[size_t((b * kSize + r) * kSize + c)] = float((on ? 1.0 : -1.0) + 0.5 * gen.normal());
      }
  }
  images = Tensor::from_vector(x, {batch, 1, kSize, kSize}, device);
  labels = Tensor::from_vector(y, {batch, 1}, device);
}

int run(int argc, char** argv) {
  int steps = 200;
  uint64_t seed = 1;
  Device device = Device::cpu();
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--steps" && has_value)
      steps = std::atoi(argv[++i]);
    else if (arg == "--seed" && has_value)
      seed = std::strtoull(argv[++i], nullptr, 10);
    else if (arg == "--device" && has_value)
      device = Device::parse(argv[++i]);
    else
      throw Error("unknown argument '" + arg + "': usage engine_demo [--steps N] [--device cpu|cuda] [--seed S]");
  }
  CUDAGAN_CHECK(steps > 0, "--steps must be positive");
  std::printf("cudagan engine demo on %s; BLAS: %s\n", device.str().c_str(), blas::describe().c_str());

  Rng gen(seed);
  nn::Sequential net;
  net.emplace<nn::Conv2d>(gen, 1, 8, 3, 1, 1, false);
  net.emplace<nn::BatchNorm2d>(8);
  net.emplace<nn::LeakyReLU>(0.2);
  net.emplace<nn::Conv2d>(gen, 8, 16, 4, 2, 1, false);  // 12x12 -> 6x6
  net.emplace<nn::BatchNorm2d>(16);
  net.emplace<nn::LeakyReLU>(0.2);
  net.emplace<nn::Flatten>();
  net.emplace<nn::Linear>(gen, 16 * 6 * 6, 1);
  net.to(device);
  optim::Adam adam(net.parameters(), {2e-3, 0.9, 0.999, 1e-8, 0.0});
  std::printf("model: %lld parameters\n", (long long)net.parameter_count());

  Tensor images, labels;
  for (int step = 1; step <= steps; ++step) {
    make_batch(gen, 32, device, images, labels);
    adam.zero_grad();
    Tensor loss = bce_with_logits(net(images), labels);
    loss.backward();
    adam.step();
    if (step % 20 == 0 || step == steps) std::printf("step %4d  loss %.4f\n", step, loss.item());
  }

  net.eval();
  NoGradGuard no_grad;
  make_batch(gen, 512, device, images, labels);
  const std::vector<double> logits = net(images).to_vector(), truth = labels.to_vector();
  int correct = 0;
  for (size_t i = 0; i < logits.size(); ++i) correct += (logits[i] > 0) == (truth[i] > 0.5);
  std::printf("held-out accuracy: %.1f%% of %zu images\n", 100.0 * correct / double(logits.size()), logits.size());
  return 0;
}
}  // namespace

int main(int argc, char** argv) { return cudagan::apps::run_tool("engine_demo", argc, argv, run); }
