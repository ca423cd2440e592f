// Data loading: datasets of square images (an image folder, MNIST idx files, a built-in synthetic
// set) decoded to float CHW samples in [-1, 1], and a DataLoader that shuffles them into batches
// [B, C, S, S] on worker threads.
//
// Every dataset delivers samples of the same shape: C channels (1 grayscale, 3 RGB) of S x S pixels,
// where S is the image_size asked for at open. Images are center-cropped to a square (the shorter
// side) and resized: an area (box) filter when shrinking, bilinear when enlarging. Pixel values v in
// [0, 255] become v / 127.5 - 1, the range of a tanh output layer.
//
// Determinism: the order of an epoch depends only on (seed, epoch), and the content of a batch
// only on the data, so a run resumed at (epoch, batch) sees the same batches as an uninterrupted
// one, whatever the number of worker threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cudagan/core/tensor.h"

namespace cudagan::data {

// A read-only collection of size() samples, each channels() x image_size() x image_size().
// Implementations must be safe to call concurrently from several threads (load() is const and
// keeps no per-call state in the object).
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual int channels() const = 0;    // 1 or 3
  virtual int image_size() const = 0;  // S: samples are S x S
  // One line for logs, e.g. "image folder 'celeba/': 5000 images as 3x64x64 (2 skipped as
  // unreadable: a.jpg, b.png)".
  virtual std::string describe() const = 0;
  // Decodes sample `index` (0 <= index < size(), else throws cudagan::Error) into
  // out[channels() * image_size() * image_size()] (CHW, float in [-1, 1]) and writes its class
  // label to *label (-1 when the data has none; label may be null). Returns false, leaving out
  // unspecified, when this sample turns out to be undecodable (a corrupt file that passed the
  // header probe), so that a loader can skip it.
  virtual bool load(int64_t index, float* out, int* label) const = 0;
  // A human-readable name of sample `index` for messages: a file path relative to the data folder,
  // or "<set> #<index>" for datasets without files.
  virtual std::string name(int64_t index) const;

  int64_t sample_numel() const { return int64_t(channels()) * image_size() * image_size(); }
};

// Opens what `path` holds, recognised from the path and the folder's contents:
//   "synthetic"                        the built-in synthetic set (open_synthetic); a folder of that
//                                      name must be written "./synthetic"
//   a folder with MNIST idx files      MNIST (open_mnist): the train split when
//                                      train-images-idx3-ubyte[.gz] is there, else the t10k split
//   any other folder                   an image folder (open_image_folder)
// image_size (>= 1) is S; channels is 0 (auto: from the data), 1 or 3 (convert).
// Throws cudagan::Error (one line naming the problem and the fix) for a path that does not exist
// or is not a folder, a bad image_size or channels, and whatever the chosen opener throws.
std::unique_ptr<Dataset> open_dataset(const std::string& path, int image_size, int channels = 0);

// A folder of images (jpg, jpeg, png, bmp, tga; case-insensitive), scanned recursively; hidden
// files and folders (names starting with '.', e.g. macOS "._x.jpg" resource forks) are ignored,
// and links to folders are not followed (no cycles; links to files are). Samples are ordered by
// relative path. Each file's header is probed at open (stbi_info, fast): files that cannot be read
// are left out, counted and named in describe(). Labels are -1.
// channels = 0 picks 1 when every image is grayscale (with or without alpha), else 3. Conversions:
// RGB -> gray by ITU-R 601 luma (0.299 R + 0.587 G + 0.114 B); gray -> RGB by replication; alpha
// is dropped (as PIL's convert("RGB") does, so results match the usual PyTorch pipelines).
// Throws cudagan::Error when the folder does not exist, holds no image files, or none of them can
// be read, and for a bad image_size / channels.
std::unique_ptr<Dataset> open_image_folder(const std::string& folder, int image_size, int channels = 0);

// MNIST-format idx files in `folder`: <split>-images-idx3-ubyte and <split>-labels-idx1-ubyte
// (also the original "<split>-images.idx3-ubyte" spelling), raw or gzipped (".gz"), where split is
// "train" or "test" (the "t10k" files). The 8-bit pixels stay in memory (47 MB for the train
// split); each sample is resized from rows x cols to image_size on load(). Labels are the digits.
// channels = 0 means 1; 3 replicates the gray value.
// Throws cudagan::Error naming the file for a missing file, a bad magic number (not 2051 / 2049),
// counts that differ between images and labels, a file shorter or longer than its header says,
// or a gzip error; also for a bad split, image_size or channels.
std::unique_ptr<Dataset> open_mnist(const std::string& folder, const std::string& split = "train",
                                    int image_size = 28, int channels = 0);
// True when `folder` holds the images and labels idx files of `split` ("train" or "test").
bool has_mnist_split(const std::string& folder, const std::string& split);

