// MNIST-format idx files (LeCun's format: a big-endian header, then unsigned bytes), raw or
// gzipped. zlib's gzread reads both transparently, so one code path serves both.
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "cudagan/data/data.h"
#include "cudagan/core/error.h"
#include "data/common.h"

namespace fs = std::filesystem;

namespace cudagan::data {

namespace {

constexpr uint32_t kImagesMagic = 2051;  // 0x00000803: unsigned bytes, 3 dimensions
constexpr uint32_t kLabelsMagic = 2049;  // 0x00000801: unsigned bytes, 1 dimension

// The first of the usual spellings of an idx file that exists in `folder`, or "".
std::string find_idx(const fs::path& folder, const std::string& split, const std::string& kind) {
  const std::string prefix = split == "test" ? "t10k" : "train";
  for (const char* sep : {"-", "."}) {
    for (const char* suffix : {"", ".gz"}) {
      const fs::path p =
          folder / (prefix + "-" + kind + sep + (kind == "images" ? "idx3" : "idx1") + "-ubyte" + suffix);
      std::error_code ec;
      if (fs::is_regular_file(p, ec)) return p.string();
    }
  }
  return "";
}

// Reads an idx file whole: checks the magic number and that the payload is exactly as long as the
// header says (a truncated download is the usual fault).
class IdxReader {
 public:
  explicit IdxReader(const std::string& path) : path_(path), file_(gzopen(path.c_str(), "rb"), gzclose) {
    CUDAGAN_CHECK(file_, "cannot open MNIST file '", path_, "': check that it exists and is readable");
  }

  uint32_t read_u32(const char* what) {
    unsigned char b[4];
    read(b, 4, what);
    return uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | uint32_t(b[3]);
  }

  void read(void* dst, size_t bytes, const char* what) {
    auto* p = static_cast<unsigned char*>(dst);
    size_t done = 0;
    while (done < bytes) {
      const unsigned chunk = unsigned(std::min<size_t>(bytes - done, 1u << 30));
      const int got = gzread(file_.get(), p + done, chunk);
      if (got < 0) gzip_error();
      if (got == 0) break;
      done += size_t(got);
    }
    if (done < bytes) {
      gzip_error_if_any();
      throw Error(cudagan::detail::concat("MNIST file '", path_, "' is truncated: it ends inside the ", what,
                                          " (", done, " of ", bytes, " bytes read); download it again"));
    }
  }

  // The file must end here: trailing bytes mean the header and the data disagree.
  void expect_end() {
    unsigned char extra;
    const int got = gzread(file_.get(), &extra, 1);
    if (got < 0) gzip_error();
    CUDAGAN_CHECK(got == 0, "MNIST file '", path_,
                  "' is longer than its header says (size mismatch): it is corrupt; download it again");
    gzip_error_if_any();
  }

  void check_magic(uint32_t expected) {
    const uint32_t magic = read_u32("header");
    CUDAGAN_CHECK(magic == expected, "MNIST file '", path_, "' has magic number ", magic, ", expected ",
                  expected, " (", expected == kImagesMagic ? "idx3 images" : "idx1 labels",
                  "): it is not that idx file or is corrupt; download it again");
  }

  const std::string& path() const { return path_; }

 private:
  void gzip_error_if_any() {
    int code = Z_OK;
    gzerror(file_.get(), &code);
    if (code != Z_OK && code != Z_STREAM_END) gzip_error();
  }
  [[noreturn]] void gzip_error() {
    int code = Z_OK;
    const char* message = gzerror(file_.get(), &code);
    throw Error(cudagan::detail::concat("MNIST file '", path_,
                                        "': gzip error: ", message ? message : "unknown",
                                        " (the file is corrupt or truncated); download it again"));
  }

