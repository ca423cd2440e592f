// Whole DCGAN training steps on the GPU against the same steps on the CPU: the same seed gives the same
// weights, noise and real batch on both; after each of 3 steps the losses, D(x), D(G(z)), every parameter's
// gradient and every parameter must agree.
//
// Tolerance, derived from fp32 accumulation: the longest reduction of a step is the weight gradient of D's
// first convolution, a sum over N * (S/2)^2 products (16 * 32 * 32 = 16384 at DCGAN-64, batch 16). Summed in
// any order in fp32 its error is bounded by L * 2^-24 of the sum of |terms| (about 1e-3 at L = 16384), while
// the typical error is sqrt(L) * 2^-24 (1e-5). So each tensor is compared as max |gpu - cpu| against
// L * 2^-24 * max |cpu|: the worst case of honest rounding, and 100x the typical one. A kernel that drops a
// term, mis-indexes a channel or scales a gradient is off by far more. Parameters are compared the same way
// (after at most 3 Adam steps of lr 2e-4 they are the initial weights plus updates that follow the
// gradients); Adam, being scale-invariant per element, cannot hide a wrong gradient since the gradients are
// compared themselves.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "cudagan/core/cuda.h"
#include "cudagan/cudagan.h"
#include "cudagan/dcgan.h"
#include "support/compare.h"

using namespace cudagan;

namespace {

const Device kGpu = Device::cuda(0);

struct Side {
  Side(const dcgan::Architecture& a, uint64_t seed, Device device)
      : rng(seed), g(a, rng), d(a, rng), opt_g(g.parameters(), kOptions), opt_d(d.parameters(), kOptions) {
    g.to(device);
    d.to(device);
  }
  static constexpr optim::Adam::Options kOptions{2e-4, 0.5, 0.999, 1e-8, 0};
  Rng rng;
  dcgan::Generator g;
  dcgan::Discriminator d;
  optim::Adam opt_g, opt_d;
};

void compare_modules(nn::Module& gpu, nn::Module& cpu, double rel, const std::string& what) {
  const auto pg = gpu.named_parameters(), pc = cpu.named_parameters();
  REQUIRE(pg.size() == pc.size());
  for (size_t i = 0; i < pc.size(); ++i) {
    REQUIRE(pg[i].first == pc[i].first);
    test::require_close_to_scale(pg[i].second.grad().to_vector(), pc[i].second.grad().to_vector(), rel,
                                 what + " grad " + pc[i].first);
    test::require_close_to_scale(pg[i].second.to_vector(), pc[i].second.to_vector(), rel,
                                 what + " " + pc[i].first);
  }
  const auto bg = gpu.named_buffers(), bc = cpu.named_buffers();
  for (size_t i = 0; i < bc.size(); ++i)
    test::require_close_to_scale(bg[i].second.to_vector(), bc[i].second.to_vector(), rel,
                                 what + " " + bc[i].first);
}

void compare_steps(const dcgan::Architecture& a, int batch, const std::string& name) {
  Side cpu(a, 42, Device::cpu()), gpu(a, 42, kGpu);
  Rng data_rng(7);
  const int64_t longest = int64_t(batch) * (a.image_size / 2) * (a.image_size / 2);
  const double rel = double(longest) * std::ldexp(1.0, -24);
  for (int step = 1; step <= 3; ++step) {
    const Tensor real = Tensor::rand({batch, a.channels, a.image_size, a.image_size}, data_rng, DType::float32,
                                     Device::cpu(), -1, 1);
    const auto sc = dcgan::train_step(cpu.g, cpu.d, cpu.opt_g, cpu.opt_d, real, cpu.rng);
    const auto sg = dcgan::train_step(gpu.g, gpu.d, gpu.opt_g, gpu.opt_d, real.to(kGpu), gpu.rng);
    const std::string what = name + " step " + std::to_string(step);
    INFO(what << ": cpu loss_d " << sc.loss_d << " loss_g " << sc.loss_g << ", gpu " << sg.loss_d << " "
              << sg.loss_g << "; tolerance " << rel << " x scale");
    test::require_close(std::vector<double>{sg.loss_d, sg.loss_g, sg.d_x, sg.d_g_z1, sg.d_g_z2},
                        std::vector<double>{sc.loss_d, sc.loss_g, sc.d_x, sc.d_g_z1, sc.d_g_z2}, 0, rel,
                        what + " losses, D(x), D(G(z))");
    compare_modules(gpu.g, cpu.g, rel, what + " G");
    compare_modules(gpu.d, cpu.d, rel, what + " D");
  }
}

}  // namespace

TEST_CASE("cuda train_step: DCGAN-64 RGB, batch 16, 3 steps equal the CPU's", "[cuda][train_step]") {
  dcgan::Architecture a;  // image 64, 3 channels, nz 100, ngf = ndf = 64
  compare_steps(a, 16, "DCGAN-64");
}

TEST_CASE("cuda train_step: DCGAN-32 gray, batch 16, 3 steps equal the CPU's", "[cuda][train_step]") {
  dcgan::Architecture a;
  a.image_size = 32;
  a.channels = 1;
  compare_steps(a, 16, "DCGAN-32");
}
