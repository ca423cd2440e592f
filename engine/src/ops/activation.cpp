// relu, leaky_relu, tanh, sigmoid: point-wise, through kernels/activation.h.
#include "activation.h"
#include "core/backend.h"
#include "cudagan/core/autograd.h"
#include "cudagan/ops/ops.h"
#if CUDAGAN_HAVE_CUDA
#include "cuda_context.h"
#endif

namespace cudagan {

namespace {
template <class T> T* ptr(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }

Tensor activation(Activation a, const Tensor& x, double slope) {
  check_defined(activation_name(a), x, "input");
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.device().is_cpu()) {
    dispatch_float(x.dtype(), [&](auto z) {
      using T = decltype(z);
      cpu::activation_forward<T>(a, x.data<T>(), y.data<T>(), x.numel(), T(slope));
    });
  } else {
#if CUDAGAN_HAVE_CUDA
    cuda::activation_forward(cuda_context(x.device()), a, x.data<float>(), y.data<float>(), x.numel(),
                             float(slope));
#endif
  }
  // relu/leaky_relu differentiate from x, tanh/sigmoid from y: save only the one needed.
  const bool from_input = a == Activation::relu || a == Activation::leaky_relu;
  Tensor saved_x = from_input ? x.detach() : Tensor(), saved_y = from_input ? Tensor() : y.detach();
  return record(y, activation_name(a), {x}, [a, slope, saved_x, saved_y](const Tensor& dy) {
    Tensor dx = Tensor::empty(dy.shape(), dy.dtype(), dy.device());
    if (dy.device().is_cpu()) {
      dispatch_float(dy.dtype(), [&](auto z) {
        using T = decltype(z);
        cpu::activation_backward<T>(a, ptr<T>(saved_x), ptr<T>(saved_y), dy.data<T>(), dx.data<T>(), dy.numel(),
                                    T(slope));
      });
    } else {
#if CUDAGAN_HAVE_CUDA
      cuda::activation_backward(cuda_context(dy.device()), a, ptr<float>(saved_x), ptr<float>(saved_y),
                                dy.data<float>(), dx.data<float>(), dy.numel(), float(slope));
#endif
    }
    return std::vector<Tensor>{dx};
  });
}
}  // namespace

Tensor relu(const Tensor& x) { return activation(Activation::relu, x, 0.0); }
Tensor leaky_relu(const Tensor& x, double slope) { return activation(Activation::leaky_relu, x, slope); }
Tensor tanh(const Tensor& x) { return activation(Activation::tanh, x, 0.0); }
Tensor sigmoid(const Tensor& x) { return activation(Activation::sigmoid, x, 0.0); }

}  // namespace cudagan
