// dcgan_sample CHECKPOINT OUT: images from a trained generator.
//   --grid (default)   OUT is a PNG: an 8-wide grid of --n samples
//   --folder           OUT is a folder: --n single PNGs (for FID and other external metrics)
//   --interpolate      OUT is a PNG: --n rows, each a spherical interpolation in --steps images
//                      between two random latent points
// Batchnorm uses the batch's statistics by default, as the PyTorch example draws its grids;
// --eval-bn uses the running statistics instead.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>

#include "cudagan/cudagan.h"
#include "cudagan/dcgan_checkpoint.h"
#include "cudagan/io/image_io.h"
#include "cudagan/runtime/blas.h"
#include "stop_signal.h"

using namespace cudagan;
namespace fs = std::filesystem;

namespace {

// Spherical interpolation between a and b (treated as vectors), t in [0, 1].
std::vector<float> slerp(const std::vector<float>& a, const std::vector<float>& b, double t) {
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) dot += double(a[i]) * b[i], na += double(a[i]) * a[i], nb += double(b[i]) * b[i];
  const double cos_omega = std::clamp(dot / std::sqrt(na * nb), -1.0, 1.0), omega = std::acos(cos_omega);
  std::vector<float> out(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    const double wa = omega < 1e-6 ? 1 - t : std::sin((1 - t) * omega) / std::sin(omega);
    const double wb = omega < 1e-6 ? t : std::sin(t * omega) / std::sin(omega);
    out[i] = float(wa * a[i] + wb * b[i]);
  }
  return out;
}

int run(int argc, char** argv) {
  std::string checkpoint, out, device_name = "auto";
  int n = 64, steps = 8;
  uint64_t seed = 1;
  bool grid = false, folder = false, interpolate = false, eval_bn = false;
  CLI::App app{"Draw images from a DCGAN checkpoint written by dcgan_train"};
  app.add_option("checkpoint", checkpoint, "A checkpoint (OUT/checkpoints/latest.safetensors)")->required();
  app.add_option("out", out, "Output PNG (--grid, --interpolate) or folder (--folder)")->required();
  app.add_option("--n", n, "Samples (--grid, --folder) or interpolation rows (--interpolate)")->capture_default_str();
  app.add_option("--seed", seed, "Random seed of the latent vectors")->capture_default_str();
  auto* g1 = app.add_flag("--grid", grid, "Write one grid PNG (the default)");
  auto* g2 = app.add_flag("--folder", folder, "Write --n single PNGs into the folder OUT");
  auto* g3 = app.add_flag("--interpolate", interpolate, "Rows of spherical interpolations between random points");
  g1->excludes(g2)->excludes(g3);
  g2->excludes(g3);
  app.add_option("--steps", steps, "Images per interpolation row")->capture_default_str();
  app.add_flag("--eval-bn", eval_bn, "Use batchnorm's running statistics instead of the batch's");
  app.add_option("--device", device_name, "auto, cpu, cuda or cuda:N")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  CUDAGAN_CHECK(n > 0 && n <= 100000, "--n must be between 1 and 100000, got ", n);
  CUDAGAN_CHECK(steps >= 2 && steps <= 64, "--steps must be between 2 and 64, got ", steps);
  CUDAGAN_CHECK(fs::exists(checkpoint), "checkpoint '", checkpoint, "' does not exist");
  const Device device = resolve_device(device_name);
  bool verified = true;
  auto g = dcgan::load_generator(checkpoint, device, &verified);
  if (!verified) std::fprintf(stderr, "%s\n", dcgan::unverified_checkpoint_note(checkpoint).c_str());
  if (eval_bn) g->eval();
  const dcgan::Architecture arch = g->architecture();
  Rng rng(seed);
  NoGradGuard no_grad;

  if (interpolate) {
    std::vector<float> z;
    for (int row = 0; row < n; ++row) {
      const std::vector<float> a = Tensor::randn({arch.nz}, rng).to_float_vector();
      const std::vector<float> b = Tensor::randn({arch.nz}, rng).to_float_vector();
      for (int k = 0; k < steps; ++k) {
        const std::vector<float> p = slerp(a, b, double(k) / (steps - 1));
        z.insert(z.end(), p.begin(), p.end());
      }
    }
    const Tensor noise = Tensor::from_vector(z, {int64_t(n) * steps, arch.nz, 1, 1}, device);
    save_image_grid(g->forward(noise), out, steps, 2);
    std::printf("wrote %d interpolation rows of %d images to %s\n", n, steps, out.c_str());
    return 0;
  }
  const Tensor images = (*g)(dcgan::sample_noise(n, arch.nz, rng, device));
  if (!folder) {
    save_image_grid(images, out, 8, 2);
    std::printf("wrote a grid of %d samples to %s\n", n, out.c_str());
    return 0;
  }
  std::error_code ec;
  fs::create_directories(out, ec);
  CUDAGAN_CHECK(!ec, "cannot create folder '", out, "': ", ec.message());
  const std::vector<float> values = images.to_float_vector();
  const int64_t per = images.numel() / n;
  // Only now: until here a signal's default action is the clean stop (nothing written yet); from here
  // the first one stops between files and a second one ends the program at once.
  apps::install_stop_handlers();
  std::printf("writing %d samples to %s/\n", n, out.c_str());
  std::fflush(stdout);
  for (int i = 0; i < n; ++i) {
    if (const int sig = apps::stop_signal()) {  // between files: each PNG is written whole or not at all
      std::printf("stopped by %s after writing %d of %d samples to %s/\n", apps::signal_name(sig), i, n,
                  out.c_str());
      return apps::signal_exit_code(sig);
    }
    std::vector<float> one(values.begin() + i * per, values.begin() + (i + 1) * per);
    char name[32];
    std::snprintf(name, sizeof name, "sample_%05d.png", i);
    save_image_grid(Tensor::from_vector(one, {1, arch.channels, arch.image_size, arch.image_size}),
                    (fs::path(out) / name).string(), 1, 0);
  }
  std::printf("wrote %d samples to %s/\n", n, out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  blas::ensure_fast_kernels(argc, argv);
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dcgan_sample: error: %s\n", e.what());
    return 1;
  }
}
