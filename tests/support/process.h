// Running a program as a user does, for the tests of the command-line tools: its exit code and its
// stdout and stderr together.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include <catch2/catch.hpp>

namespace cudagan::test {

struct Run {
  int exit_code = -1;  // -1 when it did not exit normally (a signal)
  std::string output;  // stdout and stderr together
};

// Runs `program args` through the shell, stdout and stderr together.
inline Run run_program(const std::string& program, const std::string& args) {
  const std::string cmd = program + " " + args + " 2>&1";
  Run r;
  std::FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe);
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), int(buf.size()), pipe)) r.output += buf.data();
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace cudagan::test
