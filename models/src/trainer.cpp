// The training loop of trainer.h. The schedule reproduces what dcgan_train has always done, so its
// checkpoints resume exactly: periodic samples and checkpoints are skipped on a step that ends an
// epoch or the run, because the epoch's end (or the stop) brings its own, once.
#include "cudagan/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "cudagan/core/error.h"

namespace cudagan::dcgan {

namespace {
double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <class F, class... Args>
void fire(const F& callback, const Args&... args) {
  if (callback) callback(args...);
}

Device device_of(const nn::Module& net, const char* which) {
  const std::vector<Tensor> params = net.parameters();
  CUDAGAN_CHECK(!params.empty(), "Trainer: the ", which, " has no parameters to train");
  return params.front().device();
}
}  // namespace

NoiseFn gaussian_noise(int nz) {
  CUDAGAN_CHECK(nz > 0, "gaussian_noise: the latent size must be positive, got ", nz);
  return [nz](int64_t n, cudagan::Rng& rng, Device device) { return sample_noise(n, nz, rng, device); };
}

std::string divergence_message(const StepReport& r) {
  return detail::concat(std::isfinite(r.stats.loss_d) ? "Loss_G" : "Loss_D", " became NaN/Inf at step ",
                        r.step, ": training stopped");
}

Trainer::Trainer(Networks nets, data::DataLoader& loader, NoiseFn noise, cudagan::Rng noise_rng,
                 const Schedule& schedule, Callbacks callbacks)
    : g_(nets.g),
      d_(nets.d),
      opt_g_(nets.opt_g),
      opt_d_(nets.opt_d),
      loader_(loader),
      noise_(std::move(noise)),
      rng_(noise_rng),
      schedule_(schedule),
      callbacks_(std::move(callbacks)),
      device_(device_of(nets.g, "generator")),
      batches_(loader.batches_per_epoch()),
      now_(steady_seconds) {
  const Schedule& s = schedule;
  CUDAGAN_CHECK(s.epochs > 0, "Trainer: epochs must be positive, got ", s.epochs);
  CUDAGAN_CHECK(s.max_steps >= 0, "Trainer: max_steps must be >= 0 (0: no limit), got ", s.max_steps);
  CUDAGAN_CHECK(s.log_every > 0 && s.sample_every > 0 && s.checkpoint_every > 0 && s.collapse_steps > 0,
                "Trainer: log_every, sample_every, checkpoint_every and collapse_steps must be positive");
  CUDAGAN_CHECK(s.checkpoint_seconds >= 0, "Trainer: checkpoint_seconds must be >= 0 (0: off), got ",
                s.checkpoint_seconds);
  CUDAGAN_CHECK(batches_ > 0, "Trainer: the data loader has no full batch: use a smaller batch size");
  CUDAGAN_CHECK(noise_, "Trainer: no noise function (use gaussian_noise(nz) for a dcgan::Generator)");
  const Device d = device_of(nets.d, "discriminator");
  CUDAGAN_CHECK(d == device_, "Trainer: the generator is on ", device_.str(), " and the discriminator on ",
                d.str(), ": move both to one device");
}

void Trainer::resume(const TrainingState& state) {
  CUDAGAN_CHECK(state.step >= 0 && state.epoch >= 0 && state.batch_in_epoch >= 0,
                "Trainer: cannot resume at step ", state.step, ", epoch ", state.epoch, ", batch ",
                state.batch_in_epoch);
  position_ = state;
  rng_.set_state(state.rng);
}

TrainingState Trainer::state() const {
  TrainingState s = position_;
  s.rng = rng_.state();
  return s;
}

int64_t Trainer::total_steps() const {
  const int64_t planned = schedule_.epochs * batches_;
  return schedule_.max_steps > 0 ? std::min(planned, schedule_.max_steps) : planned;
}

void Trainer::set_clock(std::function<double()> now_seconds) {
  CUDAGAN_CHECK(now_seconds, "Trainer::set_clock: no clock given");
  now_ = std::move(now_seconds);
}

void Trainer::checkpoint(CheckpointDue::Kind kind) {
  last_checkpoint_s_ = now_();  // before the write: "at least every checkpoint_seconds" counts from its start
  fire(callbacks_.on_checkpoint, CheckpointDue{kind, state()});
}

bool Trainer::stop_due() {
  const bool asked = (callbacks_.should_stop && callbacks_.should_stop()) || stop_requested_.load();
  if (asked) stop_requested_.store(false);
  return asked;
}

void Trainer::end_epoch() {
  ++position_.epoch;
  position_.batch_in_epoch = 0;
  fire(callbacks_.on_sample, position_.step);
  checkpoint(CheckpointDue::Kind::epoch_end);
  fire(callbacks_.on_epoch_end, position_.epoch);
}

Outcome Trainer::run() {
  const Schedule& s = schedule_;
  const int64_t total = total_steps();
  const double start = now_();
  last_checkpoint_s_ = start;
  int64_t low_loss_run = 0;  // consecutive steps with loss_d < collapse_loss
  bool warned_collapse = false, first_batch = true;
  TrainingState& at = position_;
  data::Batch batch;
  bool done = total <= at.step, stopping = false;
  while (!done && at.epoch < s.epochs) {
    loader_.start_epoch(at.epoch);
    loader_.skip(at.batch_in_epoch);
    bool epoch_over = false;
    while (!done) {
      const double t0 = now_();
      if (!loader_.next(batch)) break;  // the epoch ran out of (readable) images early
      if (first_batch) fire(callbacks_.on_first_batch, batch);
      first_batch = false;
      const Tensor real = batch.images.to(device_);
      const Tensor noise = noise_(real.size(0), rng_, device_);
      const StepStats stats = train_step(g_, d_, opt_g_, opt_d_, real, noise, callbacks_.after_backward);
      const double t1 = now_();
      ++at.step;
      ++at.batch_in_epoch;

      StepReport r;
      r.stats = stats;
      r.step = at.step;
      r.epoch = at.epoch;
      r.batch_in_epoch = at.batch_in_epoch;
      r.images = real.size(0);
      r.images_per_s = double(r.images) / (t1 - t0);
      r.elapsed_s = t1 - start;
      if (!std::isfinite(stats.loss_d) || !std::isfinite(stats.loss_g)) {
        if (!callbacks_.on_nan) throw Error(divergence_message(r));
        callbacks_.on_nan(r);
        return Outcome::diverged;
      }
      low_loss_run = stats.loss_d < s.collapse_loss ? low_loss_run + 1 : 0;
      if (low_loss_run >= s.collapse_steps && !warned_collapse) {
        fire(callbacks_.on_collapse_warning, r);
        warned_collapse = true;
      }
      fire(callbacks_.on_step, r);
      done = at.step >= total;
      epoch_over = at.batch_in_epoch >= batches_;
      if (at.step % s.log_every == 0 || done || epoch_over) fire(callbacks_.on_log, r);
      stopping = !done && stop_due();
      // The epoch's end, the run's end or the interruption brings its own sample and checkpoint, once.
      const bool inside = !epoch_over && !done && !stopping;
      if (inside && at.step % s.sample_every == 0) fire(callbacks_.on_sample, at.step);
      if (inside && at.step % s.checkpoint_every == 0)
        checkpoint(CheckpointDue::Kind::periodic);
      else if (inside && s.checkpoint_seconds > 0 && now_() - last_checkpoint_s_ >= s.checkpoint_seconds)
        checkpoint(CheckpointDue::Kind::timed);
      if (stopping && !epoch_over) {
        fire(callbacks_.on_sample, at.step);
        checkpoint(CheckpointDue::Kind::interrupted);
        return Outcome::interrupted;
      }
      if (epoch_over) break;
    }
    if (epoch_over || !done) {
      end_epoch();
      if (stopping) return Outcome::interrupted;
      done = done || at.epoch >= s.epochs;
    } else {  // stopped by max_steps inside the epoch
      fire(callbacks_.on_sample, at.step);
      checkpoint(CheckpointDue::Kind::stop);
    }
  }
  fire(callbacks_.on_finish, state());
  return Outcome::finished;
}

}  // namespace cudagan::dcgan
