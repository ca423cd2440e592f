// dcgan_sample CHECKPOINT OUT: images from a trained generator.
//   --grid (default)   OUT is a PNG: an 8-wide grid of --n samples
//   --folder           OUT is a folder: --n single PNGs (for FID and other external metrics)
//   --interpolate      OUT is a PNG: --n rows, each a spherical interpolation in --steps images
//                      between two random latent points
//   --arithmetic "A - B + C"
//                      OUT is a PNG: the DCGAN paper's latent vector arithmetic (latent_arithmetic.h) on
//                      samples of the grid that --seed and --n draw: one row per group (its samples and
//                      the image of their mean latent vector), then the result and 8 points near it
// Batchnorm uses the batch's statistics by default, as the PyTorch example draws its grids;
// --eval-bn uses the running statistics instead.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>

#include "cudagan/cudagan.h"
#include "cudagan/dcgan_checkpoint.h"
#include "cudagan/io/image_io.h"
#include "app_main.h"
#include "latent_arithmetic.h"
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

// Writes the latent-arithmetic sheet (see the top of this file). The input samples are the grid's own
// images (the grid's batch, drawn again); the means, the result and its neighbours are drawn in one batch
// with the grid's latents before them, so that batchnorm's batch statistics are nearly the grid's (exactly
// the same images either way with --eval-bn).
void write_arithmetic(dcgan::Generator& g, const std::string& expression, int n, Rng& rng, Device device,
                      const std::string& out) {
  const dcgan::Architecture arch = g.architecture();
  const int nz = arch.nz;
  const std::vector<apps::LatentTerm> terms = apps::parse_latent_arithmetic(expression, n);
  const Tensor grid_z = dcgan::sample_noise(n, nz, rng, Device::cpu());
  const std::vector<float> z = grid_z.to_float_vector();
  const std::vector<float> result = apps::evaluate_latent_arithmetic(terms, z, nz);
  constexpr int kNeighbours = 8;
  constexpr double kNeighbourStd = 0.25;  // the paper's "uniform noise of scale +-0.25" as a Gaussian's std

  std::vector<float> extra;  // each group's mean, the result, its neighbours
  for (const apps::LatentTerm& t : terms) {
    const std::vector<float> mean = apps::evaluate_latent_arithmetic({{1, t.indices}}, z, nz);
    extra.insert(extra.end(), mean.begin(), mean.end());
  }
  extra.insert(extra.end(), result.begin(), result.end());
  const std::vector<float> jitter = Tensor::randn({kNeighbours, nz}, rng).to_float_vector();
  for (int k = 0; k < kNeighbours; ++k)
    for (int i = 0; i < nz; ++i) extra.push_back(result[size_t(i)] + float(kNeighbourStd) * jitter[size_t(k * nz + i)]);
  const int64_t n_extra = int64_t(extra.size()) / nz;

  const std::vector<float> grid_images = g(grid_z.to(device)).to_float_vector();
  std::vector<float> all = z;
  all.insert(all.end(), extra.begin(), extra.end());
  const std::vector<float> drawn =
      g(Tensor::from_vector(all, {n + n_extra, nz, 1, 1}, device)).to_float_vector();
  const size_t per = size_t(arch.channels) * arch.image_size * arch.image_size;
  const auto extra_image = [&](int64_t k) { return drawn.begin() + (n + k) * int64_t(per); };

  size_t widest = 0;
  for (const apps::LatentTerm& t : terms) widest = std::max(widest, t.indices.size());
  const int columns = int(std::max<size_t>(widest + 1, kNeighbours + 1));
  std::vector<float> sheet;
  const auto pad_row = [&](size_t cells) { sheet.insert(sheet.end(), (columns - cells) * per, -1.0f); };
  for (size_t r = 0; r < terms.size(); ++r) {
    for (int index : terms[r].indices)
      sheet.insert(sheet.end(), grid_images.begin() + index * int64_t(per), grid_images.begin() + (index + 1) * int64_t(per));
    sheet.insert(sheet.end(), extra_image(int64_t(r)), extra_image(int64_t(r)) + int64_t(per));
    pad_row(terms[r].indices.size() + 1);
  }
  const int64_t first_result = int64_t(terms.size());
  sheet.insert(sheet.end(), extra_image(first_result), extra_image(first_result + 1 + kNeighbours));
  pad_row(1 + kNeighbours);
  const int64_t cells = int64_t(sheet.size() / per);
  save_image_grid(Tensor::from_vector(sheet, {cells, arch.channels, arch.image_size, arch.image_size}), out, columns, 2);
  std::printf("wrote \"%s\" to %s: %zu rows of a group's samples and (after them) the image of their mean latent "
              "vector, then the result and %d points near it (std %.2f)\n",
              expression.c_str(), out.c_str(), terms.size(), kNeighbours, kNeighbourStd);
}

int run(int argc, char** argv) {
  std::string checkpoint, out, device_name = "auto";
  int n = 64, steps = 8;
  uint64_t seed = 1;
  bool grid = false, folder = false, interpolate = false, eval_bn = false;
  std::string arithmetic;
  CLI::App app{"Draw images from a DCGAN checkpoint written by dcgan_train"};
  app.add_option("checkpoint", checkpoint, "A checkpoint (OUT/checkpoints/latest.safetensors)")->required();
  app.add_option("out", out, "Output PNG (--grid, --interpolate) or folder (--folder)")->required();
  app.add_option("--n", n, "Samples (--grid, --folder) or interpolation rows (--interpolate)")->capture_default_str();
  app.add_option("--seed", seed, "Random seed of the latent vectors")->capture_default_str();
  auto* g1 = app.add_flag("--grid", grid, "Write one grid PNG (the default)");
  auto* g2 = app.add_flag("--folder", folder, "Write --n single PNGs into the folder OUT");
  auto* g3 = app.add_flag("--interpolate", interpolate, "Rows of spherical interpolations between random points");
  auto* g4 = app.add_option("--arithmetic", arithmetic,
                             "Latent vector arithmetic on samples of the --seed/--n grid, e.g. \"3,17 - 5 + 11,20\"");
  g1->excludes(g2)->excludes(g3)->excludes(g4);
  g2->excludes(g3)->excludes(g4);
  g3->excludes(g4);
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

  if (g4->count() > 0) {  // given, even empty: an empty expression is an error, not the plain grid
    write_arithmetic(*g, arithmetic, n, rng, device, out);
    return 0;
  }
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

int main(int argc, char** argv) { return cudagan::apps::run_tool("dcgan_sample", argc, argv, run); }
