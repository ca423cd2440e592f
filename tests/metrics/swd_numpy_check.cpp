// metrics.swd_numpy_agrees: sliced_wasserstein against an independent numpy implementation
// (tests/metrics/swd_reference.py), on the same images and the same random choices.
//
//   cudagan_swd_numpy_check PYTHON3 SCRIPT MNIST_FOLDER
//
// For each case it writes both sets, the patch corners and the directions of every level (swd_patch_corners,
// swd_directions) to a temporary folder, runs PYTHON3 SCRIPT FOLDER, and requires each per-level value and
// the average (x 1e3) to agree within 1e-3 x max(|numpy's value|, 1): relative 1e-3 for the values the metric
// takes on real data (5 .. 1000), absolute 1e-3 near zero. The cases: MNIST halves (gray, 32x32, replicated
// to RGB), the synthetic set against itself with noise (RGB, 64x64: three levels), and MNIST against blank
// images (a channel without signal on one side). Chunks of 40 images that do not divide the sets check that
// chunking changes nothing. Exits 0 when all agree, 1 when one does not, 77 (CTest: skipped) without python3
// or numpy.
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "cudagan/core/error.h"
#include "cudagan/core/rng.h"
#include "cudagan/data/data.h"
#include "cudagan/metrics/swd.h"
#include "cudagan/ops/ops.h"
#include "support/temp_dir.h"

using namespace cudagan;
namespace fs = std::filesystem;

namespace {

constexpr int kSkip = 77;
constexpr double kTolerance = 1e-3;

// Images [first, first + count) of a dataset as one tensor [count, C, S, S].
Tensor load(const data::Dataset& d, int64_t first, int64_t count) {
  std::vector<float> v(size_t(count * d.sample_numel()));
  for (int64_t i = 0; i < count; ++i)
    if (!d.load(first + i, v.data() + i * d.sample_numel(), nullptr))
      throw Error("cannot decode sample " + d.name(first + i));
  return Tensor::from_vector(v, {count, d.channels(), d.image_size(), d.image_size()});
}

template <class T>
void write_raw(const fs::path& path, const T* p, size_t n) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(p), std::streamsize(n * sizeof(T)));
  if (!out) throw Error("cannot write " + path.string());
}

