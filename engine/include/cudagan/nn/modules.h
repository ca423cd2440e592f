// Neural-network modules in PyTorch's style. A module owns its parameters (tensors requiring a
// gradient) and buffers (state such as batchnorm's running statistics), named as PyTorch names
// them ("0.weight", "main.3.running_mean"), and its sub-modules. Parameters are initialised from an
// explicit Rng (there is no global one) on the CPU, so a seed gives the same weights whatever
// the device the module is moved to afterwards.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cudagan/core/tensor.h"

namespace cudagan {
class Rng;
class ReplicaSum;  // cudagan/ops/ops.h
}

namespace cudagan::nn {

// (name, tensor) pairs; the tensors are handles sharing the module's storage.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// The base of every layer and network. Derive from it, register parameters, buffers and
// sub-modules in the constructor, and implement forward(). A copy of a module shares its
// parameters and sub-modules (it copies handles, not data).
class Module {
 public:
  virtual ~Module() = default;
  // The module's computation on x (on the parameters' device; recorded by autograd, since
  // parameters require gradients). Throws cudagan::Error for inputs of the wrong shape, device or
  // dtype, as the ops it uses do.
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }

  // This module's, then each sub-module's (recursively, in registration order), named with dotted
  // paths ("main.0.weight"). The handles share storage: copy_() into them loads a state; undefined
  // tensors (a layer without bias) are left out.
  NamedTensors named_parameters() const;
  NamedTensors named_buffers() const;
  std::vector<Tensor> parameters() const;  // named_parameters() without the names (for optimizers)
  std::vector<Tensor> buffers() const;
  int64_t parameter_count() const;  // elements

  // Training mode (the default) or evaluation mode, recursively: what BatchNorm2d does with
  // batch statistics depends on it.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Moves every parameter and buffer (and gradient) in place: handles held elsewhere (an
  // optimizer's) stay valid. Throws cudagan::Error for an unavailable device.
  void to(Device device);
  void zero_grad();  // drops every parameter's gradient
  // Calls fn on this module, then on each sub-module recursively, in registration order (pre-order, as
  // named_parameters() walks them): how a library finds the layers it configures, e.g. every
  // BatchNorm2d by dynamic_cast. Each module is visited once per path that reaches it.
  void apply(const std::function<void(Module&)>& fn);

 protected:
  // Adds a parameter (sets requires_grad on it) or a buffer under `name`. The returned reference
  // is valid until the next registration: keep a copy of the handle, as the layers below do
  // (`weight = register_parameter("weight", ...)`). An undefined tensor registers nothing visible.
  Tensor& register_parameter(const std::string& name, Tensor t);
  Tensor& register_buffer(const std::string& name, Tensor t);
  // Adds a sub-module: its parameters and buffers become this module's, under "name.". Returns m.
  template <class M> std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }

 private:
  void collect(const std::string& prefix, bool params, NamedTensors& out) const;
  NamedTensors params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// Conv2d(in, out, kernel, stride, padding, bias): weight [out, in, k, k] and bias [out] drawn from
// U(-1/sqrt(in k k), +1/sqrt(in k k)) (PyTorch's default) on the CPU; move the module afterwards.
// The constructor throws cudagan::Error for a non-positive channel count or kernel.
class Conv2d : public Module {
 public:
  Conv2d(Rng& gen, int in_channels, int out_channels, int kernel, int stride = 1, int padding = 0,
         bool bias = true);
  // conv2d: [N, in, H, W] -> [N, out, (H + 2 padding - k) / stride + 1, (W + ...) / stride + 1].
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;  // bias is undefined when built without one
  int stride, padding;
};

// ConvTranspose2d: weight [in, out, k, k], bias [out]; U(+-1/sqrt(out k k)) as PyTorch. Throws
// like Conv2d.
class ConvTranspose2d : public Module {
 public:
  ConvTranspose2d(Rng& gen, int in_channels, int out_channels, int kernel, int stride = 1,
                  int padding = 0, bool bias = true);
  // conv_transpose2d: [N, in, H, W] -> [N, out, (H - 1) stride - 2 padding + k, (W - 1) ...].
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;  // bias is undefined when built without one
  int stride, padding;
};

