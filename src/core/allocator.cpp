#include "core/allocator.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>

namespace tcat {
namespace {

constexpr size_t kAlign = 64;

// Sizes are rounded so that blocks of nearly equal size are interchangeable.
size_t bucket_size(size_t bytes) {
  if (bytes <= 4096) return (bytes + kAlign - 1) / kAlign * kAlign;
  size_t granule = 4096;
  while (granule * 32 < bytes) granule <<= 1;  // at most ~3% rounding waste
  return (bytes + granule - 1) / granule * granule;
}

// Every block starts with a 64-byte header holding its real size, because a request may be
// served by a somewhat larger cached block and the caller only knows what it asked for.
constexpr size_t kHeader = kAlign;

size_t& block_size(void* user) { return *reinterpret_cast<size_t*>(static_cast<char*>(user) - kHeader); }

// Free blocks by size. A request takes the smallest cached block that fits and wastes at most a
// quarter of it, so batches whose shapes vary from step to step still reuse each other's memory.
struct Cache {
  std::mutex mu;
  std::multimap<size_t, void*> free_blocks;
  AllocatorStats stats;
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: tensors may outlive static destruction order
  return *c;
}

void* system_alloc(size_t size) {
  void* raw = std::aligned_alloc(kAlign, size + kHeader);
  if (!raw) return nullptr;
  void* user = static_cast<char*>(raw) + kHeader;
  block_size(user) = size;
  return user;
}

void system_free(void* user) { std::free(static_cast<char*>(user) - kHeader); }

}  // namespace

void* cached_alloc(size_t bytes) {
  const size_t size = bucket_size(bytes ? bytes : 1);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_blocks.lower_bound(size);
    if (it != c.free_blocks.end() && it->first <= size + size / 4) {
      void* p = it->second;
      c.stats.bytes_cached -= it->first;
      c.stats.bytes_in_use += it->first;
      ++c.stats.reuses;
      c.free_blocks.erase(it);
      return p;
    }
    c.stats.bytes_in_use += size;
    ++c.stats.system_allocs;
  }
  void* p = system_alloc(size);
  if (!p) {
    allocator_release_cache();
    p = system_alloc(size);
    if (!p) throw std::bad_alloc();
  }
  return p;
}

void cached_free(void* p, size_t /*bytes: the block records its own size*/) {
  if (!p) return;
  const size_t size = block_size(p);
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.free_blocks.emplace(size, p);
  c.stats.bytes_in_use -= size;
  c.stats.bytes_cached += size;
}

AllocatorStats allocator_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.stats;
}

void allocator_release_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  for (auto& [size, p] : c.free_blocks) {
    system_free(p);
    c.stats.bytes_cached -= size;
  }
  c.free_blocks.clear();
}

}  // namespace tcat
