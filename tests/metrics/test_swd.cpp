// The sliced Wasserstein distance (cudagan/metrics/swd.h): the pyramid against a direct 5x5 stencil and on
// images whose pyramid is known; the radix sort against std::sort; on real images (MNIST, or the synthetic
// set without the files) that it tells samples of one distribution from noise, blank images and noisier
// copies, in order; its errors, determinism, and invariances (chunking, gray as RGB, the value range). The
// cross-check against an independent numpy implementation is its own CTest, metrics.swd_numpy_agrees
// (swd_numpy_check.cpp).
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cudagan/cudagan.h"
#include "cudagan/data/data.h"
#include "cudagan/metrics/swd.h"
#include "metrics/float_sort.h"
#include "support/compare.h"

using namespace cudagan;
using namespace cudagan::metrics;
using Catch::Matchers::Contains;

namespace {

// The images [first, first + count) of a dataset as one tensor [count, C, S, S].
Tensor load(const data::Dataset& d, int64_t first, int64_t count) {
  std::vector<float> v(size_t(count * d.sample_numel()));
  for (int64_t i = 0; i < count; ++i) REQUIRE(d.load(first + i, v.data() + i * d.sample_numel(), nullptr));
  return Tensor::from_vector(v, {count, d.channels(), d.image_size(), d.image_size()});
}

// MNIST digits at 32x32, or (without the files) the synthetic set in gray, which behaves alike here.
std::unique_ptr<data::Dataset> digits() {
  for (const char* candidate : {CUDAGAN_SOURCE_DIR "/../shared/data/mnist", CUDAGAN_SOURCE_DIR "/data/mnist"})
    if (data::has_mnist_split(candidate, "train")) return data::open_mnist(candidate, "train", 32);
  WARN("no MNIST idx files in shared/data/mnist or data/mnist: the synthetic set stands in (data/README.md)");
  return data::open_synthetic(32, 1);
}

// The direct definition, in double: x [H, W] blurred with [1 4 6 4 1]^T [1 4 6 4 1] / 256 x gain, borders
// mirrored (..., x2, x1 | x0, x1, ...).
std::vector<double> blur_reference(const std::vector<double>& x, int h, int w, double gain) {
  static const double k[5] = {1, 4, 6, 4, 1};
  const auto mirror = [](int i, int n) { return i < 0 ? -i : (i > n - 1 ? 2 * (n - 1) - i : i); };
  std::vector<double> out(x.size(), 0.0);
  for (int y = 0; y < h; ++y)
    for (int xx = 0; xx < w; ++xx)
      for (int dy = -2; dy <= 2; ++dy)
        for (int dx = -2; dx <= 2; ++dx)
          out[size_t(y * w + xx)] +=
              gain * k[dy + 2] * k[dx + 2] / 256.0 * x[size_t(mirror(y + dy, h) * w + mirror(xx + dx, w))];
  return out;
}

std::vector<double> plane(const std::vector<double>& all, int64_t index, int64_t numel) {
  return std::vector<double>(all.begin() + index * numel, all.begin() + (index + 1) * numel);
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to_vector()) m = std::max(m, std::fabs(v));
  return m;
}

