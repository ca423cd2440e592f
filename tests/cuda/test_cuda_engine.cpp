// The engine on a GPU against the engine on the CPU: the same tensors, modules and optimizer,
// the same random inputs, through autograd. Also the device rules: mixing devices is an error
// naming both, memory returns to its baseline after a training step, and TF32 is off by default.
#include <catch2/catch.hpp>

#include <cmath>

#include "cudagan/core/cuda.h"
#include "cudagan/cudagan.h"
#include "cudagan/dcgan.h"
#include "support/compare.h"

using namespace cudagan;
using Catch::Matchers::Contains;

namespace {
const Device kGpu = Device::cuda(0);

// Each tensor's max error against its own max |value| (an absolute floor would exceed the input gradients,
// which are about 5e-6 here). The longest fp32 reduction in this network is batchnorm's over N*H*W = 5*16*16
// = 1280 values (the convolutions' are shorter or equal): worst-case rounding 1280 * 2^-24 = 8e-5 of the
// sum of |terms|, typical sqrt(1280) * 2^-24 = 2e-6. 1e-4 admits the worst case of honest rounding.
constexpr double kChainRel = 1e-4;
}  // namespace

TEST_CASE("cuda engine: tensors move to the GPU and back unchanged", "[cuda]") {
  Rng gen(1);
  const Tensor host = Tensor::randn({3, 5, 7, 11}, gen);  // odd sizes, > 1024 elements
  const Tensor dev = host.to(kGpu);
  CHECK(dev.device() == kGpu);
  CHECK(dev.to(Device::cpu()).to_vector() == host.to_vector());
  CHECK(Tensor::full({2000}, 2.5, DType::float32, kGpu).to_vector() == std::vector<double>(2000, 2.5));
}

TEST_CASE("cuda engine: an op mixing devices names both devices", "[cuda][errors]") {
  const Tensor a = Tensor::ones({4}), b = Tensor::ones({4}, DType::float32, kGpu);
  REQUIRE_THROWS_WITH(add(a, b), Contains("cpu") && Contains("cuda:0"));
  REQUIRE_THROWS_WITH(Tensor::ones({2}, DType::float64, kGpu), Contains("float64"));
}

TEST_CASE("cuda engine: composite network loss and every gradient equal the CPU's", "[cuda]") {
  Rng gen(7);
  nn::Sequential cpu_net;
  cpu_net.emplace<nn::Conv2d>(gen, 3, 8, 4, 2, 1, true);
  cpu_net.emplace<nn::BatchNorm2d>(8);
  cpu_net.emplace<nn::LeakyReLU>(0.2);
  cpu_net.emplace<nn::ConvTranspose2d>(gen, 8, 3, 4, 2, 1, true);
  cpu_net.emplace<nn::Tanh>();
  Rng same(7);
  nn::Sequential gpu_net;
  gpu_net.emplace<nn::Conv2d>(same, 3, 8, 4, 2, 1, true);
  gpu_net.emplace<nn::BatchNorm2d>(8);
  gpu_net.emplace<nn::LeakyReLU>(0.2);
  gpu_net.emplace<nn::ConvTranspose2d>(same, 8, 3, 4, 2, 1, true);
  gpu_net.emplace<nn::Tanh>();
  gpu_net.to(kGpu);

  const Tensor x = Tensor::randn({5, 3, 33, 33}, gen);
  const Tensor t = Tensor::rand({5, 3, 32, 32}, gen);
  Tensor xc = x.clone(), xg = x.to(kGpu);
  xc.requires_grad_(true);
  xg.requires_grad_(true);
  const Tensor loss_c = bce_with_logits(cpu_net(xc), t);
  const Tensor loss_g = bce_with_logits(gpu_net(xg), t.to(kGpu));
  test::require_close(std::vector<double>{loss_g.item()}, std::vector<double>{loss_c.item()}, 0, 1e-5, "loss");
  loss_c.backward();
  loss_g.backward();
  test::require_close_to_scale(xg.grad().to_vector(), xc.grad().to_vector(), kChainRel, "d loss / d x");
  const auto pc = cpu_net.named_parameters(), pg = gpu_net.named_parameters();
  for (size_t i = 0; i < pc.size(); ++i)
    test::require_close_to_scale(pg[i].second.grad().to_vector(), pc[i].second.grad().to_vector(), kChainRel,
                                 "d loss / d " + pc[i].first);
  const auto bc = cpu_net.named_buffers(), bg = gpu_net.named_buffers();
  for (size_t i = 0; i < bc.size(); ++i)
    test::require_close_to_scale(bg[i].second.to_vector(), bc[i].second.to_vector(), kChainRel, bc[i].first);
}

TEST_CASE("cuda engine: an Adam trajectory equals the CPU's", "[cuda][adam]") {
  Rng gen(3);
  const Tensor init = Tensor::randn({3000}, gen), target = Tensor::randn({3000}, gen);
  Tensor pc = init.clone(), pg = init.to(kGpu);
  pc.requires_grad_(true);
  pg.requires_grad_(true);
  const optim::Adam::Options o{0.01, 0.8, 0.95, 1e-6, 0.1};
  optim::Adam ac({pc}, o), ag({pg}, o);
  const Tensor tg = target.to(kGpu);
  for (int step = 0; step < 10; ++step) {
    ac.zero_grad();
    ag.zero_grad();
    sum(mul(add(pc, scale(target, -1)), add(pc, scale(target, -1)))).backward();
    sum(mul(add(pg, scale(tg, -1)), add(pg, scale(tg, -1)))).backward();
    ac.step();
    ag.step();
  }
  test::require_close(pg.to_vector(), pc.to_vector(), 1e-6, 1e-5, "parameters after 10 Adam steps");
}

