#include "cudagan/core/tensor.h"

#include <cmath>
#include <cstring>
#include <ostream>
#include <sstream>

#include "core/backend.h"
#include "cudagan/core/autograd.h"
#include "cudagan/core/rng.h"
#include "elementwise.h"

namespace cudagan {

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

Storage::Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
  data_ = device_alloc(bytes, device);
}

Storage::~Storage() { device_free(data_, bytes_, device_); }

// ---------------------------------------------------------------------------------------------
// creation

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape) CUDAGAN_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape));
  CUDAGAN_CHECK(device.is_cpu() || dtype == DType::float32,
                "float64 tensors exist on the cpu device only (for gradient checks); use float32 on ",
                device.str());
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(size_t(shape_numel(shape)) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}
Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor Tensor::scalar(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

namespace {
template <class T> Tensor from_host(const std::vector<T>& values, const Shape& shape, Device device) {
  CUDAGAN_CHECK(int64_t(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
                " values do not fill shape ", shape_str(shape));
  Tensor host = Tensor::empty(shape, dtype_of<T>(), Device::cpu());
  if (!values.empty()) std::memcpy(host.data<T>(), values.data(), values.size() * sizeof(T));
  return host.to(device);
}
}  // namespace

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape, Device device) {
  return from_host(values, shape, device);
}
Tensor Tensor::from_vector(const std::vector<double>& values, const Shape& shape, Device device) {
  return from_host(values, shape, device);
}

Tensor Tensor::randn(const Shape& shape, Rng& gen, DType dtype, Device device, double mean, double std) {
  Tensor host = empty(shape, dtype, Device::cpu());
  dispatch_float(dtype, [&](auto zero) {
    using T = decltype(zero);
    T* p = host.data<T>();
    for (int64_t i = 0, n = host.numel(); i < n; ++i) p[i] = T(mean + std * gen.normal());
  });
  return host.to(device);
}

Tensor Tensor::rand(const Shape& shape, Rng& gen, DType dtype, Device device, double lo, double hi) {
  Tensor host = empty(shape, dtype, Device::cpu());
  dispatch_float(dtype, [&](auto zero) {
    using T = decltype(zero);
    T* p = host.data<T>();
    for (int64_t i = 0, n = host.numel(); i < n; ++i) p[i] = T(lo + (hi - lo) * gen.uniform());
  });
  return host.to(device);
}

// ---------------------------------------------------------------------------------------------
// properties

const TensorImpl& Tensor::checked() const {
  CUDAGAN_CHECK(impl_, "use of an undefined tensor");
  return *impl_;
}
const Shape& Tensor::shape() const { return checked().shape; }
int64_t Tensor::size(int64_t d) const {
  const int64_t rank = dim();
  if (d < 0) d += rank;
  CUDAGAN_CHECK(d >= 0 && d < rank, "dimension ", d, " out of range for shape ", shape_str(shape()));
  return shape()[size_t(d)];
}
int64_t Tensor::numel() const { return shape_numel(shape()); }
DType Tensor::dtype() const { return checked().dtype; }
Device Tensor::device() const { return checked().storage->device(); }

void* Tensor::raw_data() const {
  const TensorImpl& t = checked();
  return static_cast<char*>(t.storage->data()) + t.offset * int64_t(dtype_size(t.dtype));
}

template <class T> T* Tensor::data() const {
  CUDAGAN_CHECK(dtype() == dtype_of<T>(), "tensor holds ", dtype_name(dtype()), ", not ",
                dtype_name(dtype_of<T>()));
  return static_cast<T*>(raw_data());
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;

// ---------------------------------------------------------------------------------------------
// conversion

Tensor Tensor::to(Device device) const {
  if (this->device() == device) return *this;
  Tensor out = empty(shape(), dtype(), device);
  device_copy(out.raw_data(), device, raw_data(), this->device(), size_t(numel()) * dtype_size(dtype()));
  return out;
}

Tensor Tensor::to(DType dtype) const {
  if (this->dtype() == dtype) return clone();
  CUDAGAN_CHECK(device().is_cpu(), "dtype conversion runs on the cpu device; move the tensor there first");
  Tensor out = empty(shape(), dtype, device());
  out.copy_(*this);
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  out.copy_(*this);
  return out;
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = checked().storage;
  impl->offset = impl_->offset;
  impl->shape = impl_->shape;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

std::vector<double> Tensor::to_vector() const {
  Tensor host = to(Device::cpu());
  std::vector<double> out(static_cast<size_t>(numel()));
  dispatch_float(dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* p = host.data<T>();
    for (size_t i = 0; i < out.size(); ++i) out[i] = double(p[i]);
  });
  return out;
}

std::vector<float> Tensor::to_float_vector() const {
  std::vector<double> d = to_vector();
  return std::vector<float>(d.begin(), d.end());
}

double Tensor::item() const {
  CUDAGAN_CHECK(numel() == 1, "item() needs a one-element tensor, got shape ", shape_str(shape()));
  return to_vector()[0];
}

// ---------------------------------------------------------------------------------------------
// in place

void Tensor::copy_(const Tensor& src) {
  CUDAGAN_CHECK(src.shape() == shape(), "copy_: shape ", shape_str(src.shape()), " into ", shape_str(shape()));
  if (src.dtype() == dtype()) {
    device_copy(raw_data(), device(), src.raw_data(), src.device(), size_t(numel()) * dtype_size(dtype()));
    return;
  }
  CUDAGAN_CHECK(device().is_cpu() && src.device().is_cpu(),
                "copy_ between dtypes runs on the cpu device; move the tensors there first");
  dispatch_float(dtype(), [&](auto zd) {
    dispatch_float(src.dtype(), [&](auto zs) {
      using D = decltype(zd);
      using S = decltype(zs);
      const S* s = src.data<S>();
      D* d = data<D>();
      for (int64_t i = 0, n = numel(); i < n; ++i) d[i] = D(s[i]);
    });
  });
}

void Tensor::fill_(double value) {
  on_device(
      *this,
      [&](auto zero) {
        using T = decltype(zero);
        cpu::fill<T>(data<T>(), T(value), numel());
      },
      [&](const cuda::KernelContext& ctx) { cuda::fill(ctx, data<float>(), float(value), numel()); });
}

void Tensor::move_to_(Device device) {
  CUDAGAN_CHECK(is_leaf(), "move_to_ needs a leaf tensor (a parameter or buffer)");
  if (this->device() == device) return;
  Tensor moved = to(device);
  impl_->storage = moved.impl_->storage;
  impl_->offset = 0;
  if (impl_->grad) impl_->grad = Tensor(impl_->grad).to(device).impl_ptr();
}

// ---------------------------------------------------------------------------------------------
// autograd accessors (backward itself lives in autograd.cpp)

bool Tensor::requires_grad() const { return checked().requires_grad; }

Tensor& Tensor::requires_grad_(bool on) {
  CUDAGAN_CHECK(is_leaf(), "requires_grad_ can only be set on a leaf tensor; use detach() first");
  impl_->requires_grad = on;
  return *this;
}

bool Tensor::is_leaf() const { return checked().grad_fn == nullptr; }
Tensor Tensor::grad() const { return Tensor(checked().grad); }

void Tensor::set_grad(const Tensor& grad) {
  checked();
  if (grad.defined()) {
    CUDAGAN_CHECK(grad.shape() == shape() && grad.dtype() == dtype() && grad.device() == device(),
                  "set_grad: gradient ", shape_str(grad.shape()), " ", dtype_name(grad.dtype()), " on ",
                  grad.device().str(), " does not match the tensor ", shape_str(shape()), " ",
                  dtype_name(dtype()), " on ", device().str());
  }
  impl_->grad = grad.impl_ptr();
}

void Tensor::zero_grad() { checked(), impl_->grad.reset(); }
const std::shared_ptr<Node>& Tensor::grad_fn() const { return checked().grad_fn; }

// ---------------------------------------------------------------------------------------------
// printing

std::string Tensor::str(int64_t max_values) const {
  if (!defined()) return "Tensor(undefined)";
  std::ostringstream s;
  s << "Tensor" << shape_str(shape()) << " " << dtype_name(dtype()) << " " << device().str();
  if (requires_grad()) s << " requires_grad";
  if (grad_fn()) s << " grad_fn=" << grad_fn()->name();
  const std::vector<double> v = to_vector();
  s << " {";
  s.precision(6);
  const size_t shown = std::min(v.size(), size_t(std::max<int64_t>(max_values, 0)));
  for (size_t i = 0; i < shown; ++i) s << (i ? ", " : "") << v[i];
  if (shown < v.size()) s << ", ... (" << v.size() - shown << " more)";
  s << "}";
  return s.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

Tensor batch_slice(const Tensor& t, int64_t start, int64_t count) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = t.impl()->storage;
  impl->dtype = t.dtype();
  impl->shape = t.shape();
  impl->shape[0] = count;
  impl->offset = t.impl()->offset + start * (t.size(0) ? t.numel() / t.size(0) : 0);
  return Tensor(std::move(impl));
}

}  // namespace cudagan
