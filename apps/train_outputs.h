// Everything dcgan_train writes besides checkpoints: losses.csv, the sample grids and progress.gif,
// loss.png, and the console (log lines, and a live progress bar when stdout is a terminal).
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "cudagan/dcgan.h"
#include "cudagan/io/gif.h"
#include "cudagan/io/image_io.h"
#include "cudagan/trainer.h"

namespace cudagan::apps {

struct LossRow {
  int64_t step = 0, epoch = 0;
  dcgan::StepStats stats;
  double images_per_s = 0, elapsed_s = 0;
};

class TrainOutputs {
 public:
  // Opens OUT (creating samples/ and checkpoints/); with resume_step >= 0, keeps the rows and sample
  // grids of steps <= resume_step from an earlier run and drops the rest.
  TrainOutputs(const std::string& out, int64_t resume_step);
  ~TrainOutputs();

  std::string path(const std::string& name) const;  // OUT/name
  void add_row(const LossRow& row);                 // appended to losses.csv (flushed)
  void add_sample_grid(int64_t step, const Tensor& images);  // samples/step_XXXXXXX.png + a GIF frame
  void write_summaries() const;                             // progress.gif and loss.png
  std::string latest_grid() const;  // the newest sample grid relative to OUT ("samples/step_0000400.png"), or ""
  const std::vector<LossRow>& rows() const { return rows_; }

 private:
  std::string out_;
  std::FILE* csv_ = nullptr;
  std::vector<LossRow> rows_;
  GifAnimation gif_;
  int64_t latest_grid_step_ = -1;
};

// The console: one line per log interval like the PyTorch example, plus images/s and ETA.
class Console {
 public:
  // progress_bar: draw the live progress bar when stdout is a terminal. Under mpirun every rank's stdout is
  // a pseudo-terminal of mpirun's, whatever mpirun's own output is (a file, a pipe): there it is false.
  Console(int64_t total_steps, int epochs, int64_t batches_per_epoch, int batch_size, bool progress_bar = true);
  void step(const dcgan::StepReport& r);  // every step: the smoothed rate, and the progress bar on a terminal
  void log(const dcgan::StepReport& r);   // the log line of that step (after step())
  void message(const std::string& line);  // a line of its own (clears the progress bar first)

 private:
  std::string line(const dcgan::StepReport& r) const;
  std::string eta(int64_t step, double images_per_s) const;
  int64_t total_steps_;
  int batch_size_;
  int epochs_;
  int64_t batches_per_epoch_;
  bool tty_;
  bool bar_shown_ = false;
  double recent_rate_ = 0;
};

}  // namespace cudagan::apps
