// CUDA batch norm (plain and fused with an activation) against the CPU backend on the same random inputs.
// Both backends reduce in double and then round the same per-channel constants to float, and the CUDA
// element-wise expressions mirror the CPU's without FMA contraction, so the results agree to float rounding:
// rtol 1e-5 plus atol 1e-5 (outputs are O(1); the atol covers elements that cancel to near zero, where one
// ulp of a per-channel constant is a large relative error).
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "activation.h"
#include "batchnorm.h"
#include "cuda/check.h"
#include "cuda_context.h"
#include "cuda_test_support.h"
#include "support/compare.h"

using namespace cudagan;
using test::DeviceBuffer;
using test::TestContext;

namespace {

constexpr double kAtol = 1e-5, kRtol = 1e-5;
constexpr float kEps = 1e-5f, kMomentum = 0.1f;

BatchNormGeometry bn_geometry(int batch, int channels, int64_t spatial) {
  BatchNormGeometry g;
  g.batch = batch;
  g.channels = channels;
  g.spatial = spatial;
  return g;
}

// Per-channel counts below, near and well above the 512-thread block; a linear layer (S = 1); many channels.
std::vector<BatchNormGeometry> bn_geometries() {
  return {bn_geometry(1, 1, 1),  bn_geometry(2, 3, 1),    bn_geometry(5, 7, 33),   bn_geometry(3, 3, 1000),
          bn_geometry(64, 4, 1), bn_geometry(2, 130, 17), bn_geometry(16, 8, 256), bn_geometry(3, 2, 4099)};
}

std::string describe(const BatchNormGeometry& g) {
  return "bn N" + std::to_string(g.batch) + " C" + std::to_string(g.channels) + " S" +
         std::to_string(g.spatial);
}

// x with a channel-dependent offset far from 0 (exercises the shifted one-pass variance) plus noise.
std::vector<float> bn_input(const BatchNormGeometry& g, uint64_t seed) {
  auto x = test::random_vector<float>(g.elems(), seed);
  for (int64_t i = 0; i < g.elems(); ++i) {
    const int64_t c = (i / g.spatial) % g.channels;
    x[size_t(i)] = 3.0f + 0.5f * float(c % 5) + 2.0f * x[size_t(i)];
  }
  return x;
}

}  // namespace

TEST_CASE("cuda batch norm training forward and backward match the cpu", "[cuda][batchnorm]") {
  TestContext tc;
  for (const BatchNormGeometry& g : bn_geometries()) {
    for (bool affine : {true, false}) {
      const std::string what = describe(g) + (affine ? " affine" : " no affine");
      const auto x = bn_input(g, 71);
      const auto dy = test::random_vector<float>(g.elems(), 72);
      const auto gamma = test::random_vector<float>(g.channels, 73, 0.5, 1.5);
      const auto beta = test::random_vector<float>(g.channels, 74);
      auto rm = test::random_vector<float>(g.channels, 75),
           rv = test::random_vector<float>(g.channels, 76, 0.5, 2.0);
      const size_t n = size_t(g.elems()), c = size_t(g.channels);

      DeviceBuffer<float> x_d(x), dy_d(dy), gamma_d(gamma), beta_d(beta), rm_d(rm), rv_d(rv), y_d(n),
          mean_d(c), invstd_d(c), dx_d(n), dgamma_d(c), dbeta_d(c);
      y_d.fill_bytes(0xFF);
      dx_d.fill_bytes(0xFF);
      const float* gp = affine ? gamma_d.get() : nullptr;
      const float* bp = affine ? beta_d.get() : nullptr;
      cuda::batch_norm_forward_train(tc.ctx(), g, x_d.get(), gp, bp, kEps, kMomentum, y_d.get(), mean_d.get(),
                                     invstd_d.get(), rm_d.get(), rv_d.get());
      cuda::batch_norm_backward_train(tc.ctx(), g, x_d.get(), dy_d.get(), gp, mean_d.get(), invstd_d.get(),
                                      dx_d.get(), affine ? dgamma_d.get() : nullptr,
                                      affine ? dbeta_d.get() : nullptr);

      std::vector<float> y(n), mean(c), invstd(c), dx(n), dgamma(c), dbeta(c);
      cpu::batch_norm_forward_train<float>(g, x.data(), affine ? gamma.data() : nullptr,
                                           affine ? beta.data() : nullptr, kEps, kMomentum, y.data(),
                                           mean.data(), invstd.data(), rm.data(), rv.data());
      cpu::batch_norm_backward_train<float>(g, x.data(), dy.data(), affine ? gamma.data() : nullptr,
                                            mean.data(), invstd.data(), dx.data(), dgamma.data(),
                                            dbeta.data());
      test::require_close(y_d.download(), y, kAtol, kRtol, what + " y");
      test::require_close(mean_d.download(), mean, kAtol, kRtol, what + " saved mean");
      test::require_close(invstd_d.download(), invstd, kAtol, kRtol, what + " saved invstd");
      test::require_close(rm_d.download(), rm, kAtol, kRtol, what + " running mean");
      test::require_close(rv_d.download(), rv, kAtol, kRtol, what + " running var");
      test::require_close(dx_d.download(), dx, kAtol, kRtol, what + " dx");
      if (affine) {
        // Sums over the channel's N*S values: compared relative to their size (atol grows like sqrt(n)
        // terms).
        const double sum_atol = kAtol * std::sqrt(double(g.count()));
        test::require_close(dgamma_d.download(), dgamma, sum_atol, kRtol, what + " dgamma");
        test::require_close(dbeta_d.download(), dbeta, sum_atol, kRtol, what + " dbeta");
      }
    }
  }
}

