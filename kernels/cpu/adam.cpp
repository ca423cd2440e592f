// Adam, CPU backend: one fused pass over n parameters (param, grad, m, v: [n]), PyTorch's
// torch.optim.Adam (amsgrad off) for step t >= 1:
//   g = grad + weight_decay p
//   m = beta1 m + (1 - beta1) g;      v = beta2 v + (1 - beta2) g^2
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// The bias corrections are formed in double from the double hyper-parameters: float(0.999) is off by
// 1.3e-8, so 1 - beta2^t formed in float would already be 1.3e-5 off (relative) at t = 1.
#include "adam.h"

#include <cmath>
#include <stdexcept>

#include "cudagan/core/error.h"
#include "cpu/parallel.h"
#include <string>

namespace cudagan::cpu {
namespace {

}  // namespace

template <class T>
void adam_step(const AdamHyper& h, T* param, const T* grad, T* m, T* v, int64_t n) {
  // t = 0 divides by a zero bias correction and would silently turn every parameter into inf or NaN.
  if (h.step < 1)
    throw InvalidArgument("adam_step: step is " + std::to_string(h.step) + "; the first step is 1");
  const double t = double(h.step);
  const T step_size = T(h.lr / (1.0 - std::pow(h.beta1, t)));
  const T sqrt_bc2 = T(std::sqrt(1.0 - std::pow(h.beta2, t)));
  const T beta1 = T(h.beta1), one_minus_beta1 = T(1.0 - h.beta1);
  const T beta2 = T(h.beta2), one_minus_beta2 = T(1.0 - h.beta2);
  const T eps = T(h.eps), weight_decay = T(h.weight_decay);
  // PyTorch's order of operations (single-tensor path): the denominator first, then step * (m / denom).
  // No `simd`: std::sqrt's errno branch keeps GCC and Clang from vectorizing it unless the build says
  // -fno-math-errno (Clang then warns that the forced vectorization failed), and with 4 streams read and
  // 3 written per parameter the loop is bound by memory bandwidth, not by the scalar sqrt.
#pragma omp parallel for schedule(static) if (n >= kParallelMinElems)
  for (int64_t i = 0; i < n; ++i) {
    const T g = grad[i] + weight_decay * param[i];
    const T mi = beta1 * m[i] + one_minus_beta1 * g;
    const T vi = beta2 * v[i] + one_minus_beta2 * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] -= step_size * (mi / (std::sqrt(vi) / sqrt_bc2 + eps));
  }
}

template void adam_step<float>(const AdamHyper&, float*, const float*, float*, float*, int64_t);
template void adam_step<double>(const AdamHyper&, double*, const double*, double*, double*, int64_t);

}  // namespace cudagan::cpu
