// Tensor basics: creation, views, conversion, printing, devices and their errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>

#include "cudagan/cudagan.h"
#include "cudagan/runtime/blas.h"
#include "support/compare.h"

using namespace cudagan;
using Catch::Matchers::Contains;

TEST_CASE("tensor: creation and properties", "[tensor]") {
  Tensor t = Tensor::full({2, 3, 4}, 1.5);
  CHECK(t.shape() == Shape{2, 3, 4});
  CHECK(t.numel() == 24);
  CHECK(t.dim() == 3);
  CHECK(t.size(-1) == 4);
  CHECK(t.dtype() == DType::float32);
  CHECK(t.device() == Device::cpu());
  for (double v : t.to_vector()) CHECK(v == 1.5);
  CHECK(Tensor::scalar(4.25, DType::float64).item() == 4.25);
  CHECK(Tensor::zeros({0, 3}).numel() == 0);
  REQUIRE_THROWS_WITH(Tensor::from_vector(std::vector<float>{1, 2, 3}, {2, 2}), Contains("do not fill"));
  REQUIRE_THROWS_WITH(t.size(3), Contains("out of range"));
  REQUIRE_THROWS_WITH(Tensor().shape(), Contains("undefined"));
  REQUIRE_THROWS_WITH(t.data<double>(), Contains("float32"));
}

TEST_CASE("tensor: reshape is a view, clone is a copy", "[tensor]") {
  Tensor t = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor v = t.reshape({3, -1});
  CHECK(v.shape() == Shape{3, 2});
  Tensor c = t.clone();
  t.data<float>()[0] = 42;
  CHECK(v.to_vector()[0] == 42);  // shares storage
  CHECK(c.to_vector()[0] == 1);   // does not
  REQUIRE_THROWS_WITH(t.reshape({4, 2}), Contains("cannot view"));
  REQUIRE_THROWS_WITH(t.reshape({-1, -1}), Contains("more than one -1"));
}

TEST_CASE("tensor: dtype conversion and copy", "[tensor]") {
  Tensor f = Tensor::from_vector(std::vector<float>{0.5f, -1.25f}, {2});
  Tensor d = f.to(DType::float64);
  CHECK(d.dtype() == DType::float64);
  test::require_close(d.to_vector(), std::vector<double>{0.5, -1.25}, 0, 0, "float32 -> float64");
  Tensor back = Tensor::empty({2});
  back.copy_(d);
  test::require_close(back.to_vector(), std::vector<double>{0.5, -1.25}, 0, 0, "float64 -> float32");
  REQUIRE_THROWS_WITH(back.copy_(Tensor::zeros({3})), Contains("copy_"));
}

TEST_CASE("tensor: printing shows shape, dtype, device and values", "[tensor]") {
  Tensor t = Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  const std::string s = t.str();
  CHECK_THAT(s, Contains("[2, 2]") && Contains("float32") && Contains("cpu") && Contains("1, 2, 3, 4"));
  t.requires_grad_(true);
  CHECK_THAT(scale(t, 2.0).str(), Contains("grad_fn=scale"));
  CHECK_THAT(Tensor::zeros({100}).str(4), Contains("96 more"));
}

TEST_CASE("tensor: random tensors are reproducible from the seed", "[tensor][random]") {
  Rng a(7), b(7), c(8);
  const std::vector<double> x = Tensor::randn({1000}, a).to_vector(), y = Tensor::randn({1000}, b).to_vector();
  CHECK(x == y);
  CHECK(x != Tensor::randn({1000}, c).to_vector());
  double mean = 0, sq = 0;
  for (double v : x) mean += v, sq += v * v;
  mean /= 1000, sq /= 1000;
  CHECK(std::abs(mean) < 0.1);            // 1000 draws: standard error of the mean ~0.03
  CHECK(std::abs(sq - 1.0) < 0.15);        // and of the second moment ~0.045
  for (double v : Tensor::rand({1000}, a, DType::float32, Device::cpu(), 2.0, 3.0).to_vector())
    CHECK((v >= 2.0 && v < 3.0));
}

TEST_CASE("generator: state saves and restores exactly", "[random]") {
  Rng g(123);
  g.normal();
  const Rng::State s = g.state();
  const double next = g.normal();
  g.set_state(s);
  CHECK(g.normal() == next);
  Rng h(123);
  Rng child = h.split();
  CHECK(child.next_u64() != h.next_u64());
}

TEST_CASE("device: parsing and names", "[device]") {
  CHECK(Device::parse("cpu") == Device::cpu());
  CHECK(Device::parse("cuda") == Device::cuda(0));
  CHECK(Device::parse("cuda:1") == Device::cuda(1));
  CHECK(Device::cuda(2).str() == "cuda:2");
  REQUIRE_THROWS_WITH(Device::parse("gpu"), Contains("use cpu, cuda or cuda:N"));
  REQUIRE_THROWS_WITH(Device::parse("cuda:x"), Contains("unknown device"));
}

TEST_CASE("device: resolve_device picks a GPU for auto when there is one, and checks the one named", "[device]") {
  CHECK(resolve_device("cpu") == Device::cpu());
  CHECK(resolve_device("auto") == (cuda_available() ? Device::cuda(0) : Device::cpu()));
  REQUIRE_THROWS_WITH(resolve_device("gpu"), Contains("use cpu, cuda or cuda:N"));
  if (!cuda_available()) {
    REQUIRE_THROWS_WITH(resolve_device("cuda"), Contains("device 'cuda' asked for a GPU") && Contains("use cpu"));
    REQUIRE_THROWS_WITH(resolve_device("cuda:1"), Contains("has none"));
  } else {
    CHECK(resolve_device("cuda") == Device::cuda(0));
    const std::string past = "cuda:" + std::to_string(cuda_device_count());
    REQUIRE_THROWS_WITH(resolve_device(past), Contains("'" + past + "' is not there"));
  }
}

TEST_CASE("device: asking for CUDA without a GPU is a one-line error", "[device][errors]") {
  if (cuda_available()) {
    SUCCEED("a GPU is present: covered by the CUDA tests");
    return;
  }
  try {
    Tensor::zeros({2}, DType::float32, Device::cuda(0));
    FAIL("creating a CUDA tensor without a GPU did not throw");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find('\n') == std::string::npos);
    CHECK_THAT(msg, Contains("CUDA") || Contains("cuda") || Contains("GPU"));
  }
  REQUIRE_THROWS_AS(Tensor::zeros({2}, DType::float64, Device::cuda(0)), Error);
}

TEST_CASE("blas: the CPU GEMM runs the best kernels this CPU supports", "[blas]") {
  const blas::Info info = blas::info();
  INFO(blas::describe());
  CHECK_THAT(info.library, Contains("OpenBLAS"));
  const bool users_choice = std::getenv("OPENBLAS_CORETYPE") && !info.overridden;  // respected as given
  if (!info.best_supported.empty() && !users_choice)
    CHECK(blas::kernel_rank(info.kernels) >= blas::kernel_rank(info.best_supported));
}
