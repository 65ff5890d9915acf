// Process and allocator figures, read on demand from /proc and from
// tcmalloc's MallocExtension. The /proc readers take a pid: 0 (the default)
// is this process (/proc/self), any other the process `leakscope capture`
// looks at from the outside. Thread-safe: no shared state.
//
// Two libraries hold these: everything but readAllocatorStats() is in
// leakscope::collect (no tcmalloc, so the `leakscope` CLI can link it);
// readAllocatorStats() is in leakscope::diag, which runs on tcmalloc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "leakscope/diag/result.h"

namespace leakscope::diag {

struct ProcessStats {
  int pid = 0;
  std::string exe;             // /proc/PID/exe target; "" if it cannot be read
  std::string host;            // gethostname() of this machine; "" if it fails
  std::string build_id;        // GNU build id of the main executable, hex; "" if none
  double start_time_unix = 0;  // seconds since the epoch
  std::uint64_t rss_bytes = 0;
  std::uint64_t virtual_bytes = 0;
  std::uint64_t open_fds = 0;
  std::uint64_t max_fds = 0;  // RLIMIT_NOFILE soft limit (/proc/PID/limits)
  std::uint64_t threads = 0;
  double cpu_seconds = 0;  // user + system
};

// The figures of process `pid` (0 = this one). Fails when /proc/PID/stat
// cannot be read or parsed (the process does not exist, or is gone); the
// error names the file.
Result<ProcessStats> readProcessStats(int pid = 0);

// "/proc/self" for pid 0, else "/proc/PID": the one place the readers spell it.
std::string procDir(int pid);

// The figures readProcessStats() takes from /proc/PID/stat.
struct ProcStat {
  char state = '?';               // R, S, D, Z (zombie), X (dead), ...
  std::uint64_t cpu_ticks = 0;    // utime + stime
  std::uint64_t threads = 0;      // num_threads
  std::uint64_t start_ticks = 0;  // starttime, clock ticks after boot
  std::uint64_t virtual_bytes = 0;
  std::uint64_t rss_pages = 0;
};
// Parses the text of /proc/PID/stat. The command name (field 2) may hold
// spaces and parentheses: the fields are counted from the last ')'. Errors
// say what is missing or malformed.
Result<ProcStat> parseProcStat(std::string_view text);
// The resident set size in pages: field 2 of /proc/PID/statm (the one read
// the memory-pressure check makes per interval); nullopt when malformed.
std::optional<std::uint64_t> parseStatmResidentPages(std::string_view statm);
// The `btime` line of /proc/stat (boot time, seconds since the epoch);
// nullopt when absent or malformed.
std::optional<std::uint64_t> parseBootTime(std::string_view proc_stat);

// The memory limit the process runs under: the smallest of its cgroup's
// memory limit (cgroup v2 `memory.max`, or cgroup v1
// `memory.limit_in_bytes`, of the process's cgroup and every ancestor up to
// the hierarchy's mount point) and the machine's `MemTotal`. A cgroup with
// no limit ("max", or v1's huge "unlimited" number) is never smaller than
// MemTotal, so the machine's memory is the answer then.
enum class MemoryLimitSource { kCgroup2, kCgroup1, kMemTotal };
// "cgroup2", "cgroup1", "meminfo" (the `source` label of
// leakscope_memory_limit_bytes).
const char* memoryLimitSourceName(MemoryLimitSource s);

struct MemoryLimit {
  std::uint64_t bytes = 0;
  MemoryLimitSource source = MemoryLimitSource::kMemTotal;
};

// Reads /proc/PID/cgroup (pid 0 = self), /proc/self/mountinfo (the mounts
// are looked up in this process's mount namespace, where the files are then
// read), /proc/meminfo and the cgroup files they lead to. `root` is prefixed
// to every path ("" = the real files; tests pass a directory holding a fake
// tree). Fails only when MemTotal cannot be read; unreadable cgroup files
// are skipped.
Result<MemoryLimit> readMemoryLimit(const std::string& root = "", int pid = 0);

// The content of `memory.max` / `memory.limit_in_bytes`: bytes, or nullopt
// for "max" and anything that is not a plain number.
std::optional<std::uint64_t> parseCgroupMemoryLimit(std::string_view text);
// MemTotal of /proc/meminfo in bytes; nullopt if the line is missing.
std::optional<std::uint64_t> parseMemTotal(std::string_view meminfo);

// The soft limit of "Max open files" in the text of /proc/PID/limits
// ("unlimited" is RLIM_INFINITY, as getrlimit says); nullopt if the line is
// missing or malformed.
std::optional<std::uint64_t> parseMaxOpenFiles(std::string_view limits);

// The GNU build id of the main executable (from its loaded program headers).
std::string mainBuildId();
// The GNU build id of the ELF file at `path` (its PT_NOTE segments, read with
// a few preads: cheap even for a 100 MB executable); "" if it has none or is
// not a readable ELF file of this machine's word size.
std::string fileBuildId(const std::string& path);

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

// In leakscope::diag (allocator_stats.cc), not leakscope::collect.
AllocatorStats readAllocatorStats();

}  // namespace leakscope::diag
