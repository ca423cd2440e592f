// conditional_gan: a class-conditional DCGAN (Mirza & Osindero 2014, "Conditional Generative
// Adversarial Nets", on the DCGAN architecture) trained on MNIST with cudagan's public API. Tell the
// generator which digit to draw; the discriminator judges (image, digit) pairs.
//
//   conditional_gan --data DIR --out DIR [--steps 1500] [--batch-size 64] [--device auto|cpu|cuda[:N]]
//                   [--seed 1] [--workers 2] [--nz 64] [--ngf 32] [--ndf 32]
//
// DIR holds the MNIST idx files (data/mnist of the cudagan repository). OUT receives digits.png,
// a 10x10 grid with one row per digit class 0..9 (each column shares one noise vector, so a column
// shows one "handwriting" across the ten digits), and generator.safetensors, G's weights. The
// defaults take a few minutes on a 2-core CPU and draw recognisable digits; `--steps 20` is a
// smoke test.
//
// How the label gets in, as in the usual cGAN recipe:
//   G: [z ; one_hot(y)] as the latent input, [N, nz + 10, 1, 1] -> ConvT ... -> [N, 1, 28, 28]
//   D: [x ; one_hot(y) as 10 constant planes], [N, 1 + 10, 28, 28] -> Conv ... -> one logit
// G's input is built on the host (no gradient flows into it). D's input would need a differentiable
// concatenation along channels, which the engine does not have (cat joins along the batch), but D's
// first layer is a convolution, and a convolution is linear in its input channels:
//   conv2d([x ; m], [Wx | Wm]) = conv2d(x, Wx) + conv2d(m, Wm)
// so D applies two convolutions and adds them (ConcatConv2d below), which is exactly the same.
#include <cudagan/cudagan.h>
#include <cudagan/data/data.h>
#include <cudagan/dcgan.h>  // dcgan::init_weights, the paper's N(0, 0.02) initialisation
#include <cudagan/io/image_io.h>
#include <cudagan/io/safetensors.h>
#include <cudagan/runtime/blas.h>  // blas::ensure_fast_kernels

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

using namespace cudagan;

namespace {

constexpr int kClasses = 10;
constexpr int kSize = 28;  // MNIST's own size: 7 -> 14 -> 28 in G, the reverse in D

struct Options {
  std::string data, out;
  int steps = 1500;
  int batch_size = 64;
  std::string device = "auto";
  uint64_t seed = 1;
  int workers = 2;
  int nz = 64, ngf = 32, ndf = 32;
};

const char* const kUsage =
    "usage: conditional_gan --data DIR --out DIR [--steps N] [--batch-size N] [--device auto|cpu|cuda[:N]] "
    "[--seed N] [--workers N] [--nz N] [--ngf N] [--ndf N]";

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
    else if (arg == "--out")
      o.out = value;
    else if (arg == "--steps")
      o.steps = std::atoi(value.c_str());
    else if (arg == "--batch-size")
      o.batch_size = std::atoi(value.c_str());
    else if (arg == "--device")
      o.device = value;
    else if (arg == "--seed")
      o.seed = std::strtoull(value.c_str(), nullptr, 10);
    else if (arg == "--workers")
      o.workers = std::atoi(value.c_str());
    else if (arg == "--nz")
      o.nz = std::atoi(value.c_str());
    else if (arg == "--ngf")
      o.ngf = std::atoi(value.c_str());
    else if (arg == "--ndf")
      o.ndf = std::atoi(value.c_str());
    else
      throw Error("unknown flag '" + arg + "': " + kUsage);
  }
  CUDAGAN_CHECK(!o.data.empty() && !o.out.empty(), "--data DIR and --out DIR are required: ", kUsage);
  CUDAGAN_CHECK(o.steps > 0 && o.batch_size > 0 && o.nz > 0 && o.ngf > 0 && o.ndf > 0,
                "--steps, --batch-size, --nz, --ngf and --ndf must be positive");
  return o;
}

// conv2d over the channel concatenation [x ; m] with weight [Wx | Wm], computed as
// conv2d(x, Wx) + conv2d(m, Wm). The two halves are initialised separately (by init_weights, below).
class ConcatConv2d : public nn::Module {
 public:
  ConcatConv2d(Rng& rng, int x_channels, int m_channels, int out_channels, int kernel, int stride,
               int padding)
      : from_x_(register_module("from_x", std::make_shared<nn::Conv2d>(rng, x_channels, out_channels, kernel,
                                                                       stride, padding, false))),
        from_m_(register_module("from_m", std::make_shared<nn::Conv2d>(rng, m_channels, out_channels, kernel,
                                                                       stride, padding, false))) {}
  Tensor forward(const Tensor&) override { throw Error("ConcatConv2d needs two inputs: forward(x, m)"); }
  Tensor forward(const Tensor& x, const Tensor& m) { return (*from_x_)(x) + (*from_m_)(m); }