// The built-in synthetic set: no files, `size` deterministic images, each a random two-colour
// linear gradient with one to three soft-edged coloured discs, generated from a hash of the
// index. The scene is defined in resolution-independent coordinates, so it is the same picture
// at every image_size. Easy enough for a GAN to learn in minutes, varied enough to show mode
// collapse. Label: the number of discs minus one (0, 1 or 2). channels = 0 means 3.
// Throws cudagan::Error for a bad image_size, channels or size (< 1).
constexpr int64_t kSyntheticSize = 10000;
std::unique_ptr<Dataset> open_synthetic(int image_size, int channels = 0, int64_t size = kSyntheticSize);

// The preprocessing every image dataset applies, exposed so that other code (and tests) can get
// the identical result: 8-bit interleaved pixels [height][width][channels] (channels 1 gray,
// 2 gray+alpha, 3 RGB, 4 RGBA) -> center crop to min(width, height) squared -> channel
// conversion to out_channels (1 or 3; rules as in open_image_folder) -> resize to out_size
// (area filter when shrinking, bilinear with half-pixel centres and clamped edges when enlarging)
// -> v / 127.5 - 1 into out[out_channels * out_size * out_size] (CHW).
// Throws cudagan::Error for non-positive sizes or unsupported channel counts.
void to_chw(const uint8_t* pixels, int width, int height, int channels, int out_channels, int out_size,
            float* out);

// One batch: images [B, C, S, S] float32 on the CPU, and the B labels (-1 when the data has none).
struct Batch {
  Tensor images;
  std::vector<int> labels;
};

// Which share of every batch a DataLoader delivers (data-parallel training: one share per rank).
struct Shard {
  int index = 0;  // this loader's share, 0 .. count - 1
  int count = 1;  // how many shares each batch is split into
};

// Shuffles a dataset into batches, decoding on worker threads.
//
// An epoch is a permutation of the dataset derived from (seed, epoch) only (epoch_permutation).
// Batch k holds the samples at positions [k * B, (k + 1) * B) of it; with drop_last the last
// partial batch is dropped (its samples serve only as replacements, below), without it the last
// batch is smaller. Batches come out in order whatever the number of workers and whichever worker
// finished first, and are identical for any number of workers.
//
// A sample that fails to decode is replaced by the next decodable sample of the permutation after
// it (wrapping around), counted and named (skipped(), skipped_names()). Replacing in place rather
// than shifting the rest of the epoch keeps every batch full and its content a function of its
// position, so skip() is exact without decoding anything: the price is that, in a dataset with
// corrupt files, a few samples appear twice in an epoch.
//
// With workers > 0, that many threads decode chunks of the next few batches (a bounded prefetch of
// kPrefetchBatches batches) while the caller trains on the current one; workers = 0 decodes on the
// calling thread inside next(). Prefetching starts at the first next() of an epoch, so
// start_epoch() followed by skip() decodes nothing it does not deliver.
//
// Sharding (data-parallel training): with Shard{r, R}, batch_size is the GLOBAL batch and this loader
// delivers its r-th share of each, the rows [r B/R, (r+1) B/R) of global batch k. R loaders with the
// same seed, r = 0 .. R-1, together deliver exactly the batches of one unsharded loader, each image once.
//
// The dataset must outlive the loader. One thread drives the loader (its methods are not to be
// called concurrently); destroying it at any time, mid-epoch included, stops and joins the workers.
class DataLoader {
 public:
  static constexpr int kPrefetchBatches = 4;

  // Throws cudagan::Error for batch_size < 1, workers < 0, an empty dataset, a shard outside
  // [0, count), a batch_size that count does not divide, or a sharded loader without drop_last.
  DataLoader(const Dataset& dataset, int batch_size, uint64_t seed, int workers, bool drop_last = true,
             Shard shard = {});
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t batches_per_epoch() const;
  int batch_size() const;        // the (global) batch size
  int shard_batch_size() const;  // the rows of a full batch this loader delivers: batch_size / shards
  Shard shard() const;
  // Begins epoch `epoch` (>= 0) at its first batch, dropping whatever the previous one had in flight.
  void start_epoch(int64_t epoch);
  // Moves `batches` (>= 0) batches ahead within the current epoch without decoding them (resuming
  // mid-epoch); past the end, the epoch is over. Throws cudagan::Error for a negative count.
  void skip(int64_t batches);
  // Fills `batch` with the next batch of the epoch and returns true, or returns false when the
  // epoch is over. Starts epoch 0 when no epoch was started. Rethrows errors from the dataset;
  // throws cudagan::Error when every sample of the dataset fails to decode.
  bool next(Batch& batch);

  int64_t epoch() const;       // the current epoch
  int64_t next_batch() const;  // the index within the epoch of the batch next() returns next
  int64_t skipped() const;     // distinct samples found undecodable so far (all epochs)
  std::vector<std::string> skipped_names() const;  // the first few of them, by Dataset::name
  // Estimated decode capacity in images per second: images decoded divided by the time workers
  // spent decoding them, times the number of workers (the rate with every worker busy). It counts
  // all epochs so far; 0 before anything was decoded.
  double images_per_second() const;

  // The order of epoch `epoch`: a permutation of [0, n) by Fisher-Yates from a generator seeded
  // with a hash of (seed, epoch). The same on every platform.
  static std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cudagan::data
