// The sliced Wasserstein distance of Progressive GAN (cudagan/metrics/swd.h: the definition and the costs).
//
// The pyramid's resampling is separable: with mirrored borders, blurring with g g^T is B X B^T for the 1-D
// blur B, so pyramid_down(X) = A X A^T with A the even rows of B [n/2, n], and pyramid_up(X) = U X U^T with
// U [2n, n] = 2 B_2n Z (Z puts zeros between the samples; 2 x 2 = the 2-D kernel's gain of 4). Each side is
// applied as one conv2d whose kernel is the whole operator, which also transposes:
//   x [B, 1, R, L] * op [L', 1, 1, L] -> [B, L', R, 1], viewed as [B, 1, L', R];
// twice gives A X A^T in the original layout. This keeps the pyramid on the engine's ops (conv2d and add on
// the images' device) with the reference's exact border rule, which a zero-padded 5x5 convolution lacks, at
// O(L) work per pixel: GEMM-shaped and, up to 128 x 128 images, below the cost of the projections.
#include "cudagan/metrics/swd.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>

#include "core/backend.h"
#include "cudagan/core/autograd.h"
#include "cudagan/core/error.h"
#include "cudagan/core/rng.h"
#include "cudagan/ops/ops.h"
#include "metrics/float_sort.h"

