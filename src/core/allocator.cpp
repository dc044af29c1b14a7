#include "core/allocator.h"

#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace tcat {
namespace {

constexpr size_t kAlign = 64;

// Sizes are rounded so that blocks of nearly equal size share a free list.
size_t bucket_size(size_t bytes) {
  if (bytes <= 4096) return (bytes + kAlign - 1) / kAlign * kAlign;
  size_t granule = 4096;
  while (granule * 32 < bytes) granule <<= 1;  // at most ~3% rounding waste
  return (bytes + granule - 1) / granule * granule;
}

struct Cache {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free_lists;
  AllocatorStats stats;
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: tensors may outlive static destruction order
  return *c;
}

}  // namespace

void* cached_alloc(size_t bytes) {
  const size_t size = bucket_size(bytes ? bytes : 1);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_lists.find(size);
    if (it != c.free_lists.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.stats.bytes_cached -= size;
      c.stats.bytes_in_use += size;
      ++c.stats.reuses;
      return p;
    }
    c.stats.bytes_in_use += size;
    ++c.stats.system_allocs;
  }
  void* p = std::aligned_alloc(kAlign, size);
  if (!p) {
    allocator_release_cache();
    p = std::aligned_alloc(kAlign, size);
    if (!p) throw std::bad_alloc();
  }
  return p;
}

void cached_free(void* p, size_t bytes) {
  if (!p) return;
  const size_t size = bucket_size(bytes ? bytes : 1);
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.free_lists[size].push_back(p);
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
  for (auto& [size, list] : c.free_lists) {
    for (void* p : list) std::free(p);
    c.stats.bytes_cached -= size * list.size();
    list.clear();
  }
}

}  // namespace tcat
