// DataLoader: shuffled batches decoded on worker threads, delivered in order.
//
// Work is handed out in chunks of a batch (a few samples), not whole batches, so that every worker
// helps with the batch the trainer waits for. Each chunk writes straight into its batch's tensor;
// a batch is delivered once all its chunks are done. A generation counter, bumped by start_epoch(),
// lets workers that were decoding for an abandoned epoch finish and throw their result away
// instead of being interrupted.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "cudagan/data/data.h"
#include "cudagan/core/error.h"
#include "cudagan/core/rng.h"

namespace cudagan::data {

namespace {

constexpr int kMaxChunk = 16;      // samples per work item: small enough to spread a batch over workers
constexpr size_t kNamedSkips = 5;  // how many undecodable samples skipped_names() keeps

// What decoding a chunk found, merged into the loader's statistics under its lock.
struct ChunkResult {
  int64_t decoded = 0;          // load() calls, successful or not
  std::vector<int64_t> failed;  // dataset indices that failed to decode
};

}  // namespace

struct DataLoader::Impl {
  struct Slot {  // one batch being decoded
    Batch batch;
    int chunks_left = 0;
  };

  Impl(const Dataset& d, int b, uint64_t s, int w, bool drop, Shard sh)
      : dataset(d),
        batch_size(b),
        seed(s),
        workers(w),
        drop_last(drop),
        n(d.size()),
        shard(sh),
        shard_rows(b / sh.count),
        shard_offset(int64_t(sh.index) * (b / sh.count)),
        chunk(w == 0 ? shard_rows : std::clamp((shard_rows + w - 1) / w, 1, kMaxChunk)) {
    batches = drop_last ? n / batch_size : (n + batch_size - 1) / batch_size;
  }

  // This shard's rows of batch k: all of a full batch's share; with one shard, the last batch may be short.
  int64_t batch_rows(int64_t k) const {
    return std::min<int64_t>(shard_rows, n - k * batch_size - shard_offset);
  }
  int chunks_in(int64_t k) const { return int((batch_rows(k) + chunk - 1) / chunk); }

  Batch make_batch(int64_t k) const {
    const int64_t rows = batch_rows(k);
    Batch b;
    b.images = Tensor::empty({rows, dataset.channels(), dataset.image_size(), dataset.image_size()});
    b.labels.assign(size_t(rows), -1);
    return b;
  }

  // Decodes rows [r0, r1) of batch k of the epoch ordered by `perm` into `batch`. A sample that
  // fails is replaced by the next one in the permutation that decodes (wrapping around), so the
  // result depends only on the position and the data.
  ChunkResult decode(const std::vector<int64_t>& perm, int64_t k, int64_t r0, int64_t r1,
                     Batch& batch) const {
    ChunkResult result;
    const int64_t numel = dataset.sample_numel();
    float* images = batch.images.data<float>();
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t position = k * batch_size + shard_offset + r;
      bool ok = false;
      for (int64_t t = 0; t < n && !ok; ++t) {
        const int64_t index = perm[size_t((position + t) % n)];
        ++result.decoded;
        ok = dataset.load(index, images + r * numel, &batch.labels[size_t(r)]);
        if (!ok) result.failed.push_back(index);
      }
      CUDAGAN_CHECK(ok, "every one of the ", n, " samples failed to decode (e.g. '", dataset.name(perm[0]),
                    "'): the data is unreadable; check the files");
    }
    return result;
  }

  void record(const ChunkResult& r, double seconds) {  // with mu held
    decoded += r.decoded;
    busy_seconds += seconds;
    for (int64_t index : r.failed) {
      if (bad.insert(index).second && bad_names.size() < kNamedSkips)
        bad_names.push_back(dataset.name(index));
    }
  }

  bool can_claim() const {
    return running && !error && claim_batch < batches && claim_batch < deliver + kPrefetchBatches;
  }

