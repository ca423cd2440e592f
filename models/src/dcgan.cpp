#include "cudagan/dcgan.h"

#include "cudagan/core/autograd.h"
#include "cudagan/core/error.h"
#include "cudagan/ops/ops.h"

namespace cudagan::dcgan {

int upsampling_layers(int image_size) {
  int layers = 0;
  for (int s = image_size; s > 4; s /= 2) ++layers;
  return layers;
}

void validate(const Architecture& a) {
  const int s = a.image_size;
  CUDAGAN_CHECK(s >= 16 && s <= 256 && (s & (s - 1)) == 0, "image size ", s,
                " is not supported: use a power of two from 16 to 256 (16, 32, 64, 128, 256)");
  CUDAGAN_CHECK(a.channels == 1 || a.channels == 3, "channels must be 1 (grayscale) or 3 (RGB), got ",
                a.channels);
  CUDAGAN_CHECK(a.nz > 0, "nz (latent size) must be positive, got ", a.nz);
  CUDAGAN_CHECK(a.ngf > 0 && a.ndf > 0, "ngf and ndf (network widths) must be positive, got ", a.ngf, " and ",
                a.ndf);
}

Generator::Generator(const Architecture& a, cudagan::Rng& rng) : arch_(a) {
  validate(a);
  main_ = register_module("main", std::make_shared<nn::Sequential>());
  const int layers = upsampling_layers(a.image_size);
  int width = a.ngf << (layers - 1);
  main_->emplace<nn::ConvTranspose2d>(rng, a.nz, width, 4, 1, 0, false);  // 1x1 -> 4x4
  main_->emplace<nn::BatchNorm2d>(width);
  main_->emplace<nn::ReLU>();
  for (int i = 1; i < layers; ++i, width /= 2) {  // doubles the size, halves the width
    main_->emplace<nn::ConvTranspose2d>(rng, width, width / 2, 4, 2, 1, false);
    main_->emplace<nn::BatchNorm2d>(width / 2);
    main_->emplace<nn::ReLU>();
  }
  main_->emplace<nn::ConvTranspose2d>(rng, width, a.channels, 4, 2, 1, false);
  main_->emplace<nn::Tanh>();
}

Tensor Generator::forward(const Tensor& z) {
  const Tensor z4 = z.dim() == 2 ? reshape(z, {z.size(0), z.size(1), 1, 1}) : z;
  CUDAGAN_CHECK(z4.dim() == 4 && z4.size(1) == arch_.nz && z4.size(2) == 1 && z4.size(3) == 1,
                "generator: latent input must be [N, ", arch_.nz, "] or [N, ", arch_.nz, ", 1, 1], got ",
                shape_str(z.shape()));
  return main_->forward(z4);
}

Discriminator::Discriminator(const Architecture& a, cudagan::Rng& rng) : arch_(a) {
  validate(a);
  main_ = register_module("main", std::make_shared<nn::Sequential>());
  const int layers = upsampling_layers(a.image_size);
  int width = a.ndf;
  main_->emplace<nn::Conv2d>(rng, a.channels, width, 4, 2, 1, false);  // no batchnorm on the input layer
  main_->emplace<nn::LeakyReLU>(0.2);
  for (int i = 1; i < layers; ++i, width *= 2) {  // halves the size, doubles the width
    main_->emplace<nn::Conv2d>(rng, width, width * 2, 4, 2, 1, false);
    main_->emplace<nn::BatchNorm2d>(width * 2);
    main_->emplace<nn::LeakyReLU>(0.2);
  }
  main_->emplace<nn::Conv2d>(rng, width, 1, 4, 1, 0, false);  // 4x4 -> 1x1: the logit
}

Tensor Discriminator::forward(const Tensor& images) {
  CUDAGAN_CHECK(images.dim() == 4 && images.size(1) == arch_.channels && images.size(2) == arch_.image_size &&
                    images.size(3) == arch_.image_size,
                "discriminator: images must be [N, ", arch_.channels, ", ", arch_.image_size, ", ",
                arch_.image_size, "], got ", shape_str(images.shape()));
  return reshape(main_->forward(images), {images.size(0)});
}

void init_weights(nn::Module& net, cudagan::Rng& rng) {
  NoGradGuard no_grad;
  for (auto& [name, p] : net.named_parameters()) {
    Tensor fresh;
    const bool is_bn_gamma = p.dim() == 1 && name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0;
    if (p.dim() == 4)  // convolution weight
      fresh = Tensor::randn(p.shape(), rng, p.dtype(), Device::cpu(), 0.0, 0.02);
    else if (is_bn_gamma)
      fresh = Tensor::randn(p.shape(), rng, p.dtype(), Device::cpu(), 1.0, 0.02);
    else  // batchnorm beta (and any bias)
      fresh = Tensor::zeros(p.shape(), p.dtype());
    p.copy_(fresh);
  }
}

Tensor sample_noise(int64_t n, int nz, cudagan::Rng& rng, Device device) {
  return Tensor::randn({n, nz, 1, 1}, rng, DType::float32, device);
}

namespace {
double mean_probability(const Tensor& logits) {
  NoGradGuard no_grad;
  return mean(sigmoid(logits)).item();
}
}  // namespace

StepStats train_step(Generator& g, Discriminator& d, optim::Adam& opt_g, optim::Adam& opt_d, const Tensor& real,
                     cudagan::Rng& rng) {
  // The noise is the rng's only use in a step, so drawing it first gives the draws the reference makes.
  return train_step(g, d, opt_g, opt_d, real, sample_noise(real.size(0), g.architecture().nz, rng, real.device()));
}

StepStats train_step(nn::Module& g, nn::Module& d, optim::Adam& opt_g, optim::Adam& opt_d, const Tensor& real,
                     const Tensor& noise, const GradientHook& after_backward) {
  const int64_t n = real.size(0);
  CUDAGAN_CHECK(noise.dim() >= 1 && noise.size(0) == n, "train_step: the noise must hold one latent vector per "
                "image (", n, "), got ", shape_str(noise.shape()));
  const Device device = real.device();
  const Tensor ones = Tensor::ones({n}, DType::float32, device);
  const Tensor zeros = Tensor::zeros({n}, DType::float32, device);
  StepStats s;

  // (1) D: maximise log D(x) + log(1 - D(G(z)))
  opt_d.zero_grad();
  const Tensor out_real = d(real);
  const Tensor loss_real = bce_with_logits(out_real, ones);
  loss_real.backward();
  const Tensor fake = g(noise);
  const Tensor out_fake = d(fake.detach());
  const Tensor loss_fake = bce_with_logits(out_fake, zeros);
  loss_fake.backward();
  if (after_backward) after_backward(d);
  opt_d.step();

  // (2) G: maximise log D(G(z)) (the non-saturating loss). D is frozen: the gradient flows through it to G,
  // but D's weight gradients, which the reference computes and then discards at the next zero_grad, are
  // not computed (the same result; a third of D's backward work saved).
  opt_g.zero_grad();
  Tensor out_g, loss_g;
  {
    const nn::FreezeGuard frozen(d);
    out_g = d(fake);
    loss_g = bce_with_logits(out_g, ones);
    loss_g.backward();
  }
  if (after_backward) after_backward(g);
  opt_g.step();

  s.loss_d = loss_real.item() + loss_fake.item();
  s.loss_g = loss_g.item();
  s.d_x = mean_probability(out_real);
  s.d_g_z1 = mean_probability(out_fake);
  s.d_g_z2 = mean_probability(out_g);
  return s;
}

}  // namespace cudagan::dcgan
