// Caching allocator: freed blocks go to a per-size free list and are handed out again, so a
// training or decoding loop that allocates the same activation shapes each step reaches a steady
// state with no calls to the system allocator.
#pragma once
#include <cstddef>

namespace tcat {

struct AllocatorStats {
  size_t bytes_in_use = 0;    // handed out and not yet returned
  size_t bytes_cached = 0;    // returned, kept for reuse
  size_t system_allocs = 0;   // calls that reached the system allocator
  size_t reuses = 0;          // requests served from the cache
};

void* cached_alloc(size_t bytes);      // 64-byte aligned; bytes may be 0
void cached_free(void* p, size_t bytes);  // bytes as requested (the block knows its size)
AllocatorStats allocator_stats();
void allocator_release_cache();        // return every cached block to the system

}  // namespace tcat