TEST_CASE("cuda engine: device memory returns to its baseline after a training step", "[cuda][memory]") {
  Rng rng(1);
  dcgan::Architecture a;
  a.image_size = 32;
  a.channels = 1;
  a.ngf = a.ndf = 16;
  dcgan::Generator g(a, rng);
  dcgan::Discriminator d(a, rng);
  g.to(kGpu);
  d.to(kGpu);
  optim::Adam og(g.parameters(), {2e-4, 0.5, 0.999, 1e-8, 0}), od(d.parameters(), {2e-4, 0.5, 0.999, 1e-8, 0});
  const Tensor real = Tensor::rand({16, 1, 32, 32}, rng, DType::float32, kGpu, -1, 1);
  dcgan::train_step(g, d, og, od, real, rng);  // allocates the Adam moments
  og.zero_grad();
  od.zero_grad();
  cuda_synchronize(kGpu);
  const size_t baseline = cuda_memory_stats(kGpu).current_bytes;
  cuda_reset_peak_memory(kGpu);  // else the first step's peak would pass the check below
  REQUIRE(cuda_memory_stats(kGpu).peak_bytes == baseline);
  const auto s = dcgan::train_step(g, d, og, od, real, rng);
  const size_t peak = cuda_memory_stats(kGpu).peak_bytes;
  og.zero_grad();
  od.zero_grad();
  cuda_synchronize(kGpu);
  CHECK(std::isfinite(s.loss_d));
  CHECK(cuda_memory_stats(kGpu).current_bytes == baseline);
  // At the end of G's backward pass the fake batch and the weight gradients of both networks (D's from its own
  // update, kept until the next zero_grad) are held at once; and a step this small needs nowhere near 64 MiB
  // (the workspace arena is part of the baseline).
  size_t weight_bytes = 0;
  for (const Tensor& p : g.parameters()) weight_bytes += size_t(p.numel()) * sizeof(float);
  for (const Tensor& p : d.parameters()) weight_bytes += size_t(p.numel()) * sizeof(float);
  const size_t fake_bytes = size_t(real.numel()) * sizeof(float);
  INFO("peak " << peak << " baseline " << baseline << " weights " << weight_bytes << " fake batch " << fake_bytes);
  CHECK(peak >= baseline + fake_bytes + weight_bytes);
  CHECK(peak < baseline + (size_t(64) << 20));
}

TEST_CASE("cuda engine: TF32 is off by default and, switched on, rounds the GEMM inputs", "[cuda][tf32]") {
  // Every x is 1 + 2^-13, every weight 1: in fp32 each output is 256 + 2^-5 exactly (22 significant bits). TF32
  // keeps 10 mantissa bits, so 1 + 2^-13 becomes 1 and each output 256. The two results tell the modes apart.
  const int64_t rows = 128, in = 256, out = 128;
  const Tensor x = Tensor::full({rows, in}, 1.0 + std::ldexp(1.0, -13), DType::float32, kGpu);
  const Tensor w = Tensor::ones({out, in}, DType::float32, kGpu);
  const double exact = 256.0 + std::ldexp(1.0, -5);
  CHECK_FALSE(cuda_allow_tf32(kGpu));
  CHECK(linear(x, w).to_vector() == std::vector<double>(size_t(rows * out), exact));
  cuda_set_allow_tf32(kGpu, true);
  CHECK(cuda_allow_tf32(kGpu));
  const auto rounded = linear(x, w).to_vector();
  cuda_set_allow_tf32(kGpu, false);
  INFO("with TF32 on, output 0 is " << rounded[0] << " (fp32: " << exact << ", TF32 inputs: 256)");
  CHECK(rounded[0] != exact);  // cuBLAS ran a tensor-op kernel on TF32 inputs
  test::require_close(rounded, std::vector<double>(rounded.size(), 256.0), 0, 1e-3, "TF32 output");
  CHECK(linear(x, w).to_vector()[0] == exact);  // and off again
}

TEST_CASE("cuda engine: Adam rejects a GPU parameter listed twice", "[cuda][adam]") {
  Tensor p = Tensor::ones({1000}, DType::float32, kGpu);
  p.requires_grad_(true);
  REQUIRE_THROWS_WITH(optim::Adam({p, p}), Contains("listed twice"));
}

TEST_CASE("cuda engine: out of memory names the bytes and suggests a smaller batch", "[cuda][memory]") {
  REQUIRE_THROWS_WITH(Tensor::empty({int64_t(1) << 40}, DType::float32, kGpu),
                      Contains("out of memory") && Contains("smaller batch"));
  CHECK(Tensor::ones({10}, DType::float32, kGpu).to_vector() == std::vector<double>(10, 1.0));  // still usable
}
