// dcgan_train under mpirun, as a user starts it: 2 ranks train what 1 process trains, only rank 0 writes,
// a 2-rank checkpoint resumes on 1 rank, and a failing rank or a disagreeing configuration ends the whole
// job quickly with a message.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <thread>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "mpi_test_support.h"
#include "support/compare.h"
#include "support/process.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using cudagan::test::mpirun;
using cudagan::test::Run;
using cudagan::test::run_program;
using cudagan::test::TempDir;

namespace {

const std::string kTrain = CUDAGAN_DCGAN_TRAIN;
// Tiny networks on the built-in synthetic set: seconds per run on 2 cores.
const std::string kTiny =
    " synthetic --image-size 16 --nz 8 --ngf 4 --ndf 4 --batch-size 8 --workers 0 --device cpu --log-every 1 "
    "--eval-every 0 ";

// losses.csv's step, epoch, Loss_D, Loss_G, D(x), D(G(z)) before and after: every column but the timings.
std::vector<double> losses(const fs::path& out) {
  std::ifstream in(out / "losses.csv");
  REQUIRE(in);
  std::string line;
  std::getline(in, line);
  std::vector<double> values;
  while (std::getline(in, line)) {
    std::stringstream row(line);
    std::string cell;
    for (int column = 0; column < 7 && std::getline(row, cell, ','); ++column) values.push_back(std::stod(cell));
  }
  return values;
}

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The pids of the processes whose command line starts with `program` and mentions `needle` (from /proc:
// no pgrep needed).
std::vector<pid_t> processes(const std::string& program, const std::string& needle) {
  std::vector<pid_t> pids;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline", std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmdline.rfind(program + '\0', 0) == 0 && cmdline.find(needle) != std::string::npos)
      pids.push_back(pid_t(std::stol(name)));
  }
  return pids;
}

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("mpirun -np 2 dcgan_train: the losses of 1 process, outputs from rank 0 only", "[mpirun]") {
  TempDir tmp;
  const Run one = run_program(kTrain, kTiny + tmp.str("one") + " --max-steps 5");
  REQUIRE(one.exit_code == 0);
  const Run two = run_program(mpirun(2) + kTrain, kTiny + tmp.str("two") + " --max-steps 5");
  INFO(two.output);
  REQUIRE(two.exit_code == 0);
  CHECK(two.output.find("data-parallel over MPI") != std::string::npos);
  CHECK(count(two.output, "Loss_D") == count(one.output, "Loss_D"));  // one console: rank 0's
  // The same computation in another order of fp32 sums (see test_trainer_parallel.cpp): 1e-4 of the scale.
  cudagan::test::require_close_to_scale(losses(tmp.path / "two"), losses(tmp.path / "one"), 1e-4,
                                        "losses.csv of 2 ranks against 1 process");
  for (const char* f : {"losses.csv", "config.yaml", "checkpoints/latest.safetensors", "real_samples.png"})
    CHECK(fs::exists(tmp.path / "two" / f));
}

TEST_CASE("mpirun -np 2 dcgan_train --batchnorm local trains on per-rank statistics", "[mpirun]") {
  TempDir tmp;
  const Run r = run_program(mpirun(2) + kTrain, kTiny + tmp.str("out") + " --max-steps 3 --batchnorm local");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("batchnorm local") != std::string::npos);
  CHECK(losses(tmp.path / "out").size() == 3 * 7);
}

TEST_CASE("a checkpoint of a 2-rank run resumes in 1 process and continues the same run", "[mpirun]") {
  TempDir tmp;
  const Run whole = run_program(kTrain, kTiny + tmp.str("whole") + " --max-steps 6");
  REQUIRE(whole.exit_code == 0);
  const Run first = run_program(mpirun(2) + kTrain, kTiny + tmp.str("split") + " --max-steps 3");
  INFO(first.output);
  REQUIRE(first.exit_code == 0);
  const Run rest = run_program(kTrain, kTiny + tmp.str("split") + " --max-steps 6 --resume latest");
  INFO(rest.output);
  REQUIRE(rest.exit_code == 0);
  CHECK(rest.output.find("resuming from") != std::string::npos);
  cudagan::test::require_close_to_scale(losses(tmp.path / "split"), losses(tmp.path / "whole"), 1e-4,
                                        "3 steps on 2 ranks + 3 resumed in 1 process, against 6 in 1 process");
}

