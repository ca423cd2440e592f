// What every fuzz target shares: a scratch folder of its own (per process, removed at exit) and writing the
// fuzzer's bytes into a file there, since the parsers under test read files, as a user's data reaches them.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

namespace cudagan::fuzz {

class Scratch {
 public:
  Scratch() : dir_(std::filesystem::temp_directory_path() / ("cudagan_fuzz_" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(dir_);
  }
  ~Scratch() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

inline Scratch& scratch() {
  static Scratch s;  // one per fuzzing process, as libFuzzer runs its inputs one after another
  return s;
}

// Writes `size` bytes to `path` (replacing it).
inline void write_file(const std::string& path, const uint8_t* data, size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return;
  if (size > 0) std::fwrite(data, 1, size, f);
  std::fclose(f);
}

}  // namespace cudagan::fuzz
