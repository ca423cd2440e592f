// dcgan_train and dcgan_sample as a user runs them: a short CPU training run writes every output,
// a resumed run continues exactly, --config repeats a run, and each user error ends with a one-line
// message and a non-zero exit.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cudagan/dcgan_checkpoint.h"
#include "cudagan/io/image_io.h"
#include "support/process.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;

namespace {

using cudagan::test::Run;
using cudagan::test::run_program;

Run run(const std::string& args) { return run_program(CUDAGAN_DCGAN_TRAIN, args); }
Run run_sample(const std::string& args) { return run_program(CUDAGAN_DCGAN_SAMPLE, args); }
Run run_eval(const std::string& args) { return run_program(CUDAGAN_DCGAN_EVAL, args); }

using cudagan::test::TempDir;

// Tiny networks on 16x16 images: seconds on a CPU.
// No quality evaluations (--eval-every 0) but where a test asks for them: they would dominate these runs.
const std::string kTiny =
    " --image-size 16 --nz 8 --ngf 4 --ndf 4 --batch-size 8 --workers 1 --device cpu --eval-every 0 ";

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

// A program running in the background, its stdout and stderr on a pipe: the tests read its lines until
// one they wait for, send it signals, then collect the rest and its exit status.
class Spawned {
 public:
  explicit Spawned(const std::string& cmd) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      dup2(fds[1], 1);
      dup2(fds[1], 2);
      close(fds[0]);
      close(fds[1]);
      execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), static_cast<char*>(nullptr));  // the pid stays
      _exit(127);
    }
    close(fds[1]);
    out_ = fdopen(fds[0], "r");
    REQUIRE(out_);
  }
  ~Spawned() {
    if (pid_ > 0 && status_ < 0) {
      kill(pid_, SIGKILL);
      finish();
    }
    if (out_) std::fclose(out_);
  }
  // Reads until `count` lines containing `text` have appeared; false at the end of the output.
  bool wait_for(const std::string& text, int count = 1) {
    std::array<char, 4096> buf{};
    int seen = 0;
    while (seen < count && std::fgets(buf.data(), int(buf.size()), out_)) {
      output += buf.data();
      if (std::string(buf.data()).find(text) != std::string::npos) ++seen;
    }
    return seen == count;
  }
  void signal(int sig) const { REQUIRE(kill(pid_, sig) == 0); }
  // Reads the rest and waits for the exit; returns the raw wait status.
  int finish() {
    std::array<char, 4096> buf{};
    while (std::fgets(buf.data(), int(buf.size()), out_)) output += buf.data();
    REQUIRE(waitpid(pid_, &status_, 0) == pid_);
    return status_;
  }
  std::string output;

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  std::FILE* out_ = nullptr;
};

