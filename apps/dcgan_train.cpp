// dcgan_train DATA OUT [flags]: trains a DCGAN as pytorch/examples/dcgan does, on the CPU or a GPU,
// writing sample grids, progress.gif, losses.csv, loss.png and resumable checkpoints into OUT.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>

#include "cudagan/core/cuda.h"
#include "cudagan/cudagan.h"
#include "cudagan/data/data.h"
#include "cudagan/dcgan.h"
#include "cudagan/dcgan_checkpoint.h"
#include "cudagan/runtime/blas.h"
#include "train_config.h"
#include "train_outputs.h"

using namespace cudagan;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kCollapseSteps = 200;   // discriminator loss below kCollapseLoss this long: warn
constexpr double kCollapseLoss = 1e-3;
constexpr int kGridImages = 64;           // 8x8 sample grids

Device resolve_device(const std::string& name) {
  if (name == "auto") return cuda_available() ? Device::cuda(0) : Device::cpu();
  const Device d = Device::parse(name);
  if (d.is_cuda())
    CUDAGAN_CHECK(cuda_available(), "--device ", name, " asked for a GPU, but ",
                  "this build or machine has none: use --device cpu (or auto)");
  return d;
}

// The generator's samples for the fixed noise. Batchnorm uses the batch's statistics, as the
// reference draws its grids, but its running statistics are restored: sampling leaves no trace.
Tensor sample_grid(dcgan::Generator& g, const Tensor& fixed_noise) {
  NoGradGuard no_grad;
  std::vector<Tensor> saved;
  for (const Tensor& b : g.buffers()) saved.push_back(b.clone());
  Tensor images = g(fixed_noise);
  const std::vector<Tensor> buffers = g.buffers();
  for (size_t i = 0; i < buffers.size(); ++i) Tensor(buffers[i]).copy_(saved[i]);
  return images;
}

Tensor first_images(const Tensor& images, int64_t n) {
  if (images.size(0) <= n) return images;
  Shape shape = images.shape();
  std::vector<float> values = images.to_float_vector();
  values.resize(size_t(values.size() / size_t(shape[0]) * size_t(n)));
  shape[0] = n;
  return Tensor::from_vector(values, shape);
}

void write_text_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    f << text;
    CUDAGAN_CHECK(f.good(), "cannot write '", path, "': choose an OUT you can write to");
  }
  fs::rename(tmp, path);
}

