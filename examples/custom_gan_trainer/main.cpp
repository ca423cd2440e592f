// custom_gan_trainer: research code that brings its own networks and reuses cudagan's training loop,
// dcgan::Trainer (the loop dcgan_train runs), instead of writing one: epochs, max steps, the resume
// position, the NaN guard and the log / sample / checkpoint schedule come with it; this program
// decides only what happens at each event. The networks are the original GAN's multilayer
// perceptrons (Goodfellow et al. 2014) on MNIST, not the DCGAN convolutions:
//
//   G: z [N, nz] -> Linear(nz, 256) -> LeakyReLU(0.2) -> Linear(256, 784) -> Tanh -> [N, 1, 28, 28]
//   D: x [N, 1, 28, 28] -> [N, 784] -> Linear(784, 256) -> LeakyReLU(0.2) -> Linear(256, 1) -> logit [N]
//
//   custom_gan_trainer --data DIR --out DIR [--steps 2000] [--batch-size 64] [--log-every 100]
//                      [--device auto|cpu|cuda[:N]] [--seed 1] [--workers 2] [--nz 64]
//
// DIR holds the MNIST idx files (data/mnist of the cudagan repository). OUT receives samples.png (an
// 8x8 grid from fixed noise, rewritten whenever the Trainer says a sample is due) and
// generator.safetensors (G's weights, at each checkpoint the Trainer asks for). The defaults take
// about half a minute on a 2-core CPU and draw rough but recognisable digits; `--steps 20` is a smoke
// test.
//
// The Trainer's gradient hook (Callbacks::after_backward), where a data-parallel run would all-reduce
// the gradients, here measures each network's gradient norm for the log line.
#include <cudagan/cudagan.h>
#include <cudagan/data/data.h>
#include <cudagan/io/image_io.h>
#include <cudagan/io/safetensors.h>
#include <cudagan/runtime/blas.h>  // blas::ensure_fast_kernels
#include <cudagan/trainer.h>       // dcgan::Trainer, from cudagan::models

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>

using namespace cudagan;

namespace {

constexpr int kPixels = 28 * 28;

struct Options {
  std::string data, out, device = "auto";
  int64_t steps = 2000, log_every = 100;
  int batch_size = 64, workers = 2, nz = 64;
  uint64_t seed = 1;
};

const char* const kUsage =
    "usage: custom_gan_trainer --data DIR --out DIR [--steps N] [--batch-size N] [--log-every N] "
    "[--device auto|cpu|cuda[:N]] [--seed N] [--workers N] [--nz N]";

Options parse(int argc, char** argv) {
  Options o;
  auto number = [](const std::string& v) { return std::strtoll(v.c_str(), nullptr, 10); };
  const std::map<std::string, std::function<void(const std::string&)>> flags{
      {"--data", [&](const std::string& v) { o.data = v; }},
      {"--out", [&](const std::string& v) { o.out = v; }},
      {"--device", [&](const std::string& v) { o.device = v; }},
      {"--steps", [&](const std::string& v) { o.steps = number(v); }},
      {"--log-every", [&](const std::string& v) { o.log_every = number(v); }},
      {"--batch-size", [&](const std::string& v) { o.batch_size = int(number(v)); }},
      {"--workers", [&](const std::string& v) { o.workers = int(number(v)); }},
      {"--nz", [&](const std::string& v) { o.nz = int(number(v)); }},
      {"--seed", [&](const std::string& v) { o.seed = uint64_t(number(v)); }},
  };
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::printf("%s\n", kUsage);
      std::exit(0);
    }
    const auto flag = flags.find(arg);
    CUDAGAN_CHECK(flag != flags.end(), "unknown flag '", arg, "': ", kUsage);
    CUDAGAN_CHECK(i + 1 < argc, "'", arg, "' needs a value: ", kUsage);
    flag->second(argv[++i]);
  }
  CUDAGAN_CHECK(!o.data.empty() && !o.out.empty(), "--data DIR and --out DIR are required: ", kUsage);
  CUDAGAN_CHECK(o.steps > 0 && o.log_every > 0 && o.batch_size > 0 && o.nz > 0 && o.workers >= 0,
                "--steps, --log-every, --batch-size and --nz must be positive, --workers >= 0");
  return o;
}

class MlpGenerator : public nn::Module {
 public:
  MlpGenerator(Rng& rng, int nz) : main_(register_module("main", std::make_shared<nn::Sequential>())) {
    main_->emplace<nn::Linear>(rng, nz, 256);
    main_->emplace<nn::LeakyReLU>(0.2);
    main_->emplace<nn::Linear>(rng, 256, kPixels);
    main_->emplace<nn::Tanh>();
  }
  Tensor forward(const Tensor& z) override { return reshape((*main_)(z), {z.size(0), 1, 28, 28}); }

