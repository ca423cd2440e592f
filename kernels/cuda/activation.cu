// Point-wise activations on the GPU, x, y, dy, dx: [n] contiguous (y may be x, dx may be dy: in place).
//   forward:  y = f(x)
//   backward: dx = dy * f'(...), f' read from x (relu, leaky_relu) or from y (tanh, sigmoid)
// The formulas (kernels/cuda/activation_math.cuh) are those of kernels/cpu/activation.cpp: relu and
// leaky_relu match the CPU bit for bit, tanh and sigmoid to within the device math library's ulps.
// One kernel per activation (a template parameter), grid-stride over n.
#include <stdexcept>

#include "cudagan/core/error.h"
#include <string>

#include "activation.h"
#include "cuda/activation_math.cuh"
#include "cuda/common.cuh"

namespace cudagan::cuda {
namespace {

constexpr int kActivationBlock = 256;

[[noreturn]] void throw_unknown(const char* op, Activation a) {
  throw InvalidArgument(std::string("cuda::") + op + ": unknown Activation value " +
                              std::to_string(int(a)));
}

}  // namespace

template <Activation A>
static __global__ void activation_forward_kernel(const float* x, float* y, int64_t n, float slope) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = activation_value<A>(x[i], slope);
}

// Reads x only for relu / leaky_relu and y only for tanh / sigmoid: the other may be null.
template <Activation A>
static __global__ void activation_backward_kernel(const float* x, const float* y, const float* dy, float* dx,
                                                  int64_t n, float slope) {
  constexpr bool kFromX = A == Activation::relu || A == Activation::leaky_relu;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float xi = kFromX ? x[i] : 0.0f;
    const float yi = kFromX ? 0.0f : y[i];
    dx[i] = activation_grad<A>(xi, yi, dy[i], slope);
  }
}

namespace {

template <Activation A>
void launch_forward(const KernelContext& ctx, const float* x, float* y, int64_t n, float slope) {
  activation_forward_kernel<A>
      <<<grid_blocks(n, kActivationBlock), kActivationBlock, 0, ctx.stream>>>(x, y, n, slope);
  CUDA_CHECK_LAUNCH(ctx, "activation_forward_kernel");
}

template <Activation A>
void launch_backward(const KernelContext& ctx, const float* x, const float* y, const float* dy, float* dx,
                     int64_t n, float slope) {
  activation_backward_kernel<A>
      <<<grid_blocks(n, kActivationBlock), kActivationBlock, 0, ctx.stream>>>(x, y, dy, dx, n, slope);
  CUDA_CHECK_LAUNCH(ctx, "activation_backward_kernel");
}

}  // namespace

void activation_forward(const KernelContext& ctx, Activation a, const float* x, float* y, int64_t n,
                        float slope) {
  if (n <= 0) return;
  switch (a) {
    case Activation::relu:
      return launch_forward<Activation::relu>(ctx, x, y, n, slope);
    case Activation::leaky_relu:
      return launch_forward<Activation::leaky_relu>(ctx, x, y, n, slope);
    case Activation::tanh:
      return launch_forward<Activation::tanh>(ctx, x, y, n, slope);
    case Activation::sigmoid:
      return launch_forward<Activation::sigmoid>(ctx, x, y, n, slope);
  }
  throw_unknown("activation_forward", a);
}

void activation_backward(const KernelContext& ctx, Activation a, const float* x, const float* y,
                         const float* dy, float* dx, int64_t n, float slope) {
  if (n <= 0) return;
  const bool from_x = a == Activation::relu || a == Activation::leaky_relu;
  if ((from_x && x == nullptr) || (!from_x && y == nullptr))
    throw InvalidArgument(std::string("cuda::activation_backward: ") + activation_name(a) + " needs " +
                                (from_x ? "x" : "y") + ", got a null pointer");
  switch (a) {
    case Activation::relu:
      return launch_backward<Activation::relu>(ctx, x, y, dy, dx, n, slope);
    case Activation::leaky_relu:
      return launch_backward<Activation::leaky_relu>(ctx, x, y, dy, dx, n, slope);
    case Activation::tanh:
      return launch_backward<Activation::tanh>(ctx, x, y, dy, dx, n, slope);
    case Activation::sigmoid:
      return launch_backward<Activation::sigmoid>(ctx, x, y, dy, dx, n, slope);
  }
  throw_unknown("activation_backward", a);
}

}  // namespace cudagan::cuda
