// Adam, reference (the oracle the tests compare against): param, grad, m, v: [n]. The update of
// kernels/adam.h (PyTorch's torch.optim.Adam, amsgrad off) for step t >= 1, one element at a time,
// computed in double whatever T is and rounded to T when stored. Independent of kernels/cpu.
//   g = grad + weight_decay p
//   m = beta1 m + (1 - beta1) g;      v = beta2 v + (1 - beta2) g^2
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
#pragma once

#include <cmath>
#include <cstdint>

#include "../adam.h"

namespace cudagan::reference {

template <class T>
void adam_step(const AdamHyper& h, T* param, const T* grad, T* m, T* v, int64_t n) {
  const double t = double(h.step);
  const double bias_correction1 = 1.0 - std::pow(h.beta1, t);
  const double bias_correction2 = 1.0 - std::pow(h.beta2, t);
  for (int64_t i = 0; i < n; ++i) {
    const double p = double(param[i]);
    const double g = double(grad[i]) + h.weight_decay * p;
    const double m_new = h.beta1 * double(m[i]) + (1.0 - h.beta1) * g;
    const double v_new = h.beta2 * double(v[i]) + (1.0 - h.beta2) * g * g;
    const double denom = std::sqrt(v_new) / std::sqrt(bias_correction2) + h.eps;
    m[i] = T(m_new);
    v[i] = T(v_new);
    param[i] = T(p - h.lr / bias_correction1 * m_new / denom);
  }
}

}  // namespace cudagan::reference
