// dcgan_train and dcgan_sample as a user runs them: a short CPU training run writes every output,
// a resumed run continues exactly, --config repeats a run, and each user error ends with a one-line
// message and a non-zero exit.
#include <catch2/catch.hpp>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cudagan/io/image_io.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;

namespace {

struct Run {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

Run run(const std::string& args) {
  const std::string cmd = std::string(CUDAGAN_DCGAN_TRAIN) + " " + args + " 2>&1";
  Run r;
  std::FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe);
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), int(buf.size()), pipe)) r.output += buf.data();
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

Run run_sample(const std::string& args) {
  const std::string cmd = std::string(CUDAGAN_DCGAN_SAMPLE) + " " + args + " 2>&1";
  Run r;
  std::FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe);
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), int(buf.size()), pipe)) r.output += buf.data();
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

using cudagan::test::TempDir;

// Tiny networks on 16x16 images: seconds on a CPU.
const std::string kTiny = " --image-size 16 --nz 8 --ngf 4 --ndf 4 --batch-size 8 --workers 1 --device cpu ";

std::vector<std::string> loss_columns(const std::string& csv) {
  std::ifstream in(csv);
  std::vector<std::string> rows;
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {  // step .. d_g_z2: everything but the timings
    size_t cut = 0;
    for (int commas = 0; commas < 7 && cut != std::string::npos; ++commas) cut = line.find(',', cut + 1);
    rows.push_back(line.substr(0, cut));
  }
  return rows;
}

// A small image folder of 20 PNGs, 2.5 batches of 8: epochs end with a partial batch dropped.
void write_images(const fs::path& dir) {
  fs::create_directories(dir / "nested");
  std::mt19937 rng(5);
  for (int i = 0; i < 20; ++i) {
    cudagan::Image img{24, 20, 3, std::vector<uint8_t>(24 * 20 * 3)};
    for (auto& p : img.pixels) p = uint8_t(rng() % 256);
    cudagan::write_png((dir / (i % 2 ? "nested" : "") / ("img" + std::to_string(i) + ".png")).string(), img);
  }
}

bool one_line_error(const Run& r) {
  return r.exit_code != 0 && r.output.find("error: ") != std::string::npos &&
         r.output.find("terminate") == std::string::npos;
}

}  // namespace

TEST_CASE("dcgan_train: a short CPU run writes every output", "[app][training]") {
  TempDir tmp;
  write_images(tmp.path / "images");
  const Run r = run(tmp.str("images") + " " + tmp.str("out") + kTiny + "--epochs 2 --sample-every 1 --log-every 1");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  for (const char* f : {"config.yaml", "real_samples.png", "losses.csv", "loss.png", "progress.gif",
                        "samples/step_0000001.png", "samples/step_0000004.png", "checkpoints/latest.safetensors",
                        "checkpoints/epoch_001.safetensors", "checkpoints/epoch_002.safetensors"})
    CHECK(fs::exists(tmp.path / "out" / f));
  CHECK(loss_columns(tmp.str("out/losses.csv")).size() == 4);  // 2 epochs x 2 full batches
  CHECK(r.output.find("[1/2][2/2] Loss_D:") != std::string::npos);
  CHECK(r.output.find("img/s") != std::string::npos);
  const cudagan::Image grid = cudagan::read_image(tmp.str("out/samples/step_0000004.png"));
  CHECK(grid.width == 8 * 16 + 9 * 2);
  for (const auto& e : fs::directory_iterator(tmp.path / "out"))
    CHECK(e.path().string().find(".tmp") == std::string::npos);  // no temporary file left behind
}

TEST_CASE("dcgan_train: --resume continues exactly (CPU)", "[app][training][resume]") {
  TempDir tmp;
  const Run whole = run("synthetic " + tmp.str("whole") + kTiny + "--max-steps 8");
  REQUIRE(whole.exit_code == 0);
  const Run first = run("synthetic " + tmp.str("split") + kTiny + "--max-steps 4");
  REQUIRE(first.exit_code == 0);
  const Run second = run("synthetic " + tmp.str("split") + kTiny + "--max-steps 8 --resume latest");
  INFO(second.output);
  REQUIRE(second.exit_code == 0);
  CHECK(second.output.find("resuming from") != std::string::npos);
  const auto a = loss_columns(tmp.str("whole/losses.csv")), b = loss_columns(tmp.str("split/losses.csv"));
  REQUIRE(a.size() == 8);
  CHECK(a == b);
}

TEST_CASE("dcgan_train: --config OUT/config.yaml repeats a run, flags override it", "[app][config]") {
  TempDir tmp;
  REQUIRE(run("synthetic " + tmp.str("a") + kTiny + "--max-steps 3 --lr 3e-4").exit_code == 0);
  const Run again = run("--config " + tmp.str("a/config.yaml") + " synthetic " + tmp.str("b"));
  INFO(again.output);
  REQUIRE(again.exit_code == 0);
  CHECK(loss_columns(tmp.str("a/losses.csv")) == loss_columns(tmp.str("b/losses.csv")));
  std::ifstream yaml(tmp.str("b/config.yaml"));
  std::stringstream text;
  text << yaml.rdbuf();
  CHECK(text.str().find("lr: 0.0003") != std::string::npos);
  const Run overridden = run("--config " + tmp.str("a/config.yaml") + " synthetic " + tmp.str("c") + " --max-steps 2");
  REQUIRE(overridden.exit_code == 0);
  CHECK(loss_columns(tmp.str("c/losses.csv")).size() == 2);
}

