// Optimizers. Adam follows torch.optim.Adam (amsgrad off): per-parameter step counts, bias
// correction, L2 weight decay added to the gradient. Parameters without a gradient are skipped.
#pragma once

#include <cstdint>
#include <vector>

#include "cudagan/tensor.h"

namespace cudagan {
struct AdamHyper;
}

namespace cudagan::optim {

class Adam {
 public:
  struct Options {
    double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  };
  Adam(std::vector<Tensor> params, Options options);
  Adam(std::vector<Tensor> params) : Adam(std::move(params), Options{}) {}

  void step();       // one update of every parameter that has a gradient
  void zero_grad();  // drops every parameter's gradient

  const Options& options() const { return options_; }
  void set_lr(double lr) { options_.lr = lr; }
  const std::vector<Tensor>& params() const { return params_; }
  // Optimizer state, per parameter (for checkpoints): first and second moments and step count.
  // Moments are allocated on the parameter's device at its first update.
  std::vector<Tensor>& exp_avg() { return m_; }
  std::vector<Tensor>& exp_avg_sq() { return v_; }
  std::vector<int64_t>& steps() { return steps_; }

 private:
  AdamHyper hyper(int64_t step) const;
  std::vector<Tensor> params_, m_, v_;
  std::vector<int64_t> steps_;
  Options options_;
};

}  // namespace cudagan::optim
