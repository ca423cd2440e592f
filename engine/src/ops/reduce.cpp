// Reductions to one element: sum and mean (accumulated in double on both backends, rounded once).
#include "core/backend.h"
#include "cudagan/core/autograd.h"
#include "cudagan/ops/ops.h"
#include "elementwise.h"

namespace cudagan {

Tensor sum(const Tensor& x) {
  check_defined("sum", x, "input");
  Tensor out = Tensor::empty({}, x.dtype(), x.device());
  on_device(
      out,
      [&](auto z) {
        using T = decltype(z);
        cpu::sum<T>(x.data<T>(), x.numel(), out.data<T>());
      },
      [&](const cuda::KernelContext& ctx) { cuda::sum(ctx, x.data<float>(), x.numel(), out.data<float>()); });
  return record(out, "sum", {x}, [shape = x.shape()](const Tensor& g) {
    // d(sum)/dx_i = 1: every element gets the upstream gradient (read back once; sums are not on
    // the training hot path, which uses the fused loss).
    return std::vector<Tensor>{Tensor::full(shape, g.item(), g.dtype(), g.device())};
  });
}

Tensor mean(const Tensor& x) {
  check_defined("mean", x, "input");
  CUDAGAN_CHECK(x.numel() > 0, "mean: empty input");
  return scale(sum(x), 1.0 / double(x.numel()));
}

}  // namespace cudagan
