// dcgan_train's configuration: the flags (CLI11), the same keys in a YAML file (--config), and the
// resolved configuration written back as YAML so `--config OUT/config.yaml` repeats a run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cudagan/dcgan.h"

namespace cudagan::apps {

struct TrainConfig {
  std::string data;            // image folder, MNIST folder, or "synthetic"
  std::string out;             // output folder
  int epochs = 5;
  int batch_size = 128;
  double lr = 2e-4;
  double beta1 = 0.5;
  double beta2 = 0.999;
  int nz = 100;
  int ngf = 64;
  int ndf = 64;
  int image_size = 64;
  std::string channels = "auto";  // auto, 1 or 3
  uint64_t seed = 1;
  std::string device = "auto";    // auto, cpu, cuda, cuda:N
  int workers = 2;
  int64_t max_steps = 0;          // 0: no limit
  int64_t sample_every = 500;
  int64_t checkpoint_every = 1000;
  double checkpoint_minutes = 10;  // also write checkpoints/latest at least this often; 0: off
  int64_t log_every = 50;
  int64_t eval_every = -1;        // SWD every N steps and at the end; -1: each epoch's end and the end; 0: off
  int64_t eval_images = 8192;     // real (and as many generated) images per evaluation; fewer if the data has
  std::string classifier;         // the digit classifier of the FCD ("": the one installed with cudagan)
  bool tf32 = false;
  std::string batchnorm = "sync";  // sync or local: statistics over the global batch, or each rank's
  std::string resume;             // checkpoint to continue from ("" none; "latest": OUT/checkpoints/latest)
};

// Parses argv (and the YAML file named by --config, whose values the flags override). Returns false
// when the program should exit with `exit_code` (--help, or a usage error already printed).
bool parse_train_config(int argc, char** argv, TrainConfig& config, int& exit_code);

// Checks ranges; throws cudagan::Error with a one-line message naming the flag (the networks' own
// limits, such as the image size, are dcgan::validate's).
void validate(const TrainConfig& config);

// The networks' shape the flags ask for, with `channels` (1 or 3) from the data.
dcgan::Architecture architecture(const TrainConfig& config, int channels);

// The YAML text of a configuration (every key, flags' names), as written to OUT/config.yaml.
std::string to_yaml(const TrainConfig& config);

}  // namespace cudagan::apps
