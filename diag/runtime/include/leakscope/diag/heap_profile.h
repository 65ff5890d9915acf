// tcmalloc heap profiles: the mode switch and capture. The text format they
// are captured in is parsed by leakscope/core/heap_profile_text.h.
//
// Modes:
//   sampled  tcmalloc's sampling (MallocExtension::GetHeapSample). Near-zero
//            overhead; the period comes from TCMALLOC_SAMPLE_PARAMETER, which
//            tcmalloc reads before main — see `ensureHeapSampling()`.
//   full     HeapProfilerStart: every allocation, with alloc and free totals.
//            For drills; orders of magnitude slower. Never the default.
//   off      no heap section in snapshots.
// gperftools' HEAPPROFILESIGNAL is never used: its handler dumps inside the
// signal handler and skips silently when a lock is busy.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "leakscope/core/heap_profile_text.h"
#include "leakscope/diag/result.h"

namespace leakscope::diag {

enum class HeapMode { kOff, kSampled, kFull };

const char* heapModeName(HeapMode mode);
Result<HeapMode> parseHeapMode(std::string_view name);

// The sampling period tcmalloc runs with in this process (from the
// environment it started with, read at load time: clearing or changing
// TCMALLOC_SAMPLE_PARAMETER later changes neither tcmalloc nor this); 0 when
// sampling is off.
std::int64_t activeSamplePeriod();

// For mode `sampled`: if this process was not started with
// TCMALLOC_SAMPLE_PARAMETER set (or, with `override_environment`, was started
// with a different value), set it to `period` and re-exec the program
// (/proc/self/exe) with the same argv, so tcmalloc samples from the first
// allocation. Returns only when no re-exec was needed or exec failed (the
// error is returned; the process carries on without sampling). Call it first
// thing in main, before threads start. A period of 0 leaves things as they are.
// When no re-exec is needed it calls primeHeapSampler().
Status ensureHeapSampling(char** argv, std::int64_t period = 512 * 1024,
                          bool override_environment = false);

// Makes the calling thread sample from now on. Needed once, in the main
// thread, when sampling is on: gperftools 2.x leaves the first 16 MiB of
// allocations of any thread that allocated before tcmalloc's own start-up
// unsampled. Cheap (one untouched 16 MiB allocation); no-op without sampling.
void primeHeapSampler();

// Captures heap profiles in the configured mode. One per process.
// Thread-safe: capture() may be called from any thread.
class HeapProfiler {
 public:
  // For kFull, `full_prefix` is where gperftools may write its own interval
  // dumps (HeapProfilerStart's prefix).
  HeapProfiler(HeapMode mode, std::string full_prefix);
  ~HeapProfiler();
  HeapProfiler(const HeapProfiler&) = delete;
  HeapProfiler& operator=(const HeapProfiler&) = delete;

  HeapMode mode() const { return mode_; }
  // The profile text now; kUnavailable when the mode is off, this build has no
  // tcmalloc, or sampling is not active in this process.
  Result<std::string> captureText() const;

 private:
  HeapMode mode_;
  bool started_full_ = false;
};

}  // namespace leakscope::diag