TEST_CASE("dcgan_train: user errors end with one line and a non-zero exit", "[app][errors]") {
  TempDir tmp;
  fs::create_directories(tmp.path / "empty");
  struct Case {
    std::string args, expected;
  };
  const Case cases[] = {
      {tmp.str("missing") + " " + tmp.str("o1") + kTiny, "does not exist"},
      {tmp.str("empty") + " " + tmp.str("o2") + kTiny, "no images"},
      {"synthetic " + tmp.str("o3") + kTiny + "--image-size 48", "power of two"},
      {"synthetic " + tmp.str("o4") + kTiny + "--batch-size 0", "--batch-size"},
      {"synthetic /proc/cudagan_cannot_write" + kTiny, "cannot"},
      {"synthetic " + tmp.str("o5") + kTiny + "--channels 2", "--channels"},
      {"synthetic " + tmp.str("o6") + kTiny + "--resume " + tmp.str("nothing.safetensors"), "does not exist"},
  };
  for (const Case& c : cases) {
    const Run r = run(c.args);
    INFO(c.args << "\n" << r.output);
    CHECK(one_line_error(r));
    CHECK(r.output.find(c.expected) != std::string::npos);
  }
  // A checkpoint from a different architecture.
  REQUIRE(run("synthetic " + tmp.str("ok") + kTiny + "--max-steps 1").exit_code == 0);
  const Run mismatch = run("synthetic " + tmp.str("ok") + kTiny + "--ngf 8 --max-steps 2 --resume latest");
  INFO(mismatch.output);
  CHECK(one_line_error(mismatch));
  CHECK(mismatch.output.find("same settings") != std::string::npos);
  // A truncated checkpoint.
  fs::resize_file(tmp.path / "ok/checkpoints/latest.safetensors", 100);
  const Run truncated = run("synthetic " + tmp.str("ok") + kTiny + "--max-steps 2 --resume latest");
  INFO(truncated.output);
  CHECK(one_line_error(truncated));
  CHECK(run("--help").exit_code == 0);
  CHECK(run("--no-such-flag").exit_code != 0);
}

TEST_CASE("dcgan_train: a NaN loss stops training, names the step and keeps the last good checkpoint",
          "[app][errors]") {
  TempDir tmp;
  REQUIRE(run("synthetic " + tmp.str("out") + kTiny + "--max-steps 2").exit_code == 0);
  const fs::path latest = tmp.path / "out/checkpoints/latest.safetensors";
  REQUIRE(fs::exists(latest));
  const std::string good = cudagan::test::read_bytes(latest);
  // lr 1e30 sends D's weights to ~1e30 in one Adam step: the next products overflow and the loss is NaN.
  const Run diverged = run("synthetic " + tmp.str("out") + kTiny + "--max-steps 6 --lr 1e30 --resume latest");
  INFO(diverged.output);
  CHECK(one_line_error(diverged));
  CHECK(diverged.output.find("NaN/Inf at step 3") != std::string::npos);
  CHECK(diverged.output.find("last good checkpoint") != std::string::npos);
  CHECK(cudagan::test::read_bytes(latest) == good);  // the step-2 checkpoint, untouched
  CHECK(loss_columns(tmp.str("out/losses.csv")).size() == 2);  // no row for the NaN step
  // Diverging before any checkpoint exists says so instead of pointing at one.
  const Run first = run("synthetic " + tmp.str("fresh") + kTiny + "--max-steps 3 --lr 1e30");
  INFO(first.output);
  CHECK(one_line_error(first));
  CHECK(first.output.find("no checkpoint had been written yet") != std::string::npos);
}

TEST_CASE("dcgan_sample: grid, folder and interpolation from a checkpoint", "[app][sample]") {
  TempDir tmp;
  REQUIRE(run("synthetic " + tmp.str("run") + kTiny + "--max-steps 2").exit_code == 0);
  const std::string ckpt = tmp.str("run/checkpoints/latest.safetensors");
  Run r = run_sample(ckpt + " " + tmp.str("grid.png") + " --n 16 --device cpu");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(cudagan::read_image(tmp.str("grid.png")).width == 8 * 16 + 9 * 2);
  r = run_sample(ckpt + " " + tmp.str("folder") + " --folder --n 3 --eval-bn --device cpu");
  REQUIRE(r.exit_code == 0);
  CHECK(fs::exists(tmp.path / "folder/sample_00002.png"));
  CHECK(cudagan::read_image(tmp.str("folder/sample_00000.png")).width == 16);
  r = run_sample(ckpt + " " + tmp.str("interp.png") + " --interpolate --n 2 --steps 5 --device cpu");
  REQUIRE(r.exit_code == 0);
  const cudagan::Image interp = cudagan::read_image(tmp.str("interp.png"));
  CHECK(interp.width == 5 * 16 + 6 * 2);
  CHECK(interp.height == 2 * 16 + 3 * 2);
  r = run_sample(tmp.str("missing.safetensors") + " " + tmp.str("x.png"));
  CHECK(r.exit_code != 0);
  CHECK(r.output.find("does not exist") != std::string::npos);
}
