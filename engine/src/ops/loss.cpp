// bce_with_logits: the fused, numerically stable sigmoid + binary cross-entropy (kernels/bce.h);
// cross_entropy_with_logits: the same for softmax over the classes of each row (kernels/cross_entropy.h).
#include "core/backend.h"
#include "bce.h"
#include "cross_entropy.h"
#include "cudagan/core/autograd.h"
#include "cudagan/ops/ops.h"

namespace cudagan {

Tensor bce_with_logits(const Tensor& logits, const Tensor& targets) {
  check_defined("bce_with_logits", logits, "logits");
  check_defined("bce_with_logits", targets, "targets");
  check_compatible("bce_with_logits", logits, targets);
  CUDAGAN_CHECK(logits.shape() == targets.shape(), "bce_with_logits: logits ", shape_str(logits.shape()),
                " and targets ", shape_str(targets.shape()), " differ in shape");
  CUDAGAN_CHECK(logits.numel() > 0, "bce_with_logits: empty input");
  CUDAGAN_CHECK(!(targets.requires_grad() && grad_enabled()),
                "bce_with_logits: targets get no gradient; pass targets.detach()");
  Tensor loss = Tensor::empty({}, logits.dtype(), logits.device());
  const int64_t n = logits.numel();
  on_device(
      loss,
      [&](auto z) {
        using T = decltype(z);
        cpu::bce_with_logits_forward<T>(logits.data<T>(), targets.data<T>(), n, loss.data<T>());
      },
      [&](const cuda::KernelContext& ctx) {
        cuda::bce_with_logits_forward(ctx, logits.data<float>(), targets.data<float>(), n, loss.data<float>());
      });
  return record(loss, "bce_with_logits", {logits},
                [n, logits = logits.detach(), targets = targets.detach()](const Tensor& dloss) {
                  Tensor dlogits = Tensor::empty(logits.shape(), logits.dtype(), logits.device());
                  on_device(
                      dlogits,
                      [&](auto z) {
                        using T = decltype(z);
                        cpu::bce_with_logits_backward<T>(logits.data<T>(), targets.data<T>(), n,
                                                         *dloss.data<T>(), dlogits.data<T>());
                      },
                      [&](const cuda::KernelContext& ctx) {
                        // The upstream gradient stays on the device: no host synchronisation.
                        cuda::bce_with_logits_backward(ctx, logits.data<float>(), targets.data<float>(), n,
                                                       dloss.data<float>(), dlogits.data<float>());
                      });
                  return std::vector<Tensor>{dlogits};
                });
}

Tensor cross_entropy_with_logits(const Tensor& logits, const Tensor& targets) {
  check_defined("cross_entropy_with_logits", logits, "logits");
  check_defined("cross_entropy_with_logits", targets, "targets");
  check_compatible("cross_entropy_with_logits", logits, targets);
  check_rank("cross_entropy_with_logits", logits, 2, "logits");
  CUDAGAN_CHECK(logits.shape() == targets.shape(), "cross_entropy_with_logits: logits ",
                shape_str(logits.shape()), " and targets ", shape_str(targets.shape()), " differ in shape");
  CUDAGAN_CHECK(logits.numel() > 0, "cross_entropy_with_logits: empty input");
  CUDAGAN_CHECK(!(targets.requires_grad() && grad_enabled()),
                "cross_entropy_with_logits: targets get no gradient; pass targets.detach()");
  Tensor loss = Tensor::empty({}, logits.dtype(), logits.device());
  const int64_t n = logits.size(0), k = logits.size(1);
  on_device(
      loss,
      [&](auto z) {
        using T = decltype(z);
        cpu::cross_entropy_with_logits_forward<T>(logits.data<T>(), targets.data<T>(), n, k, loss.data<T>());
      },
      [&](const cuda::KernelContext& ctx) {
        cuda::cross_entropy_with_logits_forward(ctx, logits.data<float>(), targets.data<float>(), n, k,
                                                loss.data<float>());
      });
  return record(loss, "cross_entropy_with_logits", {logits},
                [n, k, logits = logits.detach(), targets = targets.detach()](const Tensor& dloss) {
                  Tensor dlogits = Tensor::empty(logits.shape(), logits.dtype(), logits.device());
                  on_device(
                      dlogits,
                      [&](auto z) {
                        using T = decltype(z);
                        cpu::cross_entropy_with_logits_backward<T>(logits.data<T>(), targets.data<T>(), n, k,
                                                                   *dloss.data<T>(), dlogits.data<T>());
                      },
                      [&](const cuda::KernelContext& ctx) {
                        // The upstream gradient stays on the device: no host synchronisation.
                        cuda::cross_entropy_with_logits_backward(ctx, logits.data<float>(),
                                                                 targets.data<float>(), n, k,
                                                                 dloss.data<float>(), dlogits.data<float>());
                      });
                  return std::vector<Tensor>{dlogits};
                });
}

}  // namespace cudagan
