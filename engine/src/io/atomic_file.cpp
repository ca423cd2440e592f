// Atomic file output: temporary file, fflush + fsync, rename. See atomic_file.h.
#include "cudagan/io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cudagan/core/error.h"

namespace cudagan::detail {
namespace {

[[noreturn]] void fail(const std::string& path, int err) {
  throw Error(concat("cannot write '", path, "': ", std::strerror(err)));
}

// After the rename, the new directory entry itself must reach the disk, or a power cut could
// bring back the old file. Best effort: some file systems refuse fsync on a directory.
void sync_parent_directory(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

}  // namespace

void write_file_atomically(const std::string& path, const std::function<void(FILE*)>& writer) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail(path, errno);

  int err = 0;
  errno = 0;
  try {
    writer(f);
  } catch (...) {
    std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
  // ferror only says that a write failed; errno from that write may since have been overwritten,
  // so fall back on EIO when it holds nothing useful.
  if (std::ferror(f)) err = errno ? errno : EIO;
  if (!err && std::fflush(f) != 0) err = errno;
  if (!err && ::fsync(::fileno(f)) != 0) err = errno;
  if (std::fclose(f) != 0 && !err) err = errno;
  if (!err && std::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err) {
    std::remove(tmp.c_str());
    fail(path, err);
  }
  sync_parent_directory(path);
}

void write_file_atomically(const std::string& path, const void* data, size_t bytes) {
  write_file_atomically(path, [&](FILE* f) {
    if (bytes > 0) std::fwrite(data, 1, bytes, f);
  });
}

}  // namespace cudagan::detail
