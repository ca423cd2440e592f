// Differentiable tensor operations. Every op runs on the device of its inputs (all inputs must be
// on one device and of one dtype, or it throws naming both), returns a new tensor, and records
// itself for autograd when an input requires a gradient. Every op throws cudagan::Error, with a
// message naming the op and the shapes, for an undefined input or shapes it cannot take (below).
// There is no broadcasting.
#pragma once

#include <memory>
#include <vector>

#include "cudagan/core/tensor.h"

namespace cudagan {

// x [N, C, H, W], weight [K, C, KH, KW], bias [K] or undefined -> [N, K, OH, OW],
// OH = (H + 2 padding - KH) / stride + 1. Throws when the channels differ, stride < 1, padding < 0,
// or the kernel does not fit the padded input.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, int stride = 1, int padding = 0);
// x [N, C, H, W], weight [C, K, KH, KW] (PyTorch's layout), bias [K] or undefined
// -> [N, K, (H - 1) stride - 2 padding + KH, ...]: the gradient of conv2d with respect to its
// input. Throws when the channels differ, stride < 1, padding < 0, or the output would be empty.
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, int stride = 1,
                        int padding = 0);

// Sums small tensors element-wise across the replicas of a data-parallel run, in place: the hook of
// synchronised batchnorm. cudagan::dist implements it over MPI (CPU tensors) and NCCL (CUDA tensors).
class ReplicaSum {
 public:
  virtual ~ReplicaSum() = default;
  // Every replica calls this with a tensor of the same shape (float64, contiguous, on the op's device),
  // in the same order; on return each holds the element-wise sum over all replicas.
  // On a GPU the tensor is float64 storage that Tensor::empty would not make (no GPU op computes in
  // float64): reach it through data<double>() / raw_data() (a device pointer, its values ready in the
  // order of the device's engine stream), or to_vector() and copy_() from a CPU float64 tensor.
  virtual void sum_(Tensor& t) const = 0;
};

// x [N, C, H, W] (or [N, C]); gamma/beta [C] or undefined (no affine); running_mean/var [C] buffers.
// training: normalizes with the batch statistics (biased variance) and, when running buffers are
// given, updates them in place with `momentum` (unbiased variance); otherwise uses the running ones.
// Output: x's shape. Throws for another rank, vectors not of shape [C], gamma without beta (or the
// reverse), eval mode without running statistics, or training with one value per channel (unless
// synchronised, below).
//
// `across` (training only; eval mode ignores it) makes it synchronised batchnorm: the statistics are
// those of the global batch, the concatenation of every replica's x. The forward pass calls
// across->sum_ once (on [sum x | sum x^2 | count] per channel), the backward pass once (on the two
// gradient sums), also when x needs no gradient: every replica must run the same ops in the same order,
// or the collective behind sum_ waits forever. The running statistics and dx are the global batch's;
// gamma's and beta's gradients are this replica's share, whose sum over the replicas (what averaging the
// gradients of a data-parallel run scales) is the global batch's. A replica's slice may then hold a single
// value per channel: the count that matters is the global one, and a throw on one replica alone would
// leave the others waiting (with one value per channel in all, the variance is 0 and y = beta). Without
// `across`, the local batch's statistics, as before.
Tensor batch_norm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                    const Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5,
                    std::shared_ptr<const ReplicaSum> across = nullptr);
// batch_norm2d followed by relu (negative_slope 0) or leaky_relu(negative_slope), as one op: on a GPU in
// training mode one fused pass each way; elsewhere the two kernels in turn, bit for bit the two ops' result
// on the CPU (a fused GPU pass rounds like the separate ones to fp32 accuracy). It keeps only its output for
// the backward pass, not the normalised values. nn::Sequential uses it for a BatchNorm2d followed by a ReLU
// or LeakyReLU. Throws as batch_norm2d does, and for negative_slope < 0. With `across` (as batch_norm2d's)
// the activation runs as its own kernel after the synchronised normalisation, on a GPU too.
Tensor batch_norm2d_relu(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                         const Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5,
                         double negative_slope = 0.0, std::shared_ptr<const ReplicaSum> across = nullptr);

// Element-wise, any shape, same shape out.
Tensor relu(const Tensor& x);                             // max(x, 0)
Tensor leaky_relu(const Tensor& x, double slope = 0.01);  // x > 0 ? x : slope * x
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);  // 1 / (1 + exp(-x))

// Mean binary cross-entropy of sigmoid(logits) against targets in [0, 1] (same shape); one
// element (shape []); stable for any logit. Targets get no gradient: throws when they require one
// (pass targets.detach()), and for different shapes or empty inputs.
Tensor bce_with_logits(const Tensor& logits, const Tensor& targets);

// Mean softmax cross-entropy of logits [N, K] against targets [N, K], each row the class probabilities
// (one-hot rows for hard labels; rows need not sum to 1): (1/N) sum_n sum_k -t[n,k] log softmax(z[n,:])[k],
// one element (shape []); stable for any logit. Targets get no gradient: throws when they require one (pass
// targets.detach()), for other ranks, different shapes or empty inputs.
Tensor cross_entropy_with_logits(const Tensor& logits, const Tensor& targets);

// x [N, in], weight [out, in], bias [out] or undefined -> [N, out] = x weight^T + bias. Throws for
// other ranks or mismatched sizes.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});

Tensor add(const Tensor& a, const Tensor& b);  // a + b, element-wise; throws unless same shape
Tensor mul(const Tensor& a, const Tensor& b);  // a * b, element-wise; throws unless same shape
Tensor scale(const Tensor& x, double alpha);   // alpha * x
Tensor sum(const Tensor& x);                   // all elements -> one element (shape [])
Tensor mean(const Tensor& x);                  // sum / numel, shape []; throws on an empty tensor
// Tensor::reshape: a view with the same element count, one dimension may be -1.
Tensor reshape(const Tensor& x, const Shape& shape);
// Concatenation along dimension 0 (the batch), into new storage; all other dimensions must agree.
// Throws for an empty list or tensors of rank 0.
Tensor cat(const std::vector<Tensor>& tensors);

// Shorthands: a + b, a * b (element-wise) and alpha * x.
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator*(double alpha, const Tensor& x) { return scale(x, alpha); }

}  // namespace cudagan
