// Adam over a list of parameters. On the CPU each tensor is updated by kernels/cpu/adam.cpp; on a
// GPU every parameter is updated by one fused launch (kernels/cuda/adam.cu).
#include "cudagan/nn/optim.h"

#include <map>
#include <set>

#include "adam.h"
#include "core/backend.h"
#include "cudagan/core/autograd.h"
#if CUDAGAN_HAVE_CUDA
#include "cuda_context.h"
#endif

namespace cudagan::optim {

Adam::Adam(std::vector<Tensor> params, Options options) : params_(std::move(params)), options_(options) {
  CUDAGAN_CHECK(options.lr >= 0, "Adam: learning rate must be >= 0, got ", options.lr);
  CUDAGAN_CHECK(options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 && options.beta2 < 1,
                "Adam: betas must lie in [0, 1), got ", options.beta1, " and ", options.beta2);
  CUDAGAN_CHECK(options.eps >= 0, "Adam: eps must be >= 0, got ", options.eps);
  std::set<const TensorImpl*> seen;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    CUDAGAN_CHECK(p.defined() && p.is_leaf(), "Adam: every parameter must be a defined leaf tensor");
    // A parameter listed twice would be stepped twice per step() on the CPU, and on a GPU updated by two
    // threads of one launch at once (a race): reject it.
    CUDAGAN_CHECK(seen.insert(p.impl()).second, "Adam: parameter ", i, " ", shape_str(p.shape()),
                  " is listed twice; pass each parameter once");
  }
  m_.resize(params_.size());
  v_.resize(params_.size());
  steps_.assign(params_.size(), 0);
}

void Adam::zero_grad() {
  for (Tensor& p : params_) p.zero_grad();
}

void Adam::step() {
  NoGradGuard no_grad;
#if CUDAGAN_HAVE_CUDA
  // CUDA parameters are updated together, one launch per (device, step count): in a training loop
  // every parameter is stepped each time, so that is one launch per optimizer step.
  std::map<std::pair<int, int64_t>, std::vector<AdamSegment>> groups;
#endif
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    if (!m_[i].defined()) {
      m_[i] = Tensor::zeros(p.shape(), p.dtype(), p.device());
      v_[i] = Tensor::zeros(p.shape(), p.dtype(), p.device());
    } else if (m_[i].device() != p.device()) {  // the module moved since the last step
      m_[i] = m_[i].to(p.device());
      v_[i] = v_[i].to(p.device());
    }
    const int64_t step = ++steps_[i];
    if (p.device().is_cpu()) {
      dispatch_float(p.dtype(), [&](auto z) {
        using T = decltype(z);
        cpu::adam_step<T>(hyper(step), p.data<T>(), g.data<T>(), m_[i].data<T>(), v_[i].data<T>(), p.numel());
      });
      continue;
    }
#if CUDAGAN_HAVE_CUDA
    groups[{p.device().index, step}].push_back(
        {p.data<float>(), g.data<float>(), m_[i].data<float>(), v_[i].data<float>(), p.numel()});
#endif
  }
#if CUDAGAN_HAVE_CUDA
  for (const auto& [key, segments] : groups)
    cuda::adam_step_multi(cuda_context(Device::cuda(key.first)), hyper(key.second), segments.data(),
                          int(segments.size()));
#endif
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
