// Scratch files for tests: a fresh directory under the system temp dir, removed with everything in it
// at scope exit, and reading a file back whole.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <system_error>

namespace cudagan::test {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::random_device rd;  // pid + a random number: parallel ctest processes never share a directory
    path = std::filesystem::temp_directory_path() /
           ("cudagan_test_" + std::to_string(::getpid()) + "_" + std::to_string(rd()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  // path / name as a string; str() with no name is the directory itself.
  std::string file(const std::string& name) const { return (path / name).string(); }
  std::string str(const std::string& sub = "") const { return sub.empty() ? path.string() : file(sub); }
};

inline std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace cudagan::test
