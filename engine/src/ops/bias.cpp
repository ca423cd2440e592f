// The per-channel bias of conv2d, conv_transpose2d and linear (kernels/bias.h): y [N, K, ...] += bias [K], and
// its gradient, dy summed over every axis but the channel one. Not differentiable ops of their own: the ops
// that own a bias call them inside their forward and backward passes.
#include "bias.h"

#include "core/backend.h"

namespace cudagan {

namespace {
// [N, K, inner] of a tensor of rank >= 2 with N, K > 0 (the callers check their inputs).
struct ChannelShape {
  int64_t n, k, inner;
};
ChannelShape channel_shape(const Tensor& t) {
  const int64_t n = t.size(0), k = t.size(1);
  return {n, k, n * k > 0 ? t.numel() / (n * k) : 0};
}
}  // namespace

void add_channel_bias(const Tensor& bias, const Tensor& y) {
  const ChannelShape s = channel_shape(y);
  on_device(
      y,
      [&](auto z) {
        using T = decltype(z);
        cpu::add_bias<T>(bias.data<T>(), y.data<T>(), s.n, s.k, s.inner);
      },
      [&](const cuda::KernelContext& ctx) {
        cuda::add_bias(ctx, bias.data<float>(), y.data<float>(), s.n, s.k, s.inner);
      });
}

Tensor bias_gradient(const Tensor& dy) {
  const ChannelShape s = channel_shape(dy);
  Tensor db = Tensor::empty({s.k}, dy.dtype(), dy.device());
  on_device(
      db,
      [&](auto z) {
        using T = decltype(z);
        cpu::bias_backward<T>(dy.data<T>(), db.data<T>(), s.n, s.k, s.inner);
      },
      [&](const cuda::KernelContext& ctx) {
        cuda::bias_backward(ctx, dy.data<float>(), db.data<float>(), s.n, s.k, s.inner);
      });
  return db;
}

}  // namespace cudagan
