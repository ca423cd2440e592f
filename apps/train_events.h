// How dcgan_train answers dcgan::Trainer's events: the console lines, losses.csv, the sample grids and
// progress.gif, loss.png, the checkpoints (latest, and one per epoch) and index.html (report_page.h). The Trainer decides when;
// this decides what, so the loop stays reusable and dcgan_train's outputs stay where they were.
#pragma once

#include <string>

#include "cudagan/data/data.h"
#include "cudagan/dcgan.h"
#include "cudagan/trainer.h"
#include "report_page.h"
#include "train_eval.h"
#include "train_outputs.h"

namespace cudagan::apps {

constexpr int kGridImages = 64;  // 8x8 sample grids

// What the events act on, all referenced: they must outlive the TrainEvents.
struct TrainParts {
  dcgan::Generator& g;
  dcgan::Discriminator& d;
  optim::Adam& opt_g;
  optim::Adam& opt_d;
  const data::DataLoader& loader;   // its decode rate and skipped images are reported
  const dcgan::Schedule& schedule;  // the collapse warning's thresholds
};

class TrainEvents {
 public:
  // fixed_noise: G's input for the sample grids; config_yaml goes into every checkpoint; out is named
  // in the last line; outputs and console are written to; eval (null: no evaluations) measures G when the
  // Trainer says, and its best step is kept as checkpoints/best.safetensors. Each is referenced except the
  // strings.
  TrainEvents(TrainParts parts, const Tensor& fixed_noise, std::string config_yaml, std::string out,
              TrainOutputs& outputs, Console& console, TrainEval* eval = nullptr);

  // index.html's title and the steps the run will take; the page is written from the first event on.
  void set_report(std::string title, int64_t total_steps);
  // Rewrites OUT/index.html now with `status` ("training", "finished", ...); live: the page reloads itself.
  void write_page(const std::string& status, bool live);

  // The callbacks for Trainer::callbacks(); they refer to this object, which must outlive the run.
  dcgan::Callbacks callbacks();
  // After run() returned Outcome::diverged: the one-line error, naming the step and the checkpoint kept.
  const std::string& divergence() const { return divergence_; }

 private:
  void save(const std::string& name, dcgan::TrainingState state);
  LossRow row(const dcgan::StepReport& r) const;

  TrainParts parts_;
  const Tensor& fixed_noise_;
  std::string config_yaml_, out_;
  TrainOutputs& outputs_;
  Console& console_;
  TrainEval* eval_;
  double elapsed_before_;  // the training time of the run this one resumes (from its losses.csv)
  std::string title_;
  int64_t total_steps_ = 0, step_ = 0;  // step_: the latest step seen
  std::string divergence_;
};

}  // namespace cudagan::apps
