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
  CUDAGAN_CHECK(s.eval_every >= -1, "Trainer: eval_every must be -1 (each epoch's end), 0 (never) or a step count, got ",
                s.eval_every);
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

void Trainer::distribute(const dist::Communicator& comm, bool sync_batchnorm) {
  CUDAGAN_CHECK(!comm_, "Trainer::distribute: already distributed");
  const data::Shard shard = loader_.shard();
  CUDAGAN_CHECK(shard.index == comm.rank() && shard.count == comm.world_size(), "Trainer::distribute: rank ",
                comm.rank(), " of ", comm.world_size(), " needs a DataLoader sharded as Shard{", comm.rank(), ", ",
                comm.world_size(), "}, got Shard{", shard.index, ", ", shard.count, "}");
  comm_ = &comm;
  if (comm.world_size() == 1) return;
  dist::broadcast_module(comm, g_);
  dist::broadcast_module(comm, d_);
  if (sync_batchnorm) {
    dist::synchronize_batchnorm(comm, g_);
    dist::synchronize_batchnorm(comm, d_);
  }
  average_g_ = std::make_unique<dist::GradientAverager>(comm, g_);
  average_d_ = std::make_unique<dist::GradientAverager>(comm, d_);
}

Tensor Trainer::noise_for(int64_t rows) {
  if (!average_g_) return noise_(rows, rng_, device_);
  // Every rank draws the whole global batch's noise (the generator advances alike everywhere) and keeps
  // its rows: rank r's are rows [r rows, (r + 1) rows), as its images are of the global batch.
  const Tensor global = noise_(rows * comm_->world_size(), rng_, Device::cpu());
  Shape shape = global.shape();
  shape[0] = rows;
  const int64_t per_row = global.numel() / global.size(0);
  const std::vector<float> all = global.to_float_vector();
  const auto first = all.begin() + comm_->rank() * rows * per_row;
  return Tensor::from_vector(std::vector<float>(first, first + rows * per_row), shape, device_);
}

StepStats Trainer::train(const Tensor& real, const Tensor& noise) {
  if (!average_g_) return train_step(g_, d_, opt_g_, opt_d_, real, noise, callbacks_.after_backward);
  const GradientHook average = [this](nn::Module& net) {
    (&net == &d_ ? *average_d_ : *average_g_)();
    if (callbacks_.after_backward) callbacks_.after_backward(net);
  };
  return train_step(g_, d_, opt_g_, opt_d_, real, noise, average);
}

bool Trainer::reduce(StepStats& st) {
  // One all-reduce a step: the five statistics and the stop flag (its mean is above 0 when any rank
  // asked), so that every rank logs, diverges and stops alike. The flag is read before the step's events
  // here, since the ranks must agree on it before they act; a stop asked during them counts next step.
  const bool asked = stop_due();
  std::vector<double> v = {st.loss_d, st.loss_g, st.d_x, st.d_g_z1, st.d_g_z2, asked ? 1.0 : 0.0};
  comm_->all_reduce(v, dist::ReduceOp::average);
  st = {v[0], v[1], v[2], v[3], v[4]};
  return v[5] > 0;
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

void Trainer::evaluate() { fire(callbacks_.on_eval, EvalDue{state()}); }

void Trainer::end_epoch() {
  ++position_.epoch;
  position_.batch_in_epoch = 0;
  fire(callbacks_.on_sample, position_.step);
  const int64_t every = schedule_.eval_every;
  const bool run_end = position_.epoch >= schedule_.epochs || position_.step >= total_steps();
  if (every == -1 || (every > 0 && (run_end || position_.step % every == 0))) evaluate();
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
      const Tensor noise = noise_for(real.size(0));
      StepStats stats = train(real, noise);
      const bool stop_asked = average_g_ && reduce(stats);
      const double t1 = now_();
      ++at.step;
      ++at.batch_in_epoch;

      StepReport r;
      r.stats = stats;
      r.step = at.step;
      r.epoch = at.epoch;
      r.batch_in_epoch = at.batch_in_epoch;
      r.images = real.size(0) * (comm_ ? comm_->world_size() : 1);
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
      stopping = !done && (average_g_ ? stop_asked : stop_due());
      // The epoch's end, the run's end or the interruption brings its own sample and checkpoint, once.
      const bool inside = !epoch_over && !done && !stopping;
      if (inside && at.step % s.sample_every == 0) fire(callbacks_.on_sample, at.step);
      if (inside && s.eval_every > 0 && at.step % s.eval_every == 0) evaluate();
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
      if (s.eval_every != 0) evaluate();
      checkpoint(CheckpointDue::Kind::stop);
    }
  }
  fire(callbacks_.on_finish, state());
  return Outcome::finished;
}

}  // namespace cudagan::dcgan
