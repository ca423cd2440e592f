// relu, leaky_relu, tanh, sigmoid: point-wise, through kernels/activation.h.
#include "activation.h"
#include "core/backend.h"
#include "cudagan/core/autograd.h"
#include "cudagan/ops/ops.h"

namespace cudagan {

namespace {
template <class T> T* ptr(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }

Tensor activation(Activation a, const Tensor& x, double slope) {
  check_defined(activation_name(a), x, "input");
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  on_device(
      y,
      [&](auto z) {
        using T = decltype(z);
        cpu::activation_forward<T>(a, x.data<T>(), y.data<T>(), x.numel(), T(slope));
      },
      [&](const cuda::KernelContext& ctx) {
        cuda::activation_forward(ctx, a, x.data<float>(), y.data<float>(), x.numel(), float(slope));
      });
  // relu/leaky_relu differentiate from x, tanh/sigmoid from y: save only the one needed.
  const bool from_input = a == Activation::relu || a == Activation::leaky_relu;
  Tensor saved_x = from_input ? x.detach() : Tensor(), saved_y = from_input ? Tensor() : y.detach();
  return record(y, activation_name(a), {x}, [a, slope, saved_x, saved_y](const Tensor& dy) {
    Tensor dx = Tensor::empty(dy.shape(), dy.dtype(), dy.device());
    on_device(
        dx,
        [&](auto z) {
          using T = decltype(z);
          cpu::activation_backward<T>(a, ptr<T>(saved_x), ptr<T>(saved_y), dy.data<T>(), dx.data<T>(),
                                      dy.numel(), T(slope));
        },
        [&](const cuda::KernelContext& ctx) {
          cuda::activation_backward(ctx, a, ptr<float>(saved_x), ptr<float>(saved_y), dy.data<float>(),
                                    dx.data<float>(), dy.numel(), float(slope));
        });
    return std::vector<Tensor>{dx};
  });
}
}  // namespace

Tensor relu(const Tensor& x) { return activation(Activation::relu, x, 0.0); }
Tensor leaky_relu(const Tensor& x, double slope) { return activation(Activation::leaky_relu, x, slope); }
Tensor tanh(const Tensor& x) { return activation(Activation::tanh, x, 0.0); }
Tensor sigmoid(const Tensor& x) { return activation(Activation::sigmoid, x, 0.0); }

}  // namespace cudagan
