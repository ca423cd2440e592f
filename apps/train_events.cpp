#include "train_events.h"

#include <cstdio>
#include <filesystem>
#include <utility>
#include <vector>

#include "cudagan/core/error.h"
#include "cudagan/dcgan_checkpoint.h"
#include "cudagan/io/image_io.h"
#include "quality.h"

namespace fs = std::filesystem;

namespace cudagan::apps {

namespace {
Tensor first_images(const Tensor& images, int64_t n) {
  if (images.size(0) <= n) return images;
  Shape shape = images.shape();
  std::vector<float> values = images.to_float_vector();
  values.resize(size_t(values.size() / size_t(shape[0]) * size_t(n)));
  shape[0] = n;
  return Tensor::from_vector(values, shape);
}
}  // namespace

TrainEvents::TrainEvents(TrainParts parts, const Tensor& fixed_noise, std::string config_yaml,
                         std::string out, TrainOutputs& outputs, Console& console, TrainEval* eval)
    : parts_(parts),
      fixed_noise_(fixed_noise),
      config_yaml_(std::move(config_yaml)),
      out_(std::move(out)),
      outputs_(outputs),
      console_(console),
      eval_(eval),
      elapsed_before_(outputs.rows().empty() ? 0.0 : outputs.rows().back().elapsed_s) {}

void TrainEvents::set_report(std::string title, int64_t total_steps) {
  title_ = std::move(title);
  total_steps_ = total_steps;
}

void TrainEvents::write_page(const std::string& status, bool live) {
  ReportPage p;
  p.title = title_;
  p.status = status;
  p.live = live;
  p.step = step_;
  p.total_steps = total_steps_;
  p.latest_grid = outputs_.latest_grid();
  if (!outputs_.rows().empty()) {
    const LossRow& r = outputs_.rows().back();
    char buf[32];
    auto add = [&](const char* name, double v, const char* format) {
      std::snprintf(buf, sizeof buf, format, v);
      p.latest.emplace_back(name, buf);
    };
    add("Loss_D", r.stats.loss_d, "%.4f");
    add("Loss_G", r.stats.loss_g, "%.4f");
    add("D(x)", r.stats.d_x, "%.4f");
    add("D(G(z))", r.stats.d_g_z1, "%.4f");
    add("images/s", r.images_per_s, "%.1f");
  }
  if (eval_) {
    p.metric_columns = eval_->columns();
    for (const TrainEval::Row& r : eval_->rows()) p.metric_rows.push_back(eval_->cells(r));
    p.best_row = eval_->best_index();
    p.best_note = eval_->main_metric();
  }
  p.config_yaml = config_yaml_;
  write_report_page(out_, p);
}

void TrainEvents::save(const std::string& name, dcgan::TrainingState state) {
  state.config_yaml = config_yaml_;
  dcgan::save_checkpoint(outputs_.path("checkpoints/" + name), parts_.g, parts_.d, parts_.opt_g, parts_.opt_d,
                         state);
}

LossRow TrainEvents::row(const dcgan::StepReport& r) const {
  return {r.step, r.epoch, r.stats, r.images_per_s, elapsed_before_ + r.elapsed_s};
}

dcgan::Callbacks TrainEvents::callbacks() {
  dcgan::Callbacks c;
  const bool wrote_real = fs::exists(outputs_.path("real_samples.png"));  // by the run this one resumes
  c.on_first_batch = [this, wrote_real](const data::Batch& batch) {
    if (!wrote_real)
      save_image_grid(first_images(batch.images, kGridImages), outputs_.path("real_samples.png"), 8, 2);
  };
  c.on_step = [this](const dcgan::StepReport& r) {
    step_ = r.step;
    outputs_.add_row(row(r));
    console_.step(r);
  };
  c.on_log = [this](const dcgan::StepReport& r) { console_.log(r); };
  c.on_sample = [this](int64_t step) {
    outputs_.add_sample_grid(step, draw_images(parts_.g, fixed_noise_));
    write_page("training", true);
  };
  if (eval_) {
    c.on_eval = [this](const dcgan::EvalDue& due) {
      const TrainEval::Outcome o = eval_->evaluate(due.state.step, parts_.g);
      if (o.best) save("best.safetensors", due.state);
      char tail[96];
      std::snprintf(tail, sizeof tail, " against %lld real images (%.1f s)%s", (long long)eval_->real_images(),
                    o.seconds, o.best ? "; the best so far: checkpoints/best.safetensors" : "");
      console_.message("step " + std::to_string(due.state.step) + ": " + describe(o.swd) +
                       (o.digits ? "; " + digits::describe(*o.digits) : std::string()) + tail);
      write_page("training", true);
    };
  }
  c.on_checkpoint = [this](const dcgan::CheckpointDue& due) {
    if (due.kind == dcgan::CheckpointDue::Kind::epoch_end) {
      char name[48];
      std::snprintf(name, sizeof name, "epoch_%03lld.safetensors", (long long)due.state.epoch);
      save(name, due.state);
    }
    save("latest.safetensors", due.state);
  };
  c.on_epoch_end = [this](int64_t epochs_done) {
    outputs_.write_summaries();
    write_page("training", true);
    console_.message("epoch " + std::to_string(epochs_done) + " done; data loader " +
                     std::to_string(int(parts_.loader.images_per_second())) + " images/s");
  };
  c.on_collapse_warning = [this](const dcgan::StepReport& r) {
    char loss[32];
    std::snprintf(loss, sizeof loss, "%g", parts_.schedule.collapse_loss);
    console_.message("warning: the discriminator has won (Loss_D < " + std::string(loss) + " for " +
                     std::to_string(parts_.schedule.collapse_steps) + " steps at step " +
                     std::to_string(r.step) +
                     "): the generator gets no gradient and training has likely collapsed");
  };
  c.on_nan = [this](const dcgan::StepReport& r) {  // no checkpoint is written: the last one stays good
    outputs_.write_summaries();
    write_page("diverged (NaN or infinite loss) at step " + std::to_string(r.step), false);
    const fs::path latest = fs::path(outputs_.path("checkpoints")) / "latest.safetensors";
    divergence_ = dcgan::divergence_message(r) + "; " +
                  (fs::exists(latest) ? "the last good checkpoint is kept in " + latest.string() +
                                            " (resume from it with a lower --lr)"
                                      : std::string("no checkpoint had been written yet (try a lower --lr)"));
  };
  c.on_finish = [this](const dcgan::TrainingState& state) {
    outputs_.write_summaries();
    write_page("finished", false);
    const int64_t skipped = parts_.loader.skipped();
    if (skipped > 0) console_.message("skipped " + std::to_string(skipped) + " unreadable images");
    console_.message("done: " + std::to_string(state.step) + " steps; outputs in " + out_);
  };
  return c;
}

}  // namespace cudagan::apps
