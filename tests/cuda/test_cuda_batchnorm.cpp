// CUDA batch norm (plain and fused with an activation) against the CPU backend on the same random inputs.
// Both backends reduce in double and then round the same per-channel constants to float, and the CUDA
// element-wise expressions mirror the CPU's without FMA contraction, so the results agree to float rounding:
// rtol 1e-5 plus atol 1e-5 (outputs are O(1); the atol covers elements that cancel to near zero, where one
// ulp of a per-channel constant is a large relative error). The synchronised passes: each kernel against
// the CPU's from the same inputs, and two slices with their sums added against the training kernels on the
// whole batch.
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

// --- synchronised batch norm (the split passes of kernels/batchnorm.h) ------------------------------------

namespace {

// Per channel: the sum of |terms| behind each of the 2C sums and, for the count, the count itself: the scale
// of each element's rounding error for test::require_close_scaled.
std::vector<double> sums_scale(const BatchNormGeometry& g, const std::vector<float>& a,
                               const std::vector<float>& b) {
  std::vector<double> scale(size_t(2 * g.channels + 1), 0.0);
  for (int64_t i = 0; i < g.elems(); ++i) {
    const size_t c = size_t((i / g.spatial) % g.channels);
    scale[c] += std::fabs(double(a[size_t(i)]));
    scale[size_t(g.channels) + c] += std::fabs(double(a[size_t(i)]) * double(b[size_t(i)]));
  }
  scale.back() = double(g.count());
  return scale;
}

}  // namespace

TEST_CASE("cuda synchronised batch norm passes match the cpu", "[cuda][batchnorm][sync]") {
  TestContext tc;
  auto geometries = bn_geometries();
  geometries.push_back(bn_geometry(2, 70001, 3));  // more channels than one grid dimension (65535) holds
  for (const BatchNormGeometry& g : geometries) {
    for (bool affine : {true, false}) {
      const std::string what = describe(g) + (affine ? " affine" : " no affine") + " sync";
      const auto x = bn_input(g, 101);
      const auto dy = test::random_vector<float>(g.elems(), 102);
      const auto gamma = test::random_vector<float>(g.channels, 103, 0.5, 1.5);
      const auto beta = test::random_vector<float>(g.channels, 104);
      const auto rm0 = test::random_vector<float>(g.channels, 105),
                 rv0 = test::random_vector<float>(g.channels, 106, 0.5, 2.0);
      const size_t n = size_t(g.elems()), c = size_t(g.channels), ns = 2 * c + 1;
      const float* gp = nullptr;
      DeviceBuffer<float> x_d(x), dy_d(dy), gamma_d(gamma), beta_d(beta), rm_d(rm0), rv_d(rv0), mean_d(c),
          var_d(c), invstd_d(c), y_d(n), dx_d(n), dgamma_d(c), dbeta_d(c);
      DeviceBuffer<double> sums_d(ns);
      if (affine) gp = gamma_d.get();
      sums_d.fill_bytes(0xFF);

      // Channel sums: double sums of the same terms in another order.
      std::vector<double> sums(ns);
      cuda::batch_norm_channel_sums(tc.ctx(), g, x_d.get(), sums_d.get());
      cpu::batch_norm_channel_sums<float>(g, x.data(), sums.data());
      test::require_close_scaled(sums_d.download(), sums, sums_scale(g, x, x), 1e-12, what + " channel sums");

      // Statistics and y from the same (the CPU's) sums, so that only their own arithmetic is compared.
      sums_d.upload(sums);
      std::vector<float> mean(c), var(c), invstd(c), rm = rm0, rv = rv0, y(n);
      cuda::batch_norm_stats_from_sums(tc.ctx(), g.channels, sums_d.get(), kEps, kMomentum, mean_d.get(),
                                       var_d.get(), invstd_d.get(), rm_d.get(), rv_d.get());
      cpu::batch_norm_stats_from_sums<float>(g.channels, sums.data(), kEps, kMomentum, mean.data(),
                                             var.data(), invstd.data(), rm.data(), rv.data());
      test::require_close(mean_d.download(), mean, kAtol, kRtol, what + " mean");
      test::require_close(var_d.download(), var, kAtol, kRtol, what + " var");
      test::require_close(invstd_d.download(), invstd, kAtol, kRtol, what + " invstd");
      test::require_close(rm_d.download(), rm, kAtol, kRtol, what + " running mean");
      test::require_close(rv_d.download(), rv, kAtol, kRtol, what + " running var");

      // Backward, from the CPU's statistics on both sides.
      mean_d.upload(mean);
      invstd_d.upload(invstd);
      sums_d.fill_bytes(0xFF);
      std::vector<double> bsums(ns);
      std::vector<float> dgamma(c), dbeta(c), dx(n), xhat(n);
      cuda::batch_norm_backward_sums(tc.ctx(), g, x_d.get(), dy_d.get(), mean_d.get(), invstd_d.get(),
                                     sums_d.get(), dgamma_d.get(), dbeta_d.get());
      cpu::batch_norm_backward_sums<float>(g, x.data(), dy.data(), mean.data(), invstd.data(), bsums.data(),
                                           dgamma.data(), dbeta.data());
      for (size_t i = 0; i < n; ++i) {
        const size_t ch = size_t((int64_t(i) / g.spatial) % g.channels);
        xhat[i] = float((double(x[i]) - mean[ch]) * invstd[ch]);
      }
      test::require_close_scaled(sums_d.download(), bsums, sums_scale(g, dy, xhat), 1e-12,
                                 what + " gradient sums");
      const double sum_atol = kAtol * std::sqrt(double(g.count()));
      test::require_close(dgamma_d.download(), dgamma, sum_atol, kRtol, what + " dgamma");
      test::require_close(dbeta_d.download(), dbeta, sum_atol, kRtol, what + " dbeta");

      sums_d.upload(bsums);
      dx_d.fill_bytes(0xFF);
      cuda::batch_norm_backward_from_sums(tc.ctx(), g, x_d.get(), dy_d.get(), gp, mean_d.get(),
                                          invstd_d.get(), sums_d.get(), dx_d.get());
      cpu::batch_norm_backward_from_sums<float>(g, x.data(), dy.data(), affine ? gamma.data() : nullptr,
                                                mean.data(), invstd.data(), bsums.data(), dx.data());
      test::require_close(dx_d.download(), dx, kAtol, kRtol, what + " dx");
    }
  }
}

