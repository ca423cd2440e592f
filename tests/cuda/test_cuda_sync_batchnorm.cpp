// Synchronised batchnorm through the op on the GPU: replicas on slices of a batch, with GPU tensors, against
// the op on the whole batch on the CPU. The replicas run serialised (test::FakeReplicas::Mode::serialised):
// the GPU's engine context (one stream, one workspace) is shared by every host thread, so their ops must not
// interleave; they still meet at every sum. This also checks what the ReplicaSum receives on a GPU: a float64
// tensor on the replica's device, reachable through to_vector() and copy_().
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "cudagan/cudagan.h"
#include "support/compare.h"
#include "support/fake_replicas.h"

using namespace cudagan;

namespace {

const Device kGpu = Device::cuda(0);

Tensor rows_of(const Tensor& x, int64_t begin, int64_t count) {
  const int64_t row = x.numel() / x.size(0);
  const std::vector<double> all = x.to_vector();
  Shape shape = x.shape();
  shape[0] = count;
  return Tensor::from_vector(
             std::vector<double>(all.begin() + begin * row, all.begin() + (begin + count) * row), shape)
      .to(DType::float32);
}

}  // namespace

TEST_CASE("cuda sync batchnorm: replicas on the GPU compute the whole batch's batchnorm",
          "[cuda][batch_norm2d][sync]") {
  for (double slope : {-1.0, 0.2, 0.0}) {  // -1: batch_norm2d alone
    for (int replicas : {2, 3}) {
      const std::string what =
          (slope < 0 ? std::string("batch_norm2d") : "batch_norm2d_relu " + std::to_string(slope)) + ", " +
          std::to_string(replicas) + " replicas";
      INFO(what);
      Rng gen(uint64_t(31 + replicas));
      const Shape shape{7, 5, 9, 11};
      const Tensor x = Tensor::randn(shape, gen, DType::float32, Device::cpu(), 1.5, 2.0);
      const Tensor w = Tensor::randn(shape, gen);
      const Tensor gamma = Tensor::rand({5}, gen, DType::float32, Device::cpu(), 0.5, 1.5);
      const Tensor beta = Tensor::randn({5}, gen);
      auto op = [&](const Tensor& xi, const Tensor& g, const Tensor& b, const Tensor& rm, const Tensor& rv,
                    std::shared_ptr<const ReplicaSum> across) {
        return slope < 0 ? batch_norm2d(xi, g, b, rm, rv, true, 0.1, 1e-5, across)
                         : batch_norm2d_relu(xi, g, b, rm, rv, true, 0.1, 1e-5, slope, across);
      };

      // The whole batch, on the CPU.
      Tensor xc = x.clone(), gc = gamma.clone(), bc = beta.clone();
      xc.requires_grad_();
      gc.requires_grad_();
      bc.requires_grad_();
      const Tensor rmc = Tensor::zeros({5}), rvc = Tensor::ones({5});
      const Tensor yc = op(xc, gc, bc, rmc, rvc, nullptr);
      sum(yc * w).backward();

      test::FakeReplicas group(replicas, test::FakeReplicas::Mode::serialised);
      struct Part {
        Tensor x, w, gamma, beta, rm, rv, y;
      };
      std::vector<Part> parts;
      int64_t begin = 0;
      for (int r = 0; r < replicas; ++r) {
        const int64_t n = 7 / replicas + (r < 7 % replicas ? 1 : 0);
        Part p{rows_of(x, begin, n).to(kGpu),
               rows_of(w, begin, n).to(kGpu),
               gamma.to(kGpu),
               beta.to(kGpu),
               Tensor::zeros({5}, DType::float32, kGpu),
               Tensor::ones({5}, DType::float32, kGpu),
               {}};
        p.x.requires_grad_();
        p.gamma.requires_grad_();
        p.beta.requires_grad_();
        parts.push_back(p);
        begin += n;
      }
      group.run([&](int r) {
        Part& p = parts[size_t(r)];
        p.y = op(p.x, p.gamma, p.beta, p.rm, p.rv, group.member(r));
        sum(p.y * p.w).backward();
      });

      std::vector<double> y, dx, dgamma(5, 0.0), dbeta(5, 0.0);
      for (int r = 0; r < replicas; ++r) {
        const Part& p = parts[size_t(r)];
        const auto yr = p.y.to_vector(), dxr = p.x.grad().to_vector();
        y.insert(y.end(), yr.begin(), yr.end());
        dx.insert(dx.end(), dxr.begin(), dxr.end());
        const auto dg = p.gamma.grad().to_vector(), db = p.beta.grad().to_vector();
        for (size_t i = 0; i < 5; ++i) dgamma[i] += dg[i], dbeta[i] += db[i];
        test::require_close_to_scale(p.rm.to_vector(), rmc.to_vector(), 1e-5, "running mean");
        test::require_close_to_scale(p.rv.to_vector(), rvc.to_vector(), 1e-5, "running var");
        const auto calls = group.calls(r);
        REQUIRE(calls.size() == 2);
        for (const auto& call : calls) {
          CHECK(call.device == kGpu);
          CHECK(call.dtype == DType::float64);
          CHECK(call.shape == Shape{11});
        }
      }
      test::require_close_to_scale(y, yc.to_vector(), 1e-5, "y");
      test::require_close_to_scale(dx, xc.grad().to_vector(), 1e-5, "dx");
      test::require_close_to_scale(dgamma, gc.grad().to_vector(), 1e-5, "dgamma, the replicas' sum");
      test::require_close_to_scale(dbeta, bc.grad().to_vector(), 1e-5, "dbeta, the replicas' sum");
    }
  }
}
