// Element-wise arithmetic: add, mul (same shapes, no broadcasting) and scale, through kernels/elementwise.h.
#include "core/backend.h"
#include "cudagan/core/autograd.h"
#include "cudagan/ops/ops.h"
#include "elementwise.h"

namespace cudagan {

namespace {
enum class Binary { add, mul };

Tensor binary(Binary op, const Tensor& a, const Tensor& b) {
  const char* name = op == Binary::add ? "add" : "mul";
  check_defined(name, a, "first operand");
  check_defined(name, b, "second operand");
  check_compatible(name, a, b);
  CUDAGAN_CHECK(a.shape() == b.shape(), name, ": shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()),
                " differ (no broadcasting)");
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  on_device(
      out,
      [&](auto z) {
        using T = decltype(z);
        if (op == Binary::add)
          cpu::add<T>(a.data<T>(), b.data<T>(), out.data<T>(), a.numel());
        else
          cpu::mul<T>(a.data<T>(), b.data<T>(), out.data<T>(), a.numel());
      },
      [&](const cuda::KernelContext& ctx) {
        if (op == Binary::add)
          cuda::add(ctx, a.data<float>(), b.data<float>(), out.data<float>(), a.numel());
        else
          cuda::mul(ctx, a.data<float>(), b.data<float>(), out.data<float>(), a.numel());
      });
  if (op == Binary::add)
    return record(out, name, {a, b}, [](const Tensor& g) { return std::vector<Tensor>{g, g}; });
  return record(out, name, {a, b}, [a = a.detach(), b = b.detach(), need_a = a.requires_grad(),
                                    need_b = b.requires_grad()](const Tensor& g) {
    return std::vector<Tensor>{need_a ? mul(g, b) : Tensor(), need_b ? mul(g, a) : Tensor()};
  });
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary(Binary::add, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(Binary::mul, a, b); }

Tensor scale(const Tensor& x, double alpha) {
  check_defined("scale", x, "input");
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  on_device(
      out,
      [&](auto z) {
        using T = decltype(z);
        cpu::scale<T>(x.data<T>(), T(alpha), out.data<T>(), x.numel());
      },
      [&](const cuda::KernelContext& ctx) {
        cuda::scale(ctx, x.data<float>(), float(alpha), out.data<float>(), x.numel());
      });
  return record(out, "scale", {x}, [alpha](const Tensor& g) { return std::vector<Tensor>{scale(g, alpha)}; });
}

}  // namespace cudagan
