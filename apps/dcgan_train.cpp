// dcgan_train DATA OUT [flags]: trains a DCGAN as pytorch/examples/dcgan does, on the CPU or a GPU,
// writing sample grids, progress.gif, losses.csv, loss.png and resumable checkpoints into OUT.
//
// The loop itself is dcgan::Trainer's (models/include/cudagan/trainer.h): this file builds what it trains
// (or resumes it) and hands the Trainer's events to train_events.h, which writes the outputs.
//
// Under mpirun (a build with MPI) every rank runs this program: each trains on its share of every global
// batch (--batch-size stays the global batch) and rank 0 alone writes OUT and the console; the other
// ranks print only errors. An error on any rank ends the whole job (MPI_Abort), with that rank's message.
#include <cstdio>
#include <exception>
#include <filesystem>
#include <memory>

#include "cudagan/core/cuda.h"
#include "cudagan/cudagan.h"
#include "cudagan/data/data.h"
#include "cudagan/dcgan.h"
#include "cudagan/dist/dist.h"
#include "cudagan/dcgan_checkpoint.h"
#include "cudagan/io/atomic_file.h"
#include "cudagan/runtime/blas.h"
#include "cudagan/trainer.h"
#include "stop_signal.h"
#include "train_config.h"
#include "quality.h"
#include "train_eval.h"
#include "train_events.h"
#include "train_outputs.h"

using namespace cudagan;
namespace fs = std::filesystem;