TEST_CASE("cuda batch norm fused with an activation matches cpu batch norm then cpu activation",
          "[cuda][batchnorm][activation]") {
  TestContext tc;
  const float slope = 0.2f;
  for (Activation act : {Activation::leaky_relu, Activation::relu, Activation::tanh, Activation::sigmoid}) {
    for (const BatchNormGeometry& g :
         {bn_geometry(5, 7, 33), bn_geometry(3, 3, 1000), bn_geometry(64, 4, 1)}) {
      const std::string what = describe(g) + " + " + activation_name(act);
      const auto x = bn_input(g, 81);
      const auto dy = test::random_vector<float>(g.elems(), 82);
      const auto gamma = test::random_vector<float>(g.channels, 83, 0.5, 1.5);
      const auto beta = test::random_vector<float>(g.channels, 84);
      auto rm = std::vector<float>(size_t(g.channels), 0.0f),
           rv = std::vector<float>(size_t(g.channels), 1.0f);
      const size_t n = size_t(g.elems()), c = size_t(g.channels);

      // CPU: batch norm, then the activation; backward through the activation, then the batch norm.
      std::vector<float> z(n), y(n), mean(c), invstd(c), dz(n), dx(n), dgamma(c), dbeta(c);
      cpu::batch_norm_forward_train<float>(g, x.data(), gamma.data(), beta.data(), kEps, kMomentum, z.data(),
                                           mean.data(), invstd.data(), rm.data(), rv.data());
      cpu::activation_forward<float>(act, z.data(), y.data(), int64_t(n), slope);
      cpu::activation_backward<float>(act, z.data(), y.data(), dy.data(), dz.data(), int64_t(n), slope);
      cpu::batch_norm_backward_train<float>(g, x.data(), dz.data(), gamma.data(), mean.data(), invstd.data(),
                                            dx.data(), dgamma.data(), dbeta.data());

      DeviceBuffer<float> x_d(x), dy_d(dy), gamma_d(gamma), beta_d(beta), rm_d(c), rv_d(c), y_d(n), mean_d(c),
          invstd_d(c), dx_d(n), dgamma_d(c), dbeta_d(c);
      rm_d.upload(std::vector<float>(c, 0.0f));
      rv_d.upload(std::vector<float>(c, 1.0f));
      cuda::batch_norm_forward_train(tc.ctx(), g, x_d.get(), gamma_d.get(), beta_d.get(), kEps, kMomentum,
                                     y_d.get(), mean_d.get(), invstd_d.get(), rm_d.get(), rv_d.get(), act,
                                     true, slope);
      // tanh / sigmoid go through the device math library (a few ulps from glibc's): rtol 1e-5 still holds.
      test::require_close(y_d.download(), y, kAtol, kRtol, what + " y");
      test::require_close(rm_d.download(), rm, kAtol, kRtol, what + " running mean");
      test::require_close(rv_d.download(), rv, kAtol, kRtol, what + " running var");

      // The backward pass reads the activation's derivative from y: give it the CPU's y so that both sides
      // take the same branch at every element (the GPU's y was just checked to be within rounding of it).
      DeviceBuffer<float> y_cpu_d(y);
      mean_d.upload(mean);
      invstd_d.upload(invstd);
      cuda::batch_norm_backward_train(tc.ctx(), g, x_d.get(), dy_d.get(), gamma_d.get(), mean_d.get(),
                                      invstd_d.get(), dx_d.get(), dgamma_d.get(), dbeta_d.get(),
                                      y_cpu_d.get(), act, true, slope);
      const double sum_atol = kAtol * std::sqrt(double(g.count()));
      test::require_close(dx_d.download(), dx, kAtol, kRtol, what + " dx");
      test::require_close(dgamma_d.download(), dgamma, sum_atol, kRtol, what + " dgamma");
      test::require_close(dbeta_d.download(), dbeta, sum_atol, kRtol, what + " dbeta");
    }
  }
}