std::string str(const SwdResult& r) {
  std::string s = std::to_string(r.average_x1e3) + " (";
  for (size_t l = 0; l < r.per_level_x1e3.size(); ++l)
    s += (l ? ", " : "") + std::to_string(r.resolutions[l]) + ": " + std::to_string(r.per_level_x1e3[l]);
  return s + ")";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// the pyramid

TEST_CASE("swd: pyramid_down and pyramid_up match the 5x5 stencil with mirrored borders", "[metrics]") {
  Rng gen(3);
  // Odd and even sizes, the smallest allowed (3), rectangles.
  for (const Shape& shape : {Shape{2, 3, 12, 10}, Shape{1, 1, 3, 5}, Shape{1, 2, 9, 16}}) {
    const Tensor x = Tensor::randn(shape, gen);
    const int64_t n = shape[0] * shape[1];
    const int h = int(shape[2]), w = int(shape[3]);
    const std::vector<double> xv = x.to_vector();
    const Tensor down = pyramid_down(x), up = pyramid_up(x);
    REQUIRE(down.shape() == Shape{shape[0], shape[1], (h + 1) / 2, (w + 1) / 2});
    REQUIRE(up.shape() == Shape{shape[0], shape[1], 2 * h, 2 * w});
    std::vector<double> want_down, want_up;
    for (int64_t p = 0; p < n; ++p) {
      const std::vector<double> blurred = blur_reference(plane(xv, p, h * w), h, w, 1.0);
      for (int y = 0; y < h; y += 2)
        for (int xx = 0; xx < w; xx += 2) want_down.push_back(blurred[size_t(y * w + xx)]);
      std::vector<double> zeros(size_t(4 * h * w), 0.0);  // zeros between the samples, then blur x 4
      for (int y = 0; y < h; ++y)
        for (int xx = 0; xx < w; ++xx)
          zeros[size_t(2 * y * 2 * w + 2 * xx)] = xv[size_t(p * h * w + y * w + xx)];
      const std::vector<double> u = blur_reference(zeros, 2 * h, 2 * w, 4.0);
      want_up.insert(want_up.end(), u.begin(), u.end());
    }
    test::require_close(down.to_vector(), want_down, 1e-5, 1e-5, "pyramid_down " + shape_str(shape));
    test::require_close(up.to_vector(), want_up, 1e-5, 1e-5, "pyramid_up " + shape_str(shape));
  }
  REQUIRE_THROWS_WITH(pyramid_down(Tensor::zeros({1, 1, 2, 8})), Contains("H, W >= 3"));
  REQUIRE_THROWS_WITH(pyramid_up(Tensor::zeros({4, 4})), Contains("[N, C, H, W]"));
}

TEST_CASE("swd: a constant image's Laplacian levels are zero but for the last, at the right sizes",
          "[metrics]") {
  const Tensor x = Tensor::full({2, 3, 64, 64}, -0.25);
  const std::vector<Tensor> levels = laplacian_pyramid(x, 16);
  REQUIRE(levels.size() == 3);
  CHECK(levels[0].shape() == Shape{2, 3, 64, 64});
  CHECK(levels[1].shape() == Shape{2, 3, 32, 32});
  CHECK(levels[2].shape() == Shape{2, 3, 16, 16});
  // The operators' entries are sums of multiples of 1/16, exact in float32: exactly zero, exactly -0.25.
  CHECK(max_abs(levels[0]) == 0.0);
  CHECK(max_abs(levels[1]) == 0.0);
  for (double v : levels[2].to_vector()) REQUIRE(v == -0.25);
  CHECK(laplacian_pyramid(Tensor::zeros({1, 1, 32, 32}), 8).size() == 3);   // 32, 16, 8
  CHECK(laplacian_pyramid(Tensor::zeros({1, 1, 16, 16}), 16).size() == 1);  // the image itself
  REQUIRE_THROWS_WITH(laplacian_pyramid(Tensor::zeros({1, 1, 48, 48}), 16), Contains("power of two"));
}

TEST_CASE("swd: upsampling a downsampled smooth image gives it back, and a checkerboard vanishes",
          "[metrics]") {
  const int s = 64;
  std::vector<float> smooth, checker;
  for (int y = 0; y < s; ++y)
    for (int x = 0; x < s; ++x) {
      // One period over the image, symmetric about the first and the last pixel, so that the mirrored
      // borders continue it smoothly: the blurs pass it almost unchanged (0.99 per blur).
      smooth.push_back(float(0.8 * std::cos(2 * M_PI * x / (s - 1)) * std::cos(2 * M_PI * y / (s - 1))));
      checker.push_back((x + y) % 2 ? 1.0f : -1.0f);
    }
  const Tensor a = Tensor::from_vector(smooth, {1, 1, s, s});
  const double err = max_abs(add(pyramid_up(pyramid_down(a)), scale(a, -1.0)));
  CHECK(err < 0.025);  // 0.0158 (numpy's pyr_up(pyr_down(x)) gives the same): two blurs' attenuation
  CHECK(err > 1e-3);   // but not the identity: the down/up pair is a low-pass filter
  // The kernel's response at the Nyquist frequency is (1 - 4 + 6 - 4 + 1) / 16 = 0.
  const Tensor c = Tensor::from_vector(checker, {1, 1, s, s});
  CHECK(max_abs(pyramid_down(c)) < 1e-6);
  CHECK(max_abs(laplacian_pyramid(c, 16)[0]) == Approx(1.0));
}

TEST_CASE("swd: the Laplacian pyramid reconstructs its input", "[metrics]") {
  Rng gen(5);
  const Tensor x = Tensor::rand({3, 3, 64, 64}, gen, DType::float32, Device::cpu(), -1.0, 1.0);
  const std::vector<Tensor> levels = laplacian_pyramid(x, 16);
  Tensor r = levels.back();
  for (int l = int(levels.size()) - 2; l >= 0; --l) r = add(pyramid_up(r), levels[size_t(l)]);
  test::require_close(r.to_vector(), x.to_vector(), 1e-5, 0, "reconstruction");
}

// ---------------------------------------------------------------------------------------------
// the sort and the random choices

TEST_CASE("swd: the radix sort orders floats as std::sort does", "[metrics]") {
  Rng gen(11);
  for (int64_t n : {0, 1, 2, 7, 1000, 100000}) {
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const double u = gen.uniform();
      // Wide magnitudes of both signs, repeats, zeros of both signs, infinities.
      v[size_t(i)] = u < 0.05   ? 0.0f
                     : u < 0.1  ? -0.0f
                     : u < 0.12 ? (gen.uniform() < 0.5 ? -1 : 1) * std::numeric_limits<float>::infinity()
                     : u < 0.3  ? float(int(gen.uniform() * 5) - 2)
                                : float(gen.normal() * std::pow(10.0, 30 * gen.uniform() - 15));
    }
    std::vector<float> want = v;
    std::sort(want.begin(), want.end());
    std::vector<uint32_t> scratch;
    radix_sort(v.data(), n, scratch);
    REQUIRE(v == want);  // == treats -0 and +0 alike; the order of values is what matters
  }
  std::vector<float> same(1000, 2.5f);  // one digit everywhere: every pass skipped
  std::vector<uint32_t> scratch;
  radix_sort(same.data(), int64_t(same.size()), scratch);
  CHECK(same == std::vector<float>(1000, 2.5f));
}