namespace {

// A rank other than 0: trains its share and writes nothing. It stops when rank 0 does (the Trainer agrees
// on stops and divergence across ranks), with the exit code rank 0 reports.
int run_worker(dcgan::Trainer& trainer) {
  trainer.callbacks().should_stop = [] { return apps::stop_signal() != 0; };
  const dcgan::Outcome outcome = trainer.run();
  if (outcome == dcgan::Outcome::diverged) return 1;
  if (outcome == dcgan::Outcome::interrupted) return apps::signal_exit_code(apps::stop_signal() ? apps::stop_signal() : 15);
  return 0;
}

dcgan::Schedule schedule_of(const apps::TrainConfig& config) {
  dcgan::Schedule s;  // the collapse warning keeps its defaults
  s.epochs = config.epochs;
  s.max_steps = config.max_steps;
  s.log_every = config.log_every;
  s.sample_every = config.sample_every;
  s.checkpoint_every = config.checkpoint_every;
  s.eval_every = config.eval_every;
  s.checkpoint_seconds = config.checkpoint_minutes * 60;
  return s;
}

// What every rank must agree on: everything that shapes the computation, but not the paths (the data may
// be mounted elsewhere on another machine), the loader's threads or the device, which may differ.
uint64_t computation_fingerprint(apps::TrainConfig c, const data::Dataset& dataset) {
  c.data = c.out = c.device = c.resume = c.classifier = "";
  c.workers = 0;
  const std::string data = dataset.describe();  // "<kind> '<path>': <count> images as <shape>...": not the path
  const size_t colon = data.find("': ");
  return dist::fingerprint(apps::to_yaml(c) + (colon == std::string::npos ? data : data.substr(colon)));
}

int train(const apps::TrainConfig& config, const dist::Communicator& comm) {
  apps::validate(config);
  const int world = comm.world_size();
  CUDAGAN_CHECK(config.batch_size % world == 0, "--batch-size ", config.batch_size, " does not divide over ", world,
                " ranks: give a multiple of ", world, " (it is the global batch, split evenly)");
  const Device device = comm.device_for(config.device);
  if (device.is_cuda()) cuda_set_allow_tf32(device, config.tf32);
  const bool resuming = !config.resume.empty();
  if (resuming)
    CUDAGAN_CHECK(fs::exists(config.resume), "checkpoint '", config.resume,
                  "' does not exist: give the path of a checkpoint, or train without --resume");

  // Data first: most user errors (a wrong path, no images) show up here, before OUT is touched.
  const int channels = config.channels == "auto" ? 0 : std::stoi(config.channels);
  const auto dataset = data::open_dataset(config.data, config.image_size, channels);
  data::DataLoader loader(*dataset, config.batch_size, config.seed, config.workers, true,
                          data::Shard{comm.rank(), world});
  const int64_t batches = loader.batches_per_epoch();
  CUDAGAN_CHECK(batches > 0, "the data has ", dataset->size(), " images, fewer than one batch of ",
                config.batch_size, ": use a smaller --batch-size");
  if (world > 1) comm.agree(computation_fingerprint(config, *dataset), "the configuration (flags or data)");

  const dcgan::Architecture arch = apps::architecture(config, dataset->channels());
  Rng init_rng(config.seed);
  dcgan::Generator g(arch, init_rng);
  dcgan::Discriminator d(arch, init_rng);
  dcgan::init_weights(g, init_rng);
  dcgan::init_weights(d, init_rng);
  g.to(device);
  d.to(device);
  optim::Adam opt_g(g.parameters(), {config.lr, config.beta1, config.beta2, 1e-8, 0.0});
  optim::Adam opt_d(d.parameters(), {config.lr, config.beta1, config.beta2, 1e-8, 0.0});
  const Rng noise_rng = init_rng.split();
  Rng fixed_rng = init_rng.split();
  const Tensor fixed_noise = dcgan::sample_noise(apps::kGridImages, arch.nz, fixed_rng, device);

  apps::TrainConfig resolved = config;
  resolved.channels = std::to_string(arch.channels);
  resolved.resume.clear();
  const std::string config_yaml = apps::to_yaml(resolved);

  dcgan::Trainer trainer({g, d, opt_g, opt_d}, loader, dcgan::gaussian_noise(arch.nz), noise_rng,
                         schedule_of(config));
  bool verified = true;
  if (resuming) {  // every rank reads the checkpoint: OUT must be on a file system they share
    const dcgan::TrainingState loaded = dcgan::load_checkpoint(config.resume, g, d, opt_g, opt_d);
    verified = loaded.checksums_verified;
    trainer.resume(loaded);
  }
  trainer.distribute(comm, config.batchnorm == "sync");
  const dcgan::TrainingState state = trainer.state();
  if (!comm.is_root()) return run_worker(trainer);
  apps::TrainOutputs outputs(config.out, resuming ? state.step : -1);
  detail::write_file_atomically(outputs.path("config.yaml"), config_yaml.data(), config_yaml.size());

  apps::Console console(trainer.total_steps(), config.epochs, batches, config.batch_size, world == 1);
  console.message("cudagan dcgan_train: " + dataset->describe());
  if (world > 1)
    console.message("data-parallel over " + comm.describe() + ": " + std::to_string(config.batch_size / world) +
                    " images per rank and step, batchnorm " + config.batchnorm);
  console.message("device " + device.str() + (device.is_cpu() ? "; BLAS " + blas::describe() + "; conv kernels " + blas::describe_cpu_kernels()
                                                     : std::string()) +
                  "; G " + std::to_string(g.parameter_count()) + " parameters, D " +
                  std::to_string(d.parameter_count()) + "; " + std::to_string(batches) + " batches of " +
                  std::to_string(config.batch_size) + " per epoch");
  if (resuming)
    console.message("resuming from " + config.resume + " at step " + std::to_string(state.step) + " (epoch " +
                    std::to_string(state.epoch) + ", batch " + std::to_string(state.batch_in_epoch) + ")");
  if (!verified) console.message(dcgan::unverified_checkpoint_note(config.resume));

  // The evaluation's real images, decoded once, in an order of their own (the seed's, shifted).
  // On MNIST also the digit classifier's metrics, against the test split.
  std::unique_ptr<apps::TrainEval> eval;
  if (config.eval_every != 0) {
    std::string why;
    auto digit_metrics = apps::digit_evaluator(config.data, arch, config.eval_images, config.seed + 3,
                                               config.classifier, device, &why);
    if (digit_metrics) {
      const digits::Quality& real = digit_metrics->reference();
      char line[160];
      std::snprintf(line, sizeof line, "evaluations: SWD, and FCD against %lld MNIST test digits (which score "
                    "confidence %.3f, class entropy %.2f bits)", (long long)real.images, real.mean_confidence,
                    real.class_entropy_bits);
      console.message(line);
    } else if (!why.empty() && data::has_mnist_split(config.data, "train"))
      console.message("evaluations: SWD only; no FCD: " + why);
    eval = std::make_unique<apps::TrainEval>(config.out, resuming ? state.step : -1,
                                             apps::evaluation_images(*dataset, config.eval_images, config.seed + 1),
                                             config.batch_size, config.seed + 2, std::move(digit_metrics));
  }
  apps::TrainEvents events({g, d, opt_g, opt_d, loader, trainer.schedule()}, fixed_noise, config_yaml,
                           config.out, outputs, console, eval.get());
  events.set_report("dcgan_train " + config.data, trainer.total_steps());
  events.write_page("starting", true);
  trainer.callbacks() = events.callbacks();
  trainer.callbacks().should_stop = [] { return apps::stop_signal() != 0; };
  const dcgan::Outcome outcome = trainer.run();
  if (outcome == dcgan::Outcome::diverged) throw Error(events.divergence());
  if (outcome == dcgan::Outcome::interrupted) {  // the Trainer has fired the checkpoint of the step reached
    outputs.write_summaries();
    const int sig = apps::stop_signal();
    events.write_page(std::string("stopped by ") + apps::signal_name(sig) + " at step " +
                          std::to_string(trainer.state().step) + " (resume with --resume latest)",
                      false);
    console.message(std::string("stopped by ") + apps::signal_name(sig) + " at step " +
                    std::to_string(trainer.state().step) + "; resume with: dcgan_train --config " +
                    outputs.path("config.yaml") + " --resume latest");
    return apps::signal_exit_code(sig);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  blas::ensure_fast_kernels(argc, argv);
  std::unique_ptr<dist::Communicator> comm;
  try {
    comm = dist::init(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dcgan_train: error: %s\n", e.what());
    return 1;
  }
  // The other ranks print only errors (stderr): their console would repeat rank 0's.
  if (!comm->is_root() && !std::freopen("/dev/null", "w", stdout)) std::fputs("dcgan_train: no /dev/null\n", stderr);
  apps::install_stop_handlers();  // from here on, SIGINT / SIGTERM end training after the current step
  apps::TrainConfig config;
  int exit_code = 0;
  try {
    if (!apps::parse_train_config(argc, argv, config, exit_code)) return exit_code;
    exit_code = train(config, *comm);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    if (comm->world_size() == 1) {
      std::fprintf(stderr, "dcgan_train: error: %s\n", e.what());
      return 1;
    }
    // The other ranks may be waiting in a collective for this one: end them all, now.
    std::fprintf(stderr, "dcgan_train: error on rank %d of %d: %s\n", comm->rank(), comm->world_size(), e.what());
    comm->abort(1);
  }
  comm->finalize();
  return exit_code;
}
