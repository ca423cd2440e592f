// Host memory for tensors and kernel scratch: 64-byte aligned blocks, the large ones kept after they are
// freed and handed out again, the CPU's counterpart of the GPU's stream-ordered pool.
//
// Why: a training step frees and allocates the same large buffers every step (activations, gradients, the
// packed GEMM panels). Even with blas::keep_freed_memory's mallopt (heap blocks up to 32 MiB, never
// trimmed) glibc maps anything larger afresh each time, so every step still paid about 25,000 page faults
// at DCGAN-64 batch 128, each one zeroing a page (4 % of the step in the kernel, and first touches that
// miss every cache); now about 300. Kept, the pages stay mapped.
//
// Blocks of at least kPooledBytes are rounded up to a size class (quarter steps between powers of two: at
// most a quarter more address space, and the untouched tail never becomes resident) and reused within their
// class; smaller ones go straight to aligned_alloc, which serves them well. The blocks kept are bounded
// (cap_bytes); a block freed beyond that goes back to the system. Thread-safe.
//
// The process has one pool, host_pool(), as it has one malloc: tensors are freed wherever their last owner
// drops them, so the pool cannot be handed down like a stream. Under AddressSanitizer it is bypassed
// (host_alloc / host_free are aligned_alloc / free), so that a use after free is still caught.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace cudagan::cpu {

constexpr size_t kHostAlignment = 64;           // a cache line, and the widest vector load (AVX-512)
constexpr size_t kPooledBytes = size_t(1) << 18;  // 256 KiB: smaller blocks are not kept

class HostPool {
 public:
  explicit HostPool(size_t cap_bytes);
  ~HostPool();
  HostPool(const HostPool&) = delete;
  HostPool& operator=(const HostPool&) = delete;

  // At least `bytes` (aligned to kHostAlignment), or nullptr when the system has no memory; nullptr for 0.
  void* alloc(size_t bytes);
  // Takes back a block from alloc(bytes) with the same `bytes` (nullptr: nothing).
  void free(void* p, size_t bytes) noexcept;
  // Returns every kept block to the system.
  void release() noexcept;

  struct Stats {
    size_t kept_bytes = 0;    // in blocks waiting to be handed out again
    int64_t reused = 0;       // allocations served from a kept block
    int64_t fresh = 0;        // pooled-size allocations that went to the system
  };
  Stats stats() const;

  // The size class of a pooled request (bytes rounded up; below kPooledBytes: bytes rounded to the alignment).
  static size_t size_class(size_t bytes);

 private:
  size_t cap_;
  mutable std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> kept_;  // by size class
  Stats stats_;
};

// The process's pool (kept blocks bounded to 2 GiB).
HostPool& host_pool();

// host_pool().alloc / free, or aligned_alloc / free under AddressSanitizer.
void* host_alloc(size_t bytes);
void host_free(void* p, size_t bytes) noexcept;

}  // namespace cudagan::cpu
