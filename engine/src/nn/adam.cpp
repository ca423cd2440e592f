// Adam over a set of named parameters. On the CPU each tensor is updated by kernels/cpu/adam.cpp; on a
// GPU every parameter is updated by one fused launch (kernels/cuda/adam.cu).
#include "cudagan/nn/optim.h"

#include <set>

#include "adam.h"
#include "core/backend.h"
#include "cudagan/core/autograd.h"

namespace cudagan::optim {

namespace {
std::vector<std::pair<std::string, Tensor>> numbered(std::vector<Tensor> params) {
  std::vector<std::pair<std::string, Tensor>> named;
  for (size_t i = 0; i < params.size(); ++i) named.emplace_back(std::to_string(i), std::move(params[i]));
  return named;
}
}  // namespace

Adam::Adam(std::vector<std::pair<std::string, Tensor>> named_params, Options options) : options_(options) {
  CUDAGAN_CHECK(options.lr >= 0, "Adam: learning rate must be >= 0, got ", options.lr);
  CUDAGAN_CHECK(options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 && options.beta2 < 1,
                "Adam: betas must lie in [0, 1), got ", options.beta1, " and ", options.beta2);
  CUDAGAN_CHECK(options.eps >= 0, "Adam: eps must be >= 0, got ", options.eps);
  std::set<const TensorImpl*> seen;
  for (auto& [name, p] : named_params) {
    CUDAGAN_CHECK(p.defined() && p.is_leaf(), "Adam: every parameter must be a defined leaf tensor (", name, ")");
    // A parameter listed twice would be stepped twice per step() on the CPU, and on a GPU updated by two
    // threads of one launch at once (a race): reject it.
    CUDAGAN_CHECK(seen.insert(p.impl()).second, "Adam: parameter ", name, " ", shape_str(p.shape()),
                  " is listed twice; pass each parameter once");
    CUDAGAN_CHECK(by_name_.emplace(name, entries_.size()).second, "Adam: two parameters are named '", name,
                  "'; give each parameter its own name");
    entries_.push_back({name, p, {}});
  }
}

Adam::Adam(std::vector<Tensor> params, Options options) : Adam(numbered(std::move(params)), options) {}

std::vector<Tensor> Adam::params() const {
  std::vector<Tensor> out;
  for (const Entry& e : entries_) out.push_back(e.param);
  return out;
}

std::vector<std::string> Adam::names() const {
  std::vector<std::string> out;
  for (const Entry& e : entries_) out.push_back(e.name);
  return out;
}

Adam::ParamState& Adam::state(const std::string& name) {
  const auto it = by_name_.find(name);
  CUDAGAN_CHECK(it != by_name_.end(), "Adam: no parameter named '", name, "'");
  return entries_[it->second].state;
}

Adam::ParamState& Adam::state_of(const Tensor& param) {
  for (Entry& e : entries_)
    if (e.param.same(param)) return e.state;
  throw Error(detail::concat("Adam: the tensor ", shape_str(param.shape()), " is not one of its parameters"));
}

void Adam::zero_grad() {
  for (Entry& e : entries_) e.param.zero_grad();
}

void Adam::step() {
  NoGradGuard no_grad;
  // GPU parameters are updated together, one launch per (device, step count): in a training loop every
  // parameter is stepped each time, so that is one launch per optimizer step.
  std::map<std::pair<int, int64_t>, std::vector<AdamSegment>> gpu_groups;
  for (Entry& e : entries_) {
    Tensor& p = e.param;
    ParamState& s = e.state;
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    if (!s.exp_avg.defined()) {
      s.exp_avg = Tensor::zeros(p.shape(), p.dtype(), p.device());
      s.exp_avg_sq = Tensor::zeros(p.shape(), p.dtype(), p.device());
    } else if (s.exp_avg.device() != p.device()) {  // the module moved since the last step
      s.exp_avg = s.exp_avg.to(p.device());
      s.exp_avg_sq = s.exp_avg_sq.to(p.device());
    }
    const int64_t step = ++s.step;
    if (p.device().is_cpu()) {
      dispatch_float(p.dtype(), [&](auto z) {
        using T = decltype(z);
        cpu::adam_step<T>(hyper(step), p.data<T>(), g.data<T>(), s.exp_avg.data<T>(), s.exp_avg_sq.data<T>(),
                          p.numel());
      });
    } else {
      gpu_groups[{p.device().index, step}].push_back({p.data<float>(), g.data<float>(), s.exp_avg.data<float>(),
                                                       s.exp_avg_sq.data<float>(), p.numel()});
    }
  }
  for (const auto& group : gpu_groups) {  // not a structured binding: C++17 lambdas cannot capture those
    const std::vector<AdamSegment>& segments = group.second;
    on_cuda(Device::cuda(group.first.first), [&](const cuda::KernelContext& ctx) {
      cuda::adam_step_multi(ctx, hyper(group.first.second), segments.data(), int(segments.size()));
    });
  }
}

AdamHyper Adam::hyper(int64_t step) const {
  AdamHyper h;
  h.lr = options_.lr;
  h.beta1 = options_.beta1;
  h.beta2 = options_.beta2;
  h.eps = options_.eps;
  h.weight_decay = options_.weight_decay;
  h.step = step;
  return h;
}

}  // namespace cudagan::optim
