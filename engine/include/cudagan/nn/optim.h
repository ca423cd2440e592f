// Optimizers. Adam follows torch.optim.Adam (amsgrad off): per-parameter step counts, bias
// correction, L2 weight decay added to the gradient. Parameters without a gradient are skipped.
#pragma once

#include <cstdint>
#include <vector>

#include "cudagan/core/tensor.h"

namespace cudagan {
struct AdamHyper;  // the kernels' per-step hyper-parameters (internal)
}

namespace cudagan::optim {

// Holds handles to the parameters (e.g. Module::parameters()) and updates them in place, on each
// parameter's own device: one fused launch per step for all GPU parameters. Moving the module
// with Module::to keeps the handles valid; the moments follow at the next step.
class Adam {
 public:
  // torch.optim.Adam's arguments: {lr, beta1, beta2, eps, weight_decay}.
  struct Options {
    double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  };
  // Throws cudagan::Error for lr < 0, betas outside [0, 1), eps < 0, or a parameter that is
  // undefined or not a leaf, or one listed twice.
  Adam(std::vector<Tensor> params, Options options);
  Adam(std::vector<Tensor> params) : Adam(std::move(params), Options{}) {}

  // One update of every parameter that has a gradient (outside autograd); parameters without one
  // are skipped and keep their step count.
  void step();
  void zero_grad();  // drops every parameter's gradient

  const Options& options() const { return options_; }
  void set_lr(double lr) { options_.lr = lr; }  // takes effect at the next step()
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
