// The sliced Wasserstein distance with its images on the GPU against the same images on the CPU: the pyramid
// (conv2d and add on the device) and the projections (linear on the device) must give the CPU's result to
// fp32 accuracy; so must one set on each device.
#include <catch2/catch.hpp>

#include <vector>

#include "cudagan/cudagan.h"
#include "cudagan/metrics/swd.h"
#include "support/compare.h"

using namespace cudagan;

namespace {
const Device kGpu = Device::cuda(0);
}  // namespace

TEST_CASE("cuda swd: the pyramid on the gpu matches the cpu", "[cuda][swd]") {
  Rng gen(1);
  const Tensor x = Tensor::rand({5, 3, 64, 64}, gen, DType::float32, Device::cpu(), -1.0, 1.0);
  const std::vector<Tensor> cpu = metrics::laplacian_pyramid(x, 16),
                            gpu = metrics::laplacian_pyramid(x.to(kGpu), 16);
  REQUIRE(gpu.size() == cpu.size());
  for (size_t l = 0; l < cpu.size(); ++l) {
    REQUIRE(gpu[l].device() == kGpu);
    // Each value a dot of at most 64 terms of |x| <= 1 with weights summing to 1, twice: 1e-5 is ample.
    test::require_close(gpu[l].to_vector(), cpu[l].to_vector(), 1e-5, 0, "level " + std::to_string(l));
  }
}

TEST_CASE("cuda swd: the distance on the gpu matches the cpu, one set on each device too", "[cuda][swd]") {
  Rng gen(2);
  const Tensor a = Tensor::rand({300, 3, 32, 32}, gen, DType::float32, Device::cpu(), -1.0, 1.0);
  const Tensor b = add(scale(a, 0.5), Tensor::randn(a.shape(), gen, DType::float32, Device::cpu(), 0.0, 0.2));
  metrics::SwdOptions o;
  o.chunk_images = 128;
  const metrics::SwdResult cpu = metrics::sliced_wasserstein(a, b, o);
  const metrics::SwdResult gpu = metrics::sliced_wasserstein(a.to(kGpu), b.to(kGpu), o);
  const metrics::SwdResult mixed = metrics::sliced_wasserstein(a, b.to(kGpu), o);
  // Sorted projections move by no more than the projections do (fp32 dots of 147 terms).
  test::require_close(gpu.per_level_x1e3, cpu.per_level_x1e3, 0, 1e-4, "gpu");
  test::require_close(mixed.per_level_x1e3, cpu.per_level_x1e3, 0, 1e-4, "cpu a, gpu b");
}