// The step recorded in a dcgan_train checkpoint (loaded into networks of the architecture it names).
int64_t checkpoint_step(const std::string& path) {
  cudagan::Rng rng(1);
  const cudagan::dcgan::Architecture arch = cudagan::dcgan::checkpoint_architecture(path);
  cudagan::dcgan::Generator g(arch, rng);
  cudagan::dcgan::Discriminator d(arch, rng);
  cudagan::optim::Adam opt_g(g.parameters(), {}), opt_d(d.parameters(), {});
  return cudagan::dcgan::load_checkpoint(path, g, d, opt_g, opt_d).step;
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
  for (const char* f : {"config.yaml", "real_samples.png", "losses.csv", "loss.png", "progress.gif", "index.html",
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
  CHECK(text.str().find("checkpoint-minutes: 10") != std::string::npos);
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
      {"synthetic " + tmp.str("o7") + kTiny + "--checkpoint-minutes -1", "--checkpoint-minutes"},
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
  // Found by fuzz_config: a flag key whose value is not a boolean threw yaml-cpp's own exception, which the
  // program reported as "bad conversion" without naming the key.
  std::ofstream(tmp.str("bad.yaml")) << "tf32: fals8e\n";
  const Run not_bool = run("--config " + tmp.str("bad.yaml") + " synthetic " + tmp.str("nb") + kTiny);
  INFO(not_bool.output);
  CHECK(one_line_error(not_bool));
  CHECK(not_bool.output.find("'tf32' must be true or false, got 'fals8e'") != std::string::npos);
  // Found by fuzz_config too: a key that is not a scalar ("? --0~: dis", a null key) escaped as yaml-cpp's
  // "bad conversion".
  std::ofstream(tmp.str("key.yaml")) << "? [a, b]\n: 3\n";
  const Run odd_key = run("--config " + tmp.str("key.yaml") + " synthetic " + tmp.str("ok") + kTiny);
  INFO(odd_key.output);
  CHECK(one_line_error(odd_key));
  CHECK(odd_key.output.find("every key must be a flag's name") != std::string::npos);
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

TEST_CASE("dcgan_train and dcgan_sample: a damaged checkpoint is named; one without checksums loads with a note",
          "[app][checksum]") {
  TempDir tmp;
  REQUIRE(run("synthetic " + tmp.str("out") + kTiny + "--max-steps 2").exit_code == 0);
  const std::string latest = tmp.str("out/checkpoints/latest.safetensors");
  const std::string good = cudagan::test::read_bytes(latest);
  const auto write = [&](const std::string& bytes) { std::ofstream(latest, std::ios::binary) << bytes; };

  std::string flipped = good;
  flipped[flipped.size() - 3] = char(flipped[flipped.size() - 3] ^ 0x10);  // in the last tensor's data
  write(flipped);
  const Run resumed = run("synthetic " + tmp.str("out") + kTiny + "--max-steps 4 --resume latest");
  INFO(resumed.output);
  CHECK(one_line_error(resumed));
  CHECK(resumed.output.find("is damaged") != std::string::npos);
  CHECK(resumed.output.find("latest.safetensors") != std::string::npos);
  const Run sampled = run_sample(latest + " " + tmp.str("grid.png") + " --device cpu");
  CHECK(sampled.exit_code != 0);
  CHECK(sampled.output.find("is damaged") != std::string::npos);
  CHECK_FALSE(fs::exists(tmp.path / "grid.png"));

  // As an older cudagan wrote it: the same file without the checksum list (blanked: the header keeps its length).
  std::string unchecked = good;
  const size_t at = unchecked.find(",\"crc32\":\""), end = unchecked.find('"', at + 10);
  REQUIRE(at != std::string::npos);
  unchecked.replace(at, end + 1 - at, std::string(end + 1 - at, ' '));
  write(unchecked);
  const Run old = run("synthetic " + tmp.str("out") + kTiny + "--max-steps 4 --resume latest");
  INFO(old.output);
  CHECK(old.exit_code == 0);
  CHECK(old.output.find("carries no checksums") != std::string::npos);
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

namespace {
// Cell (row, col) of a grid PNG of size x size images (kTiny's 16) with 2-pixel padding, as make_grid lays
// it out.
std::vector<uint8_t> grid_cell(const cudagan::Image& grid, int row, int col, int size = 16) {
  std::vector<uint8_t> cell;
  const int x0 = 2 + col * (size + 2), y0 = 2 + row * (size + 2);
  for (int y = y0; y < y0 + size; ++y)
    for (int x = x0; x < x0 + size; ++x)
      for (int c = 0; c < grid.channels; ++c) cell.push_back(grid.at(x, y, c));
  return cell;
}
}  // namespace

TEST_CASE("dcgan_sample --arithmetic: groups of grid samples, their means and the result", "[app][sample]") {
  TempDir tmp;
  REQUIRE(run("synthetic " + tmp.str("run") + kTiny + "--max-steps 2").exit_code == 0);
  const std::string ckpt = tmp.str("run/checkpoints/latest.safetensors");
  const std::string common = " --n 16 --seed 5 --eval-bn --device cpu";
  REQUIRE(run_sample(ckpt + " " + tmp.str("grid.png") + common).exit_code == 0);
  const Run r = run_sample(ckpt + " " + tmp.str("sum.png") + common + " --arithmetic \"3,12,7 - 5 + 0,15\"");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const cudagan::Image grid = cudagan::read_image(tmp.str("grid.png"));
  const cudagan::Image sheet = cudagan::read_image(tmp.str("sum.png"));
  // 3 group rows and the result row; 9 columns: the result and its 8 neighbours.
  CHECK(sheet.width == 9 * 16 + 10 * 2);
  CHECK(sheet.height == 4 * 16 + 5 * 2);
  // The inputs are the grid's own images (8 per grid row): sample 12 is grid cell (1, 4).
  CHECK(grid_cell(sheet, 0, 1) == grid_cell(grid, 1, 4));
  CHECK(grid_cell(sheet, 1, 0) == grid_cell(grid, 0, 5));
  CHECK(grid_cell(sheet, 2, 1) == grid_cell(grid, 1, 7));
  // A group of one has its own sample as its mean: the image after it repeats it (eval-mode batchnorm).
  CHECK(grid_cell(sheet, 1, 1) == grid_cell(grid, 0, 5));
  // "3 - 3 + 3" is sample 3 again.
  REQUIRE(run_sample(ckpt + " " + tmp.str("same.png") + common + " --arithmetic \"3 - 3 + 3\"").exit_code == 0);
  const cudagan::Image same = cudagan::read_image(tmp.str("same.png"));
  CHECK(grid_cell(same, 3, 0) == grid_cell(grid, 0, 3));
  CHECK(grid_cell(same, 3, 1) != grid_cell(grid, 0, 3));  // a neighbour is another point
  for (const char* bad : {"3 - - 4", "3,", "70", "3 x 4", "", "4 5"}) {
    const Run e = run_sample(ckpt + " " + tmp.str("bad.png") + common + " --arithmetic \"" + bad + "\"");
    INFO(bad << ": " << e.output);
    CHECK(e.exit_code != 0);
    CHECK(e.output.find("--arithmetic") != std::string::npos);
    CHECK(!fs::exists(tmp.path / "bad.png"));
  }
  const Run range = run_sample(ckpt + " " + tmp.str("bad.png") + common + " --arithmetic 70");
  CHECK(range.output.find("sample 70 is not in the grid of 16 samples") != std::string::npos);
}

namespace {
// dcgan_train on the synthetic set (10000 images: 1250 batches an epoch, so no epoch ends here), logging
// every step, checkpointing only at the stop; a few seconds to its end should it ignore the signal.
const std::string kLong = kTiny + "--max-steps 3000 --log-every 1 --checkpoint-every 1000000 --checkpoint-minutes 0 ";

std::string train_cmd(const std::string& args) { return std::string(CUDAGAN_DCGAN_TRAIN) + " " + args; }

// "stopped by SIGINT at step 12; resume with: dcgan_train --config OUT/config.yaml --resume latest":
// the step and the command, or -1 and "" when the line is not there.
std::pair<int64_t, std::string> stop_line(const std::string& output, const std::string& signal) {
  const std::string head = "stopped by " + signal + " at step ", sep = "; resume with: ";
  const size_t at = output.find(head);
  if (at == std::string::npos) return {-1, ""};
  const size_t number = at + head.size(), semi = output.find(sep, number), end = output.find('\n', number);
  if (semi == std::string::npos || semi > end) return {-1, ""};
  return {std::stoll(output.substr(number, semi - number)), output.substr(semi + sep.size(), end - semi - sep.size())};
}
}  // namespace

TEST_CASE("dcgan_train: SIGINT / SIGTERM stop after the step, checkpoint, and say how to resume",
          "[app][training][signal]") {
  TempDir tmp;
  for (const int sig : {SIGINT, SIGTERM}) {
    const std::string name = sig == SIGINT ? "SIGINT" : "SIGTERM", out = tmp.str(name);
    Spawned p(train_cmd("synthetic " + out + kLong));
    REQUIRE(p.wait_for("Loss_D:", 3));
    p.signal(sig);
    const int status = p.finish();
    INFO(p.output);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == (sig == SIGINT ? 130 : 143));
    const auto [step, resume] = stop_line(p.output, name);
    REQUIRE(step >= 3);
    CHECK(resume == "dcgan_train --config " + out + "/config.yaml --resume latest");
    CHECK(checkpoint_step(out + "/checkpoints/latest.safetensors") == step);
    const auto rows = loss_columns(out + "/losses.csv");
    REQUIRE(rows.size() == size_t(step));
    CHECK(rows.back().rfind(std::to_string(step) + ",", 0) == 0);
    CHECK(fs::exists(out + "/loss.png"));
    CHECK(fs::exists(out + "/progress.gif"));  // the stop's sample grid, its one frame
    char grid[32];
    std::snprintf(grid, sizeof grid, "/samples/step_%07lld.png", (long long)step);
    CHECK(fs::exists(out + grid));
    for (const auto& e : fs::directory_iterator(out + "/checkpoints"))
      CHECK(e.path().string().find(".tmp") == std::string::npos);
    if (sig != SIGINT) continue;

    // The command it printed continues from that step, exactly as a run that was never stopped.
    const std::string more = " --max-steps " + std::to_string(step + 3);
    const Run resumed = run(resume.substr(std::string("dcgan_train ").size()) + more);
    INFO(resumed.output);
    REQUIRE(resumed.exit_code == 0);
    CHECK(resumed.output.find("at step " + std::to_string(step) + " ") != std::string::npos);
    REQUIRE(run("synthetic " + tmp.str("straight") + kLong + more).exit_code == 0);
    CHECK(loss_columns(out + "/losses.csv") == loss_columns(tmp.str("straight/losses.csv")));
  }
}

TEST_CASE("dcgan_train: a second signal ends it at once and the last checkpoint stays whole",
          "[app][training][signal]") {
  TempDir tmp;
  REQUIRE(run("synthetic " + tmp.str("out") + kTiny + "--max-steps 2").exit_code == 0);
  const fs::path latest = tmp.path / "out/checkpoints/latest.safetensors";
  const std::string good = cudagan::test::read_bytes(latest);
  Spawned p(train_cmd("synthetic " + tmp.str("out") + kLong + "--resume latest"));
  REQUIRE(p.wait_for("Loss_D:", 3));
  const auto sent = std::chrono::steady_clock::now();
  p.signal(SIGINT);
  p.signal(SIGTERM);
  const int status = p.finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count();
  INFO(p.output);
  REQUIRE(WIFSIGNALED(status));  // the default action: no clean stop, no exit status of its own
  CHECK((WTERMSIG(status) == SIGINT || WTERMSIG(status) == SIGTERM));  // whichever came second
  CHECK(seconds < 5);
  CHECK(p.output.find("stopped by") == std::string::npos);
  CHECK(cudagan::test::read_bytes(latest) == good);  // the step-2 checkpoint, untouched
  CHECK(checkpoint_step(latest.string()) == 2);
}

TEST_CASE("dcgan_sample --folder: a signal stops between images, leaving only whole files",
          "[app][sample][signal]") {
  TempDir tmp;
  REQUIRE(run("synthetic " + tmp.str("run") + kTiny + "--max-steps 2").exit_code == 0);
  const fs::path folder = tmp.path / "folder";
  constexpr int kMany = 30000;
  Spawned p(std::string(CUDAGAN_DCGAN_SAMPLE) + " " + tmp.str("run/checkpoints/latest.safetensors") + " " +
            folder.string() + " --folder --n " + std::to_string(kMany) + " --device cpu");
  REQUIRE(p.wait_for("writing"));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!fs::exists(folder / "sample_00005.png") && std::chrono::steady_clock::now() < deadline)
    usleep(2000);
  p.signal(SIGTERM);
  const int status = p.finish();
  INFO(p.output);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 143);
  int written = -1;
  const size_t at = p.output.find("stopped by SIGTERM after writing ");
  REQUIRE(at != std::string::npos);
  std::sscanf(p.output.c_str() + at, "stopped by SIGTERM after writing %d of", &written);
  CHECK(written >= 6);
  CHECK(written < kMany);
  int files = 0;
  for (const auto& e : fs::directory_iterator(folder)) {
    CHECK(e.path().extension() == ".png");  // no temporary file left behind
    ++files;
  }
  CHECK(files == written);
  CHECK(cudagan::read_image((folder / "sample_00000.png").string()).width == 16);
  char last[32];
  std::snprintf(last, sizeof last, "sample_%05d.png", written - 1);
  CHECK(cudagan::read_image((folder / last).string()).width == 16);
}

TEST_CASE("dcgan_train: --checkpoint-minutes writes checkpoints/latest by the clock, whatever the steps",
          "[app][training][timed]") {
  TempDir tmp;
  const fs::path latest = tmp.path / "out/checkpoints/latest.safetensors";
  // Every 0.03 s; the steps alone would bring the first checkpoint at the epoch's end, step 1250.
  Spawned p(train_cmd("synthetic " + tmp.str("out") + kTiny +
                      "--max-steps 3000 --checkpoint-every 1000000 --checkpoint-minutes 0.0005"));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!fs::exists(latest) && std::chrono::steady_clock::now() < deadline) usleep(2000);
  REQUIRE(fs::exists(latest));
  const int64_t step = checkpoint_step(latest.string());
  INFO("step " << step);
  CHECK(step >= 1);
  CHECK(step < 1250);
  p.signal(SIGKILL);
  p.finish();
}

