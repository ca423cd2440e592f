// Tensor: an n-dimensional, contiguous (NCHW for images) array of float32 or float64 on one device,
// a handle to shared, reference-counted storage. Copying a Tensor copies the handle, not the data;
// reshape() returns a view of the same storage. Tensors that require a gradient take part in
// autograd (see autograd.h): ops on them record how to differentiate their result.
//
// Errors: methods that read a tensor throw cudagan::Error on an undefined one (defined(), str() and
// the identity accessors at the end do not), and anything that allocates on a GPU throws
// cudagan::Error when the build has no CUDA backend, no GPU is visible, the device index does not
// exist, or the GPU is out of memory.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "cudagan/core/device.h"
#include "cudagan/core/dtype.h"

namespace cudagan {

// Dimensions, outermost first: [N, C, H, W] for images; [] (empty) for a one-element scalar.
using Shape = std::vector<int64_t>;
int64_t shape_numel(const Shape& shape);    // the product of the dimensions: 1 for [], 0 if any is 0
std::string shape_str(const Shape& shape);  // "[2, 3, 4]"

class Rng;
class Node;

// A block of memory on one device. Freed when the last tensor using it goes. CPU blocks are 64-byte
// aligned; GPU blocks come from the device's stream-ordered pool (no cudaMalloc per tensor).
class Storage {
 public:
  // Uninitialised memory; throws cudagan::Error when it cannot be had (out of memory, no such device).
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

// The state a Tensor handle points to, shared by all copies of the handle. The engine's ops and
// autograd work on it; research code uses Tensor's methods instead.
struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  DType dtype = DType::float32;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;  // accumulated gradient (leaves), same shape/device/dtype
  std::shared_ptr<Node> grad_fn;      // the op that produced this tensor, when recorded
};

// A handle to an n-dimensional array (see the top of this file). Cheap to copy; copies share data.
class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}  // wraps existing state

  // --- creation (contents unspecified for empty) ---
  // New storage of `shape` on `device`, not part of any graph (requires_grad false). They throw
  // cudagan::Error for a negative dimension, for float64 on a GPU (float64 is CPU-only), and for an
  // unavailable device (see the top of this file).
  static Tensor empty(const Shape& shape, DType dtype = DType::float32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::float32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::float32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::float32,
                     Device device = Device::cpu());
  static Tensor scalar(double value, DType dtype = DType::float32, Device device = Device::cpu());  // shape []
  // From host values in row-major order, copied to `device`; throws cudagan::Error when the element
  // count does not match the shape. With a braced list, name the element type:
  // from_vector(std::vector<float>{1, 2, 3}, {3}).
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape, Device device = Device::cpu());
  static Tensor from_vector(const std::vector<double>& values, const Shape& shape,
                            Device device = Device::cpu());  // float64
  // N(mean, std^2) and U[lo, hi) draws from a seeded generator. Values are generated on the CPU
  // and copied, so a seed gives the same tensor whatever the device.
  static Tensor randn(const Shape& shape, Rng& gen, DType dtype = DType::float32,
                      Device device = Device::cpu(), double mean = 0.0, double std = 1.0);
  static Tensor rand(const Shape& shape, Rng& gen, DType dtype = DType::float32,
                     Device device = Device::cpu(), double lo = 0.0, double hi = 1.0);

  // --- properties ---
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int64_t dim() const { return int64_t(shape().size()); }  // the number of dimensions
  int64_t size(int64_t d) const;  // dimension d; negative d counts from the end; throws if out of range
  int64_t numel() const;          // the number of elements
  DType dtype() const;
  Device device() const;
  // One line: shape, dtype, device, autograd state and the first max_values values, e.g.
  // "Tensor[2, 3] float32 cpu {1, 2, 3, 4, 5, 6}"; copies from a GPU (and so waits for it);
  // "Tensor(undefined)" for an undefined tensor.
  std::string str(int64_t max_values = 16) const;

  // Raw element pointer on the tensor's device (a device pointer for a GPU tensor: do not
  // dereference it on the host); T is float or double; throws if T is not the tensor's dtype.
  template <class T> T* data() const;
  void* raw_data() const;  // the same, untyped

  // --- conversion ---
  // A copy on `device` (this tensor itself when already there). Not recorded by autograd: move
  // inputs and parameters (Module::to), not intermediate results that need a gradient.
  Tensor to(Device device) const;
  Tensor to(DType dtype) const;    // a converted copy, always a new tensor; throws unless on the CPU
  Tensor clone() const;            // a deep copy on the same device, outside autograd
  Tensor detach() const;           // same storage, no autograd history, requires_grad false
  // A view of the same storage with the same element count; one dimension may be -1 (inferred).
  // Differentiable. Throws cudagan::Error when the counts differ or the shape is malformed.
  Tensor reshape(const Shape& shape) const;
  // All values in row-major order, copied to the host (waits for a GPU).
  std::vector<double> to_vector() const;
  std::vector<float> to_float_vector() const;
  double item() const;  // the value of a one-element tensor (any shape); throws for other sizes

  // --- in place, outside autograd (initialisation, optimizers, loading) ---
  // Overwrites the values with src's. Throws cudagan::Error unless the shapes are equal, or when
  // the dtypes differ and either tensor is not on the CPU (conversion runs on the host).
  void copy_(const Tensor& src);
  void fill_(double value);  // every element := value
  // Moves the storage (and the gradient, if any) to another device, keeping this handle (and every
  // copy of it) valid: how modules move their parameters. Throws unless this is a leaf.
  void move_to_(Device device);

  // --- autograd ---
  bool requires_grad() const;  // true for parameters and for results of ops on them
  // Marks a leaf as a parameter whose gradient backward() computes; returns *this. Throws on a
  // tensor produced by a recorded op (use detach() first).
  Tensor& requires_grad_(bool on = true);
  bool is_leaf() const;  // not produced by a recorded op (created, detached, or a parameter)
  Tensor grad() const;  // the accumulated gradient; undefined until backward reaches this tensor
  // Replaces the gradient (undefined drops it); throws unless shape, dtype and device match.
  void set_grad(const Tensor& grad);
  void zero_grad();  // drops the gradient (as PyTorch's set_to_none)
  const std::shared_ptr<Node>& grad_fn() const;  // the op that produced this tensor; null for a leaf
  // Back-propagates from this tensor: a one-element tensor gets the seed 1; others need `grad`
  // (same shape, dtype and device). Gradients accumulate (+=) into the leaves' grad(); the graph is
  // freed as it is walked. Throws cudagan::Error when this tensor does not require a gradient,
  // when backward() is called without `grad` on more than one element, or when the graph was
  // already freed by an earlier backward.
  void backward() const;
  void backward(const Tensor& grad) const;

  // The shared state (for the engine's ops), and identity: same() is true for handles to the same
  // state, not for equal values.
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& other) const { return impl_ == other.impl_; }

 private:
  const TensorImpl& checked() const;
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);  // writes t.str()

}  // namespace cudagan
