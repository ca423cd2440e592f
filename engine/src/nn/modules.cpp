#include "cudagan/nn/modules.h"

#include <cmath>
#include <typeinfo>

#include "cudagan/core/error.h"
#include "cudagan/ops/ops.h"
#include "cudagan/core/rng.h"

namespace cudagan::nn {

// ---------------------------------------------------------------------------------------------
// Module

Tensor& Module::register_parameter(const std::string& name, Tensor t) {
  if (t.defined()) t.requires_grad_(true);
  params_.emplace_back(name, std::move(t));
  return params_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor t) {
  buffers_.emplace_back(name, std::move(t));
  return buffers_.back().second;
}

void Module::collect(const std::string& prefix, bool params, NamedTensors& out) const {
  for (const auto& [name, t] : params ? params_ : buffers_)
    if (t.defined()) out.emplace_back(prefix + name, t);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", params, out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", true, out);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", false, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

std::vector<Tensor> Module::buffers() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_buffers()) out.push_back(t);
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (const Tensor& t : parameters()) n += t.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::to(Device device) {
  for (Tensor& t : parameters()) t.move_to_(device);
  for (Tensor& t : buffers()) t.move_to_(device);
}

void Module::zero_grad() {
  for (Tensor& t : parameters()) t.zero_grad();
}

void Module::apply(const std::function<void(Module&)>& fn) {
  fn(*this);
  for (auto& [name, child] : children_) child->apply(fn);
}

LocalBatchNorm::LocalBatchNorm(Module& net) {
  net.apply([this](Module& m) {
    if (auto* bn = dynamic_cast<BatchNorm2d*>(&m)) saved_.emplace_back(bn, bn->across_replicas);
  });
  // Cleared only once all are saved: nothing below can throw, so no setting is lost half-way (and a
  // BatchNorm2d reached twice, a shared sub-module, is saved twice with its own setting).
  for (auto& [bn, across] : saved_) bn->across_replicas = nullptr;
}

LocalBatchNorm::~LocalBatchNorm() {
  for (auto& [bn, across] : saved_) bn->across_replicas = across;
}

FreezeGuard::FreezeGuard(const Module& m) {
  for (Tensor& p : m.parameters()) {
    saved_.emplace_back(p, p.requires_grad());
    p.requires_grad_(false);
  }
}

FreezeGuard::~FreezeGuard() {
  for (auto& [p, on] : saved_) p.requires_grad_(on);  // leaves stay leaves: this cannot throw
}

// ---------------------------------------------------------------------------------------------
// layers

namespace {
// PyTorch's default for convolutions and linear layers (kaiming_uniform with a = sqrt(5) for the
// weight, and the same bound for the bias): U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
Tensor uniform_init(Rng& gen, const Shape& shape, int64_t fan_in) {
  const double bound = 1.0 / std::sqrt(double(fan_in));
  return Tensor::rand(shape, gen, DType::float32, Device::cpu(), -bound, bound);
}

void check_positive(const char* layer, int value, const char* what) {
  CUDAGAN_CHECK(value > 0, layer, ": ", what, " must be positive, got ", value);
}
}  // namespace

Conv2d::Conv2d(Rng& gen, int in_channels, int out_channels, int kernel, int stride, int padding, bool bias)
    : stride(stride), padding(padding) {
  check_positive("Conv2d", in_channels, "in_channels");
  check_positive("Conv2d", out_channels, "out_channels");
  check_positive("Conv2d", kernel, "kernel");
  const int64_t fan_in = int64_t(in_channels) * kernel * kernel;
  weight = register_parameter("weight", uniform_init(gen, {out_channels, in_channels, kernel, kernel}, fan_in));
  if (bias) this->bias = register_parameter("bias", uniform_init(gen, {out_channels}, fan_in));
}

Tensor Conv2d::forward(const Tensor& x) { return conv2d(x, weight, bias, stride, padding); }

ConvTranspose2d::ConvTranspose2d(Rng& gen, int in_channels, int out_channels, int kernel, int stride,
                                 int padding, bool bias)
    : stride(stride), padding(padding) {
  check_positive("ConvTranspose2d", in_channels, "in_channels");
  check_positive("ConvTranspose2d", out_channels, "out_channels");
  check_positive("ConvTranspose2d", kernel, "kernel");
  // PyTorch computes fan_in from weight.size(1) * k * k, i.e. the output channels here.
  const int64_t fan_in = int64_t(out_channels) * kernel * kernel;
  weight = register_parameter("weight", uniform_init(gen, {in_channels, out_channels, kernel, kernel}, fan_in));
  if (bias) this->bias = register_parameter("bias", uniform_init(gen, {out_channels}, fan_in));
}

Tensor ConvTranspose2d::forward(const Tensor& x) { return conv_transpose2d(x, weight, bias, stride, padding); }

BatchNorm2d::BatchNorm2d(int channels, double eps, double momentum, bool affine) : eps(eps), momentum(momentum) {
  check_positive("BatchNorm2d", channels, "channels");
  if (affine) {
    weight = register_parameter("weight", Tensor::ones({channels}));
    bias = register_parameter("bias", Tensor::zeros({channels}));
  }
  running_mean = register_buffer("running_mean", Tensor::zeros({channels}));
  running_var = register_buffer("running_var", Tensor::ones({channels}));
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  return batch_norm2d(x, weight, bias, running_mean, running_var, is_training(), momentum, eps,
                      across_replicas);
}

Tensor BatchNorm2d::forward_relu(const Tensor& x, double negative_slope) {
  return batch_norm2d_relu(x, weight, bias, running_mean, running_var, is_training(), momentum, eps, negative_slope,
                           across_replicas);
}

Linear::Linear(Rng& gen, int in_features, int out_features, bool bias) {
  check_positive("Linear", in_features, "in_features");
  check_positive("Linear", out_features, "out_features");
  weight = register_parameter("weight", uniform_init(gen, {out_features, in_features}, in_features));
  if (bias) this->bias = register_parameter("bias", uniform_init(gen, {out_features}, in_features));
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight, bias); }

Tensor ReLU::forward(const Tensor& x) { return relu(x); }
Tensor LeakyReLU::forward(const Tensor& x) { return leaky_relu(x, slope); }
Tensor Tanh::forward(const Tensor& x) { return cudagan::tanh(x); }
Tensor Sigmoid::forward(const Tensor& x) { return sigmoid(x); }
Tensor Flatten::forward(const Tensor& x) { return reshape(x, {x.size(0), -1}); }

namespace {
// The slope of the activation `m` when it can be fused into a batchnorm before it, else a negative value.
double fusable_relu_slope(const Module& m) {
  if (typeid(m) == typeid(ReLU)) return 0.0;
  if (typeid(m) == typeid(LeakyReLU)) return static_cast<const LeakyReLU&>(m).slope;  // negative: not fused
  return -1.0;
}
}  // namespace

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (size_t i = 0; i < layers_.size(); ++i) {
    Module& layer = *layers_[i];
    if (typeid(layer) == typeid(BatchNorm2d) && i + 1 < layers_.size()) {
      const double slope = fusable_relu_slope(*layers_[i + 1]);
      if (slope >= 0) {
        h = static_cast<BatchNorm2d&>(layer).forward_relu(h, slope);
        ++i;  // the activation ran inside the op
        continue;
      }
    }
    h = layer.forward(h);
  }
  return h;
}

}  // namespace cudagan::nn