TEST_CASE("dcgan_train --eval-every: metrics.csv, metrics.png, the best checkpoint; dcgan_eval agrees", "[app][eval]") {
  TempDir tmp;
  const std::string out = tmp.str("out");
  // 16x16 images: one pyramid level. Evaluations at steps 3 and 6 and at the end (8).
  const Run r = run("synthetic " + out + kTiny + "--max-steps 8 --eval-every 3 --eval-images 64");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("step 3: SWD x1e3 ") != std::string::npos);
  CHECK(r.output.find("against 64 real images") != std::string::npos);
  std::ifstream csv(out + "/metrics.csv");
  std::string line;
  std::getline(csv, line);
  CHECK(line == "step,swd_avg,swd_16");
  std::vector<std::string> steps;
  std::vector<double> averages;
  while (std::getline(csv, line)) {
    steps.push_back(line.substr(0, line.find(',')));
    averages.push_back(std::stod(line.substr(line.find(',') + 1)));
  }
  CHECK(steps == std::vector<std::string>{"3", "6", "8"});
  for (double a : averages) CHECK(a > 0);
  CHECK(fs::exists(out + "/metrics.png"));
  REQUIRE(fs::exists(out + "/checkpoints/best.safetensors"));
  // The best checkpoint holds the step whose average is the lowest.
  const size_t best = size_t(std::min_element(averages.begin(), averages.end()) - averages.begin());
  CHECK(std::to_string(checkpoint_step(out + "/checkpoints/best.safetensors")) == steps[best]);
  // dcgan_eval on the last checkpoint measures what the last evaluation did (the same real images, noise and
  // weights).
  const Run e = run_eval(out + "/checkpoints/latest.safetensors synthetic --eval-images 64 --batch-size 8 --device cpu");
  INFO(e.output);
  REQUIRE(e.exit_code == 0);
  const size_t at = e.output.find("SWD x1e3 ");
  REQUIRE(at != std::string::npos);
  CHECK(std::stod(e.output.substr(at + 9)) == Approx(averages.back()).margin(0.006));
  CHECK(run_eval(out + "/missing.safetensors synthetic").output.find("does not exist") != std::string::npos);
  // --baseline: real against real, well below what these barely trained networks reach.
  const Run base = run_eval(out + "/checkpoints/latest.safetensors synthetic --eval-images 64 --baseline --device cpu");
  INFO(base.output);
  REQUIRE(base.exit_code == 0);
  const size_t b = base.output.find("SWD x1e3 ");
  REQUIRE(b != std::string::npos);
  CHECK(std::stod(base.output.substr(b + 9)) < 0.5 * averages.back());
  // Resuming keeps the rows up to the checkpoint and goes on.
  const Run more = run("synthetic " + out + kTiny + "--max-steps 10 --eval-every 3 --eval-images 64 --resume latest");
  REQUIRE(more.exit_code == 0);
  std::ifstream again(out + "/metrics.csv");
  int rows = -1;
  while (std::getline(again, line)) ++rows;
  CHECK(rows == 5);  // 3, 6, 8, then 9 and the end, 10
}