 private:
  std::shared_ptr<nn::Conv2d> from_x_, from_m_;
};

// [N, nz + 10, 1, 1] -> [N, 1, 28, 28] in [-1, 1].
class CondGenerator : public nn::Module {
 public:
  CondGenerator(Rng& rng, int nz, int ngf)
      : main_(register_module("main", std::make_shared<nn::Sequential>())) {
    main_->emplace<nn::ConvTranspose2d>(rng, nz + kClasses, ngf * 4, 7, 1, 0, false);  // 1 -> 7
    main_->emplace<nn::BatchNorm2d>(ngf * 4);
    main_->emplace<nn::ReLU>();
    main_->emplace<nn::ConvTranspose2d>(rng, ngf * 4, ngf * 2, 4, 2, 1, false);  // -> 14
    main_->emplace<nn::BatchNorm2d>(ngf * 2);
    main_->emplace<nn::ReLU>();
    main_->emplace<nn::ConvTranspose2d>(rng, ngf * 2, 1, 4, 2, 1, false);  // -> 28
    main_->emplace<nn::Tanh>();
  }
  Tensor forward(const Tensor& latent) override { return (*main_)(latent); }

 private:
  std::shared_ptr<nn::Sequential> main_;
};

// (images [N, 1, 28, 28], label planes [N, 10, 28, 28]) -> logits [N].
class CondDiscriminator : public nn::Module {
 public:
  CondDiscriminator(Rng& rng, int ndf)
      : input_(register_module("input",
                               std::make_shared<ConcatConv2d>(rng, 1, kClasses, ndf, 4, 2, 1))),  // -> 14
        main_(register_module("main", std::make_shared<nn::Sequential>())) {
    main_->emplace<nn::LeakyReLU>(0.2);
    main_->emplace<nn::Conv2d>(rng, ndf, ndf * 2, 4, 2, 1, false);  // -> 7
    main_->emplace<nn::BatchNorm2d>(ndf * 2);
    main_->emplace<nn::LeakyReLU>(0.2);
    main_->emplace<nn::Conv2d>(rng, ndf * 2, 1, 7, 1, 0, false);  // -> 1
  }
  Tensor forward(const Tensor&) override {
    throw Error("the discriminator needs labels: forward(images, planes)");
  }
  Tensor forward(const Tensor& images, const Tensor& planes) {
    const Tensor logits = (*main_)(input_->forward(images, planes));
    return logits.reshape({logits.size(0)});
  }

 private:
  std::shared_ptr<ConcatConv2d> input_;
  std::shared_ptr<nn::Sequential> main_;
};

// G's input: N(0, 1) noise and the one-hot label, [N, nz + 10, 1, 1]. `noise` (N * nz values) is
// drawn here when empty, or reused (the fixed grid).
Tensor latent(const std::vector<int>& labels, int nz, Rng& rng, Device device,
              std::vector<float> noise = {}) {
  const size_t n = labels.size(), width = size_t(nz) + kClasses;
  if (noise.empty())
    for (size_t i = 0; i < n * size_t(nz); ++i) noise.push_back(float(rng.normal()));
  std::vector<float> v(n * width, 0.0f);
  for (size_t i = 0; i < n; ++i) {
    std::copy(noise.begin() + long(i * size_t(nz)), noise.begin() + long((i + 1) * size_t(nz)),
              v.begin() + long(i * width));
    v[i * width + size_t(nz) + size_t(labels[i])] = 1.0f;
  }
  return Tensor::from_vector(v, {int64_t(n), int64_t(width), 1, 1}, device);
}

// D's label input: plane y of sample i all ones, the others zero, [N, 10, 28, 28].
Tensor label_planes(const std::vector<int>& labels, Device device) {
  const size_t plane = size_t(kSize) * kSize;
  std::vector<float> v(labels.size() * kClasses * plane, 0.0f);
  for (size_t i = 0; i < labels.size(); ++i) {
    CUDAGAN_CHECK(labels[i] >= 0 && labels[i] < kClasses, "label ", labels[i], " is not a digit");
    std::fill_n(v.begin() + long((i * kClasses + size_t(labels[i])) * plane), plane, 1.0f);
  }
  return Tensor::from_vector(v, {int64_t(labels.size()), kClasses, kSize, kSize}, device);
}

std::vector<int> random_labels(size_t n, Rng& rng) {
  std::vector<int> labels(n);
  for (int& y : labels) y = int(rng.next_u64() % kClasses);
  return labels;
}

double mean_probability(const Tensor& logits) {
  NoGradGuard no_grad;
  return mean(sigmoid(logits)).item();
}

