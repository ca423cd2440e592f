// Gradient check in float64: autograd's gradients against central finite differences.
//
// For a function f of tensors, the scalar L = sum(f(inputs) * r) with a fixed random r reaches
// every output element with a different weight, so one backward pass checks the whole Jacobian
// product. Each element of each input that requires a gradient is then perturbed by +-eps and
// dL/dx estimated as (L(x + eps) - L(x - eps)) / (2 eps).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "cudagan/cudagan.h"
#include "support/compare.h"

namespace cudagan::test {

struct GradcheckTolerance {
  double eps = 1e-6, atol = 1e-5, rtol = 1e-3;
};

using TensorFunction = std::function<Tensor(const std::vector<Tensor>&)>;

// A float64 CPU tensor of uniform values in [lo, hi) that requires a gradient.
inline Tensor grad_input(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  Tensor t = Tensor::from_vector(random_vector<double>(shape_numel(shape), seed, lo, hi), shape);
  t.requires_grad_(true);
  return t;
}

inline void gradcheck(const TensorFunction& f, const std::vector<Tensor>& inputs, const std::string& what,
                      GradcheckTolerance tol = {}) {
  for (const Tensor& t : inputs)
    REQUIRE((t.dtype() == DType::float64 && t.device().is_cpu()));

  Tensor out = f(inputs);
  const Tensor weights = Tensor::from_vector(random_vector<double>(out.numel(), 12345, -1.0, 1.0), out.shape());
  auto weighted = [&](const Tensor& o) {
    const std::vector<double> v = o.to_vector(), w = weights.to_vector();
    double s = 0;
    for (size_t i = 0; i < v.size(); ++i) s += v[i] * w[i];
    return s;
  };
  for (const Tensor& t : inputs) {
    Tensor copy = t;
    copy.zero_grad();
  }
  sum(mul(out, weights)).backward();

  NoGradGuard no_grad;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.requires_grad()) continue;
    REQUIRE(x.grad().defined());
    const std::vector<double> analytic = x.grad().to_vector();
    std::vector<double> numeric(analytic.size());
    double* p = x.data<double>();
    for (size_t i = 0; i < numeric.size(); ++i) {
      const double saved = p[i];
      p[i] = saved + tol.eps;
      const double up = weighted(f(inputs));
      p[i] = saved - tol.eps;
      const double down = weighted(f(inputs));
      p[i] = saved;
      numeric[i] = (up - down) / (2 * tol.eps);
    }
    require_close(analytic, numeric, tol.atol, tol.rtol, what + ": d/d(input " + std::to_string(k) + ")");
  }
}

}  // namespace cudagan::test
