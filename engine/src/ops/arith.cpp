// Arithmetic, reductions and shape ops: add, mul, scale, sum, mean, reshape, cat, linear.
#include "core/backend.h"
#include "cudagan/core/autograd.h"
#include "cudagan/ops/ops.h"
#include "elementwise.h"
#include "gemm.h"
#if CUDAGAN_HAVE_CUDA
#include "cuda_context.h"
#endif

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
  if (a.device().is_cpu()) {
    dispatch_float(a.dtype(), [&](auto z) {
      using T = decltype(z);
      if (op == Binary::add)
        cpu::add<T>(a.data<T>(), b.data<T>(), out.data<T>(), a.numel());
      else
        cpu::mul<T>(a.data<T>(), b.data<T>(), out.data<T>(), a.numel());
    });
  } else {
#if CUDAGAN_HAVE_CUDA
    const auto& ctx = cuda_context(a.device());
    if (op == Binary::add)
      cuda::add(ctx, a.data<float>(), b.data<float>(), out.data<float>(), a.numel());
    else
      cuda::mul(ctx, a.data<float>(), b.data<float>(), out.data<float>(), a.numel());
#endif
  }
  if (op == Binary::add)
    return record(out, name, {a, b}, [](const Tensor& g) { return std::vector<Tensor>{g, g}; });
  return record(out, name, {a, b}, [a = a.detach(), b = b.detach(), need_a = a.requires_grad(),
                                    need_b = b.requires_grad()](const Tensor& g) {
    return std::vector<Tensor>{need_a ? mul(g, b) : Tensor(), need_b ? mul(g, a) : Tensor()};
  });
}

// A view of rows [start, start + count) of dimension 0, sharing storage; outside autograd.
Tensor batch_slice(const Tensor& t, int64_t start, int64_t count) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = t.impl()->storage;
  impl->dtype = t.dtype();
  impl->shape = t.shape();
  impl->shape[0] = count;
  impl->offset = t.impl()->offset + start * (t.size(0) ? t.numel() / t.size(0) : 0);
  return Tensor(std::move(impl));
}
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary(Binary::add, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(Binary::mul, a, b); }

Tensor scale(const Tensor& x, double alpha) {
  check_defined("scale", x, "input");
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.device().is_cpu()) {
    dispatch_float(x.dtype(), [&](auto z) {
      using T = decltype(z);
      cpu::scale<T>(x.data<T>(), T(alpha), out.data<T>(), x.numel());
    });
  } else {
#if CUDAGAN_HAVE_CUDA
    cuda::scale(cuda_context(x.device()), x.data<float>(), float(alpha), out.data<float>(), x.numel());
#endif
  }
  return record(out, "scale", {x}, [alpha](const Tensor& g) { return std::vector<Tensor>{scale(g, alpha)}; });
}

Tensor sum(const Tensor& x) {
  check_defined("sum", x, "input");
  Tensor out = Tensor::empty({}, x.dtype(), x.device());
  if (x.device().is_cpu()) {
    dispatch_float(x.dtype(), [&](auto z) {
      using T = decltype(z);
      cpu::sum<T>(x.data<T>(), x.numel(), out.data<T>());
    });
  } else {
#if CUDAGAN_HAVE_CUDA
    cuda::sum(cuda_context(x.device()), x.data<float>(), x.numel(), out.data<float>());
#endif
  }
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

Tensor reshape(const Tensor& x, const Shape& shape) {
  check_defined("reshape", x, "input");
  Shape resolved = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < resolved.size(); ++i) {
    if (resolved[i] == -1) {
      CUDAGAN_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(shape));
      infer = int64_t(i);
    } else {
      CUDAGAN_CHECK(resolved[i] >= 0, "reshape: negative dimension in ", shape_str(shape));
      known *= resolved[i];
    }
  }
  if (infer >= 0) {
    CUDAGAN_CHECK(known > 0 && x.numel() % known == 0, "reshape: cannot view ", shape_str(x.shape()), " as ",
                  shape_str(shape));
    resolved[size_t(infer)] = x.numel() / known;
  }
  CUDAGAN_CHECK(shape_numel(resolved) == x.numel(), "reshape: cannot view ", shape_str(x.shape()), " (",
                x.numel(), " elements) as ", shape_str(shape));
  Tensor view = x.detach();
  view.impl()->shape = resolved;
  return record(view, "reshape", {x}, [from = x.shape()](const Tensor& g) {
    return std::vector<Tensor>{reshape(g, from)};
  });
}

Tensor Tensor::reshape(const Shape& shape) const { return cudagan::reshape(*this, shape); }

Tensor cat(const std::vector<Tensor>& tensors) {
  CUDAGAN_CHECK(!tensors.empty(), "cat: no tensors given");
  const Tensor& first = tensors.front();
  check_defined("cat", first, "a tensor");
  CUDAGAN_CHECK(first.dim() >= 1, "cat: tensors need at least one dimension");
  int64_t rows = 0;
  std::vector<int64_t> counts;
  for (const Tensor& t : tensors) {
    check_defined("cat", t, "a tensor");
    check_compatible("cat", first, t);
    Shape a = first.shape(), b = t.shape();
    CUDAGAN_CHECK(a.size() == b.size() && std::equal(a.begin() + 1, a.end(), b.begin() + 1), "cat: shapes ",
                  shape_str(a), " and ", shape_str(b), " differ beyond dimension 0");
    counts.push_back(t.size(0));
    rows += t.size(0);
  }
  Shape shape = first.shape();
  shape[0] = rows;
  Tensor out = Tensor::empty(shape, first.dtype(), first.device());
  int64_t at = 0;
  for (const Tensor& t : tensors) {
    device_copy(batch_slice(out, at, t.size(0)).raw_data(), out.device(), t.raw_data(), t.device(),
                size_t(t.numel()) * dtype_size(t.dtype()));
    at += t.size(0);
  }
  return record(out, "cat", tensors, [counts](const Tensor& g) {
    std::vector<Tensor> grads;
    int64_t start = 0;
    for (int64_t c : counts) {
      grads.push_back(batch_slice(g, start, c));
      start += c;
    }
    return grads;
  });
}

namespace {
// Row-major C[m, n] = op(A) op(B) on the tensors' device.
void matmul(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const Tensor& a, const Tensor& b, const Tensor& c) {
  const int64_t lda = ta ? m : k, ldb = tb ? k : n;
  if (c.device().is_cpu())
    return dispatch_float(c.dtype(), [&](auto z) {
      using T = decltype(z);
      cpu::gemm<T>(ta, tb, m, n, k, T(1), a.data<T>(), lda, b.data<T>(), ldb, T(0), c.data<T>(), n);
    });
#if CUDAGAN_HAVE_CUDA
  cuda::gemm(cuda_context(c.device()), ta, tb, m, n, k, 1.0f, a.data<float>(), lda, b.data<float>(), ldb, 0.0f,
             c.data<float>(), n);
#endif
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
