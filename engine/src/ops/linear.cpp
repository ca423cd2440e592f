// linear: y = x w^T + b, one GEMM each way (kernels/gemm.h), the bias through ops/bias.cpp.
#include "core/backend.h"
#include "cudagan/core/autograd.h"
#include "cudagan/ops/ops.h"
#include "gemm.h"

namespace cudagan {

namespace {
// Row-major C[m, n] = op(A) op(B) on the tensors' device.
void matmul(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const Tensor& a, const Tensor& b, const Tensor& c) {
  const int64_t lda = ta ? m : k, ldb = tb ? k : n;
  on_device(
      c,
      [&](auto z) {
        using T = decltype(z);
        cpu::gemm<T>(ta, tb, m, n, k, T(1), a.data<T>(), lda, b.data<T>(), ldb, T(0), c.data<T>(), n);
      },
      [&](const cuda::KernelContext& ctx) {
        cuda::gemm(ctx, ta, tb, m, n, k, 1.0f, a.data<float>(), lda, b.data<float>(), ldb, 0.0f, c.data<float>(),
                   n);
      });
}
}  // namespace

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_defined("linear", x, "input");
  check_defined("linear", weight, "weight");
  check_rank("linear", x, 2, "input");
  check_rank("linear", weight, 2, "weight");
  check_compatible("linear", x, weight);
  const int64_t batch = x.size(0), in = x.size(1), out_features = weight.size(0);
  CUDAGAN_CHECK(batch > 0, "linear: the input ", shape_str(x.shape()), " has no rows; give at least one sample");
  CUDAGAN_CHECK(weight.size(1) == in, "linear: weight ", shape_str(weight.shape()), " expects ", weight.size(1),
                " input features, the input ", shape_str(x.shape()), " has ", in);
  if (bias.defined()) {
    check_compatible("linear", x, bias);
    CUDAGAN_CHECK(bias.shape() == Shape{out_features}, "linear: bias must have shape [", out_features, "], got ",
                  shape_str(bias.shape()));
  }
  Tensor y = Tensor::empty({batch, out_features}, x.dtype(), x.device());
  matmul(false, true, batch, out_features, in, x, weight, y);  // y = x w^T
  if (bias.defined()) add_channel_bias(bias, y);
  return record(y, "linear", {x, weight, bias},
                [x = x.detach(), w = weight.detach(), need_x = x.requires_grad(), need_w = weight.requires_grad(),
                 need_b = bias.defined() && bias.requires_grad()](const Tensor& dy) {
                  Tensor dx, dw, db;
                  const int64_t batch = x.size(0), in = x.size(1), out_features = w.size(0);
                  if (need_x) {  // dx = dy w
                    dx = Tensor::empty(x.shape(), x.dtype(), x.device());
                    matmul(false, false, batch, in, out_features, dy, w, dx);
                  }
                  if (need_w) {  // dw = dy^T x
                    dw = Tensor::empty(w.shape(), w.dtype(), w.device());
                    matmul(true, false, out_features, in, batch, dy, x, dw);
                  }
                  if (need_b) db = bias_gradient(dy);
                  return std::vector<Tensor>{dx, dw, db};
                });
}

}  // namespace cudagan
