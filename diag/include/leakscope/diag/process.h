// Process and allocator figures, read on demand from /proc/self and from
// tcmalloc's MallocExtension. Thread-safe: no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "leakscope/diag/result.h"

namespace leakscope::diag {

struct ProcessStats {
  int pid = 0;
  std::string exe;             // /proc/self/exe target
  std::string build_id;        // GNU build id of the main executable, hex; "" if none
  double start_time_unix = 0;  // seconds since the epoch
  std::uint64_t rss_bytes = 0;
  std::uint64_t virtual_bytes = 0;
  std::uint64_t open_fds = 0;
  std::uint64_t max_fds = 0;  // RLIMIT_NOFILE soft limit
  std::uint64_t threads = 0;
  double cpu_seconds = 0;  // user + system
};

Result<ProcessStats> readProcessStats();

// The GNU build id of the main executable (from its loaded program headers).
std::string mainBuildId();

// Allocator figures. `available` is false when the process does not run on
// tcmalloc (e.g. the sanitizer build); the figures are then all zero.
struct AllocatorStats {
  bool available = false;
  std::string name;                             // "tcmalloc"
  std::uint64_t allocated_bytes = 0;            // generic.current_allocated_bytes
  std::uint64_t heap_bytes = 0;                 // generic.heap_size
  std::uint64_t pageheap_free_bytes = 0;        // tcmalloc.pageheap_free_bytes
  std::uint64_t pageheap_unmapped_bytes = 0;    // tcmalloc.pageheap_unmapped_bytes
  std::uint64_t central_cache_free_bytes = 0;   // tcmalloc.central_cache_free_bytes
  std::uint64_t transfer_cache_free_bytes = 0;  // tcmalloc.transfer_cache_free_bytes
  std::uint64_t thread_cache_free_bytes = 0;    // tcmalloc.thread_cache_free_bytes
};

AllocatorStats readAllocatorStats();

}  // namespace leakscope::diag
