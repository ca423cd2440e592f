// dcgan::Trainer: the GAN training loop that dcgan_train and research code share. It runs the DCGAN
// step (train_step) over the epochs of a DataLoader, keeps the position a checkpoint records
// (step, epoch, batch within the epoch, the noise generator's state), guards against NaN losses and
// watches for a collapsed discriminator, and says through callbacks WHEN a log line, a sample grid or
// a checkpoint is due. WHAT happens then (printing, writing files) is the caller's: the Trainer writes
// nothing and prints nothing, so one loop serves the command-line app and a research program alike.
//
// The networks are any nn::Module pair, not only dcgan::Generator / Discriminator: G maps a latent
// batch (made by a NoiseFn) to images shaped like the data's, D maps images to one logit per image.
//
//   dcgan::Trainer trainer({g, d, opt_g, opt_d}, loader, dcgan::gaussian_noise(nz), Rng(seed), schedule);
//   trainer.callbacks().on_log = [](const dcgan::StepReport& r) { std::printf("%.4f\n", r.stats.loss_d); };
//   trainer.callbacks().on_checkpoint = [&](const dcgan::CheckpointDue& c) { /* save c.state */ };
//   if (resuming) trainer.resume(dcgan::load_checkpoint(path, g, d, opt_g, opt_d));
//   trainer.run();
//
// Data-parallel training (cudagan::dist) is one call: give every rank's Trainer a loader sharded by rank
// and call distribute(comm) before run(). Each rank then trains on its share of every global batch, with
// its share of the global noise batch, averages both networks' gradients before each Adam step (one
// all-reduce per network, at Callbacks::after_backward) and, by default, synchronises batchnorm over the
// global batch: an N-rank run computes what a 1-rank run with the same global batch does. The reports
// carry the global losses (the ranks' mean) and the global images per second; a stop asked on any
// rank stops every rank at the same step. The callbacks still fire on every rank: let rank 0 alone
// write files (and leave the other ranks' callbacks empty).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "cudagan/data/data.h"
#include "cudagan/dcgan.h"
#include "cudagan/dist/dist.h"
#include "cudagan/dcgan_checkpoint.h"

namespace cudagan::dcgan {

// When things happen, counted in steps (one step: one batch, one D and one G update).
struct Schedule {
  int64_t epochs = 5;               // passes over the data
  int64_t max_steps = 0;            // stop after this many steps in all, resumed ones included; 0: no limit
  int64_t log_every = 50;           // on_log at every multiple, and at each epoch's and the run's last step
  int64_t sample_every = 500;       // on_sample at every multiple, and at each epoch's end and at the stop
  int64_t checkpoint_every = 1000;  // on_checkpoint the same way
  // on_eval (a quality measurement) every eval_every steps and at the run's end; -1: at each epoch's end
  // and at the run's end; 0: never.
  int64_t eval_every = -1;
  double checkpoint_seconds = 0;    // also on_checkpoint (Kind::timed) once this long has passed on the
                                    // Trainer's clock since the last checkpoint or run()'s start; 0: off
  int64_t collapse_steps = 200;     // on_collapse_warning (once a run) after this many steps in a row ...
  double collapse_loss = 1e-3;      // ... with loss_d below this: D has won and G gets no gradient
};

// One step's result and where it sits. The epoch and batch are those of the step (0-based epoch,
// batch_in_epoch 1..batches_per_epoch), step counts every step so far, this one included. In a
// data-parallel run the stats are the mean over the ranks and the images those of the global batch.
struct StepReport {
  StepStats stats;
  int64_t step = 0, epoch = 0, batch_in_epoch = 0;
  int64_t images = 0;       // in the (global) batch
  double images_per_s = 0;  // images over the step's wall time, waiting for the batch included
  double elapsed_s = 0;     // since run() began
};

// A checkpoint is due. `state` is what to save (its config_yaml is what resume() was given).
struct CheckpointDue {
  enum class Kind {
    periodic,   // a multiple of checkpoint_every, inside an epoch
    epoch_end,  // epoch state.epoch - 1 has just ended (state points at the next one's start)
    stop,       // max_steps reached inside an epoch
    timed,      // checkpoint_seconds have passed since the last checkpoint, inside an epoch
    interrupted,  // a stop was requested (request_stop, should_stop) after this step, inside an epoch
  };
  Kind kind = Kind::periodic;
  TrainingState state;
};

// A quality evaluation is due (Schedule::eval_every): the networks hold the weights of `state`, the
// position after step `state.step`. It fires after that step's on_sample and before its on_checkpoint,
// so a "best so far" checkpoint written here is of the same weights as the regular one.
struct EvalDue {
  TrainingState state;
};

// What the caller is told, each optional. Every callback runs on the thread that called run(); an
// exception thrown by one leaves run() at once (the Trainer keeps the position of the step it was in).
struct Callbacks {
  std::function<void(const data::Batch&)> on_first_batch;      // the first batch run() trains on
  std::function<void(const StepReport&)> on_step;              // every step whose losses are finite
  std::function<void(const StepReport&)> on_log;               // after on_step, when a log line is due
  std::function<void(int64_t step)> on_sample;                 // a fixed-noise sample grid is due
  std::function<void(const EvalDue&)> on_eval;                 // at most once a step, after on_sample
  std::function<void(const CheckpointDue&)> on_checkpoint;     // at most once a step, after on_eval
  std::function<void(const StepReport&)> on_collapse_warning;  // before that step's on_step
  std::function<void(int64_t epochs_done)> on_epoch_end;       // after the epoch's checkpoint
  std::function<void(const TrainingState&)> on_finish;         // run() ended normally
  // A step's loss is NaN or infinite: the step is reported here instead of on_step, nothing else fires
  // and run() returns Outcome::diverged (the last checkpoint written stays the last good one). Without
  // this callback, run() throws cudagan::Error(divergence_message(report)) instead.
  std::function<void(const StepReport&)> on_nan;
  // Asked once after each step's events: true stops the run there (see Trainer::run). Polling a flag
  // set by a signal handler belongs here, since a handler can call nothing else safely.
  std::function<bool()> should_stop;
  GradientHook after_backward;  // passed to train_step: D's, then G's gradients before their Adam step
};

// The training objects, referenced, not owned: they must outlive the Trainer. g and d live on one
// device (where the batches are moved); opt_g and opt_d update their parameters.
struct Networks {
  nn::Module& g;
  nn::Module& d;
  optim::Adam& opt_g;
  optim::Adam& opt_d;
};

// G's input for n images, drawn from `rng` (the Trainer's noise generator) and placed on `device`.
using NoiseFn = std::function<Tensor(int64_t n, cudagan::Rng& rng, Device device)>;
NoiseFn gaussian_noise(int nz);  // sample_noise: [n, nz, 1, 1] ~ N(0, 1), what dcgan::Generator takes

// "Loss_D became NaN/Inf at step 3: training stopped" (Loss_G when only G's loss is not finite).
std::string divergence_message(const StepReport& report);

// finished: the last epoch or max_steps reached; diverged: a NaN/Inf loss (with on_nan); interrupted:
// a stop was requested before the end, and the position is in the checkpoint fired at the stop.
enum class Outcome { finished, diverged, interrupted };

class Trainer {
 public:
  // Throws cudagan::Error for a schedule with a non-positive epochs or interval, a negative max_steps,
  // a loader without a full batch, networks without parameters or on two devices.
  Trainer(Networks nets, data::DataLoader& loader, NoiseFn noise, cudagan::Rng noise_rng,
          const Schedule& schedule, Callbacks callbacks = {});
  Trainer(const Trainer&) = delete;  // it holds a loop's position over objects it only references
  Trainer& operator=(const Trainer&) = delete;