// Two replicas on the GPU, their sums added on the host (the all-reduce): the training kernels' results on
// the whole batch, every value of which the device computed.
TEST_CASE("cuda synchronised batch norm over two slices matches the training kernels on the whole batch",
          "[cuda][batchnorm][sync]") {
  TestContext tc;
  for (const BatchNormGeometry& g : {bn_geometry(2, 3, 1), bn_geometry(5, 7, 33), bn_geometry(3, 3, 1000),
                                     bn_geometry(64, 4, 1), bn_geometry(3, 2, 4099)}) {
    const std::string what = describe(g) + " in two slices";
    const auto x = bn_input(g, 111);
    const auto dy = test::random_vector<float>(g.elems(), 112);
    const auto gamma = test::random_vector<float>(g.channels, 113, 0.5, 1.5);
    const auto beta = test::random_vector<float>(g.channels, 114);
    const auto rm0 = test::random_vector<float>(g.channels, 115),
               rv0 = test::random_vector<float>(g.channels, 116, 0.5, 2.0);
    const size_t n = size_t(g.elems()), c = size_t(g.channels), ns = 2 * c + 1;
    DeviceBuffer<float> x_d(x), dy_d(dy), gamma_d(gamma), beta_d(beta), rm_d(rm0), rv_d(rv0), y_d(n),
        mean_d(c), invstd_d(c), dx_d(n), dgamma_d(c), dbeta_d(c);
    cuda::batch_norm_forward_train(tc.ctx(), g, x_d.get(), gamma_d.get(), beta_d.get(), kEps, kMomentum,
                                   y_d.get(), mean_d.get(), invstd_d.get(), rm_d.get(), rv_d.get());
    cuda::batch_norm_backward_train(tc.ctx(), g, x_d.get(), dy_d.get(), gamma_d.get(), mean_d.get(),
                                    invstd_d.get(), dx_d.get(), dgamma_d.get(), dbeta_d.get());

    // The slices: the first batch / 2 images and the rest, each replica with its own per-channel buffers.
    BatchNormGeometry g0 = g, g1 = g;
    g0.batch = g.batch / 2;
    g1.batch = g.batch - g0.batch;
    const int64_t off = g0.elems();
    struct Replica {
      Replica(size_t channels, const std::vector<float>& rm0, const std::vector<float>& rv0)
          : mean(channels), var(channels), invstd(channels), rm(rm0), rv(rv0), dgamma(channels),
            dbeta(channels), sums(2 * channels + 1) {}
      DeviceBuffer<float> mean, var, invstd, rm, rv, dgamma, dbeta;
      DeviceBuffer<double> sums;
    };
    Replica rep[2] = {Replica(c, rm0, rv0), Replica(c, rm0, rv0)};
    const BatchNormGeometry gs[2] = {g0, g1};
    const int64_t offs[2] = {0, off};
    auto all_reduce = [&] {
      const std::vector<double> a = rep[0].sums.download(), b = rep[1].sums.download();
      std::vector<double> total(ns);
      for (size_t i = 0; i < ns; ++i) total[i] = a[i] + b[i];
      rep[0].sums.upload(total);
      rep[1].sums.upload(total);
    };

    DeviceBuffer<float> y_split(n), dx_split(n);
    y_split.fill_bytes(0xFF);
    dx_split.fill_bytes(0xFF);
    for (int r = 0; r < 2; ++r)
      cuda::batch_norm_channel_sums(tc.ctx(), gs[r], x_d.get() + offs[r], rep[r].sums.get());
    all_reduce();
    for (int r = 0; r < 2; ++r) {
      Replica& p = rep[r];
      cuda::batch_norm_stats_from_sums(tc.ctx(), g.channels, p.sums.get(), kEps, kMomentum, p.mean.get(),
                                       p.var.get(), p.invstd.get(), p.rm.get(), p.rv.get());
      cuda::batch_norm_forward_eval(tc.ctx(), gs[r], x_d.get() + offs[r], gamma_d.get(), beta_d.get(),
                                    p.mean.get(), p.var.get(), kEps, y_split.get() + offs[r]);
    }
    for (int r = 0; r < 2; ++r)
      cuda::batch_norm_backward_sums(tc.ctx(), gs[r], x_d.get() + offs[r], dy_d.get() + offs[r],
                                     rep[r].mean.get(), rep[r].invstd.get(), rep[r].sums.get(),
                                     rep[r].dgamma.get(), rep[r].dbeta.get());
    all_reduce();
    for (int r = 0; r < 2; ++r)
      cuda::batch_norm_backward_from_sums(tc.ctx(), gs[r], x_d.get() + offs[r], dy_d.get() + offs[r],
                                          gamma_d.get(), rep[r].mean.get(), rep[r].invstd.get(),
                                          rep[r].sums.get(), dx_split.get() + offs[r]);

    test::require_close(y_split.download(), y_d.download(), kAtol, kRtol, what + " y");
    test::require_close(dx_split.download(), dx_d.download(), kAtol, kRtol, what + " dx");
    for (int r = 0; r < 2; ++r) {
      const std::string rank = what + ", replica " + std::to_string(r);
      test::require_close(rep[r].mean.download(), mean_d.download(), kAtol, kRtol, rank + " mean");
      test::require_close(rep[r].invstd.download(), invstd_d.download(), kAtol, kRtol, rank + " invstd");
      test::require_close(rep[r].rm.download(), rm_d.download(), kAtol, kRtol, rank + " running mean");
      test::require_close(rep[r].rv.download(), rv_d.download(), kAtol, kRtol, rank + " running var");
    }
    std::vector<double> dgamma_sum(c), dbeta_sum(c);
    const auto dg0 = rep[0].dgamma.download(), dg1 = rep[1].dgamma.download();
    const auto db0 = rep[0].dbeta.download(), db1 = rep[1].dbeta.download();
    for (size_t i = 0; i < c; ++i)
      dgamma_sum[i] = double(dg0[i]) + dg1[i], dbeta_sum[i] = double(db0[i]) + db1[i];
    const double sum_atol = kAtol * std::sqrt(double(g.count()));
    test::require_close(dgamma_sum, dgamma_d.download(), sum_atol, kRtol,
                        what + " dgamma, the replicas' sum");
    test::require_close(dbeta_sum, dbeta_d.download(), sum_atol, kRtol, what + " dbeta, the replicas' sum");
  }
}
