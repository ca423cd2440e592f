// An image folder: a recursive scan for jpg/jpeg/png/bmp/tga files, probed at open, decoded by
// stb_image on load().
#include <stb_image.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include "cudagan/data/data.h"
#include "cudagan/core/error.h"
#include "data/common.h"

namespace fs = std::filesystem;

namespace cudagan::data {

namespace {

constexpr const char* kExtensionList = "jpg, jpeg, png, bmp, tga";
constexpr int kNamedSkips = 3;  // how many unreadable files describe() names

bool is_image_file(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp" || ext == ".tga";
}

bool is_hidden(const fs::path& path) {
  const std::string name = path.filename().string();
  return !name.empty() && name[0] == '.';
}

// Relative paths (generic form, '/' separators) of the image files under `root`, sorted bytewise
// so that the order does not depend on the file system's directory order.
std::vector<std::string> scan(const fs::path& root) {
  std::vector<std::string> files;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
  CUDAGAN_CHECK(!ec, "cannot list data folder '", root.string(), "': ", ec.message(),
                ": check its permissions");
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    CUDAGAN_CHECK(!ec, "cannot list data folder '", root.string(), "': ", ec.message());
    const fs::directory_entry& entry = *it;
    if (is_hidden(entry.path())) {
      if (entry.is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (entry.is_regular_file(ec) && is_image_file(entry.path()))
      files.push_back(entry.path().lexically_relative(root).generic_string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

struct Probe {
  bool ok = false;
  int channels = 0;
};

// The largest image decoded: 32 Mpx (a 24-megapixel photo passes). A header claiming more is refused before
// stb_image allocates for it (found by fuzz_image: a 30-byte PNG header claimed gigabytes).
constexpr int64_t kMaxPixels = int64_t(1) << 25;
bool plausible(int w, int h, int c) { return w > 0 && h > 0 && c >= 1 && c <= 4 && int64_t(w) * h <= kMaxPixels; }

// stbi_info reads only the header, so this is fast; it runs on a few threads because a large set
// (CelebA has 202,599 files) on a network file system is latency-bound.
std::vector<Probe> probe_all(const fs::path& root, const std::vector<std::string>& files) {
  std::vector<Probe> probes(files.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < files.size(); i = next++) {
      int w = 0, h = 0, c = 0;
      const std::string path = (root / files[i]).string();
      if (stbi_info(path.c_str(), &w, &h, &c) && plausible(w, h, c)) probes[i] = {true, c};
    }
  };
  const size_t threads =
      std::min<size_t>({std::max(1u, std::thread::hardware_concurrency()), 8, files.size() / 256 + 1});
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  return probes;
}

class ImageFolderDataset final : public Dataset {
 public:
  ImageFolderDataset(const std::string& folder, int image_size, int channels)
      : folder_(folder), root_(folder), image_size_(image_size) {
    const std::vector<std::string> all = scan(root_);
    CUDAGAN_CHECK(!all.empty(), "no images (", kExtensionList, ") found under '", folder,
                  "': give a folder that contains images (subfolders are searched too)");
    const std::vector<Probe> probes = probe_all(root_, all);
    bool all_gray = true;
    for (size_t i = 0; i < all.size(); ++i) {
      if (probes[i].ok) {
        files_.push_back(all[i]);
        all_gray = all_gray && probes[i].channels <= 2;
      } else {
        unreadable_.push_back(all[i]);
      }
    }
    CUDAGAN_CHECK(!files_.empty(), "none of the ", all.size(), " image files under '", folder,
                  "' can be read (e.g. '", unreadable_.front(), "': ", why_unreadable(unreadable_.front()),
                  "): they are corrupt or not images; replace them");
    channels_ = channels != 0 ? channels : all_gray ? 1 : 3;
  }

  int64_t size() const override { return int64_t(files_.size()); }
  int channels() const override { return channels_; }
  int image_size() const override { return image_size_; }
  std::string name(int64_t index) const override { return files_.at(size_t(check(index))); }

  std::string describe() const override {
    std::string s = cudagan::detail::concat("image folder '", folder_, "': ", files_.size(), " images as ",
                                            internal::sample_shape_str(channels_, image_size_));
    if (!unreadable_.empty()) {
      s += cudagan::detail::concat(" (", unreadable_.size(), " skipped as unreadable: ");
      for (size_t i = 0; i < unreadable_.size() && i < kNamedSkips; ++i)
        s += (i ? ", " : "") + unreadable_[i];
      s += unreadable_.size() > kNamedSkips ? ", ...)" : ")";
    }
    return s;
  }

  bool load(int64_t index, float* out, int* label) const override {
    const std::string path = (root_ / files_[size_t(check(index))]).string();
    if (label) *label = -1;
    int w = 0, h = 0, c = 0;
    if (!stbi_info(path.c_str(), &w, &h, &c) || !plausible(w, h, c)) return false;  // changed since the probe
    std::unique_ptr<stbi_uc, void (*)(void*)> pixels(stbi_load(path.c_str(), &w, &h, &c, 0), stbi_image_free);
    if (!pixels || w <= 0 || h <= 0 || c < 1 || c > 4) return false;
    to_chw(pixels.get(), w, h, c, channels_, image_size_, out);
    return true;
  }

 private:
  int64_t check(int64_t index) const {
    CUDAGAN_CHECK(index >= 0 && index < size(), "sample index ", index, " out of range for ", size(),
                  " images in '", folder_, "'");
    return index;
  }

  std::string why_unreadable(const std::string& file) const {
    int w = 0, h = 0, c = 0;
    if (stbi_info((root_ / file).string().c_str(), &w, &h, &c) && int64_t(w) * h > kMaxPixels)
      return cudagan::detail::concat(w, "x", h, " pixels, more than the ", kMaxPixels >> 20, " Mpx cudagan decodes");
    const char* reason = stbi_failure_reason();  // set (per thread) by the stbi_info above
    return reason ? reason : "unknown format";
  }

  std::string folder_;
  fs::path root_;
  int image_size_ = 0;
  int channels_ = 0;
  std::vector<std::string> files_;       // readable, relative to root_, sorted
  std::vector<std::string> unreadable_;  // failed the probe, sorted
};

}  // namespace

std::unique_ptr<Dataset> open_image_folder(const std::string& folder, int image_size, int channels) {
  internal::check_image_size(image_size);
  internal::check_channels(channels);
  std::error_code ec;
  CUDAGAN_CHECK(fs::exists(folder, ec), "data folder '", folder,
                "' does not exist: give the path of a folder of images");
  CUDAGAN_CHECK(fs::is_directory(folder, ec), "data path '", folder,
                "' is not a folder: give the folder that contains the images");
  return std::make_unique<ImageFolderDataset>(folder, image_size, channels);
}

}  // namespace cudagan::data