  void worker() {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      work_cv.wait(lock, [&] { return stop || can_claim(); });
      if (stop) return;
      const uint64_t gen = generation;
      const std::shared_ptr<const std::vector<int64_t>> order = perm;
      const int64_t k = claim_batch;
      const int c = claim_chunk;
      std::shared_ptr<Slot>& entry = slots[k];
      if (!entry) {
        try {
          auto fresh = std::make_shared<Slot>();
          fresh->batch = make_batch(k);
          fresh->chunks_left = chunks_in(k);
          entry = std::move(fresh);
        } catch (...) {  // out of memory: next() reports it
          slots.erase(k);
          error = std::current_exception();
          done_cv.notify_all();
          continue;
        }
      }
      const std::shared_ptr<Slot> slot = entry;
      if (++claim_chunk == chunks_in(k)) {
        ++claim_batch;
        claim_chunk = 0;
      }
      lock.unlock();

      const auto t0 = std::chrono::steady_clock::now();
      ChunkResult result;
      std::exception_ptr failure;
      try {
        result = decode(*order, k, int64_t(c) * chunk,
                        std::min<int64_t>(int64_t(c + 1) * chunk, batch_rows(k)), slot->batch);
      } catch (...) {
        failure = std::current_exception();
      }
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

      lock.lock();
      record(result, seconds);
      if (gen != generation) continue;  // an abandoned epoch: the slot is no longer in `slots`
      if (failure) {
        error = failure;
        done_cv.notify_all();
      } else if (--slot->chunks_left == 0) {
        done_cv.notify_all();
      }
    }
  }

  void shutdown() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    work_cv.notify_all();
    for (auto& t : threads) t.join();
    threads.clear();
  }

  void begin(int64_t e) {  // with mu held
    ++generation;
    epoch = e;
    perm = std::make_shared<const std::vector<int64_t>>(epoch_permutation(n, seed, e));
    deliver = claim_batch = 0;
    claim_chunk = 0;
    slots.clear();
    running = false;
    error = nullptr;
    started = true;
  }

  const Dataset& dataset;
  const int batch_size;
  const uint64_t seed;
  const int workers;
  const bool drop_last;
  const int64_t n;
  const Shard shard;
  const int shard_rows;        // rows of each batch this loader delivers: batch_size / shard count
  const int64_t shard_offset;  // where they start in the global batch
  const int chunk;  // rows per work item
  int64_t batches = 0;

  std::mutex mu;
  std::condition_variable work_cv;  // workers wait for work or stop
  std::condition_variable done_cv;  // next() waits for its batch
  bool stop = false;

  // The epoch in progress.
  bool started = false;
  bool running = false;  // workers may claim; set by the epoch's first next()
  int64_t epoch = 0;
  uint64_t generation = 0;
  std::shared_ptr<const std::vector<int64_t>> perm;
  int64_t deliver = 0;      // the batch next() returns next
  int64_t claim_batch = 0;  // the first chunk not yet handed out: (claim_batch, claim_chunk)
  int claim_chunk = 0;
  std::map<int64_t, std::shared_ptr<Slot>> slots;  // batches claimed but not yet delivered
  std::exception_ptr error;                        // from a worker, rethrown by next()

  // Statistics over the loader's life.
  std::set<int64_t> bad;
  std::vector<std::string> bad_names;
  int64_t decoded = 0;
  double busy_seconds = 0;

  std::vector<std::thread> threads;
};

DataLoader::DataLoader(const Dataset& dataset, int batch_size, uint64_t seed, int workers, bool drop_last,
                       Shard shard) {
  CUDAGAN_CHECK(batch_size >= 1, "batch size must be at least 1, got ", batch_size);
  CUDAGAN_CHECK(shard.count >= 1 && shard.index >= 0 && shard.index < shard.count, "data shard ", shard.index,
                " of ", shard.count, " does not exist: the index must be in [0, count)");
  CUDAGAN_CHECK(batch_size % shard.count == 0, "the batch size ", batch_size, " does not divide into ",
                shard.count, " equal shares (one per rank): use a multiple of ", shard.count);
  CUDAGAN_CHECK(drop_last || shard.count == 1,
                "a sharded DataLoader drops the last partial batch (drop_last), so that every rank has a share");
  CUDAGAN_CHECK(workers >= 0,
                "the number of data workers must be 0 (decode on the calling thread) or more, got ", workers);
  CUDAGAN_CHECK(dataset.size() > 0, "the dataset is empty: ", dataset.describe());
  impl_ = std::make_unique<Impl>(dataset, batch_size, seed, workers, drop_last, shard);
  try {
    for (int i = 0; i < workers; ++i) impl_->threads.emplace_back([this] { impl_->worker(); });
  } catch (...) {  // could not start a thread: join those that did start
    impl_->shutdown();
    throw;
  }
}