 private:
  std::shared_ptr<nn::Sequential> main_;
};

class MlpDiscriminator : public nn::Module {
 public:
  explicit MlpDiscriminator(Rng& rng) : main_(register_module("main", std::make_shared<nn::Sequential>())) {
    main_->emplace<nn::Flatten>();
    main_->emplace<nn::Linear>(rng, kPixels, 256);
    main_->emplace<nn::LeakyReLU>(0.2);
    main_->emplace<nn::Linear>(rng, 256, 1);
  }
  Tensor forward(const Tensor& x) override { return reshape((*main_)(x), {x.size(0)}); }  // one logit each

 private:
  std::shared_ptr<nn::Sequential> main_;
};

double gradient_norm(const nn::Module& net) {
  double squares = 0;
  for (const Tensor& p : net.parameters())
    if (p.grad().defined()) squares += sum(mul(p.grad(), p.grad())).item();
  return std::sqrt(squares);
}

int run(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const Device device = resolve_device(o.device);  // "auto": a GPU when there is one
  std::printf("custom_gan_trainer on %s; BLAS: %s\n", device.str().c_str(), blas::describe().c_str());
  std::filesystem::create_directories(o.out);

  const auto dataset = data::open_mnist(o.data, "train", 28);
  data::DataLoader loader(*dataset, o.batch_size, o.seed, o.workers);
  Rng rng(o.seed);
  MlpGenerator g(rng, o.nz);
  MlpDiscriminator d(rng);
  g.to(device);
  d.to(device);
  const optim::Adam::Options adam{2e-4, 0.5, 0.999, 1e-8, 0.0};
  optim::Adam opt_g(g.parameters(), adam), opt_d(d.parameters(), adam);

  // G takes [N, nz] noise, not DCGAN's [N, nz, 1, 1]: the Trainer draws it with this function.
  const int nz = o.nz;
  const dcgan::NoiseFn noise = [nz](int64_t n, Rng& r, Device on) {
    return Tensor::randn({n, nz}, r, DType::float32, on);
  };
  Rng fixed_rng(o.seed + 1);
  const Tensor fixed_noise = noise(64, fixed_rng, device);

  dcgan::Schedule schedule;
  schedule.epochs = 1000;  // bounded by max_steps
  schedule.max_steps = o.steps;
  schedule.log_every = o.log_every;
  schedule.sample_every = 500;
  schedule.checkpoint_every = 1000;
  dcgan::Trainer trainer({g, d, opt_g, opt_d}, loader, noise, rng.split(), schedule);
  std::printf("data: %s; G %lld parameters, D %lld; %lld steps of %d images\n", dataset->describe().c_str(),
              (long long)g.parameter_count(), (long long)d.parameter_count(),
              (long long)trainer.total_steps(), o.batch_size);

  double norm_d = 0, norm_g = 0;
  dcgan::Callbacks& on = trainer.callbacks();
  on.after_backward = [&](nn::Module& net) { (&net == &d ? norm_d : norm_g) = gradient_norm(net); };
  on.on_log = [&](const dcgan::StepReport& r) {
    std::printf(
        "[step %lld/%lld] Loss_D: %.4f Loss_G: %.4f D(x): %.4f D(G(z)): %.4f | |grad| D %.3f G %.3f | "
        "%.0f img/s\n",
        (long long)r.step, (long long)trainer.total_steps(), r.stats.loss_d, r.stats.loss_g, r.stats.d_x,
        r.stats.d_g_z2, norm_d, norm_g, r.images_per_s);
    std::fflush(stdout);  // progress shows up at once when stdout is a file or a pipe
  };
  on.on_sample = [&](int64_t) {
    NoGradGuard no_grad;
    save_image_grid(g(fixed_noise), o.out + "/samples.png");
  };
  on.on_checkpoint = [&](const dcgan::CheckpointDue& due) {
    save_safetensors(o.out + "/generator.safetensors", g.named_parameters(),
                     {{"step", std::to_string(due.state.step)}, {"nz", std::to_string(nz)}});
  };
  on.on_nan = [&](const dcgan::StepReport& r) {
    std::fprintf(stderr, "custom_gan_trainer: %s: try a lower learning rate\n",
                 dcgan::divergence_message(r).c_str());
  };
  if (trainer.run() == dcgan::Outcome::diverged) return 1;
  std::printf("wrote %s/samples.png and %s/generator.safetensors after %lld steps\n", o.out.c_str(),
              o.out.c_str(), (long long)trainer.state().step);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  blas::ensure_fast_kernels(argc, argv);  // may restart the program once, before anything else runs
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "custom_gan_trainer: %s\n", e.what());
    return 1;
  }
}
