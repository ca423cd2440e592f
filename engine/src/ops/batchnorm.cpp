// batch_norm2d over [N, C, H, W] (or [N, C]), alone or followed by relu / leaky_relu as one op
// (batch_norm2d_relu): the fused kernels of kernels/batchnorm.h. In training mode the activation runs inside
// the batchnorm kernels, one pass fewer (on a GPU each way, on the CPU forward only, bit for bit what the two
// ops give); otherwise the two kernels run in turn. Either way only the output is kept for backward: relu and
// leaky_relu (slope >= 0) differentiate from the sign of their output as well as from their input.
//
// With a ReplicaSum (synchronised batchnorm, training only) the passes split where the replicas sum their
// per-channel values (kernels/batchnorm.h): channel sums -> sum_ -> statistics -> the evaluation kernel with
// them -> the activation; backward, the activation's gradient -> gradient sums -> sum_ -> dx. The activation
// is then never fused into the batchnorm kernels, on a GPU either: the sum sits in the middle of the pass.
#include <memory>
#include <utility>

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

// The float64 [2C + 1] array the replicas sum (kernels/batchnorm.h). Tensor::empty makes no float64 tensor on
// a GPU, where no op computes in it; this one is only storage for the sums kernels and the ReplicaSum (NCCL
// reduces doubles, and float32 sums of x^2 over a large batch would lose the variance), so it is built here.
Tensor replica_sums_buffer(int channels, Device device) {
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = {2 * int64_t(channels) + 1};
  impl->dtype = DType::float64;
  impl->storage = std::make_shared<Storage>(size_t(shape_numel(impl->shape)) * sizeof(double), device);
  return Tensor(std::move(impl));
}

// The activation after the normalisation, if any.
struct Fusion {
  bool on = false;
  Activation act = Activation::relu;
  double slope = 0;
};

// Synchronised forward: channel sums -> the replicas' total -> the global statistics (saved, and the running
// ones updated) -> y from the evaluation kernel with them -> the activation, if any.
void forward_across(const ReplicaSum& across, const BatchNormGeometry& g, const Tensor& x,
                    const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                    const Tensor& running_var, double momentum, double eps, Fusion f, const Tensor& y,
                    const Tensor& saved_mean, const Tensor& saved_invstd) {
  const int64_t n = x.numel();
  Tensor sums = replica_sums_buffer(g.channels, x.device());
  on_device(
      y,
      [&](auto z) {
        using T = decltype(z);
        cpu::batch_norm_channel_sums<T>(g, x.data<T>(), sums.data<double>());
      },
      [&](const cuda::KernelContext& ctx) {
        cuda::batch_norm_channel_sums(ctx, g, x.data<float>(), sums.data<double>());
      });
  across.sum_(sums);
  const Tensor var = Tensor::empty({g.channels}, x.dtype(), x.device());  // biased: what y is normalised by
  on_device(
      y,
      [&](auto z) {
        using T = decltype(z);
        cpu::batch_norm_stats_from_sums<T>(g.channels, sums.data<double>(), T(eps), T(momentum),
                                           saved_mean.data<T>(), var.data<T>(), saved_invstd.data<T>(),
                                           ptr<T>(running_mean), ptr<T>(running_var));
        cpu::batch_norm_forward_eval<T>(g, x.data<T>(), ptr<T>(gamma), ptr<T>(beta), saved_mean.data<T>(),
                                        var.data<T>(), T(eps), y.data<T>());
        if (f.on) cpu::activation_forward<T>(f.act, y.data<T>(), y.data<T>(), n, T(f.slope));
      },
      [&](const cuda::KernelContext& ctx) {
        cuda::batch_norm_stats_from_sums(
            ctx, g.channels, sums.data<double>(), float(eps), float(momentum), saved_mean.data<float>(),
            var.data<float>(), saved_invstd.data<float>(), ptr<float>(running_mean), ptr<float>(running_var));
        cuda::batch_norm_forward_eval(ctx, g, x.data<float>(), ptr<float>(gamma), ptr<float>(beta),
                                      saved_mean.data<float>(), var.data<float>(), float(eps),
                                      y.data<float>());
        if (f.on) cuda::activation_forward(ctx, f.act, y.data<float>(), y.data<float>(), n, float(f.slope));
      });
}

