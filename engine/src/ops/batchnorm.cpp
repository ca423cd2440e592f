// batch_norm2d over [N, C, H, W] (or [N, C]): the fused kernels of kernels/batchnorm.h.
#include "core/backend.h"
#include "batchnorm.h"
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

void check_channel_vector(const Tensor& x, const Tensor& v, const char* what) {
  if (!v.defined()) return;
  check_compatible("batch_norm2d", x, v);
  CUDAGAN_CHECK(v.shape() == Shape{x.size(1)}, "batch_norm2d: ", what, " must have shape [", x.size(1),
                "] for input ", shape_str(x.shape()), ", got ", shape_str(v.shape()));
}
}  // namespace

Tensor batch_norm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                    const Tensor& running_var, bool training, double momentum, double eps) {
  check_defined("batch_norm2d", x, "input");
  CUDAGAN_CHECK(x.dim() == 4 || x.dim() == 2, "batch_norm2d: input must be [N, C, H, W] or [N, C], got ",
                shape_str(x.shape()));
  CUDAGAN_CHECK(gamma.defined() == beta.defined(), "batch_norm2d: give both gamma and beta, or neither");
  CUDAGAN_CHECK(running_mean.defined() == running_var.defined(),
                "batch_norm2d: give both running_mean and running_var, or neither");
  CUDAGAN_CHECK(training || running_mean.defined(),
                "batch_norm2d: evaluation mode needs running_mean and running_var");
  CUDAGAN_CHECK(x.size(0) > 0 && x.size(1) > 0, "batch_norm2d: the input ", shape_str(x.shape()),
                " is empty; give at least one sample and one channel");
  check_channel_vector(x, gamma, "gamma");
  check_channel_vector(x, beta, "beta");
  check_channel_vector(x, running_mean, "running_mean");
  check_channel_vector(x, running_var, "running_var");
  const BatchNormGeometry g = geometry_of(x);
  CUDAGAN_CHECK(!training || g.count() > 1, "batch_norm2d: training needs more than one value per channel, got ",
                "input ", shape_str(x.shape()), "; use a batch larger than 1 or eval()");

  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor saved_mean, saved_invstd, eval_mean, eval_var;
  if (training) {
    saved_mean = Tensor::empty({g.channels}, x.dtype(), x.device());
    saved_invstd = Tensor::empty({g.channels}, x.dtype(), x.device());
  } else {  // the running statistics may change before backward runs: keep the ones used here
    eval_mean = running_mean.clone();
    eval_var = running_var.clone();
  }

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
      },
      [&](const cuda::KernelContext& ctx) {
        if (training)
          cuda::batch_norm_forward_train(ctx, g, x.data<float>(), ptr<float>(gamma), ptr<float>(beta), float(eps),
                                         float(momentum), y.data<float>(), saved_mean.data<float>(),
                                         saved_invstd.data<float>(), ptr<float>(running_mean),
                                         ptr<float>(running_var));
        else
          cuda::batch_norm_forward_eval(ctx, g, x.data<float>(), ptr<float>(gamma), ptr<float>(beta),
                                        eval_mean.data<float>(), eval_var.data<float>(), float(eps),
                                        y.data<float>());
      });

  const bool need_x = x.requires_grad();
  const bool need_affine = gamma.defined() && (gamma.requires_grad() || beta.requires_grad());
  return record(
      y, "batch_norm2d", {x, gamma, beta},
      [g, training, eps, need_x, need_affine, x = x.detach(), gamma = gamma.defined() ? gamma.detach() : Tensor(),
       saved_mean, saved_invstd, eval_mean, eval_var](const Tensor& dy) {
        Tensor dx, dgamma, dbeta;
        if (need_x) dx = Tensor::empty(x.shape(), x.dtype(), x.device());
        if (need_affine) {
          dgamma = Tensor::empty({g.channels}, x.dtype(), x.device());
          dbeta = Tensor::empty({g.channels}, x.dtype(), x.device());
        }
        on_device(
            x,
            [&](auto z) {
              using T = decltype(z);
              if (training)
                cpu::batch_norm_backward_train<T>(g, x.data<T>(), dy.data<T>(), ptr<T>(gamma), saved_mean.data<T>(),
                                                  saved_invstd.data<T>(), ptr<T>(dx), ptr<T>(dgamma),
                                                  ptr<T>(dbeta));
              else
                cpu::batch_norm_backward_eval<T>(g, x.data<T>(), dy.data<T>(), ptr<T>(gamma), eval_mean.data<T>(),
                                                 eval_var.data<T>(), T(eps), ptr<T>(dx), ptr<T>(dgamma),
                                                 ptr<T>(dbeta));
            },
            [&](const cuda::KernelContext& ctx) {
              if (training)
                cuda::batch_norm_backward_train(ctx, g, x.data<float>(), dy.data<float>(), ptr<float>(gamma),
                                                saved_mean.data<float>(), saved_invstd.data<float>(),
                                                ptr<float>(dx), ptr<float>(dgamma), ptr<float>(dbeta));
              else
                cuda::batch_norm_backward_eval(ctx, g, x.data<float>(), dy.data<float>(), ptr<float>(gamma),
                                               eval_mean.data<float>(), eval_var.data<float>(), float(eps),
                                               ptr<float>(dx), ptr<float>(dgamma), ptr<float>(dbeta));
            });
        return std::vector<Tensor>{dx, dgamma, dbeta};
      });
}

}  // namespace cudagan
