// DCGAN (Radford, Metz, Chintala 2015, arXiv 1511.06434) as in pytorch/examples/dcgan: the
// generator and discriminator for any power-of-two image size from 16 to 256, their weight
// initialisation, and one training step. Built only from the engine's public API.
//
//   Generator      z [N, nz, 1, 1] -> ConvT(4,1,0)+BN+ReLU -> [ConvT(4,2,1)+BN+ReLU]* -> ConvT(4,2,1)+Tanh
//                  widths ngf*2^(L-1) ... ngf, image [N, C, S, S] in [-1, 1]; L = log2(S) - 2
//   Discriminator  image -> Conv(4,2,1)+LeakyReLU(0.2) -> [Conv(4,2,1)+BN+LeakyReLU(0.2)]* -> Conv(4,1,0)
//                  widths ndf ... ndf*2^(L-1), one logit per image [N]
// No convolution has a bias (batchnorm follows). Parameters are named as PyTorch's `main`
// Sequential names them ("main.0.weight", "main.1.running_mean", ...).
#pragma once

#include <functional>
#include <memory>

#include "cudagan/nn/modules.h"
#include "cudagan/nn/optim.h"
#include "cudagan/core/rng.h"

namespace cudagan::dcgan {

// The hyper-parameters that fix both networks' shapes (checkpoints record them).
struct Architecture {
  int image_size = 64;  // S: a power of two in [16, 256]
  int channels = 3;     // C
  int nz = 100;         // latent size
  int ngf = 64;         // generator width
  int ndf = 64;         // discriminator width
};

// Throws cudagan::Error with a one-line reason when the architecture cannot be built.
void validate(const Architecture& a);
// Stride-2 layers per network: log2(image_size) - 2 (4 for 64x64).
int upsampling_layers(int image_size);

// Both networks are built on the CPU with PyTorch's default initialisation drawn from `rng`; call
// init_weights for the paper's, then Module::to(device). The constructors throw cudagan::Error for
// an architecture validate() rejects; forward() throws for inputs of the wrong shape.
class Generator : public nn::Module {
 public:
  Generator(const Architecture& a, cudagan::Rng& rng);
  Tensor forward(const Tensor& z) override;  // [N, nz] or [N, nz, 1, 1] -> [N, C, S, S] in [-1, 1]
  const Architecture& architecture() const { return arch_; }

 private:
  Architecture arch_;
  std::shared_ptr<nn::Sequential> main_;
};

class Discriminator : public nn::Module {
 public:
  Discriminator(const Architecture& a, cudagan::Rng& rng);
  Tensor forward(const Tensor& images) override;  // [N, C, S, S] -> logits [N]

 private:
  Architecture arch_;
  std::shared_ptr<nn::Sequential> main_;
};

// The paper's initialisation (weights_init in the PyTorch example): every convolution weight
// N(0, 0.02), batchnorm gamma N(1, 0.02) and beta 0. Drawn on the CPU in parameter order, so a
// seed gives the same networks on any device.
void init_weights(nn::Module& net, cudagan::Rng& rng);

// The statistics the reference prints for one step.
struct StepStats {
  double loss_d = 0, loss_g = 0;  // loss_d = BCE(D(x), 1) + BCE(D(G(z)), 0); loss_g = BCE(D(G(z)), 1)
  double d_x = 0;                 // mean sigmoid(D(x))
  double d_g_z1 = 0, d_g_z2 = 0;  // mean sigmoid(D(G(z))) before and after D's update
};

// One DCGAN training step, exactly as the reference: D on a real batch (label 1) and on a fake batch
// (label 0, generator output detached), D's Adam step; then G with the non-saturating loss (label 1
// through D), G's Adam step. `real` [N, C, S, S] in [-1, 1] must be on the networks' device; noise
// is drawn from `rng`. Throws cudagan::Error as the ops do (shapes, devices).
StepStats train_step(Generator& g, Discriminator& d, optim::Adam& opt_g, optim::Adam& opt_d, const Tensor& real,
                     cudagan::Rng& rng);

// Called with a network after its backward pass and before its Adam step (D first, then G), while its
// parameters hold this step's gradients: where data-parallel training will all-reduce them.
using GradientHook = std::function<void(nn::Module& net)>;

// The same step for any pair of networks (what dcgan::Trainer runs): g maps `noise` (the latent batch,
// on real's device, one row per image of `real`) to images shaped like `real`; d maps images to one
// logit per image, [N]. The overload above is this one with sample_noise(N, nz, rng) as the noise.
StepStats train_step(nn::Module& g, nn::Module& d, optim::Adam& opt_g, optim::Adam& opt_d, const Tensor& real,
                     const Tensor& noise, const GradientHook& after_backward = {});

// N latent vectors [N, nz, 1, 1] ~ N(0, 1) on `device`, drawn from `rng` on the CPU.
Tensor sample_noise(int64_t n, int nz, cudagan::Rng& rng, Device device);

}  // namespace cudagan::dcgan
