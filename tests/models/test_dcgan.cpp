// The DCGAN models: shapes for every supported size, PyTorch's naming, the paper's initialisation,
// and the training step (finite, learning, bit-identical from a seed).
#include <catch2/catch.hpp>

#include <cmath>

#include "cudagan/cudagan.h"
#include "cudagan/dcgan.h"

using namespace cudagan;
using Catch::Matchers::Contains;

namespace {
dcgan::Architecture tiny(int size, int channels) {
  dcgan::Architecture a;
  a.image_size = size;
  a.channels = channels;
  a.nz = 8;
  a.ngf = 4;
  a.ndf = 4;
  return a;
}
}  // namespace

TEST_CASE("dcgan: generator and discriminator shapes for every image size", "[dcgan]") {
  for (int size : {16, 32, 64, 128, 256}) {
    CAPTURE(size);
    Rng rng(1);
    const dcgan::Architecture a = tiny(size, size == 32 ? 1 : 3);
    dcgan::Generator g(a, rng);
    dcgan::Discriminator d(a, rng);
    NoGradGuard no_grad;
    const Tensor images = g(dcgan::sample_noise(2, a.nz, rng, Device::cpu()));
    CHECK(images.shape() == Shape{2, a.channels, size, size});
    for (double v : images.to_vector()) REQUIRE(std::abs(v) <= 1.0);  // tanh
    CHECK(d(images).shape() == Shape{2});
    CHECK(dcgan::upsampling_layers(size) == int(std::log2(size)) - 2);
  }
}

TEST_CASE("dcgan: architecture as the reference, named as PyTorch names it", "[dcgan]") {
  Rng rng(1);
  dcgan::Architecture a;  // the reference's defaults: 64x64, nz 100, ngf = ndf = 64
  dcgan::Generator g(a, rng);
  dcgan::Discriminator d(a, rng);
  // pytorch/examples/dcgan: netG 3,576,704 parameters, netD 2,765,568.
  CHECK(g.parameter_count() == 3576704);
  CHECK(d.parameter_count() == 2765568);
  const auto gp = g.named_parameters();
  CHECK(gp.front().first == "main.0.weight");
  CHECK(gp.front().second.shape() == Shape{100, 512, 4, 4});
  CHECK(gp.back().first == "main.12.weight");
  CHECK(gp.back().second.shape() == Shape{64, 3, 4, 4});
  const auto db = d.named_buffers();
  CHECK(db.front().first == "main.3.running_mean");
  CHECK(d.named_parameters().back().second.shape() == Shape{1, 512, 4, 4});
}

TEST_CASE("dcgan: initialisation N(0, 0.02) for convolutions, N(1, 0.02) for batchnorm gamma", "[dcgan]") {
  Rng rng(3);
  dcgan::Architecture a;
  a.ngf = 32;
  dcgan::Generator g(a, rng);
  dcgan::init_weights(g, rng);
  for (auto& [name, p] : g.named_parameters()) {
    CAPTURE(name);
    const std::vector<double> v = p.to_vector();
    double mean = 0, sq = 0;
    for (double x : v) mean += x;
    mean /= double(v.size());
    for (double x : v) sq += (x - mean) * (x - mean);
    const double sd = std::sqrt(sq / double(v.size()));
    if (p.dim() == 4) {
      CHECK(std::abs(mean) < 0.002);
      CHECK(std::abs(sd - 0.02) < 0.002);
    } else if (name.find(".weight") != std::string::npos) {
      CHECK(std::abs(mean - 1.0) < 0.01);
      CHECK(sd > 0.01);
      CHECK(sd < 0.03);
    } else {
      CHECK(mean == 0.0);
      CHECK(sd == 0.0);
    }
  }
  Rng again(3);
  dcgan::Generator g2(a, again);
  dcgan::init_weights(g2, again);
  CHECK(g2.parameters()[0].to_vector() == g.parameters()[0].to_vector());
}

TEST_CASE("dcgan: unsupported architectures are one-line errors", "[dcgan][errors]") {
  Rng rng(1);
  REQUIRE_THROWS_WITH(dcgan::Generator(tiny(48, 3), rng), Contains("power of two from 16 to 256"));
  REQUIRE_THROWS_WITH(dcgan::Generator(tiny(512, 3), rng), Contains("power of two"));
  REQUIRE_THROWS_WITH(dcgan::Discriminator(tiny(32, 2), rng), Contains("channels"));
  dcgan::Discriminator d(tiny(32, 1), rng);
  REQUIRE_THROWS_WITH(d(Tensor::zeros({2, 3, 32, 32})), Contains("[N, 1, 32, 32]"));
}

namespace {
std::vector<dcgan::StepStats> run_steps(int steps, uint64_t seed) {
  Rng rng(seed);
  const dcgan::Architecture a = tiny(16, 1);
  dcgan::Generator g(a, rng);
  dcgan::Discriminator d(a, rng);
  dcgan::init_weights(g, rng);
  dcgan::init_weights(d, rng);
  optim::Adam og(g.parameters(), {2e-4, 0.5, 0.999, 1e-8, 0});
  optim::Adam od(d.parameters(), {2e-4, 0.5, 0.999, 1e-8, 0});
  std::vector<dcgan::StepStats> out;
  for (int i = 0; i < steps; ++i) {
    const Tensor real = Tensor::rand({8, 1, 16, 16}, rng, DType::float32, Device::cpu(), -1, 1);
    out.push_back(dcgan::train_step(g, d, og, od, real, rng));
  }
  return out;
}
}  // namespace

TEST_CASE("dcgan: training steps are finite and bit-identical from a seed", "[dcgan][training]") {
  const auto a = run_steps(5, 11), b = run_steps(5, 11), c = run_steps(5, 12);
  for (size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    CHECK(std::isfinite(a[i].loss_d));
    CHECK(std::isfinite(a[i].loss_g));
    CHECK((a[i].d_x > 0 && a[i].d_x < 1));
    CHECK(a[i].loss_d == b[i].loss_d);
    CHECK(a[i].loss_g == b[i].loss_g);
    CHECK(a[i].d_g_z2 == b[i].d_g_z2);
  }
  CHECK(a.back().loss_d != c.back().loss_d);
  // D's update between the two measurements of D(G(z)) changes what it says about the same fakes.
  for (const auto& s : a) CHECK(s.d_g_z1 != s.d_g_z2);
}