TEST_CASE("swd: the random choices are in range, unit length, and differ by set, level and seed",
          "[metrics]") {
  SwdOptions o;
  const std::vector<int32_t> c = swd_patch_corners(0, 0, 10, 32, o);
  REQUIRE(c.size() == size_t(2 * 10 * o.patches_per_image));
  CHECK(*std::min_element(c.begin(), c.end()) == 0);
  CHECK(*std::max_element(c.begin(), c.end()) == 32 - o.patch_size);  // every valid corner, the last included
  CHECK(c != swd_patch_corners(1, 0, 10, 32, o));
  CHECK(c != swd_patch_corners(0, 1, 10, 32, o));
  // The first images' corners do not depend on how many images follow (sliced_wasserstein draws per chunk).
  const std::vector<int32_t> c3 = swd_patch_corners(0, 0, 3, 32, o);
  CHECK(std::equal(c3.begin(), c3.end(), c.begin()));
  const Tensor d = swd_directions(0, o);
  REQUIRE(d.shape() == Shape{o.repeats * o.directions, 3 * o.patch_size * o.patch_size});
  const std::vector<double> v = d.to_vector();
  for (int64_t j = 0; j < d.size(0); ++j) {
    double norm = 0;
    for (int64_t k = 0; k < d.size(1); ++k)
      norm += v[size_t(j * d.size(1) + k)] * v[size_t(j * d.size(1) + k)];
    REQUIRE(std::sqrt(norm) == Approx(1.0).epsilon(1e-6));
  }
  CHECK(v != swd_directions(1, o).to_vector());
  SwdOptions other = o;
  other.seed = 2;
  CHECK(v != swd_directions(0, other).to_vector());
  CHECK(c != swd_patch_corners(0, 0, 10, 32, other));
  CHECK(swd_resolutions(64) == std::vector<int>{64, 32, 16});
}

// ---------------------------------------------------------------------------------------------
// the distance on real images

