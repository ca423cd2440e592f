// The Frechet distance between two Gaussians, the quantity behind FID (Heusel et al. 2017): feature vectors of
// two image sets (a classifier's penultimate layer) are summarised by their mean and covariance, and
//
//   d^2 = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))
//
// is the squared 2-Wasserstein distance between N(mu_a, S_a) and N(mu_b, S_b). 0 for identical statistics; it
// grows with a shift of the mean (what the classes look like) and with a wrong spread (too little variety, as
// in mode collapse, or too much). Reported as d^2, as FID is.
//
// How: Tr((S_a S_b)^(1/2)) = Tr((A S_b A)^(1/2)) with A = S_a^(1/2), and A S_b A is symmetric positive
// semi-definite, so both square roots come from symmetric eigendecompositions (cyclic Jacobi, in double),
// with eigenvalues that rounding makes slightly negative clamped to 0. That avoids the complex parts and the
// ill-conditioning scipy.linalg.sqrtm meets on the non-symmetric product S_a S_b (pytorch-fid adds eps * I
// when it fails; nothing like that is needed here).
#pragma once

#include <cstdint>
#include <vector>

#include "cudagan/core/tensor.h"

namespace cudagan::metrics {

struct GaussianStats {
  int64_t count = 0;            // feature vectors summarised
  int dim = 0;                  // D
  std::vector<double> mean;     // [D]
  std::vector<double> cov;      // [D, D] row-major, unbiased (divided by count - 1)
};

// The mean and covariance of features [N, D] (any float dtype, any device; N >= 2). Throws cudagan::Error
// for an undefined tensor, a rank other than 2, N < 2 or D < 1.
GaussianStats gaussian_stats(const Tensor& features);

// d^2 between N(a.mean, a.cov) and N(b.mean, b.cov). Throws cudagan::Error for different dims or an empty
// one.
double frechet_distance(const GaussianStats& a, const GaussianStats& b);

// The eigenvalues (ascending) and eigenvectors of a symmetric matrix m [n, n] (row-major; only its symmetric
// part counts): vectors[i * n + k] is component i of the eigenvector of values[k]. Cyclic Jacobi rotations
// until the off-diagonal mass is below 1e-15 of the whole (at most 100 sweeps). Exposed for the tests.
struct SymmetricEigen {
  std::vector<double> values;
  std::vector<double> vectors;
};
SymmetricEigen symmetric_eigen(const std::vector<double>& m, int n);

}  // namespace cudagan::metrics