int run(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const Device device =
      o.device == "auto" ? (cuda_available() ? Device::cuda() : Device::cpu()) : Device::parse(o.device);
  std::printf("conditional_gan on %s; BLAS: %s\n", device.str().c_str(), blas::describe().c_str());
  std::filesystem::create_directories(o.out);

  const auto dataset = data::open_mnist(o.data, "train", kSize);
  std::printf("data: %s\n", dataset->describe().c_str());
  data::DataLoader loader(*dataset, o.batch_size, o.seed, o.workers);

  Rng rng(o.seed);
  CondGenerator g(rng, o.nz, o.ngf);
  CondDiscriminator d(rng, o.ndf);
  dcgan::init_weights(g, rng);  // convolutions N(0, 0.02), batchnorm gamma N(1, 0.02), beta 0
  dcgan::init_weights(d, rng);
  g.to(device);
  d.to(device);
  const optim::Adam::Options adam{2e-4, 0.5, 0.999, 1e-8, 0.0};
  optim::Adam opt_g(g.parameters(), adam), opt_d(d.parameters(), adam);
  std::printf("G: %lld parameters, D: %lld parameters; %d steps of %d images\n",
              (long long)g.parameter_count(), (long long)d.parameter_count(), o.steps, o.batch_size);

  const int64_t n = o.batch_size;
  const Tensor ones = Tensor::ones({n}, DType::float32, device);
  const Tensor zeros = Tensor::zeros({n}, DType::float32, device);
  data::Batch batch;
  const auto start = std::chrono::steady_clock::now();
  for (int step = 1; step <= o.steps; ++step) {
    if (!loader.next(batch)) {
      loader.start_epoch(loader.epoch() + 1);
      loader.next(batch);
    }
    const Tensor real = batch.images.to(device);
    const std::vector<int> fake_labels = random_labels(size_t(n), rng);
    const Tensor fake_planes = label_planes(fake_labels, device);

    // D: real (image, its digit) pairs are 1, generated ones 0.
    opt_d.zero_grad();
    const Tensor out_real = d.forward(real, label_planes(batch.labels, device));
    const Tensor loss_real = bce_with_logits(out_real, ones);
    loss_real.backward();
    const Tensor fake = g(latent(fake_labels, o.nz, rng, device));
    const Tensor out_fake = d.forward(fake.detach(), fake_planes);
    const Tensor loss_fake = bce_with_logits(out_fake, zeros);
    loss_fake.backward();
    opt_d.step();

    // G: make D call the generated pairs real (the non-saturating loss). D is frozen meanwhile: the
    // gradient flows through it to G, but D's own weight gradients (discarded anyway) are not computed.
    opt_g.zero_grad();
    Tensor out_g, loss_g;
    {
      const nn::FreezeGuard frozen(d);
      out_g = d.forward(fake, fake_planes);
      loss_g = bce_with_logits(out_g, ones);
      loss_g.backward();
    }
    opt_g.step();

    if (step % 50 == 0 || step == o.steps) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("[%d/%d] Loss_D: %.4f Loss_G: %.4f D(x): %.4f D(G(z)): %.4f / %.4f | %.0f img/s\n", step,
                  o.steps, loss_real.item() + loss_fake.item(), loss_g.item(), mean_probability(out_real),
                  mean_probability(out_fake), mean_probability(out_g), step * double(n) / seconds);
      std::fflush(stdout);  // progress shows up at once when stdout is a file or a pipe
    }
  }

  // The grid: row c draws digit c; column j uses noise vector j in every row.
  NoGradGuard no_grad;
  Rng grid_rng(o.seed + 1);
  std::vector<float> column_noise;
  for (int j = 0; j < kClasses * o.nz; ++j) column_noise.push_back(float(grid_rng.normal()));
  std::vector<int> labels;
  std::vector<float> noise;
  for (int c = 0; c < kClasses; ++c)
    for (int j = 0; j < kClasses; ++j) {
      labels.push_back(c);
      noise.insert(noise.end(), column_noise.begin() + long(j) * o.nz,
                   column_noise.begin() + long(j + 1) * o.nz);
    }
  const Tensor digits = g(latent(labels, o.nz, grid_rng, device, noise));
  const std::string grid_path = o.out + "/digits.png";
  save_image_grid(digits, grid_path, kClasses);

  nn::NamedTensors weights = g.named_parameters();
  for (auto& buffer : g.named_buffers()) weights.push_back(buffer);
  save_safetensors(o.out + "/generator.safetensors", weights, {{"nz", std::to_string(o.nz)}});
  std::printf("wrote %s (row c: digit c) and %s/generator.safetensors\n", grid_path.c_str(), o.out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  blas::ensure_fast_kernels(argc, argv);  // may restart the program once, before anything else runs
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "conditional_gan: %s\n", e.what());
    return 1;
  }
}