// Synchronised backward: the activation's gradient (into dnorm), the gradient sums (this replica's dgamma and
// dbeta on the way) -> the replicas' total -> dx. Exactly one sum_, also when dx is not wanted: the other
// replicas make the same call, whatever each of them needs.
void backward_across(const ReplicaSum& across, const BatchNormGeometry& g, const Tensor& x, const Tensor& dy,
                     const Tensor& y, const Tensor& gamma, const Tensor& saved_mean,
                     const Tensor& saved_invstd, Fusion f, const Tensor& dnorm, const Tensor& dx,
                     const Tensor& dgamma, const Tensor& dbeta) {
  const int64_t n = x.numel();
  Tensor sums = replica_sums_buffer(g.channels, x.device());
  on_device(
      x,
      [&](auto z) {
        using T = decltype(z);
        if (f.on)
          cpu::activation_backward<T>(f.act, y.data<T>(), y.data<T>(), dy.data<T>(), dnorm.data<T>(), n,
                                      T(f.slope));
        cpu::batch_norm_backward_sums<T>(g, x.data<T>(), dnorm.data<T>(), saved_mean.data<T>(),
                                         saved_invstd.data<T>(), sums.data<double>(), ptr<T>(dgamma),
                                         ptr<T>(dbeta));
      },
      [&](const cuda::KernelContext& ctx) {
        if (f.on)
          cuda::activation_backward(ctx, f.act, y.data<float>(), y.data<float>(), dy.data<float>(),
                                    dnorm.data<float>(), n, float(f.slope));
        cuda::batch_norm_backward_sums(ctx, g, x.data<float>(), dnorm.data<float>(), saved_mean.data<float>(),
                                       saved_invstd.data<float>(), sums.data<double>(), ptr<float>(dgamma),
                                       ptr<float>(dbeta));
      });
  across.sum_(sums);
  if (!dx.defined()) return;
  on_device(
      x,
      [&](auto z) {
        using T = decltype(z);
        cpu::batch_norm_backward_from_sums<T>(g, x.data<T>(), dnorm.data<T>(), ptr<T>(gamma),
                                              saved_mean.data<T>(), saved_invstd.data<T>(),
                                              sums.data<double>(), dx.data<T>());
      },
      [&](const cuda::KernelContext& ctx) {
        cuda::batch_norm_backward_from_sums(ctx, g, x.data<float>(), dnorm.data<float>(), ptr<float>(gamma),
                                            saved_mean.data<float>(), saved_invstd.data<float>(),
                                            sums.data<double>(), dx.data<float>());
      });
}