TEST_CASE("dcgan_train on MNIST: the digit classifier's FCD, confidence and class entropy; dcgan_eval agrees",
          "[app][eval][digits]") {
  TempDir tmp;
  const std::string out = tmp.str("out"), mnist = std::string(CUDAGAN_SOURCE_DIR) + "/data/mnist";
  const Run r = run(mnist + " " + out + kTiny + "--max-steps 6 --eval-every 3 --eval-images 128");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("FCD against 128 MNIST test digits") != std::string::npos);
  CHECK(r.output.find("step 3: SWD x1e3 ") != std::string::npos);
  CHECK(r.output.find("; FCD ") != std::string::npos);
  std::ifstream csv(out + "/metrics.csv");
  std::string line;
  std::getline(csv, line);
  CHECK(line == "step,swd_avg,swd_16,fcd,confidence,class_entropy_bits");
  std::vector<std::string> steps;
  std::vector<double> fcd;
  while (std::getline(csv, line)) {
    std::vector<std::string> cells;
    std::stringstream in(line);
    for (std::string c; std::getline(in, c, ',');) cells.push_back(c);
    REQUIRE(cells.size() == 6);
    steps.push_back(cells[0]);
    fcd.push_back(std::stod(cells[3]));
    CHECK(std::stod(cells[4]) > 0.1);  // a softmax's largest probability is at least 1/10
    CHECK(std::stod(cells[4]) <= 1.0);
    CHECK(std::stod(cells[5]) >= 0.0);
    CHECK(std::stod(cells[5]) <= std::log2(10.0) + 1e-9);
  }
  CHECK(steps == std::vector<std::string>{"3", "6"});
  CHECK(fs::exists(out + "/fcd.png"));
  // The best checkpoint goes by the FCD on digits.
  const size_t best = size_t(std::min_element(fcd.begin(), fcd.end()) - fcd.begin());
  CHECK(std::to_string(checkpoint_step(out + "/checkpoints/best.safetensors")) == steps[best]);
  const Run e = run_eval(out + "/checkpoints/latest.safetensors " + mnist +
                         " --eval-images 128 --batch-size 8 --device cpu");
  INFO(e.output);
  REQUIRE(e.exit_code == 0);
  const size_t at = e.output.find("FCD ");
  REQUIRE(at != std::string::npos);
  CHECK(std::stod(e.output.substr(at + 4)) == Approx(fcd.back()).epsilon(1e-3));
  // Real digits against the test split score far better than these barely trained networks.
  const Run base = run_eval(out + "/checkpoints/latest.safetensors " + mnist + " --eval-images 128 --baseline --device cpu");
  INFO(base.output);
  const size_t b = base.output.find("FCD ");
  REQUIRE(b != std::string::npos);
  CHECK(std::stod(base.output.substr(b + 4)) < 0.5 * fcd.back());
  const Run missing = run(mnist + " " + tmp.str("o2") + kTiny + "--max-steps 1 --classifier " + tmp.str("none.safetensors"));
  CHECK(missing.exit_code != 0);
  CHECK(missing.output.find("--classifier") != std::string::npos);
}