TEST_CASE("a rank that fails ends the whole job within seconds, with its message", "[mpirun]") {
  TempDir tmp;
  // MPMD: rank 1 is given a data folder that does not exist; rank 0 would train.
  const std::string env = mpirun(1);
  const std::string args = env + kTrain + kTiny + tmp.str("out") + " --max-steps 1000 : -np 1 " + kTrain +
                           " " + tmp.str("missing") + kTiny.substr(kTiny.find(' ', 1)) + tmp.str("out");
  const auto t0 = std::chrono::steady_clock::now();
  const Run r = run_program(args, "");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO(r.output);
  CHECK(r.exit_code != 0);
  CHECK(r.output.find("error on rank 1 of 2") != std::string::npos);
  CHECK(r.output.find("does not exist") != std::string::npos);
  CHECK(seconds < 10);
}

TEST_CASE("ranks started with different configurations stop at start-up, naming it", "[mpirun]") {
  TempDir tmp;
  const std::string args = mpirun(1) + kTrain + kTiny + tmp.str("out") + " : -np 1 " + kTrain + kTiny +
                           tmp.str("out") + " --lr 0.001";
  const Run r = run_program(args, "");
  INFO(r.output);
  CHECK(r.exit_code != 0);
  CHECK(r.output.find("differs between the ranks") != std::string::npos);
  CHECK(!fs::exists(tmp.path / "out" / "losses.csv"));
}

TEST_CASE("a global batch that does not divide over the ranks is refused with the fix", "[mpirun]") {
  TempDir tmp;
  const Run r = run_program(mpirun(2) + kTrain, kTiny + tmp.str("out") + " --batch-size 7");
  INFO(r.output);
  CHECK(r.exit_code != 0);
  CHECK(r.output.find("--batch-size 7 does not divide over 2 ranks") != std::string::npos);
}

TEST_CASE("kill -9 of one rank ends the job within seconds, and the latest checkpoint resumes", "[mpirun]") {
  TempDir tmp;
  const std::string out = tmp.str("out");
  const std::string cmd = "exec env " + mpirun(2) + kTrain + kTiny + out + " --epochs 10000 --checkpoint-every 50 > " +
                          tmp.str("log") + " 2>&1";
  const pid_t job = fork();
  REQUIRE(job >= 0);
  if (job == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto started = std::chrono::steady_clock::now();
  while (!fs::exists(fs::path(out) / "checkpoints" / "latest.safetensors") && since(started) < 60)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const std::vector<pid_t> ranks = processes(kTrain, out);
  INFO("log: " << std::ifstream(tmp.str("log")).rdbuf());
  REQUIRE(ranks.size() == 2);
  REQUIRE(kill(ranks.back(), SIGKILL) == 0);
  const auto killed = std::chrono::steady_clock::now();
  int status = 0;
  while (waitpid(job, &status, WNOHANG) == 0 && since(killed) < 30)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const double seconds = since(killed);
  if (seconds >= 30) kill(job, SIGKILL), waitpid(job, &status, 0);
  CHECK(seconds < 10);
  CHECK(!(WIFEXITED(status) && WEXITSTATUS(status) == 0));
  CHECK(processes(kTrain, out).empty());  // the surviving rank is gone too
  const Run resumed = run_program(kTrain, kTiny + out + " --max-steps 1 --epochs 10000 --resume latest");
  INFO(resumed.output);
  CHECK(resumed.exit_code == 0);
  CHECK(resumed.output.find("resuming from") != std::string::npos);
}