TEST_CASE("cuda batch norm fused backward rejects a negative leaky_relu slope and a missing y",
          "[cuda][batchnorm]") {
  TestContext tc;
  const BatchNormGeometry g = bn_geometry(2, 2, 3);
  DeviceBuffer<float> buf(size_t(g.elems())), small(2);
  REQUIRE_THROWS_AS(cuda::batch_norm_backward_train(tc.ctx(), g, buf.get(), buf.get(), nullptr, small.get(),
                                                    small.get(), buf.get(), nullptr, nullptr, buf.get(),
                                                    Activation::leaky_relu, true, -0.1f),
                    cudagan::InvalidArgument);
  REQUIRE_THROWS_AS(
      cuda::batch_norm_backward_train(tc.ctx(), g, buf.get(), buf.get(), nullptr, small.get(), small.get(),
                                      buf.get(), nullptr, nullptr, nullptr, Activation::relu, true, 0.0f),
      cudagan::InvalidArgument);
}

TEST_CASE("cuda batch norm evaluation forward and backward match the cpu", "[cuda][batchnorm]") {
  TestContext tc;
  auto geometries = bn_geometries();
  geometries.push_back(bn_geometry(2, 70001, 3));  // more channels than one grid dimension (65535) holds
  for (const BatchNormGeometry& g : geometries) {
    const std::string what = describe(g) + " eval";
    const auto x = bn_input(g, 91);
    const auto dy = test::random_vector<float>(g.elems(), 92);
    const auto gamma = test::random_vector<float>(g.channels, 93, 0.5, 1.5);
    const auto beta = test::random_vector<float>(g.channels, 94);
    const auto rm = test::random_vector<float>(g.channels, 95, 2.0, 4.0);
    const auto rv = test::random_vector<float>(g.channels, 96, 0.5, 4.0);
    const size_t n = size_t(g.elems()), c = size_t(g.channels);
    DeviceBuffer<float> x_d(x), dy_d(dy), gamma_d(gamma), beta_d(beta), rm_d(rm), rv_d(rv), y_d(n), dx_d(n),
        dgamma_d(c), dbeta_d(c);
    cuda::batch_norm_forward_eval(tc.ctx(), g, x_d.get(), gamma_d.get(), beta_d.get(), rm_d.get(), rv_d.get(),
                                  kEps, y_d.get());
    cuda::batch_norm_backward_eval(tc.ctx(), g, x_d.get(), dy_d.get(), gamma_d.get(), rm_d.get(), rv_d.get(),
                                   kEps, dx_d.get(), dgamma_d.get(), dbeta_d.get());
    std::vector<float> y(n), dx(n), dgamma(c), dbeta(c);
    cpu::batch_norm_forward_eval<float>(g, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(), kEps,
                                        y.data());
    cpu::batch_norm_backward_eval<float>(g, x.data(), dy.data(), gamma.data(), rm.data(), rv.data(), kEps,
                                         dx.data(), dgamma.data(), dbeta.data());
    const double sum_atol = kAtol * std::sqrt(double(g.count()));
    test::require_close(y_d.download(), y, kAtol, kRtol, what + " y");
    test::require_close(dx_d.download(), dx, kAtol, kRtol, what + " dx");
    test::require_close(dgamma_d.download(), dgamma, sum_atol, kRtol, what + " dgamma");
    test::require_close(dbeta_d.download(), dbeta, sum_atol, kRtol, what + " dbeta");
  }
}
