// dcgan_train's quality evaluations (--eval-every, --eval-images): the sliced Wasserstein distance between a
// fixed set of real images and as many generated ones (quality.h), one row of metrics.csv each, metrics.png,
// and which step was the best so far (the caller keeps checkpoints/best.safetensors of it).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "cudagan/dcgan.h"
#include "cudagan/metrics/swd.h"

namespace cudagan::apps {

class TrainEval {
 public:
  struct Row {
    int64_t step = 0;
    double average = 0;               // SWD x1e3, the main metric (lower is better)
    std::vector<double> per_level;    // SWD x1e3 per pyramid level, finest first
  };
  struct Outcome {
    metrics::SwdResult swd;
    double seconds = 0;  // the evaluation's wall time
    bool best = false;   // the lowest average so far (this run and the one it resumes)
  };

  // real: the reference images (evaluation_images); each evaluation draws as many from G, in batches of
  // `batch`, from noise fixed by `seed`. Opens OUT/metrics.csv; with resume_step >= 0 keeps the rows of steps
  // <= resume_step from the run this one resumes (and the best among them).
  TrainEval(const std::string& out, int64_t resume_step, Tensor real, int batch, uint64_t seed);
  ~TrainEval();
  TrainEval(const TrainEval&) = delete;
  TrainEval& operator=(const TrainEval&) = delete;

  // Measures g at `step`: appends the row (flushed), redraws metrics.png.
  Outcome evaluate(int64_t step, dcgan::Generator& g);
  const std::vector<Row>& rows() const { return rows_; }
  int64_t real_images() const { return real_.size(0); }

 private:
  void plot() const;
  std::string out_;
  Tensor real_;
  int batch_;
  uint64_t seed_;
  std::vector<int> resolutions_;
  std::vector<Row> rows_;
  std::FILE* csv_ = nullptr;
};

}  // namespace cudagan::apps