TEST_CASE("swd: tells halves of one set apart from noise, blank images and noisier copies", "[metrics]") {
  const auto d = digits();
  const Tensor a = load(*d, 0, 512), b = load(*d, 512, 512);
  const SwdResult halves = sliced_wasserstein(a, b);
  REQUIRE(halves.resolutions == std::vector<int>{32, 16});
  REQUIRE(halves.per_level_x1e3.size() == 2);
  Rng gen(21);
  const SwdResult noise =
      sliced_wasserstein(a, Tensor::rand(a.shape(), gen, DType::float32, Device::cpu(), -1.0, 1.0));
  const SwdResult blank = sliced_wasserstein(a, Tensor::full(a.shape(), -1.0));
  std::printf("swd x1e3, 512 vs 512 %s: halves %s; uniform noise %s; blank %s\n", d->describe().c_str(),
              str(halves).c_str(), str(noise).c_str(), str(blank).c_str());
  CHECK(halves.average_x1e3 > 0);
  for (size_t l = 0; l < 2; ++l) {
    INFO("level " << halves.resolutions[l]);
    CHECK(noise.per_level_x1e3[l] > 5 * halves.per_level_x1e3[l]);
    CHECK(blank.per_level_x1e3[l] > 5 * halves.per_level_x1e3[l]);
  }
  CHECK(std::isfinite(blank.average_x1e3));  // the reference's NaN (0 / 0 std) is avoided

  // More noise on b, further from a: on average and at the finest level. The 16x16 level is a Gaussian level
  // (the noise blurred to a quarter of its std) normalised per set (which removes the added variance): it
  // sees the digits' shapes, not pixel noise, and stays near the halves' value.
  SwdResult previous = halves;
  for (double sd : {0.05, 0.1, 0.2, 0.4}) {
    const Tensor noisy = add(b, Tensor::randn(b.shape(), gen, DType::float32, Device::cpu(), 0.0, sd));
    const SwdResult r = sliced_wasserstein(a, noisy);
    std::printf("swd x1e3, halves + noise %.2f: %s\n", sd, str(r).c_str());
    INFO("noise std " << sd << ": " << str(r) << " after " << str(previous));
    CHECK(r.average_x1e3 > previous.average_x1e3);
    CHECK(r.per_level_x1e3[0] > previous.per_level_x1e3[0]);
    CHECK(std::fabs(r.per_level_x1e3[1] - halves.per_level_x1e3[1]) < 0.25 * halves.per_level_x1e3[1]);
    previous = r;
  }
}

TEST_CASE("swd: one seed gives one result, another a close but different one", "[metrics]") {
  const auto d = digits();
  const Tensor a = load(*d, 0, 256), b = load(*d, 256, 256);
  const SwdResult r1 = sliced_wasserstein(a, b), r2 = sliced_wasserstein(a, b);
  CHECK(r1.per_level_x1e3 == r2.per_level_x1e3);
  CHECK(r1.average_x1e3 == r2.average_x1e3);
  SwdOptions o;
  o.seed = 2;
  const SwdResult r3 = sliced_wasserstein(a, b, o);
  INFO(str(r1) << " vs seed 2: " << str(r3));
  CHECK(r3.average_x1e3 != r1.average_x1e3);
  CHECK(r3.average_x1e3 == Approx(r1.average_x1e3).epsilon(0.25));  // the estimate's own noise
}

TEST_CASE("swd: chunking, gray as RGB and the value range do not change the result", "[metrics]") {
  const auto d = digits();
  const Tensor a = load(*d, 0, 100), b = load(*d, 100, 100);
  const SwdResult whole = sliced_wasserstein(a, b);
  SwdOptions o;
  o.chunk_images = 7;  // 15 chunks, the last of 2
  const SwdResult chunked = sliced_wasserstein(a, b, o);
  test::require_close(chunked.per_level_x1e3, whole.per_level_x1e3, 0, 1e-6, "chunks of 7");
  // A gray image is the RGB image with three equal channels.
  const Tensor rgb3 = Tensor::ones({3, 1, 1, 1});
  const SwdResult rgb = sliced_wasserstein(conv2d(a, rgb3), conv2d(b, rgb3));
  test::require_close(rgb.per_level_x1e3, whole.per_level_x1e3, 0, 1e-5, "gray replicated to RGB");
  // [0, 255] (the reference's range) instead of [-1, 1]: the per-channel normalisation removes the
  // difference.
  const auto to_255 = [](const Tensor& x) { return add(scale(x, 127.5), Tensor::full(x.shape(), 127.5)); };
  const SwdResult bytes = sliced_wasserstein(to_255(a), to_255(b));
  test::require_close(bytes.per_level_x1e3, whole.per_level_x1e3, 0, 1e-4, "values in [0, 255]");
  // A set needing a gradient (a generator's output) is measured without recording anything.
  Tensor with_grad = b.clone();
  with_grad.requires_grad_(true);
  CHECK(sliced_wasserstein(a, with_grad).per_level_x1e3 == whole.per_level_x1e3);
}