// BatchNorm2d(C): parameters weight (gamma) 1 and bias (beta) 0 (none when affine is false),
// buffers running_mean 0 and running_var 1, over the C channels. Throws cudagan::Error for C < 1.
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int channels, double eps = 1e-5, double momentum = 0.1, bool affine = true);
  // batch_norm2d on [N, C, H, W] or [N, C], same shape out: in training mode with the batch's
  // statistics (updating the running ones; needs more than one value per channel), in eval mode
  // with the running statistics.
  Tensor forward(const Tensor& x) override;
  // forward() followed by relu (negative_slope 0) or leaky_relu, as one op (batch_norm2d_relu).
  Tensor forward_relu(const Tensor& x, double negative_slope);
  Tensor weight, bias, running_mean, running_var;
  double eps, momentum;
  // Set: synchronised batchnorm, the training statistics of the global batch of a data-parallel run
  // (batch_norm2d's `across`; every replica's forward and backward then take part in a collective).
  // Null (the default): this replica's batch alone. cudagan::dist::synchronize_batchnorm sets it.
  std::shared_ptr<const ReplicaSum> across_replicas;
};

// Linear(in, out): weight [out, in], bias [out], U(+-1/sqrt(in)); forward [N, in] -> [N, out].
// Throws cudagan::Error for a non-positive size.
class Linear : public Module {
 public:
  Linear(Rng& gen, int in_features, int out_features, bool bias = true);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;  // bias is undefined when built without one
};

// Element-wise activations, any shape, no parameters: relu, leaky_relu(slope), tanh, sigmoid.
class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};
class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double slope = 0.01) : slope(slope) {}  // x for x > 0, slope * x otherwise
  Tensor forward(const Tensor& x) override;
  double slope;
};
class Tanh : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};
class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};
// Flatten: [N, ...] -> [N, rest], a view (reshape).
class Flatten : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

// Runs its modules in order; they are named "0", "1", ... as in PyTorch.
class Sequential : public Module {
 public:
  Sequential() = default;
  // Appends a module (named by its position) and returns it; emplace constructs it in place:
  // net.emplace<nn::Conv2d>(gen, 3, 64, 4, 2, 1).
  template <class M> std::shared_ptr<M> add(std::shared_ptr<M> m) {
    layers_.push_back(m);
    return register_module(std::to_string(layers_.size() - 1), std::move(m));
  }
  template <class M, class... Args> std::shared_ptr<M> emplace(Args&&... args) {
    return add(std::make_shared<M>(std::forward<Args>(args)...));
  }
  // Each module's output is the next one's input. A BatchNorm2d directly followed by a ReLU, or by a LeakyReLU
  // with a slope >= 0 (those exact types), runs as one op, batch_norm2d_relu: the same result (bit for bit on
  // the CPU), one fused pass each way on a GPU, and the normalised values are not kept for backward.
  Tensor forward(const Tensor& x) override;
  size_t size() const { return layers_.size(); }
  Module& operator[](size_t i) { return *layers_.at(i); }  // throws std::out_of_range past size()

 private:
  std::vector<std::shared_ptr<Module>> layers_;
};

// Freezes a module's parameters for the guard's lifetime (requires_grad off), restoring each one's own
// setting when it ends, also on an exception. backward() then computes gradients through the module
// (for whatever feeds it) but none for its parameters: a GAN's generator step freezes D, whose weight
// gradients from that pass would only be discarded by D's next zero_grad (dcgan::train_step does this;
// it saves a third of D's backward work and changes no result). Throws cudagan::Error, as
// requires_grad_ does, if a parameter is not a leaf.
class FreezeGuard {
 public:
  explicit FreezeGuard(const Module& m);
  ~FreezeGuard();
  FreezeGuard(const FreezeGuard&) = delete;
  FreezeGuard& operator=(const FreezeGuard&) = delete;

 private:
  std::vector<std::pair<Tensor, bool>> saved_;  // each parameter and its requires_grad before
};

// Makes every BatchNorm2d in a module use its local batch statistics (across_replicas null) for the
// guard's lifetime, restoring each one's setting when it ends, also on an exception: for a forward pass
// that one replica runs alone (rank 0 drawing a sample grid in training mode), which must not enter a
// collective that the other replicas never join.
class LocalBatchNorm {
 public:
  explicit LocalBatchNorm(Module& net);
  ~LocalBatchNorm();
  LocalBatchNorm(const LocalBatchNorm&) = delete;
  LocalBatchNorm& operator=(const LocalBatchNorm&) = delete;

 private:
  std::vector<std::pair<BatchNorm2d*, std::shared_ptr<const ReplicaSum>>> saved_;  // each one and its setting
};

}  // namespace cudagan::nn