namespace cudagan::metrics {

namespace {

// The most projection values a set holds on the host at once (128 MB): the directions go in groups of this
// many values over all descriptors.
constexpr int64_t kMaxProjectionValues = int64_t(1) << 25;

bool is_power_of_two(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

// ---------------------------------------------------------------------------------------------
// the pyramid

// scipy.ndimage's 'mirror' border for offsets up to 2 (n >= 3): ..., x2, x1 | x0, ..., x_{n-1} | x_{n-2}, ...
int mirror(int i, int n) {
  if (i < 0) i = -i;
  if (i > n - 1) i = 2 * (n - 1) - i;
  return i;
}

// The 1-D blur [1 4 6 4 1] / 16 on n samples with mirrored borders, as a row-major [n, n] matrix.
std::vector<double> blur_matrix(int n) {
  static constexpr double kTaps[5] = {1 / 16.0, 4 / 16.0, 6 / 16.0, 4 / 16.0, 1 / 16.0};
  std::vector<double> m(size_t(n) * size_t(n), 0.0);
  for (int i = 0; i < n; ++i)
    for (int t = -2; t <= 2; ++t) m[size_t(i) * size_t(n) + size_t(mirror(i + t, n))] += kTaps[t + 2];
  return m;
}

enum class Resample { down, up };

// The 1-D operators as conv2d kernels [out, 1, 1, in] on one device, built once per size. Every entry is a
// sum of a few multiples of 1/16, exact in float32, so a constant image stays exactly constant.
class Operators {
 public:
  explicit Operators(Device device) : device_(device) {}

  const Tensor& get(Resample kind, int n) {
    auto it = cache_.find({kind, n});
    if (it != cache_.end()) return it->second;
    std::vector<float> w;
    int out = 0;
    if (kind == Resample::down) {  // the even rows of the blur
      out = (n + 1) / 2;
      const std::vector<double> b = blur_matrix(n);
      for (int r = 0; r < out; ++r)
        for (int c = 0; c < n; ++c) w.push_back(float(b[size_t(2 * r) * size_t(n) + size_t(c)]));
    } else {  // 2 x the blur of 2n samples, of which the odd ones are zero
      out = 2 * n;
      const std::vector<double> b = blur_matrix(out);
      for (int r = 0; r < out; ++r)
        for (int c = 0; c < n; ++c) w.push_back(float(2.0 * b[size_t(r) * size_t(out) + size_t(2 * c)]));
    }
    Tensor t = Tensor::from_vector(w, {out, 1, 1, n}, device_);
    return cache_.emplace(std::make_pair(kind, n), std::move(t)).first->second;
  }

  // x [N, C, H, W] -> op_h x op_w^T per image and channel: [N, C, H', W'].
  Tensor apply(Resample kind, const Tensor& x) {
    const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    const Tensor& op_w = get(kind, int(w));
    const Tensor& op_h = get(kind, int(h));
    const int64_t w2 = op_w.size(0), h2 = op_h.size(0);
    Tensor t = reshape(conv2d(reshape(x, {n * c, 1, h, w}), op_w), {n * c, 1, w2, h});
    t = reshape(conv2d(t, op_h), {n * c, 1, h2, w2});
    return reshape(t, {n, c, h2, w2});
  }

  // One step of the Laplacian pyramid: g -> (g - up(down(g)), down(g)).
  std::pair<Tensor, Tensor> step(const Tensor& g) {
    Tensor next = apply(Resample::down, g);
    return {add(g, scale(apply(Resample::up, next), -1.0)), next};
  }

 private:
  Device device_;
  std::map<std::pair<Resample, int>, Tensor> cache_;
};

void check_resample_input(const char* op, const Tensor& x) {
  CUDAGAN_CHECK(x.defined(), op, ": the images are undefined");
  CUDAGAN_CHECK(x.dim() == 4 && x.size(2) >= 3 && x.size(3) >= 3, op,
                ": expected images [N, C, H, W] with H, W >= 3, got ", shape_str(x.shape()));
  CUDAGAN_CHECK(x.dtype() == DType::float32, op, ": expected float32 images, got ", dtype_name(x.dtype()));
}

// The checks shared by laplacian_pyramid and sliced_wasserstein; `what` names the tensor in the message.
void check_square_pow2(const char* op, const std::string& what, const Tensor& x, int min_resolution) {
  CUDAGAN_CHECK(x.defined(), op, ": ", what, " is undefined");
  CUDAGAN_CHECK(x.dim() == 4, op, ": ", what, " must be images [N, C, S, S], got ", shape_str(x.shape()));
  CUDAGAN_CHECK(x.dtype() == DType::float32, op, ": ", what, " must be float32, got ", dtype_name(x.dtype()));
  CUDAGAN_CHECK(x.size(0) > 0, op, ": ", what, " is empty (", shape_str(x.shape()),
                "); give at least one image");
  CUDAGAN_CHECK(x.size(2) == x.size(3), op, ": ", what, " must hold square images, got ",
                shape_str(x.shape()));
  CUDAGAN_CHECK(is_power_of_two(x.size(2)) && x.size(2) >= min_resolution, op, ": ", what, " has images of ",
                x.size(2), "x", x.size(3), "; the size must be a power of two >= ", min_resolution,
                " (min_resolution): resize them first");
}

// ---------------------------------------------------------------------------------------------
// random choices

// Independent streams derived from the seed, one per purpose and level.
enum Purpose : uint64_t { kCornersA = 0, kCornersB = 1, kDirections = 2 };
Rng stream(const SwdOptions& o, uint64_t purpose, int level) {
  return Rng(splitmix64(o.seed ^ splitmix64((purpose << 32) | uint64_t(level))));
}

// `count` (y, x) corners in [0, resolution - patch]; the modulo's bias is below 2^-40 for any image size.
void draw_corners(Rng& gen, int64_t count, int resolution, int patch, int32_t* out) {
  const uint64_t range = uint64_t(resolution - patch + 1);
  for (int64_t i = 0; i < 2 * count; ++i) out[i] = int32_t(gen.next_u64() % range);
}

void check_options(const SwdOptions& o) {
  CUDAGAN_CHECK(
      o.patches_per_image >= 1 && o.directions >= 1 && o.repeats >= 1 && o.chunk_images >= 1,
      "sliced_wasserstein: patches_per_image, directions, repeats and chunk_images must be >= 1, got ",
      o.patches_per_image, ", ", o.directions, ", ", o.repeats, ", ", o.chunk_images);
  CUDAGAN_CHECK(
      o.patch_size >= 1 && o.min_resolution >= 4 && o.min_resolution >= o.patch_size,
      "sliced_wasserstein: need patch_size >= 1 and min_resolution >= max(4, patch_size), got patch_size ",
      o.patch_size, " and min_resolution ", o.min_resolution);
}

// ---------------------------------------------------------------------------------------------
// descriptors

// One set's way through the pyramid, level by level. It keeps the set's next Gaussian level, chunk by chunk
// on the set's device, so that each level costs one pyramid step and the host holds one level's descriptors.
class SetDescriptors {
 public:
  SetDescriptors(const Tensor& images, int set, const SwdOptions& o)
      : o_(o), set_(set), ops_(images.device()), n_(images.size(0)), channels_(int(images.size(1))) {
    for (int64_t at = 0; at < n_; at += o.chunk_images)
      gauss_.push_back(batch_slice(images, at, std::min<int64_t>(o.chunk_images, n_ - at)));
  }

  // The normalised descriptors of level `level` (resolution `res`): [N x patches, 3 x patch^2] on the CPU.
  // Levels must come in order, the last with last = true.
  Tensor descriptors(int level, int res, bool last) {
    const int p = o_.patch_size, pp = p * p, d = 3 * pp;
    const int64_t per_image = o_.patches_per_image;
    Tensor desc = Tensor::empty({n_ * per_image, d});
    float* out = desc.data<float>();
    Rng corners_gen = stream(o_, set_ == 0 ? kCornersA : kCornersB, level);
    std::vector<int32_t> corners(size_t(2 * per_image));
    for (Tensor& g : gauss_) {
      Tensor lap = g;
      if (!last) std::tie(lap, g) = ops_.step(g);
      const Tensor host = lap.to(Device::cpu());  // the patches are gathered on the host: no gather op
      const float* px = host.data<float>();
      const int64_t image_numel = int64_t(channels_) * res * res;
      for (int64_t i = 0; i < host.size(0); ++i, px += image_numel) {
        draw_corners(corners_gen, per_image, res, p, corners.data());
        for (int64_t k = 0; k < per_image; ++k, out += d) {
          const int y0 = corners[size_t(2 * k)], x0 = corners[size_t(2 * k + 1)];
          // A gray image is the RGB image with three equal channels: the pyramid is per channel, so
          // replicating here equals replicating the input, at a third of the pyramid's cost.
          for (int c = 0; c < 3; ++c) {
            const float* plane = px + int64_t(channels_ == 1 ? 0 : c) * res * res;
            for (int y = 0; y < p; ++y)
              for (int x = 0; x < p; ++x) out[c * pp + y * p + x] = plane[int64_t(y0 + y) * res + (x0 + x)];
          }
        }
      }
    }
    normalise(desc, pp);
    return desc;
  }

 private:
  // Per channel over all of the set's descriptors (the reference's finalize_descriptors): mean 0, std 1
  // (population std); a channel without signal (kSwdMinStd, e.g. blank images, where the reference divides by
  // zero and returns NaN) is only centred. In double, two passes; serial, so the result does not depend on
  // the thread count.
  static void normalise(const Tensor& desc, int pp) {
    float* v = desc.data<float>();
    const int64_t m = desc.size(0), d = desc.size(1);
    for (int c = 0; c < 3; ++c) {
      double sum = 0, sq = 0;
      for (int64_t r = 0; r < m; ++r)
        for (int j = c * pp; j < (c + 1) * pp; ++j) sum += v[r * d + j];
      const double count = double(m) * pp, mean = sum / count;
      for (int64_t r = 0; r < m; ++r)
        for (int j = c * pp; j < (c + 1) * pp; ++j) sq += (v[r * d + j] - mean) * (v[r * d + j] - mean);
      const double sd = std::sqrt(sq / count), inv = sd > kSwdMinStd ? 1.0 / sd : 1.0;
      for (int64_t r = 0; r < m; ++r)
        for (int j = c * pp; j < (c + 1) * pp; ++j) v[r * d + j] = float((v[r * d + j] - mean) * inv);
    }
  }

  SwdOptions o_;
  int set_;
  Operators ops_;
  int64_t n_;
  int channels_;
  std::vector<Tensor> gauss_;  // the next level's input, one tensor per chunk of images
};

// ---------------------------------------------------------------------------------------------
// the distance

// Mean over the directions (rows of dirs [D, d], CPU) of the 1-D Wasserstein-1 distance between the
// projections of the descriptors desc_a and desc_b ([M, d] each, CPU), the projections computed on dev_a and
// dev_b. The mean over repeats of the per-repeat means is this mean over all directions (equal counts).
double projected_distance(const Tensor& desc_a, Device dev_a, const Tensor& desc_b, Device dev_b,
                          const Tensor& dirs) {
  const int64_t m = desc_a.size(0), total = dirs.size(0);
  const Tensor on_a = desc_a.to(dev_a), on_b = desc_b.to(dev_b);
  const int64_t group = std::clamp<int64_t>(kMaxProjectionValues / m, 1, total);
  std::vector<double> per_direction(size_t(total), 0.0);
  for (int64_t j0 = 0; j0 < total; j0 += group) {
    const int64_t g = std::min(group, total - j0);
    const Tensor dirs_g = batch_slice(dirs, j0, g);
    // linear(dirs, desc) = dirs desc^T: [g, M], each direction's projections contiguous for the sort.
    const Tensor pa = linear(dirs_g.to(dev_a), on_a).to(Device::cpu());
    const Tensor pb = linear(dirs_g.to(dev_b), on_b).to(Device::cpu());
    float* a = pa.data<float>();
    float* b = pb.data<float>();
    // The engine has no sort op: the sorts run on the host, one direction per OpenMP thread at a time.
#pragma omp parallel
    {
      std::vector<uint32_t> scratch;
#pragma omp for schedule(dynamic)
      for (int64_t j = 0; j < g; ++j) {
        float* ra = a + j * m;
        float* rb = b + j * m;
        radix_sort(ra, m, scratch);
        radix_sort(rb, m, scratch);
        double s = 0;
        for (int64_t i = 0; i < m; ++i) s += std::fabs(double(ra[i]) - double(rb[i]));
        per_direction[size_t(j0 + j)] = s / double(m);
      }
    }
  }
  double sum = 0;  // in a fixed order: the same result for any number of threads
  for (double v : per_direction) sum += v;
  return sum / double(total);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// public

Tensor pyramid_down(const Tensor& images) {
  check_resample_input("pyramid_down", images);
  NoGradGuard no_grad;
  return Operators(images.device()).apply(Resample::down, images);
}

Tensor pyramid_up(const Tensor& images) {
  check_resample_input("pyramid_up", images);
  NoGradGuard no_grad;
  return Operators(images.device()).apply(Resample::up, images);
}

std::vector<int> swd_resolutions(int image_size, const SwdOptions& o) {
  CUDAGAN_CHECK(o.min_resolution >= 4, "swd_resolutions: min_resolution must be >= 4, got ",
                o.min_resolution);
  CUDAGAN_CHECK(is_power_of_two(image_size) && image_size >= o.min_resolution, "swd_resolutions: image size ",
                image_size, " is not a power of two >= ", o.min_resolution, " (min_resolution)");
  std::vector<int> out;
  for (int r = image_size; r >= o.min_resolution; r /= 2) out.push_back(r);
  return out;
}

std::vector<Tensor> laplacian_pyramid(const Tensor& images, int min_resolution) {
  CUDAGAN_CHECK(min_resolution >= 4, "laplacian_pyramid: min_resolution must be >= 4, got ", min_resolution);
  check_square_pow2("laplacian_pyramid", "the input", images, min_resolution);
  NoGradGuard no_grad;
  Operators ops(images.device());
  std::vector<Tensor> levels;
  Tensor g = images;
  for (int r = int(images.size(2)); r / 2 >= min_resolution; r /= 2) {
    auto [lap, next] = ops.step(g);
    levels.push_back(lap);
    g = next;
  }
  levels.push_back(g);
  return levels;
}

std::vector<int32_t> swd_patch_corners(int set, int level, int64_t num_images, int resolution,
                                       const SwdOptions& o) {
  CUDAGAN_CHECK(set == 0 || set == 1, "swd_patch_corners: set must be 0 (a) or 1 (b), got ", set);
  CUDAGAN_CHECK(level >= 0 && num_images >= 0 && resolution >= o.patch_size && o.patch_size >= 1 &&
                    o.patches_per_image >= 1,
                "swd_patch_corners: bad arguments (level ", level, ", ", num_images, " images of ",
                resolution, "x", resolution, ", patch_size ", o.patch_size, ")");
  std::vector<int32_t> out(size_t(2 * num_images * o.patches_per_image));
  Rng gen = stream(o, set == 0 ? kCornersA : kCornersB, level);
  // Image by image, as sliced_wasserstein draws them chunk by chunk: the same sequence.
  for (int64_t i = 0; i < num_images; ++i)
    draw_corners(gen, o.patches_per_image, resolution, o.patch_size,
                 out.data() + 2 * i * o.patches_per_image);
  return out;
}

Tensor swd_directions(int level, const SwdOptions& o) {
  CUDAGAN_CHECK(level >= 0 && o.patch_size >= 1 && o.directions >= 1 && o.repeats >= 1,
                "swd_directions: bad arguments (level ", level, ", patch_size ", o.patch_size, ", ",
                o.repeats, " x ", o.directions, " directions)");
  const int64_t total = int64_t(o.repeats) * o.directions, d = 3 * int64_t(o.patch_size) * o.patch_size;
  Tensor dirs = Tensor::empty({total, d});
  float* out = dirs.data<float>();
  Rng gen = stream(o, kDirections, level);
  std::vector<double> v(static_cast<size_t>(d));
  for (int64_t j = 0; j < total; ++j) {
    double norm = 0;
    for (double& x : v) {
      x = gen.normal();
      norm += x * x;
    }
    norm = std::sqrt(norm);
    for (int64_t k = 0; k < d; ++k) out[j * d + k] = float(v[size_t(k)] / norm);
  }
  return dirs;
}

SwdResult sliced_wasserstein(const Tensor& a, const Tensor& b, const SwdOptions& o) {
  check_options(o);
  check_square_pow2("sliced_wasserstein", "the first set (a)", a, o.min_resolution);
  check_square_pow2("sliced_wasserstein", "the second set (b)", b, o.min_resolution);
  CUDAGAN_CHECK(a.shape() == b.shape(), "sliced_wasserstein: the sets differ in shape, ",
                shape_str(a.shape()), " and ", shape_str(b.shape()),
                "; give the same number of images of the same size");
  CUDAGAN_CHECK(a.size(1) == 1 || a.size(1) == 3, "sliced_wasserstein: images need 1 or 3 channels, got ",
                shape_str(a.shape()));
  NoGradGuard no_grad;
  SwdResult r;
  r.resolutions = swd_resolutions(int(a.size(2)), o);
  SetDescriptors set_a(a, 0, o), set_b(b, 1, o);
  const int levels = int(r.resolutions.size());
  for (int l = 0; l < levels; ++l) {
    const bool last = l + 1 == levels;
    // One level at a time: its descriptors of both sets are all the host holds.
    const Tensor da = set_a.descriptors(l, r.resolutions[size_t(l)], last);
    const Tensor db = set_b.descriptors(l, r.resolutions[size_t(l)], last);
    r.per_level_x1e3.push_back(1e3 *
                               projected_distance(da, a.device(), db, b.device(), swd_directions(l, o)));
  }
  for (double v : r.per_level_x1e3) r.average_x1e3 += v;
  r.average_x1e3 /= double(levels);
  return r;
}

}  // namespace cudagan::metrics