int train(const apps::TrainConfig& config) {
  apps::validate(config);
  const Device device = resolve_device(config.device);
  if (device.is_cuda()) cuda_set_allow_tf32(device, config.tf32);
  const bool resuming = !config.resume.empty();
  if (resuming)
    CUDAGAN_CHECK(fs::exists(config.resume), "checkpoint '", config.resume,
                  "' does not exist: give the path of a checkpoint, or train without --resume");

  // Data first: most user errors (a wrong path, no images) show up here, before OUT is touched.
  const int channels = config.channels == "auto" ? 0 : std::stoi(config.channels);
  const auto dataset = data::open_dataset(config.data, config.image_size, channels);
  data::DataLoader loader(*dataset, config.batch_size, config.seed, config.workers);
  const int64_t batches = loader.batches_per_epoch();
  CUDAGAN_CHECK(batches > 0, "the data has ", dataset->size(), " images, fewer than one batch of ",
                config.batch_size, ": use a smaller --batch-size");

  dcgan::Architecture arch;
  arch.image_size = config.image_size;
  arch.channels = dataset->channels();
  arch.nz = config.nz;
  arch.ngf = config.ngf;
  arch.ndf = config.ndf;
  Rng init_rng(config.seed);
  dcgan::Generator g(arch, init_rng);
  dcgan::Discriminator d(arch, init_rng);
  dcgan::init_weights(g, init_rng);
  dcgan::init_weights(d, init_rng);
  g.to(device);
  d.to(device);
  optim::Adam opt_g(g.parameters(), {config.lr, config.beta1, config.beta2, 1e-8, 0.0});
  optim::Adam opt_d(d.parameters(), {config.lr, config.beta1, config.beta2, 1e-8, 0.0});
  Rng noise_rng = init_rng.split();
  Rng fixed_rng = init_rng.split();
  const Tensor fixed_noise = dcgan::sample_noise(kGridImages, arch.nz, fixed_rng, device);

  apps::TrainConfig resolved = config;
  resolved.channels = std::to_string(arch.channels);
  resolved.resume.clear();
  const std::string config_yaml = apps::to_yaml(resolved);

  dcgan::TrainingState state;
  if (resuming) {
    state = dcgan::load_checkpoint(config.resume, g, d, opt_g, opt_d);
    noise_rng.set_state(state.rng);
  }
  apps::TrainOutputs outputs(config.out, resuming ? state.step : -1);
  write_text_atomically(outputs.path("config.yaml"), config_yaml);

  const int64_t planned = int64_t(config.epochs) * batches;
  const int64_t total_steps = config.max_steps > 0 ? std::min(planned, config.max_steps) : planned;
  apps::Console console(total_steps, config.epochs, batches, config.batch_size);
  console.message("cudagan dcgan_train: " + dataset->describe());
  console.message("device " + device.str() + (device.is_cpu() ? "; BLAS " + blas::describe() : std::string()) +
                  "; G " + std::to_string(g.parameter_count()) + " parameters, D " +
                  std::to_string(d.parameter_count()) + "; " + std::to_string(batches) + " batches of " +
                  std::to_string(config.batch_size) + " per epoch");
  if (resuming)
    console.message("resuming from " + config.resume + " at step " + std::to_string(state.step) + " (epoch " +
                    std::to_string(state.epoch) + ", batch " + std::to_string(state.batch_in_epoch) + ")");

  auto save_latest = [&](const std::string& name) {
    state.rng = noise_rng.state();
    state.config_yaml = config_yaml;
    dcgan::save_checkpoint(outputs.path("checkpoints/" + name), g, d, opt_g, opt_d, state);
  };

  const auto start = std::chrono::steady_clock::now();
  const double elapsed_before = outputs.rows().empty() ? 0.0 : outputs.rows().back().elapsed_s;
  int64_t low_loss_run = 0;
  bool warned_collapse = false, wrote_real = fs::exists(outputs.path("real_samples.png"));
  data::Batch batch;
  bool done = total_steps <= state.step;
  while (!done && state.epoch < config.epochs) {
    loader.start_epoch(state.epoch);
    loader.skip(state.batch_in_epoch);
    bool epoch_over = false;
    while (!done) {
      const auto t0 = std::chrono::steady_clock::now();
      if (!loader.next(batch)) break;
      if (!wrote_real) {
        save_image_grid(first_images(batch.images, kGridImages), outputs.path("real_samples.png"), 8, 2);
        wrote_real = true;
      }
      const Tensor real = batch.images.to(device);
      const dcgan::StepStats stats = dcgan::train_step(g, d, opt_g, opt_d, real, noise_rng);
      const auto t1 = std::chrono::steady_clock::now();
      ++state.step;
      ++state.batch_in_epoch;

      apps::LossRow row;
      row.step = state.step;
      row.epoch = state.epoch;
      row.stats = stats;
      row.images_per_s = double(real.size(0)) / std::chrono::duration<double>(t1 - t0).count();
      row.elapsed_s = elapsed_before + std::chrono::duration<double>(t1 - start).count();
      if (!std::isfinite(stats.loss_d) || !std::isfinite(stats.loss_g)) {
        outputs.write_summaries();
        const fs::path latest = fs::path(outputs.path("checkpoints")) / "latest.safetensors";
        throw Error(detail::concat(
            std::isfinite(stats.loss_d) ? "Loss_G" : "Loss_D", " became NaN/Inf at step ", state.step,
            ": training stopped; ",
            fs::exists(latest) ? "the last good checkpoint is kept in " + latest.string() +
                                     " (resume from it with a lower --lr)"
                               : std::string("no checkpoint had been written yet (try a lower --lr)")));
      }
      outputs.add_row(row);
      low_loss_run = stats.loss_d < kCollapseLoss ? low_loss_run + 1 : 0;
      if (low_loss_run >= kCollapseSteps && !warned_collapse) {
        console.message("warning: the discriminator has won (Loss_D < 0.001 for " + std::to_string(kCollapseSteps) +
                        " steps at step " + std::to_string(state.step) +
                        "): the generator gets no gradient and training has likely collapsed");
        warned_collapse = true;
      }
      done = state.step >= total_steps;
      epoch_over = state.batch_in_epoch >= batches;
      console.step(row, state.batch_in_epoch, state.step % config.log_every == 0 || done || epoch_over);
      if (state.step % config.sample_every == 0 && !epoch_over && !done)
        outputs.add_sample_grid(state.step, sample_grid(g, fixed_noise));
      if (state.step % config.checkpoint_every == 0 && !epoch_over && !done) save_latest("latest.safetensors");
      if (epoch_over) break;
    }
    if (epoch_over || !done) {  // the epoch ran out of batches (or of readable images)
      ++state.epoch;
      state.batch_in_epoch = 0;
      char name[48];
      std::snprintf(name, sizeof name, "epoch_%03lld.safetensors", (long long)state.epoch);
      outputs.add_sample_grid(state.step, sample_grid(g, fixed_noise));
      save_latest(name);
      save_latest("latest.safetensors");
      outputs.write_summaries();
      console.message("epoch " + std::to_string(state.epoch) + " done; data loader " +
                      std::to_string(int(loader.images_per_second())) + " images/s");
      done = done || state.epoch >= config.epochs;
    } else {  // stopped by --max-steps mid-epoch
      outputs.add_sample_grid(state.step, sample_grid(g, fixed_noise));
      save_latest("latest.safetensors");
    }
  }
  outputs.write_summaries();
  if (loader.skipped() > 0)
    console.message("skipped " + std::to_string(loader.skipped()) + " unreadable images");
  console.message("done: " + std::to_string(state.step) + " steps; outputs in " + config.out);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  blas::ensure_fast_kernels(argc, argv);
  apps::TrainConfig config;
  int exit_code = 0;
  try {
    if (!apps::parse_train_config(argc, argv, config, exit_code)) return exit_code;
    return train(config);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "dcgan_train: error: %s\n", e.what());
    return 1;
  }
}
