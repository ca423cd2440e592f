// conv2d and conv_transpose2d. Both run on the three conv kernels (kernels/conv.h): a transposed
// convolution's forward pass is the backward-data pass of the convolution with the roles of input
// and output swapped, its backward-data pass is that convolution's forward pass.
#include "core/backend.h"
#include "conv.h"
#include "cudagan/core/autograd.h"
#include "cudagan/ops/ops.h"

namespace cudagan {

namespace {
// The three kernels, on the device and dtype of their output.
void run_forward(const ConvGeometry& g, const Tensor& x, const Tensor& w, const Tensor& y) {
  on_device(
      y,
      [&](auto z) {
        using T = decltype(z);
        cpu::conv2d_forward<T>(g, x.data<T>(), w.data<T>(), y.data<T>());
      },
      [&](const cuda::KernelContext& ctx) {
        cuda::conv2d_forward(ctx, g, x.data<float>(), w.data<float>(), y.data<float>());
      });
}

void run_backward_data(const ConvGeometry& g, const Tensor& dy, const Tensor& w, const Tensor& dx) {
  on_device(
      dx,
      [&](auto z) {
        using T = decltype(z);
        cpu::conv2d_backward_data<T>(g, dy.data<T>(), w.data<T>(), dx.data<T>());
      },
      [&](const cuda::KernelContext& ctx) {
        cuda::conv2d_backward_data(ctx, g, dy.data<float>(), w.data<float>(), dx.data<float>());
      });
}

void run_backward_weight(const ConvGeometry& g, const Tensor& x, const Tensor& dy, const Tensor& dw) {
  on_device(
      dw,
      [&](auto z) {
        using T = decltype(z);
        cpu::conv2d_backward_weight<T>(g, x.data<T>(), dy.data<T>(), dw.data<T>());
      },
      [&](const cuda::KernelContext& ctx) {
        cuda::conv2d_backward_weight(ctx, g, x.data<float>(), dy.data<float>(), dw.data<float>());
      });
}
}  // namespace

namespace {
void check_conv_args(const char* op, const Tensor& x, const Tensor& w, const Tensor& b, int64_t bias_len,
                     int stride, int padding) {
  check_rank(op, x, 4, "input");
  check_rank(op, w, 4, "weight");
  check_compatible(op, x, w);
  CUDAGAN_CHECK(stride >= 1 && padding >= 0, op, ": stride must be >= 1 and padding >= 0, got stride ", stride,
                " padding ", padding);
  if (b.defined()) {
    check_compatible(op, x, b);
    CUDAGAN_CHECK(b.shape() == Shape{bias_len}, op, ": bias must have shape [", bias_len, "], got ",
                  shape_str(b.shape()));
  }
}
}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int stride, int padding) {
  check_defined("conv2d", x, "input");
  check_defined("conv2d", weight, "weight");
  check_conv_args("conv2d", x, weight, bias, weight.size(0), stride, padding);
  CUDAGAN_CHECK(weight.size(1) == x.size(1), "conv2d: weight ", shape_str(weight.shape()), " expects ",
                weight.size(1), " input channels, the input ", shape_str(x.shape()), " has ", x.size(1));
  ConvGeometry g;
  g.batch = int(x.size(0));
  g.in_channels = int(x.size(1));
  g.in_h = int(x.size(2));
  g.in_w = int(x.size(3));
  g.out_channels = int(weight.size(0));
  g.kernel_h = int(weight.size(2));
  g.kernel_w = int(weight.size(3));
  g.stride_h = g.stride_w = stride;
  g.pad_h = g.pad_w = padding;
  CUDAGAN_CHECK(g.valid(), "conv2d: kernel ", g.kernel_h, "x", g.kernel_w, " does not fit the padded input ",
                shape_str(x.shape()), " (padding ", padding, ")");

  Tensor y = Tensor::empty({g.batch, g.out_channels, g.out_h(), g.out_w()}, x.dtype(), x.device());
  run_forward(g, x, weight, y);
  if (bias.defined()) add_channel_bias(bias, y);

  const bool need_x = x.requires_grad(), need_w = weight.requires_grad();
  const bool need_b = bias.defined() && bias.requires_grad();
  return record(y, "conv2d", {x, weight, bias},
                [g, x = x.detach(), w = weight.detach(), need_x, need_w, need_b](const Tensor& dy) {
                  Tensor dx, dw, db;
                  if (need_x) {
                    dx = Tensor::empty(x.shape(), x.dtype(), x.device());
                    run_backward_data(g, dy, w, dx);
                  }
                  if (need_w) {
                    dw = Tensor::empty(w.shape(), w.dtype(), w.device());
                    run_backward_weight(g, x, dy, dw);
                  }
                  if (need_b) db = bias_gradient(dy);
                  return std::vector<Tensor>{dx, dw, db};
                });
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int stride, int padding) {
  check_defined("conv_transpose2d", x, "input");
  check_defined("conv_transpose2d", weight, "weight");
  check_conv_args("conv_transpose2d", x, weight, bias, weight.size(1), stride, padding);
  CUDAGAN_CHECK(weight.size(0) == x.size(1), "conv_transpose2d: weight ", shape_str(weight.shape()),
                " expects ", weight.size(0), " input channels, the input ", shape_str(x.shape()), " has ",
                x.size(1));
  const ConvGeometry g =
      transpose_geometry(int(x.size(0)), int(x.size(1)), int(x.size(2)), int(x.size(3)), int(weight.size(1)),
                         int(weight.size(2)), int(weight.size(3)), stride, stride, padding, padding);
  CUDAGAN_CHECK(g.in_h > 0 && g.in_w > 0 && g.valid() && g.out_h() == x.size(2) && g.out_w() == x.size(3),
                "conv_transpose2d: kernel ", weight.size(2), "x", weight.size(3), " with stride ", stride,
                " and padding ", padding, " gives no output for input ", shape_str(x.shape()));

  Tensor y = Tensor::empty({g.batch, g.in_channels, g.in_h, g.in_w}, x.dtype(), x.device());
  run_backward_data(g, x, weight, y);
  if (bias.defined()) add_channel_bias(bias, y);

  const bool need_x = x.requires_grad(), need_w = weight.requires_grad();
  const bool need_b = bias.defined() && bias.requires_grad();
  return record(y, "conv_transpose2d", {x, weight, bias},
                [g, x = x.detach(), w = weight.detach(), need_x, need_w, need_b](const Tensor& dy) {
                  Tensor dx, dw, db;
                  if (need_x) {
                    dx = Tensor::empty(x.shape(), x.dtype(), x.device());
                    run_forward(g, dy, w, dx);
                  }
                  if (need_w) {
                    dw = Tensor::empty(w.shape(), w.dtype(), w.device());
                    run_backward_weight(g, dy, x, dw);
                  }
                  if (need_b) db = bias_gradient(dy);
                  return std::vector<Tensor>{dx, dw, db};
                });
}

}  // namespace cudagan
