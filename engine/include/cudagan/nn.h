// Neural-network modules in PyTorch's style. A module owns its parameters (tensors requiring a
// gradient) and buffers (state such as batchnorm's running statistics), named as PyTorch names
// them ("0.weight", "main.3.running_mean"), and its sub-modules. Parameters are initialised from an
// explicit Generator (there is no global one) on the CPU, so a seed gives the same weights whatever
// the device the module is moved to afterwards.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cudagan/tensor.h"

namespace cudagan {
class Generator;
}

namespace cudagan::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  virtual ~Module() = default;
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }

  NamedTensors named_parameters() const;  // this module's, then each sub-module's, in order
  NamedTensors named_buffers() const;
  std::vector<Tensor> parameters() const;
  std::vector<Tensor> buffers() const;
  int64_t parameter_count() const;  // elements

  void train(bool on = true);  // recursively
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void to(Device device);  // moves every parameter and buffer in place
  void zero_grad();

 protected:
  Tensor& register_parameter(const std::string& name, Tensor t);
  Tensor& register_buffer(const std::string& name, Tensor t);
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
// U(-1/sqrt(in k k), +1/sqrt(in k k)) (PyTorch's default).
class Conv2d : public Module {
 public:
  Conv2d(Generator& gen, int in_channels, int out_channels, int kernel, int stride = 1, int padding = 0,
         bool bias = true);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
  int stride, padding;
};

// ConvTranspose2d: weight [in, out, k, k], bias [out]; U(+-1/sqrt(out k k)) as PyTorch.
class ConvTranspose2d : public Module {
 public:
  ConvTranspose2d(Generator& gen, int in_channels, int out_channels, int kernel, int stride = 1,
                  int padding = 0, bool bias = true);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
  int stride, padding;
};

// BatchNorm2d: weight (gamma) 1, bias (beta) 0, running_mean 0, running_var 1, num_batches_tracked.
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int channels, double eps = 1e-5, double momentum = 0.1, bool affine = true);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias, running_mean, running_var;
  double eps, momentum;
};

// Linear(in, out): weight [out, in], bias [out], U(+-1/sqrt(in)).
class Linear : public Module {
 public:
  Linear(Generator& gen, int in_features, int out_features, bool bias = true);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
};

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};
class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double slope = 0.01) : slope(slope) {}
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
// Flatten: [N, ...] -> [N, rest].
class Flatten : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

// Runs its modules in order; they are named "0", "1", ... as in PyTorch.
class Sequential : public Module {
 public:
  Sequential() = default;
  template <class M> std::shared_ptr<M> add(std::shared_ptr<M> m) {
    layers_.push_back(m);
    return register_module(std::to_string(layers_.size() - 1), std::move(m));
  }
  template <class M, class... Args> std::shared_ptr<M> emplace(Args&&... args) {
    return add(std::make_shared<M>(std::forward<Args>(args)...));
  }
  Tensor forward(const Tensor& x) override;
  size_t size() const { return layers_.size(); }
  Module& operator[](size_t i) { return *layers_.at(i); }

 private:
  std::vector<std::shared_ptr<Module>> layers_;
};

}  // namespace cudagan::nn
