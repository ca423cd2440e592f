// The host memory pool (host_memory.h).
#include "cpu/host_memory.h"

#include <cstdlib>

namespace cudagan::cpu {

namespace {

void* system_alloc(size_t bytes) { return std::aligned_alloc(kHostAlignment, bytes); }

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kBypass = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kBypass = true;
#else
constexpr bool kBypass = false;
#endif
#else
constexpr bool kBypass = false;
#endif

}  // namespace

size_t HostPool::size_class(size_t bytes) {
  const size_t aligned = (bytes + kHostAlignment - 1) / kHostAlignment * kHostAlignment;
  if (aligned < kPooledBytes) return aligned;
  size_t power = kPooledBytes;  // the largest power of two <= aligned
  while (power <= aligned / 2) power *= 2;
  const size_t step = power / 4;
  return (aligned + step - 1) / step * step;  // power + i * power / 4, i in 0..4
}

HostPool::HostPool(size_t cap_bytes) : cap_(cap_bytes) {}

HostPool::~HostPool() { release(); }

void* HostPool::alloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  const size_t cls = size_class(bytes);
  if (cls < kPooledBytes) return system_alloc(cls);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = kept_.find(cls);
    if (it != kept_.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      stats_.kept_bytes -= cls;
      ++stats_.reused;
      return p;
    }
    ++stats_.fresh;
  }
  void* p = system_alloc(cls);
  if (!p) {  // the system is out of memory: give back what is kept, and try once more
    release();
    p = system_alloc(cls);
  }
  return p;
}

void HostPool::free(void* p, size_t bytes) noexcept {
  if (!p) return;
  const size_t cls = size_class(bytes);
  if (cls >= kPooledBytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stats_.kept_bytes + cls <= cap_) {
      try {
        kept_[cls].push_back(p);
        stats_.kept_bytes += cls;
        return;
      } catch (...) {  // no memory for the bookkeeping: free the block instead
      }
    }
  }
  std::free(p);
}

void HostPool::release() noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [cls, blocks] : kept_)
    for (void* p : blocks) std::free(p);
  kept_.clear();
  stats_.kept_bytes = 0;
}

HostPool::Stats HostPool::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

HostPool& host_pool() {
  // Never destroyed: tensors held by other static objects may be freed during static destruction, after a
  // pool with a destructor would be gone. The kept blocks go with the process.
  static auto* pool = new HostPool(size_t(2) << 30);
  return *pool;
}

void* host_alloc(size_t bytes) {
  if constexpr (kBypass) return bytes == 0 ? nullptr : system_alloc(HostPool::size_class(bytes));
  return host_pool().alloc(bytes);
}

void host_free(void* p, size_t bytes) noexcept {
  if constexpr (kBypass) return std::free(p);
  host_pool().free(p, bytes);
}

}  // namespace cudagan::cpu