  std::string path_;
  std::unique_ptr<gzFile_s, int (*)(gzFile)> file_;
};

class MnistDataset final : public Dataset {
 public:
  MnistDataset(const std::string& folder, const std::string& split, int image_size, int channels)
      : folder_(folder), split_(split), image_size_(image_size), channels_(channels == 0 ? 1 : channels) {
    const std::string images_path = find_idx(folder, split, "images");
    const std::string labels_path = find_idx(folder, split, "labels");
    const std::string prefix = split == "test" ? "t10k" : "train";
    CUDAGAN_CHECK(!images_path.empty(), "MNIST images file '", prefix,
                  "-images-idx3-ubyte[.gz]' not found in '", folder,
                  "': download it (see data/README.md) into that folder");
    CUDAGAN_CHECK(!labels_path.empty(), "MNIST labels file '", prefix,
                  "-labels-idx1-ubyte[.gz]' not found in '", folder,
                  "': download it (see data/README.md) next to the images file");

    IdxReader images(images_path);
    images.check_magic(kImagesMagic);
    count_ = images.read_u32("header");
    rows_ = int(images.read_u32("header"));
    cols_ = int(images.read_u32("header"));
    // Bounds that no real idx file exceeds, so a corrupt header fails here rather than in malloc.
    CUDAGAN_CHECK(
        count_ > 0 && count_ < (1u << 28) && rows_ > 0 && rows_ <= 4096 && cols_ > 0 && cols_ <= 4096,
        "MNIST file '", images_path, "' has an implausible header (", count_, " images of ", rows_, "x",
        cols_, "): it is corrupt; download it again");
    // In pieces, the buffer growing as the data arrives: a header that claims more images than the file
    // holds fails at the file's end, not by allocating what the header claims (found by fuzz_mnist).
    const size_t total = size_t(count_) * rows_ * cols_;
    constexpr size_t kPiece = size_t(16) << 20;
    for (size_t done = 0; done < total;) {
      const size_t n = std::min(kPiece, total - done);
      pixels_.resize(done + n);
      images.read(pixels_.data() + done, n, "pixels");
      done += n;
    }
    images.expect_end();

    IdxReader labels(labels_path);
    labels.check_magic(kLabelsMagic);
    const uint32_t label_count = labels.read_u32("header");
    CUDAGAN_CHECK(label_count == count_, "MNIST file '", labels_path, "' has ", label_count, " labels but '",
                  images_path, "' has ", count_, " images: the two files do not belong together");
    labels_.resize(count_);
    labels.read(labels_.data(), labels_.size(), "labels");
    labels.expect_end();
  }

  int64_t size() const override { return int64_t(count_); }
  int channels() const override { return channels_; }
  int image_size() const override { return image_size_; }
  std::string name(int64_t index) const override {
    return cudagan::detail::concat("MNIST ", split_, " #", check(index));
  }
  std::string describe() const override {
    return cudagan::detail::concat("MNIST ", split_, " '", folder_, "': ", count_, " images of ", rows_, "x",
                                   cols_, " as ", internal::sample_shape_str(channels_, image_size_),
                                   ", with labels");
  }

  bool load(int64_t index, float* out, int* label) const override {
    const size_t i = size_t(check(index));
    to_chw(pixels_.data() + i * rows_ * cols_, cols_, rows_, 1, channels_, image_size_, out);
    if (label) *label = labels_[i];
    return true;
  }

 private:
  int64_t check(int64_t index) const {
    CUDAGAN_CHECK(index >= 0 && index < size(), "sample index ", index, " out of range for ", size(),
                  " MNIST images");
    return index;
  }

  std::string folder_, split_;
  int image_size_ = 0, channels_ = 0;
  uint32_t count_ = 0;
  int rows_ = 0, cols_ = 0;
  std::vector<uint8_t> pixels_;  // count x rows x cols, as in the file
  std::vector<uint8_t> labels_;
};

}  // namespace

namespace internal {
std::string mnist_images_file(const std::string& folder, const std::string& split) {
  return find_idx(folder, split, "images");
}
}  // namespace internal

bool has_mnist_split(const std::string& folder, const std::string& split) {
  return !find_idx(folder, split, "images").empty() && !find_idx(folder, split, "labels").empty();
}

std::unique_ptr<Dataset> open_mnist(const std::string& folder, const std::string& split, int image_size,
                                    int channels) {
  CUDAGAN_CHECK(split == "train" || split == "test", "MNIST split must be 'train' or 'test', got '", split,
                "'");
  internal::check_image_size(image_size);
  internal::check_channels(channels);
  std::error_code ec;
  CUDAGAN_CHECK(fs::is_directory(folder, ec), "MNIST folder '", folder,
                "' does not exist: give the folder that holds the idx files");
  return std::make_unique<MnistDataset>(folder, split, image_size, channels);
}

}  // namespace cudagan::data
