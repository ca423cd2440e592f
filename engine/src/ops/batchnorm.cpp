// batch_norm2d over [N, C, H, W] (or [N, C]), alone or followed by relu / leaky_relu as one op
// (batch_norm2d_relu): the fused kernels of kernels/batchnorm.h. On a GPU in training mode the activation
// runs inside the batchnorm kernels, one pass each way; elsewhere the two kernels run in turn, on the CPU
// giving bit for bit what the two ops give. Either way only the output is kept for backward: relu and
// leaky_relu (slope >= 0) differentiate from the sign of their output as well as from their input.
#include "activation.h"
#include "batchnorm.h"
#include "core/backend.h"
#include "cudagan/core/autograd.h"
#include "cudagan/ops/ops.h"

namespace cudagan {

namespace {
template <class T> T* ptr(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }

BatchNormGeometry geometry_of(const Tensor& x) {
  BatchNormGeometry g;
  g.batch = int(x.size(0));
  g.channels = int(x.size(1));
  g.spatial = x.numel() / (x.size(0) * x.size(1));
  return g;
}

void check_channel_vector(const char* op, const Tensor& x, const Tensor& v, const char* what) {
  if (!v.defined()) return;
  check_compatible(op, x, v);
  CUDAGAN_CHECK(v.shape() == Shape{x.size(1)}, op, ": ", what, " must have shape [", x.size(1), "] for input ",
                shape_str(x.shape()), ", got ", shape_str(v.shape()));
}

// The activation after the normalisation, if any.
struct Fusion {
  bool on = false;
  Activation act = Activation::relu;
  double slope = 0;
};

Tensor batch_norm(const char* op, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                  const Tensor& running_mean, const Tensor& running_var, bool training, double momentum, double eps,
                  Fusion f) {
  check_defined(op, x, "input");
  CUDAGAN_CHECK(x.dim() == 4 || x.dim() == 2, op, ": input must be [N, C, H, W] or [N, C], got ",
                shape_str(x.shape()));
  CUDAGAN_CHECK(gamma.defined() == beta.defined(), op, ": give both gamma and beta, or neither");
  CUDAGAN_CHECK(running_mean.defined() == running_var.defined(), op,
                ": give both running_mean and running_var, or neither");
  CUDAGAN_CHECK(training || running_mean.defined(), op, ": evaluation mode needs running_mean and running_var");
  CUDAGAN_CHECK(x.size(0) > 0 && x.size(1) > 0, op, ": the input ", shape_str(x.shape()),
                " is empty; give at least one sample and one channel");
  check_channel_vector(op, x, gamma, "gamma");
  check_channel_vector(op, x, beta, "beta");
  check_channel_vector(op, x, running_mean, "running_mean");
  check_channel_vector(op, x, running_var, "running_var");
  const BatchNormGeometry g = geometry_of(x);
  CUDAGAN_CHECK(!training || g.count() > 1, op, ": training needs more than one value per channel, got input ",
                shape_str(x.shape()), "; use a batch larger than 1 or eval()");

  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor saved_mean, saved_invstd, eval_mean, eval_var;
  if (training) {
    saved_mean = Tensor::empty({g.channels}, x.dtype(), x.device());
    saved_invstd = Tensor::empty({g.channels}, x.dtype(), x.device());
  } else {  // the running statistics may change before backward runs: keep the ones used here
    eval_mean = running_mean.clone();
    eval_var = running_var.clone();
  }
  const int64_t n = x.numel();

  on_device(
      y,
      [&](auto z) {
        using T = decltype(z);
        if (training)
          cpu::batch_norm_forward_train<T>(g, x.data<T>(), ptr<T>(gamma), ptr<T>(beta), T(eps), T(momentum),
                                           y.data<T>(), saved_mean.data<T>(), saved_invstd.data<T>(),
                                           ptr<T>(running_mean), ptr<T>(running_var));
        else
          cpu::batch_norm_forward_eval<T>(g, x.data<T>(), ptr<T>(gamma), ptr<T>(beta), eval_mean.data<T>(),
                                          eval_var.data<T>(), T(eps), y.data<T>());
        if (f.on) cpu::activation_forward<T>(f.act, y.data<T>(), y.data<T>(), n, T(f.slope));
      },
      [&](const cuda::KernelContext& ctx) {
        if (training) {
          cuda::batch_norm_forward_train(ctx, g, x.data<float>(), ptr<float>(gamma), ptr<float>(beta), float(eps),
                                         float(momentum), y.data<float>(), saved_mean.data<float>(),
                                         saved_invstd.data<float>(), ptr<float>(running_mean),
                                         ptr<float>(running_var), f.act, f.on, float(f.slope));
        } else {
          cuda::batch_norm_forward_eval(ctx, g, x.data<float>(), ptr<float>(gamma), ptr<float>(beta),
                                        eval_mean.data<float>(), eval_var.data<float>(), float(eps),
                                        y.data<float>());
          if (f.on) cuda::activation_forward(ctx, f.act, y.data<float>(), y.data<float>(), n, float(f.slope));
        }
      });

  const bool need_x = x.requires_grad();
  const bool need_affine = gamma.defined() && (gamma.requires_grad() || beta.requires_grad());
  return record(
      y, op, {x, gamma, beta},
      [g, training, eps, f, n, need_x, need_affine, x = x.detach(), gamma = gamma.defined() ? gamma.detach() : Tensor(),
       saved_mean, saved_invstd, eval_mean, eval_var, y = f.on ? y.detach() : Tensor()](const Tensor& dy) {
        Tensor dx, dgamma, dbeta;
        if (need_x) dx = Tensor::empty(x.shape(), x.dtype(), x.device());
        if (need_affine) {
          dgamma = Tensor::empty({g.channels}, x.dtype(), x.device());
          dbeta = Tensor::empty({g.channels}, x.dtype(), x.device());
        }
        // Without a fused kernel: the activation's gradient first (from y, whose sign is the input's), then
        // batchnorm's from it.
        Tensor dnorm = dy;
        const bool fused_kernel = f.on && training && x.device().is_cuda();
        if (f.on && !fused_kernel) dnorm = Tensor::empty(dy.shape(), dy.dtype(), dy.device());
        on_device(
            x,
            [&](auto z) {
              using T = decltype(z);
              if (f.on)
                cpu::activation_backward<T>(f.act, y.data<T>(), y.data<T>(), dy.data<T>(), dnorm.data<T>(), n,
                                            T(f.slope));
              if (training)
                cpu::batch_norm_backward_train<T>(g, x.data<T>(), dnorm.data<T>(), ptr<T>(gamma),
                                                  saved_mean.data<T>(), saved_invstd.data<T>(), ptr<T>(dx),
                                                  ptr<T>(dgamma), ptr<T>(dbeta));
              else
                cpu::batch_norm_backward_eval<T>(g, x.data<T>(), dnorm.data<T>(), ptr<T>(gamma),
                                                 eval_mean.data<T>(), eval_var.data<T>(), T(eps), ptr<T>(dx),
                                                 ptr<T>(dgamma), ptr<T>(dbeta));
            },
            [&](const cuda::KernelContext& ctx) {
              if (f.on && !fused_kernel)
                cuda::activation_backward(ctx, f.act, y.data<float>(), y.data<float>(), dy.data<float>(),
                                          dnorm.data<float>(), n, float(f.slope));
              if (training)
                cuda::batch_norm_backward_train(ctx, g, x.data<float>(), dnorm.data<float>(), ptr<float>(gamma),
                                                saved_mean.data<float>(), saved_invstd.data<float>(),
                                                ptr<float>(dx), ptr<float>(dgamma), ptr<float>(dbeta),
                                                ptr<float>(y), f.act, fused_kernel, float(f.slope));
              else
                cuda::batch_norm_backward_eval(ctx, g, x.data<float>(), dnorm.data<float>(), ptr<float>(gamma),
                                               eval_mean.data<float>(), eval_var.data<float>(), float(eps),
                                               ptr<float>(dx), ptr<float>(dgamma), ptr<float>(dbeta));
            });
        return std::vector<Tensor>{dx, dgamma, dbeta};
      });
}
}  // namespace

Tensor batch_norm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                    const Tensor& running_var, bool training, double momentum, double eps) {
  return batch_norm("batch_norm2d", x, gamma, beta, running_mean, running_var, training, momentum, eps, {});
}

Tensor batch_norm2d_relu(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                         const Tensor& running_var, bool training, double momentum, double eps,
                         double negative_slope) {
  CUDAGAN_CHECK(negative_slope >= 0, "batch_norm2d_relu: negative_slope must be >= 0, got ", negative_slope,
                "; use batch_norm2d then leaky_relu");
  const Fusion f{true, negative_slope > 0 ? Activation::leaky_relu : Activation::relu, negative_slope};
  return batch_norm("batch_norm2d_relu", x, gamma, beta, running_mean, running_var, training, momentum, eps, f);
}

}  // namespace cudagan