  // Continues from a checkpoint's position: the next step is state.step + 1, at batch
  // state.batch_in_epoch of epoch state.epoch, with the noise generator at state.rng. The networks and
  // optimisers are the caller's to load (load_checkpoint does both and returns this state).
  void resume(const TrainingState& state);
  // Runs until the end of the last epoch or max_steps, whichever comes first (at once when the
  // position is already there). Returns Outcome::diverged when a loss became NaN/Inf and on_nan is set.
  // A stop requested during a step (request_stop, or should_stop answering true after it) takes effect
  // once that step's events have fired: inside an epoch on_sample and on_checkpoint (Kind::interrupted,
  // instead of any periodic or timed one that step) fire, at an epoch's end its own ones do; then run()
  // returns Outcome::interrupted without on_finish. A stop at the run's last step is a normal finish.
  Outcome run();
  // Asks run() to stop after the step in progress (called before run(): after its first step); callable
  // from any thread. The request is used up by the stop, so a later run() continues.
  void request_stop() { stop_requested_.store(true); }
  // The clock (seconds, any origin, never going back) for checkpoint_seconds and the reports' rates and
  // elapsed time; std::chrono::steady_clock by default. Tests give a fake one to go without sleeping.
  void set_clock(std::function<double()> now_seconds);

  // Makes this Trainer one rank of a data-parallel run over `comm` (see the top of this file); call it
  // on every rank, before run() and after resume() if any. Collective: broadcasts rank 0's networks
  // (weights and running statistics) to every rank. sync_batchnorm false keeps per-rank batchnorm
  // statistics (PyTorch DDP without SyncBatchNorm). The loader must be sharded as Shard{rank, world}.
  // comm must outlive the Trainer. With world_size() 1 only the checks run. Throws cudagan::Error for
  // a loader sharded otherwise, and when called twice.
  void distribute(const dist::Communicator& comm, bool sync_batchnorm = true);

  TrainingState state() const;  // the position now, with the noise generator's state
  int64_t total_steps() const;  // where run() stops: min(epochs x batches_per_epoch, max_steps)
  int64_t batches_per_epoch() const { return batches_; }
  const Schedule& schedule() const { return schedule_; }
  Callbacks& callbacks() { return callbacks_; }

 private:
  void end_epoch();
  void checkpoint(CheckpointDue::Kind kind);  // fires on_checkpoint and restarts the timed interval
  void evaluate();                            // fires on_eval
  bool stop_due();
  Tensor noise_for(int64_t rows);             // this rank's rows of the step's (global) noise batch
  StepStats train(const Tensor& real, const Tensor& noise);  // the step, with the gradient all-reduces
  bool reduce(StepStats& stats);  // ranks' mean stats; returns whether any rank asked to stop
  nn::Module& g_;
  nn::Module& d_;
  optim::Adam& opt_g_;
  optim::Adam& opt_d_;
  data::DataLoader& loader_;
  NoiseFn noise_;
  cudagan::Rng rng_;
  Schedule schedule_;
  Callbacks callbacks_;
  Device device_;
  int64_t batches_;
  TrainingState position_;  // its rng field is unused: rng_ holds the generator
  std::function<double()> now_;
  double last_checkpoint_s_ = 0;  // on now_'s scale
  std::atomic<bool> stop_requested_{false};
  // Data parallelism (distribute()): null / empty in a single-process run.
  const dist::Communicator* comm_ = nullptr;
  std::unique_ptr<dist::GradientAverager> average_g_, average_d_;
};

}  // namespace cudagan::dcgan