TEST_CASE("swd: the sets' errors are one line naming the problem", "[metrics]") {
  const Tensor ok = Tensor::zeros({4, 3, 32, 32});
  const auto one_line = [](const std::function<void()>& f, const std::string& part) {
    try {
      f();
      FAIL("no error for " << part);
    } catch (const Error& e) {
      const std::string m = e.what();
      INFO(m);
      CHECK_THAT(m, Contains(part));
      CHECK(m.find('\n') == std::string::npos);
    }
  };
  one_line([&] { sliced_wasserstein(ok, Tensor::zeros({5, 3, 32, 32})); }, "differ in shape");
  one_line([&] { sliced_wasserstein(ok, Tensor::zeros({4, 1, 32, 32})); }, "differ in shape");
  one_line(
      [&] {
        sliced_wasserstein(Tensor::zeros({4, 3, 24, 24}), Tensor::zeros({4, 3, 24, 24}));
      },
      "power of two >= 16");
  one_line(
      [&] {
        sliced_wasserstein(Tensor::zeros({4, 3, 8, 8}), Tensor::zeros({4, 3, 8, 8}));
      },
      "power of two >= 16");
  one_line([&] { sliced_wasserstein(Tensor::zeros({0, 3, 32, 32}), ok); }, "the first set (a) is empty");
  one_line([&] { sliced_wasserstein(ok, Tensor::zeros({0, 3, 32, 32})); }, "the second set (b) is empty");
  one_line([&] { sliced_wasserstein(ok, Tensor()); }, "undefined");
  one_line(
      [&] {
        sliced_wasserstein(Tensor::zeros({4, 2, 32, 32}), Tensor::zeros({4, 2, 32, 32}));
      },
      "1 or 3 channels");
  one_line(
      [&] {
        sliced_wasserstein(Tensor::zeros({4, 3, 32, 16}), Tensor::zeros({4, 3, 32, 16}));
      },
      "square");
  one_line([&] { sliced_wasserstein(Tensor::zeros({4, 3, 32}), Tensor::zeros({4, 3, 32})); }, "[N, C, S, S]");
  one_line([&] { sliced_wasserstein(ok.to(DType::float64), ok.to(DType::float64)); }, "float32");
  SwdOptions o;
  o.repeats = 0;
  one_line([&] { sliced_wasserstein(ok, ok, o); }, "must be >= 1");
  o = SwdOptions{};
  o.patch_size = 9;
  o.min_resolution = 8;
  one_line([&] { sliced_wasserstein(ok, ok, o); }, "min_resolution >= max(4, patch_size)");
}

// Not run by CTest (hidden): the time of one measurement, for docs and for sizing the training's calls.
//   cudagan_tests "[timing]"
TEST_CASE("swd: time for 1024 vs 1024 images of 32x32 and 256 vs 256 of 64x64", "[.][timing]") {
  const auto d = digits();
  const Tensor a = load(*d, 0, 1024), b = load(*d, 1024, 1024);
  auto start = std::chrono::steady_clock::now();
  const SwdResult r = sliced_wasserstein(a, b);
  const double s32 = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("swd 1024 vs 1024 gray 32x32: %.2f s, %s\n", s32, str(r).c_str());
  const auto scenes = data::open_synthetic(64, 3);
  const Tensor c = load(*scenes, 0, 256), e = load(*scenes, 256, 256);
  start = std::chrono::steady_clock::now();
  const SwdResult r64 = sliced_wasserstein(c, e);
  const double s64 = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("swd 256 vs 256 RGB 64x64 (synthetic): %.2f s, %s\n", s64, str(r64).c_str());
  CHECK(r.average_x1e3 > 0);
}
