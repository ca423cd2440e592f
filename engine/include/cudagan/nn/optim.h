// Optimizers. Adam follows torch.optim.Adam (amsgrad off): per-parameter step counts, bias
// correction, L2 weight decay added to the gradient. Parameters without a gradient are skipped.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cudagan/core/tensor.h"

namespace cudagan {
struct AdamHyper;  // the kernels' per-step hyper-parameters (internal)
}

namespace cudagan::optim {

// Holds handles to the parameters (Module::named_parameters(), or Module::parameters()) and updates them in
// place, on each parameter's own device: one fused launch per step for all GPU parameters. Moving the module
// with Module::to keeps the handles valid; the moments follow at the next step.
//
// Its state is a state dict: one ParamState per parameter, by the parameter's name (what a checkpoint stores
// it under), so nothing depends on the order in which two programs list the parameters.
class Adam {
 public:
  // torch.optim.Adam's arguments: {lr, beta1, beta2, eps, weight_decay}.
  struct Options {
    double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  };
  // One parameter's state: the first and second moments (undefined until its first update, then on its
  // device) and how many updates it has had.
  struct ParamState {
    Tensor exp_avg, exp_avg_sq;
    int64_t step = 0;
  };

  // Throws cudagan::Error for lr < 0, betas outside [0, 1), eps < 0, a parameter that is undefined or not a
  // leaf, one listed twice, or two parameters with one name.
  Adam(std::vector<std::pair<std::string, Tensor>> named_params, Options options);
  // Parameters without names: named "0", "1", ... in the order given.
  Adam(std::vector<Tensor> params, Options options);
  Adam(std::vector<Tensor> params) : Adam(std::move(params), Options{}) {}

  // One update of every parameter that has a gradient (outside autograd); parameters without one
  // are skipped and keep their step count.
  void step();
  void zero_grad();  // drops every parameter's gradient

  const Options& options() const { return options_; }
  void set_lr(double lr) { options_.lr = lr; }  // takes effect at the next step()
  std::vector<Tensor> params() const;        // in the order given
  std::vector<std::string> names() const;    // the same order
  // The state of the parameter called `name`, or of the parameter `param` (the same tensor, not equal
  // values); both throw cudagan::Error naming what is not there.
  ParamState& state(const std::string& name);
  ParamState& state_of(const Tensor& param);

 private:
  struct Entry {
    std::string name;
    Tensor param;
    ParamState state;
  };
  AdamHyper hyper(int64_t step) const;
  std::vector<Entry> entries_;
  std::map<std::string, size_t> by_name_;
  Options options_;
};

}  // namespace cudagan::optim
