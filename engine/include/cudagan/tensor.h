// Tensor: an n-dimensional, contiguous (NCHW for images) array of float32 or float64 on one device,
// a handle to shared, reference-counted storage. Copying a Tensor copies the handle, not the data;
// reshape() returns a view of the same storage. Tensors that require a gradient take part in
// autograd (see autograd.h): ops on them record how to differentiate their result.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "cudagan/device.h"
#include "cudagan/dtype.h"

namespace cudagan {

using Shape = std::vector<int64_t>;
int64_t shape_numel(const Shape& shape);
std::string shape_str(const Shape& shape);  // "[2, 3, 4]"

class Generator;
class Node;

// A block of memory on one device. Freed when the last tensor using it goes.
class Storage {
 public:
  Storage(size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  DType dtype = DType::float32;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;  // accumulated gradient (leaves), same shape/device/dtype
  std::shared_ptr<Node> grad_fn;      // the op that produced this tensor, when recorded
};

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // --- creation (contents unspecified for empty) ---
  static Tensor empty(const Shape& shape, DType dtype = DType::float32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::float32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::float32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::float32,
                     Device device = Device::cpu());
  static Tensor scalar(double value, DType dtype = DType::float32, Device device = Device::cpu());
  // From host values; the element count must match the shape.
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape, Device device = Device::cpu());
  static Tensor from_vector(const std::vector<double>& values, const Shape& shape,
                            Device device = Device::cpu());  // float64
  // N(mean, std^2) and U[lo, hi) draws from a seeded generator. Values are generated on the CPU
  // and copied, so a seed gives the same tensor whatever the device.
  static Tensor randn(const Shape& shape, Generator& gen, DType dtype = DType::float32,
                      Device device = Device::cpu(), double mean = 0.0, double std = 1.0);
  static Tensor rand(const Shape& shape, Generator& gen, DType dtype = DType::float32,
                     Device device = Device::cpu(), double lo = 0.0, double hi = 1.0);

  // --- properties ---
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int64_t dim() const { return int64_t(shape().size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const;
  DType dtype() const;
  Device device() const;
  std::string str(int64_t max_values = 16) const;  // shape, dtype, device and (some) values

  // Raw element pointer on the tensor's device; throws if T is not the tensor's dtype.
  template <class T> T* data() const;
  void* raw_data() const;

  // --- conversion ---
  Tensor to(Device device) const;  // a copy on `device` (this tensor itself when already there)
  Tensor to(DType dtype) const;    // a converted copy (CPU only)
  Tensor clone() const;            // a deep copy, outside autograd
  Tensor detach() const;           // same storage, no autograd history, requires_grad false
  Tensor reshape(const Shape& shape) const;  // a view; one dimension may be -1; differentiable
  std::vector<double> to_vector() const;     // all values, copied to the host
  std::vector<float> to_float_vector() const;
  double item() const;                       // the value of a one-element tensor

  // --- in place, outside autograd (initialisation, optimizers, loading) ---
  void copy_(const Tensor& src);  // same shape; any devices; converts dtype on the CPU
  void fill_(double value);
  // Moves the storage to another device, keeping this handle (and every copy of it) valid: how
  // modules move their parameters.
  void move_to_(Device device);

  // --- autograd ---
  bool requires_grad() const;
  Tensor& requires_grad_(bool on = true);  // leaves only
  bool is_leaf() const;
  Tensor grad() const;  // the accumulated gradient; undefined until backward reaches this tensor
  void set_grad(const Tensor& grad);
  void zero_grad();  // drops the gradient (as PyTorch's set_to_none)
  const std::shared_ptr<Node>& grad_fn() const;
  // Back-propagates from this tensor: a one-element tensor gets the seed 1; others need `grad`.
  void backward() const;
  void backward(const Tensor& grad) const;

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& other) const { return impl_ == other.impl_; }

 private:
  const TensorImpl& checked() const;
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

}  // namespace cudagan
