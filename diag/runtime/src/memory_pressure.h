// Snapshots before the OOM kill: the evidence must be on disk before the
// kernel takes the process, so the runtime writes a snapshot when RSS first
// reaches each configured fraction of the memory limit (readMemoryLimit:
// cgroup v2 memory.max, cgroup v1 memory.limit_in_bytes, else MemTotal).
// The thresholds and the reading of statm and the limit are shared with
// `leakscope run`'s watcher (leakscope/diag/memory_thresholds.h).
//
// MemoryPressureCheck is what the snapshot thread runs on its timer: this
// process's ProcessPressure, its crossings worded as the snapshot's trigger
// detail. Not thread-safe: it belongs to the runtime's snapshot thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "leakscope/diag/memory_thresholds.h"
#include "leakscope/diag/result.h"

namespace leakscope::diag {

class MemoryPressureCheck {
 public:
  using Clock = ProcessPressure::Clock;

  // Opens /proc/self/statm and reads the limit; errors name the file.
  static Result<MemoryPressureCheck> open(std::vector<double> fractions);

  // One check: when RSS newly crossed a fraction, the snapshot's trigger
  // detail ("RSS 58.2 MiB = 91% of the cgroup1 memory limit 64.0 MiB; crossed
  // 90%"); nullopt when there is nothing to do; an error when statm could not
  // be read.
  Result<std::optional<std::string>> check(Clock::time_point now);

 private:
  explicit MemoryPressureCheck(ProcessPressure self) : self_(std::move(self)) {}

  ProcessPressure self_;
};

// The trigger detail for a crossing someone else saw (leakscope run's
// watcher): this process's RSS and limit now, read once.
std::string pressureDetailNow(double fraction);

}  // namespace leakscope::diag
