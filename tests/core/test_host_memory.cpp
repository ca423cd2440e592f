// The host memory pool (kernels/cpu/host_memory.h) on pools of its own, so the process's pool and other
// tests do not disturb the counts: size classes, reuse within a class only, the bound on what is kept,
// alignment, and that live blocks never share memory.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

#include "cpu/host_memory.h"

namespace {

using cudagan::cpu::HostPool;
using cudagan::cpu::kHostAlignment;
using cudagan::cpu::kPooledBytes;

constexpr size_t kMiB = size_t(1) << 20;

bool aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % kHostAlignment == 0; }

}  // namespace

TEST_CASE("host pool size classes: quarter steps between powers of two, small sizes to the alignment",
          "[core][host_memory]") {
  CHECK(HostPool::size_class(1) == 64);
  CHECK(HostPool::size_class(65) == 128);
  CHECK(HostPool::size_class(kPooledBytes - 64) == kPooledBytes - 64);
  CHECK(HostPool::size_class(kPooledBytes) == kPooledBytes);
  CHECK(HostPool::size_class(kPooledBytes + 1) == kPooledBytes + kPooledBytes / 4);
  CHECK(HostPool::size_class(4 * kMiB) == 4 * kMiB);
  CHECK(HostPool::size_class(4 * kMiB + 1) == 5 * kMiB);
  CHECK(HostPool::size_class(7 * kMiB + 1) == 8 * kMiB);
  CHECK(HostPool::size_class(100 * kMiB) == 112 * kMiB);
  for (size_t bytes : {size_t(1), size_t(1000), kPooledBytes - 1, kPooledBytes + 3, 3 * kMiB + 17, 33 * kMiB}) {
    const size_t cls = HostPool::size_class(bytes);
    INFO(bytes << " -> " << cls);
    CHECK(cls >= bytes);
    CHECK(cls % kHostAlignment == 0);
    CHECK((bytes < kPooledBytes || cls - bytes <= bytes / 4 + kHostAlignment));
  }
}

TEST_CASE("host pool reuses a freed block for a request of its class, and only of its class",
          "[core][host_memory]") {
  HostPool pool(64 * kMiB);
  void* a = pool.alloc(5 * kMiB);
  REQUIRE(a);
  CHECK(aligned(a));
  std::memset(a, 1, 5 * kMiB);
  pool.free(a, 5 * kMiB);
  CHECK(pool.stats().kept_bytes == 5 * kMiB);

  void* other = pool.alloc(3 * kMiB);  // another class: a fresh block
  CHECK(other != a);
  void* same = pool.alloc(4 * kMiB + 100);  // 5 MiB's class
  CHECK(same == a);
  std::memset(same, 2, 4 * kMiB + 100);
  const HostPool::Stats s = pool.stats();
  CHECK(s.reused == 1);
  CHECK(s.fresh == 2);
  CHECK(s.kept_bytes == 0);
  pool.free(same, 4 * kMiB + 100);
  pool.free(other, 3 * kMiB);
  CHECK(pool.stats().kept_bytes == 5 * kMiB + 3 * kMiB);
  pool.release();
  CHECK(pool.stats().kept_bytes == 0);
}

TEST_CASE("host pool keeps at most its cap and never hands one block out twice", "[core][host_memory]") {
  HostPool pool(10 * kMiB);
  std::vector<void*> live;
  for (int i = 0; i < 4; ++i) live.push_back(pool.alloc(4 * kMiB));
  CHECK(std::set<void*>(live.begin(), live.end()).size() == live.size());
  for (void* p : live) {
    REQUIRE(p);
    CHECK(aligned(p));
  }
  for (void* p : live) pool.free(p, 4 * kMiB);
  CHECK(pool.stats().kept_bytes == 8 * kMiB);  // the third and fourth went back to the system

  void* b1 = pool.alloc(4 * kMiB);
  void* b2 = pool.alloc(4 * kMiB);
  void* b3 = pool.alloc(4 * kMiB);
  CHECK(pool.stats().reused == 2);
  CHECK(std::set<void*>({b1, b2, b3}).size() == 3);
  for (void* p : {b1, b2, b3}) pool.free(p, 4 * kMiB);
}

TEST_CASE("host pool: small blocks are not kept, zero bytes is no block", "[core][host_memory]") {
  HostPool pool(64 * kMiB);
  CHECK(pool.alloc(0) == nullptr);
  pool.free(nullptr, 0);
  void* p = pool.alloc(1000);
  REQUIRE(p);
  CHECK(aligned(p));
  pool.free(p, 1000);
  CHECK(pool.stats().kept_bytes == 0);
  CHECK(pool.stats().fresh == 0);
}
