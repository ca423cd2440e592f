// dcgan_train's quality evaluations (--eval-every, --eval-images): the sliced Wasserstein distance between a
// fixed set of real images and as many generated ones (quality.h) and, on MNIST, the digit classifier's FCD,
// confidence and class entropy; one row of metrics.csv each, metrics.png (and fcd.png), and which step was the best so far
// (the caller keeps checkpoints/best.safetensors of it). The main metric, that "best" goes by, is the FCD when
// the digit metrics run, else the SWD average; lower is better for both.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cudagan/dcgan.h"
#include "cudagan/digit_classifier.h"
#include "cudagan/metrics/swd.h"

namespace cudagan::apps {

class TrainEval {
 public:
  struct Row {
    int64_t step = 0;
    double average = 0;               // SWD x1e3 (lower is better)
    std::vector<double> per_level;    // SWD x1e3 per pyramid level, finest first
    std::optional<digits::Quality> digits;  // fcd, mean_confidence, class_entropy_bits (with digit metrics)
  };
  struct Outcome {
    metrics::SwdResult swd;
    std::optional<digits::Quality> digits;
    double seconds = 0;  // the evaluation's wall time
    bool best = false;   // the lowest main metric so far (this run and the one it resumes)
  };

  // real: the reference images (evaluation_images); each evaluation draws as many from G, in batches of
  // `batch`, from noise fixed by `seed`. digit_metrics (may be null) measures the same generated images.
  // Opens OUT/metrics.csv; with resume_step >= 0 keeps the rows of steps <= resume_step from the run this one
  // resumes (and the best among them).
  TrainEval(const std::string& out, int64_t resume_step, Tensor real, int batch, uint64_t seed,
            std::unique_ptr<digits::Evaluator> digit_metrics = nullptr);
  ~TrainEval();
  TrainEval(const TrainEval&) = delete;
  TrainEval& operator=(const TrainEval&) = delete;

  // Measures g at `step`: appends the row (flushed), redraws metrics.png (SWD) and, with digit metrics, fcd.png.
  Outcome evaluate(int64_t step, dcgan::Generator& g);
  const std::vector<Row>& rows() const { return rows_; }
  int64_t real_images() const { return real_.size(0); }
  bool has_digit_metrics() const { return digits_ != nullptr; }
  const char* main_metric() const { return digits_ ? "lowest FCD" : "lowest SWD average"; }

  std::vector<std::string> columns() const;               // metrics.csv's header
  std::vector<std::string> cells(const Row& r) const;      // one row as metrics.csv writes it
  int best_index() const;                                  // the row with the lowest main metric; -1 none

 private:
  double main_value(const Row& r) const { return digits_ && r.digits ? r.digits->fcd : r.average; }
  void plot() const;
  std::string out_;
  Tensor real_;
  int batch_;
  uint64_t seed_;
  std::unique_ptr<digits::Evaluator> digits_;
  std::vector<int> resolutions_;
  std::vector<Row> rows_;
  std::FILE* csv_ = nullptr;
};

}  // namespace cudagan::apps
