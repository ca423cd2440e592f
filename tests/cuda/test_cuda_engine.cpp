// The engine on a GPU against the engine on the CPU: the same tensors, modules and optimizer,
// the same random inputs, through autograd. Also the device rules: mixing devices is an error
// naming both, memory returns to its baseline after a training step, and TF32 is off by default.
#include <catch2/catch.hpp>

#include <cmath>

#include "cudagan/cuda.h"
#include "cudagan/cudagan.h"
#include "cudagan/dcgan.h"
#include "support/compare.h"

using namespace cudagan;
using Catch::Matchers::Contains;

namespace {
const Device kGpu = Device::cuda(0);

// Relative error 1e-4 over GEMM-based chains of several layers: each fp32 reduction of length
// ~C*K*K contributes ~1e-6; through five layers and batchnorm's division by small variances the
// observed differences stay below 1e-5 relative, we allow 1e-4 (and an absolute floor for values
// that cancel to near zero).
constexpr double kChainRtol = 1e-4, kChainAtol = 1e-5;
}  // namespace

TEST_CASE("cuda engine: tensors move to the GPU and back unchanged", "[cuda]") {
  Generator gen(1);
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
  Generator gen(7);
  nn::Sequential cpu_net;
  cpu_net.emplace<nn::Conv2d>(gen, 3, 8, 4, 2, 1, true);
  cpu_net.emplace<nn::BatchNorm2d>(8);
  cpu_net.emplace<nn::LeakyReLU>(0.2);
  cpu_net.emplace<nn::ConvTranspose2d>(gen, 8, 3, 4, 2, 1, true);
  cpu_net.emplace<nn::Tanh>();
  Generator same(7);
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
  test::require_close(xg.grad().to_vector(), xc.grad().to_vector(), kChainAtol, kChainRtol, "d loss / d x");
  const auto pc = cpu_net.named_parameters(), pg = gpu_net.named_parameters();
  for (size_t i = 0; i < pc.size(); ++i)
    test::require_close(pg[i].second.grad().to_vector(), pc[i].second.grad().to_vector(), kChainAtol, kChainRtol,
                        "d loss / d " + pc[i].first);
  const auto bc = cpu_net.named_buffers(), bg = gpu_net.named_buffers();
  for (size_t i = 0; i < bc.size(); ++i)
    test::require_close(bg[i].second.to_vector(), bc[i].second.to_vector(), 1e-6, 1e-5, bc[i].first);
}

TEST_CASE("cuda engine: an Adam trajectory equals the CPU's", "[cuda][adam]") {
  Generator gen(3);
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
  Generator rng(1);
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
  const auto s = dcgan::train_step(g, d, og, od, real, rng);
  og.zero_grad();
  od.zero_grad();
  cuda_synchronize(kGpu);
  CHECK(std::isfinite(s.loss_d));
  CHECK(cuda_memory_stats(kGpu).current_bytes == baseline);
  CHECK(cuda_memory_stats(kGpu).peak_bytes > baseline);
}

TEST_CASE("cuda engine: TF32 is off by default and can be switched on", "[cuda]") {
  CHECK_FALSE(cuda_allow_tf32(kGpu));
  cuda_set_allow_tf32(kGpu, true);
  CHECK(cuda_allow_tf32(kGpu));
  cuda_set_allow_tf32(kGpu, false);
}

TEST_CASE("cuda engine: out of memory names the bytes and suggests a smaller batch", "[cuda][memory]") {
  REQUIRE_THROWS_WITH(Tensor::empty({int64_t(1) << 40}, DType::float32, kGpu),
                      Contains("out of memory") && Contains("smaller batch"));
  CHECK(Tensor::ones({10}, DType::float32, kGpu).to_vector() == std::vector<double>(10, 1.0));  // still usable
}
