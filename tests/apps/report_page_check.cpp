// apps.report_page_in_chromium: dcgan_train's OUT/index.html, opened in headless Chromium, shows its images.
//
//   cudagan_report_page_check CHROMIUM DCGAN_TRAIN MNIST_FOLDER
//
// Trains a few steps on MNIST with sample grids and evaluations (so every image the page links exists: the
// latest grid, real_samples.png, progress.gif, loss.png, metrics.png, fcd.png), takes a screenshot of the page
// with CHROMIUM, and looks for each PNG in it: a high-contrast 12x12 patch of the file must appear somewhere in
// the screenshot with its pixels (the page draws images at their natural size, unscaled). A missing, broken or
// rescaled image fails. Also checks that the page is whole (ends with </html>) and that no temporary file of the
// atomic rewrite is left. Exits 0 when all is well, 1 when not, 77 (CTest: skipped) when CHROMIUM is not there.
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "cudagan/io/image_io.h"
#include "support/temp_dir.h"

using namespace cudagan;
namespace fs = std::filesystem;

namespace {

constexpr int kSkip = 77;
constexpr int kPatch = 12;

int run(const std::string& cmd, std::string* output) {
  std::FILE* pipe = popen((cmd + " 2>&1").c_str(), "r");
  if (!pipe) return -1;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe))
    if (output) *output += buf;
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The top-left corner of the kPatch x kPatch square of `img` (RGB) whose values vary the most, on a coarse
// lattice: a patch of flat background would match anywhere.
std::pair<int, int> busiest_patch(const Image& img) {
  double best = -1;
  std::pair<int, int> at{0, 0};
  for (int y = 0; y + kPatch <= img.height; y += 3)
    for (int x = 0; x + kPatch <= img.width; x += 3) {
      double sum = 0, sq = 0;
      for (int dy = 0; dy < kPatch; ++dy)
        for (int dx = 0; dx < kPatch; ++dx)
          for (int c = 0; c < 3; ++c) {
            const double v = img.at(x + dx, y + dy, c);
            sum += v;
            sq += v * v;
          }
      const double n = kPatch * kPatch * 3, var = sq / n - (sum / n) * (sum / n);
      if (var > best) {
        best = var;
        at = {x, y};
      }
    }
  return at;
}

// Whether the patch of `img` at (px, py) appears in `shot`: every pixel within 24 per channel and a mean
// difference under 4 (colour management may move values slightly; a different image moves them a lot).
bool appears(const Image& shot, const Image& img, int px, int py) {
  for (int y = 0; y + kPatch <= shot.height; ++y)
    for (int x = 0; x + kPatch <= shot.width; ++x) {
      bool ok = true;
      double total = 0;
      for (int dy = 0; dy < kPatch && ok; ++dy)
        for (int dx = 0; dx < kPatch && ok; ++dx)
          for (int c = 0; c < 3; ++c) {
            const int d = std::abs(int(shot.at(x + dx, y + dy, c)) - int(img.at(px + dx, py + dy, c)));
            if (d > 24) {
              ok = false;
              break;
            }
            total += d;
          }
      if (ok && total / (kPatch * kPatch * 3) < 4) return true;
    }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: cudagan_report_page_check CHROMIUM DCGAN_TRAIN MNIST_FOLDER\n";
    return 2;
  }
  const std::string chromium = argv[1], train = argv[2], mnist = argv[3];
  if (chromium.find("NOTFOUND") != std::string::npos || !fs::exists(chromium)) {
    std::cout << "skipped: no Chromium to open the page with (apt-get install chromium)\n";
    return kSkip;
  }
  try {
    test::TempDir tmp;
    const std::string out = tmp.str("out");
    std::string log;
    const int trained = run(train + " " + mnist + " " + out +
                                " --image-size 32 --nz 8 --ngf 8 --ndf 8 --batch-size 16 --workers 1 --device cpu"
                                " --max-steps 6 --sample-every 3 --eval-every 3 --eval-images 128",
                            &log);
    if (trained != 0) {
      std::cout << "FAIL: dcgan_train exited with " << trained << ":\n" << log;
      return 1;
    }
    int failures = 0;
    auto fail = [&failures](const std::string& what) {
      std::cout << "FAIL: " << what << "\n";
      ++failures;
    };
    std::ifstream page(out + "/index.html");
    std::stringstream html;
    html << page.rdbuf();
    if (html.str().find("</html>") == std::string::npos) fail("index.html is missing or not whole");
    for (const auto& e : fs::directory_iterator(out))
      if (e.path().filename().string().rfind("index.html", 0) == 0 && e.path().filename() != "index.html")
        fail("a temporary file of the page's rewrite is left: " + e.path().string());
    const std::string shot = tmp.str("shot.png");
    std::string chromium_log;
    run("timeout 120 " + chromium + " --headless --no-sandbox --disable-gpu --hide-scrollbars"
        " --force-device-scale-factor=1 --user-data-dir=" + tmp.str("profile") +
        " --window-size=1400,2600 --screenshot=" + shot + " file://" + fs::absolute(out).string() + "/index.html",
        &chromium_log);
    if (!fs::exists(shot)) {
      std::cout << "FAIL: Chromium wrote no screenshot:\n" << chromium_log;
      return 1;
    }
    const Image screen = read_image(shot, 3);
    std::vector<std::string> images{"samples/step_0000006.png", "real_samples.png", "loss.png", "metrics.png",
                                    "fcd.png"};
    for (const std::string& name : images) {
      const fs::path file = fs::path(out) / name;
      if (!fs::exists(file)) {
        fail(name + " was not written");
        continue;
      }
      const Image img = read_image(file.string(), 3);
      const auto [px, py] = busiest_patch(img);
      const bool shown = appears(screen, img, px, py);
      std::cout << (shown ? "shown: " : "not shown: ") << name << "\n";
      if (!shown) fail(name + " does not appear in the screenshot of index.html");
    }
    if (failures) {
      std::cout << "the screenshot was " << screen.width << "x" << screen.height << "; page:\n" << html.str();
      return 1;
    }
    std::cout << "index.html shows all " << images.size() << " images in Chromium\n";
    return 0;
  } catch (const std::exception& e) {
    std::cout << "FAIL: " << e.what() << "\n";
    return 1;
  }
}
