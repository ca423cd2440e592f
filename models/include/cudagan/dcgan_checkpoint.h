// DCGAN checkpoints: both networks, both Adam states, the step, epoch and random-generator state, in
// one safetensors file (readable by `safetensors.torch.load_file`), with a crc32 per tensor that
// loading verifies (cudagan/io/safetensors.h). Tensor names follow PyTorch's
// module naming under a prefix: "G.main.0.weight", "D.main.2.running_mean", and the Adam moments
// "G_adam.main.0.weight.exp_avg" / ".exp_avg_sq". Scalars and the run's configuration (YAML) are in
// the file's metadata. Files are written atomically: a crash never leaves a half-written checkpoint.
#pragma once

#include <string>

#include "cudagan/dcgan.h"

namespace cudagan::dcgan {

// Where a run is, besides the weights: what a resumed run needs to continue exactly.
struct TrainingState {
  int64_t step = 0;            // optimizer steps taken
  int64_t epoch = 0;           // the epoch the next step belongs to
  int64_t batch_in_epoch = 0;  // batches of that epoch already consumed
  cudagan::Rng::State rng{};  // the noise generator, to continue the same draws
  std::string config_yaml;          // the run's resolved configuration
  // Loading only: whether the file carried checksums (every file cudagan writes does) and they matched.
  // A file without them loads unverified; the apps say so.
  bool checksums_verified = false;
};

// Writes g, d (parameters and batchnorm buffers), both optimizers' moments and step counts, the
// architecture and `state` to `path` (networks on any device; copied to the host). Throws
// cudagan::Error naming the path when it cannot be written.
void save_checkpoint(const std::string& path, const Generator& g, const Discriminator& d, optim::Adam& opt_g,
                     optim::Adam& opt_d, const TrainingState& state);

// Loads into networks and optimizers built with the same architecture (on any device: values are
// copied into the existing tensors); throws cudagan::Error naming the file and the mismatch (e.g.
// a different --image-size) otherwise, and for an unreadable, truncated or non-DCGAN file.
TrainingState load_checkpoint(const std::string& path, Generator& g, Discriminator& d, optim::Adam& opt_g,
                              optim::Adam& opt_d);

// The architecture recorded in a checkpoint, and a generator built with it, loaded and moved to
// `device` (for sampling; in training mode: call eval() for batchnorm's running statistics).
// Both throw cudagan::Error naming the file when it cannot be read, is damaged (a checksum mismatch) or is
// not a DCGAN checkpoint; `checksums_verified`, when given, says whether the file had checksums to verify.
Architecture checkpoint_architecture(const std::string& path);
std::unique_ptr<Generator> load_generator(const std::string& path, Device device,
                                          bool* checksums_verified = nullptr);

// The note the apps print for a checkpoint that loaded without checksums to verify.
std::string unverified_checkpoint_note(const std::string& path);

}  // namespace cudagan::dcgan