Tensor batch_norm(const char* op, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                  const Tensor& running_mean, const Tensor& running_var, bool training, double momentum,
                  double eps, Fusion f, std::shared_ptr<const ReplicaSum> across) {
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
  if (!training) across = nullptr;  // the running statistics are every replica's already
  const bool sync = across != nullptr;
  // Synchronised, the count that matters is the global batch's, and a throw on this replica alone would leave
  // the others waiting in the collective: a slice with one value per channel is allowed there.
  CUDAGAN_CHECK(!training || sync || g.count() > 1, op,
                ": training needs more than one value per channel, got input ", shape_str(x.shape()),
                "; use a batch larger than 1 or eval()");

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

  if (sync) {
    forward_across(*across, g, x, gamma, beta, running_mean, running_var, momentum, eps, f, y, saved_mean,
                   saved_invstd);
  } else {
    on_device(
        y,
        [&](auto z) {
          using T = decltype(z);
          if (training) {
            cpu::batch_norm_forward_train<T>(g, x.data<T>(), ptr<T>(gamma), ptr<T>(beta), T(eps), T(momentum),
                                             y.data<T>(), saved_mean.data<T>(), saved_invstd.data<T>(),
                                             ptr<T>(running_mean), ptr<T>(running_var), f.act, f.on,
                                             T(f.slope));
          } else {
            cpu::batch_norm_forward_eval<T>(g, x.data<T>(), ptr<T>(gamma), ptr<T>(beta), eval_mean.data<T>(),
                                            eval_var.data<T>(), T(eps), y.data<T>());
            if (f.on) cpu::activation_forward<T>(f.act, y.data<T>(), y.data<T>(), n, T(f.slope));
          }
        },
        [&](const cuda::KernelContext& ctx) {
          if (training) {
            cuda::batch_norm_forward_train(
                ctx, g, x.data<float>(), ptr<float>(gamma), ptr<float>(beta), float(eps), float(momentum),
                y.data<float>(), saved_mean.data<float>(), saved_invstd.data<float>(),
                ptr<float>(running_mean), ptr<float>(running_var), f.act, f.on, float(f.slope));
          } else {
            cuda::batch_norm_forward_eval(ctx, g, x.data<float>(), ptr<float>(gamma), ptr<float>(beta),
                                          eval_mean.data<float>(), eval_var.data<float>(), float(eps),
                                          y.data<float>());
            if (f.on)
              cuda::activation_forward(ctx, f.act, y.data<float>(), y.data<float>(), n, float(f.slope));
          }
        });
  }

  const bool need_x = x.requires_grad();
  const bool need_affine = gamma.defined() && (gamma.requires_grad() || beta.requires_grad());
  return record(
      y, op, {x, gamma, beta},
      [g, training, eps, f, n, need_x, need_affine, across, x = x.detach(),
       gamma = gamma.defined() ? gamma.detach() : Tensor(), saved_mean, saved_invstd, eval_mean, eval_var,
       y = f.on ? y.detach() : Tensor()](const Tensor& dy) {
        Tensor dx, dgamma, dbeta;
        if (need_x) dx = Tensor::empty(x.shape(), x.dtype(), x.device());
        if (need_affine) {
          dgamma = Tensor::empty({g.channels}, x.dtype(), x.device());
          dbeta = Tensor::empty({g.channels}, x.dtype(), x.device());
        }
        // Without a fused kernel: the activation's gradient first (from y, whose sign is the input's), then
        // batchnorm's from it.
        Tensor dnorm = dy;
        const bool sync = across != nullptr;
        const bool fused_kernel = f.on && training && !sync && x.device().is_cuda();
        if (f.on && !fused_kernel) dnorm = Tensor::empty(dy.shape(), dy.dtype(), dy.device());
        if (sync) {
          backward_across(*across, g, x, dy, y, gamma, saved_mean, saved_invstd, f, dnorm, dx, dgamma, dbeta);
          return std::vector<Tensor>{dx, dgamma, dbeta};
        }
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
                    const Tensor& running_var, bool training, double momentum, double eps,
                    std::shared_ptr<const ReplicaSum> across) {
  return batch_norm("batch_norm2d", x, gamma, beta, running_mean, running_var, training, momentum, eps, {},
                    std::move(across));
}

Tensor batch_norm2d_relu(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                         const Tensor& running_var, bool training, double momentum, double eps,
                         double negative_slope, std::shared_ptr<const ReplicaSum> across) {
  CUDAGAN_CHECK(negative_slope >= 0, "batch_norm2d_relu: negative_slope must be >= 0, got ", negative_slope,
                "; use batch_norm2d then leaky_relu");
  const Fusion f{true, negative_slope > 0 ? Activation::leaky_relu : Activation::relu, negative_slope};
  return batch_norm("batch_norm2d_relu", x, gamma, beta, running_mean, running_var, training, momentum, eps,
                    f, std::move(across));
}

}  // namespace cudagan
