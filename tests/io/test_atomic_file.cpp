// Atomic writes when the disk is full: a failed write names the file and the cause, leaves the previous file
// intact and no temporary behind. The full disk is made without root: RLIMIT_FSIZE (ulimit -f) with SIGXFSZ
// ignored, so that a write past the limit fails with EFBIG instead of killing the process.
#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <string>
#include <vector>

#include "cudagan/core/error.h"
#include "cudagan/core/rng.h"
#include "cudagan/core/tensor.h"
#include "cudagan/io/atomic_file.h"
#include "cudagan/io/image_io.h"
#include "cudagan/io/safetensors.h"
#include "support/temp_dir.h"

using namespace cudagan;
using Catch::Matchers::Contains;
using test::read_bytes;
using test::TempDir;
namespace fs = std::filesystem;

namespace {

// Lowers the file-size limit to `bytes` and ignores SIGXFSZ for its lifetime, then restores both.
class FullDiskAt {
 public:
  explicit FullDiskAt(rlim_t bytes) {
    REQUIRE(getrlimit(RLIMIT_FSIZE, &saved_) == 0);
    previous_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit lowered = saved_;
    lowered.rlim_cur = bytes;
    REQUIRE(setrlimit(RLIMIT_FSIZE, &lowered) == 0);
  }
  ~FullDiskAt() {
    setrlimit(RLIMIT_FSIZE, &saved_);
    std::signal(SIGXFSZ, previous_);
  }
  FullDiskAt(const FullDiskAt&) = delete;
  FullDiskAt& operator=(const FullDiskAt&) = delete;

 private:
  rlimit saved_{};
  void (*previous_)(int) = SIG_DFL;
};

size_t files_in(const TempDir& dir) {
  return size_t(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()));
}

}  // namespace

TEST_CASE("atomic files: a full disk names the file and the cause, keeps the old file, leaves no temporary",
          "[io][disk]") {
  TempDir dir;
  const std::string ckpt = dir.file("latest.safetensors"), grid = dir.file("grid.png");
  const Tensor small = Tensor::ones({16});
  save_safetensors(ckpt, {{"w", small}}, {{"step", "1"}});
  const std::string before = read_bytes(ckpt);
  const Tensor big = Tensor::ones({1 << 16});  // 256 KiB of data: past the 64 KiB limit below
  {
    const FullDiskAt full(64 * 1024);
    REQUIRE_THROWS_WITH(save_safetensors(ckpt, {{"w", big}}, {{"step", "2"}}),
                        Contains("cannot write '" + ckpt + "'") && Contains("File too large"));
    REQUIRE_THROWS_WITH(detail::write_file_atomically(dir.file("losses.csv"), std::string(100000, 'x').data(), 100000),
                        Contains("losses.csv") && Contains("File too large"));
    Rng rng(1);  // random pixels do not compress: the PNG is larger than the limit
    REQUIRE_THROWS_WITH(save_image_grid(Tensor::rand({1, 3, 256, 256}, rng, DType::float32, Device::cpu(), -1, 1), grid),
                        Contains("grid.png") && Contains("File too large"));
  }
  CHECK(read_bytes(ckpt) == before);            // the previous checkpoint, byte for byte
  CHECK(load_safetensors(ckpt).metadata.at("step") == "1");
  CHECK(files_in(dir) == 1);                     // no .tmp file, no partial grid or summary
}