// Runs a shell command; its exit code and stdout.
int run(const std::string& cmd, std::string* output) {
  std::FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return -1;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe)) *output += buf;
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The numbers after "key": [ in a line of JSON (the script's output, which we wrote the format of).
std::vector<double> json_numbers(const std::string& text, const std::string& key) {
  std::vector<double> out;
  size_t at = text.find("\"" + key + "\"");
  if (at == std::string::npos) return out;
  at = text.find_first_of("[0123456789-", text.find(':', at));
  if (text[at] != '[') return {std::stod(text.substr(at))};
  std::istringstream in(text.substr(at + 1, text.find(']', at) - at - 1));
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stod(item));
  return out;
}

bool agree(double ours, double theirs) {
  return std::fabs(ours - theirs) <= kTolerance * std::max(std::fabs(theirs), 1.0);
}

// One case: returns 0 (agree), 1 (disagree) or kSkip.
int check(const std::string& name, const Tensor& a, const Tensor& b, const std::string& python,
          const std::string& script) {
  metrics::SwdOptions o;
  o.chunk_images = 40;
  const metrics::SwdResult ours = metrics::sliced_wasserstein(a, b, o);

  test::TempDir dir;
  const int64_t n = a.size(0);
  const int s = int(a.size(2));
  {
    std::ofstream h(dir.file("header.json"));
    h << "{\"n\": " << n << ", \"channels\": " << a.size(1) << ", \"size\": " << s
      << ", \"patch_size\": " << o.patch_size << ", \"patches_per_image\": " << o.patches_per_image
      << ", \"min_std\": " << metrics::kSwdMinStd << ", \"resolutions\": [";
    for (size_t l = 0; l < ours.resolutions.size(); ++l) h << (l ? ", " : "") << ours.resolutions[l];
    h << "]}\n";
  }
  const std::vector<float> va = a.to_float_vector(), vb = b.to_float_vector();
  write_raw(dir.path / "a.bin", va.data(), va.size());
  write_raw(dir.path / "b.bin", vb.data(), vb.size());
  for (int l = 0; l < int(ours.resolutions.size()); ++l) {
    const int res = ours.resolutions[size_t(l)];
    for (int set = 0; set < 2; ++set) {
      const std::vector<int32_t> c = metrics::swd_patch_corners(set, l, n, res, o);
      write_raw(dir.path / ((set ? "corners_b_" : "corners_a_") + std::to_string(l) + ".bin"), c.data(),
                c.size());
    }
    const std::vector<float> d = metrics::swd_directions(l, o).to_float_vector();
    write_raw(dir.path / ("directions_" + std::to_string(l) + ".bin"), d.data(), d.size());
  }

  std::string out;
  const int rc = run("'" + python + "' '" + script + "' '" + dir.str() + "'", &out);
  if (rc == kSkip) {
    std::cout << "SKIPPED: " << out;
    return kSkip;
  }
  if (rc != 0) {
    std::cout << name << ": " << script << " exited with " << rc << ":\n" << out;
    return 1;
  }
  const std::vector<double> theirs = json_numbers(out, "per_level_x1e3");
  const std::vector<double> theirs_avg = json_numbers(out, "average_x1e3");
  if (theirs.size() != ours.per_level_x1e3.size() || theirs_avg.size() != 1) {
    std::cout << name << ": cannot read the script's output: " << out;
    return 1;
  }
  int bad = 0;
  std::cout << name << " (" << n << " vs " << n << " images):\n";
  for (size_t l = 0; l <= theirs.size(); ++l) {
    const bool avg = l == theirs.size();
    const double x = avg ? ours.average_x1e3 : ours.per_level_x1e3[l], y = avg ? theirs_avg[0] : theirs[l];
    const bool ok = agree(x, y);
    bad += !ok;
    std::printf("  %-8s cudagan %12.6f  numpy %12.6f  diff %9.2e  %s\n",
                avg ? "average" : (std::to_string(ours.resolutions[l]) + "x").c_str(), x, y, x - y,
                ok ? "ok" : "DISAGREE");
  }
  return bad ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: cudagan_swd_numpy_check PYTHON3 SCRIPT MNIST_FOLDER\n";
    return 2;
  }
  const std::string python = argv[1], script = argv[2], mnist = argv[3];
  std::string probe;
  if (run("'" + python + "' -c 'import numpy' 2>&1", &probe) != 0) {
    std::cout << "SKIPPED: no python3 with numpy (" << python << "; apt-get install python3-numpy)\n";
    return kSkip;
  }
  try {
    // MNIST when the files are there; otherwise the synthetic set in gray stands in for it.
    const auto digits = data::has_mnist_split(mnist, "train") ? data::open_mnist(mnist, "train", 32)
                                                              : data::open_synthetic(32, 1);
    std::cout << "gray set: " << digits->describe() << "\n";
    const auto scenes = data::open_synthetic(64, 3);
    const Tensor half_a = load(*digits, 0, 96), half_b = load(*digits, 96, 96);
    const Tensor scenes_a = load(*scenes, 0, 48);
    Rng gen(7);
    const Tensor scenes_noisy = add(
        load(*scenes, 48, 48), Tensor::randn({48, 3, 64, 64}, gen, DType::float32, Device::cpu(), 0.0, 0.1));
    const Tensor blank = Tensor::full(half_b.shape(), -1.0);
    int worst = 0;
    for (const int rc : {check("MNIST halves", half_a, half_b, python, script),
                         check("synthetic vs synthetic + noise 0.1", scenes_a, scenes_noisy, python, script),
                         check("MNIST vs blank", half_a, blank, python, script)}) {
      if (rc == kSkip) return kSkip;
      worst = std::max(worst, rc);
    }
    std::cout << (worst ? "metrics.swd_numpy_agrees: FAILED\n" : "metrics.swd_numpy_agrees: all agree\n");
    return worst;
  } catch (const std::exception& e) {
    std::cout << "metrics.swd_numpy_agrees: " << e.what() << "\n";
    return 1;
  }
}