DataLoader::~DataLoader() {
  if (impl_) impl_->shutdown();
}

int64_t DataLoader::batches_per_epoch() const { return impl_->batches; }
int DataLoader::batch_size() const { return impl_->batch_size; }
int DataLoader::shard_batch_size() const { return impl_->shard_rows; }
Shard DataLoader::shard() const { return impl_->shard; }

void DataLoader::start_epoch(int64_t epoch) {
  CUDAGAN_CHECK(epoch >= 0, "epoch must be 0 or more, got ", epoch);
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->begin(epoch);
}

void DataLoader::skip(int64_t batches) {
  CUDAGAN_CHECK(batches >= 0, "cannot skip a negative number of batches (", batches, ")");
  std::lock_guard<std::mutex> lock(impl_->mu);
  Impl& s = *impl_;
  if (!s.started) s.begin(0);
  s.deliver = std::min(s.batches, s.deliver + batches);
  s.slots.erase(s.slots.begin(), s.slots.lower_bound(s.deliver));
  if (s.claim_batch < s.deliver) {
    s.claim_batch = s.deliver;
    s.claim_chunk = 0;
  }
  s.work_cv.notify_all();
}

bool DataLoader::next(Batch& batch) {
  Impl& s = *impl_;
  std::unique_lock<std::mutex> lock(s.mu);
  if (!s.started) s.begin(0);
  if (s.deliver >= s.batches) return false;
  const int64_t k = s.deliver;

  if (s.workers == 0) {
    const std::shared_ptr<const std::vector<int64_t>> order = s.perm;
    lock.unlock();
    Batch b = s.make_batch(k);
    const auto t0 = std::chrono::steady_clock::now();
    const ChunkResult result = s.decode(*order, k, 0, s.batch_rows(k), b);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    lock.lock();
    s.record(result, seconds);
    ++s.deliver;
    batch = std::move(b);
    return true;
  }

  if (!s.running) {
    s.running = true;
    s.work_cv.notify_all();
  }
  s.done_cv.wait(lock, [&] {
    if (s.error) return true;
    const auto it = s.slots.find(k);
    return it != s.slots.end() && it->second->chunks_left == 0;
  });
  if (s.error) std::rethrow_exception(s.error);
  const auto it = s.slots.find(k);
  batch = std::move(it->second->batch);
  s.slots.erase(it);
  ++s.deliver;
  s.work_cv.notify_all();  // a prefetch place came free
  return true;
}

int64_t DataLoader::epoch() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->epoch;
}

int64_t DataLoader::next_batch() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->deliver;
}

int64_t DataLoader::skipped() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return int64_t(impl_->bad.size());
}

std::vector<std::string> DataLoader::skipped_names() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->bad_names;
}

double DataLoader::images_per_second() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->busy_seconds <= 0) return 0.0;
  return double(impl_->decoded) / impl_->busy_seconds * std::max(1, impl_->workers);
}

std::vector<int64_t> DataLoader::epoch_permutation(int64_t n, uint64_t seed, int64_t epoch) {
  CUDAGAN_CHECK(n >= 0, "cannot permute ", n, " elements");
  std::vector<int64_t> perm(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) perm[size_t(i)] = i;
  Rng g(splitmix64(seed) ^ splitmix64(uint64_t(epoch) + 0x632BE59BD9B4E019ull));
  // Modulo bias is below n / 2^64: far too small to matter, and it keeps the stream portable.
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(perm[size_t(i)], perm[size_t(g.next_u64() % uint64_t(i + 1))]);
  return perm;
}

}  // namespace cudagan::data
