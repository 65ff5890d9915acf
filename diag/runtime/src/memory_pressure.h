// Snapshots before the OOM kill: the evidence must be on disk before the
// kernel takes the process, so the runtime writes a snapshot when RSS first
// reaches each configured fraction of the memory limit (readMemoryLimit:
// cgroup v2 memory.max, cgroup v1 memory.limit_in_bytes, else MemTotal).
//
// PressureThresholds is the state machine, with no I/O (fed RSS readings and
// the limit by the caller; unit-tested on its own). Each fraction is armed or
// fired:
//
//   armed --RSS >= fraction x limit--> fired   (asks for one snapshot)
//   fired --RSS <  (fraction - kRearmMargin) x limit--> armed
//
// One reading that crosses several armed fractions fires all of them but asks
// for one snapshot, named by the highest: a burst from 70 % to 96 % between
// two checks leaves no time for three snapshots, and three copies of the same
// state would only cost memory when there is least of it.
//
// MemoryPressureCheck is what the snapshot thread runs on its timer: one
// pread of /proc/self/statm (opened once, kept open), the limit re-read once a
// minute so that a limit changed at run time (systemctl set-property
// MemoryMax=) is followed.
//
// Neither is thread-safe: both belong to the runtime's snapshot thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "leakscope/core/unique_fd.h"
#include "leakscope/diag/process.h"
#include "leakscope/diag/result.h"

namespace leakscope::diag {

class PressureThresholds {
 public:
  // Why 5 points of the limit: RSS wobbles by allocator caching and page
  // faults by a percent or two, and without a margin a daemon hovering at a
  // threshold would write a snapshot on every check (disk, and memory at the
  // worst time). A real second climb, after the daemon freed memory, falls
  // far more than that and is recorded again. 5 points is also the gap
  // between the default 0.9 and 0.95.
  static constexpr double kRearmMargin = 0.05;

  // `fractions` must pass validateMemoryPressureFractions (runtime.h); they
  // are sorted here.
  explicit PressureThresholds(std::vector<double> fractions);

  // One RSS reading against the limit: the highest fraction it newly
  // crossed (the snapshot to write), or nullopt.
  std::optional<double> observe(std::uint64_t rss_bytes, std::uint64_t limit_bytes);

 private:
  struct Threshold {
    double fraction = 0;
    bool fired = false;
  };
  std::vector<Threshold> thresholds_;  // ascending fraction
};

class MemoryPressureCheck {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::seconds kLimitRefresh{60};

  // Opens /proc/self/statm and reads the limit; errors name the file.
  static Result<MemoryPressureCheck> open(std::vector<double> fractions);

  // One check: when RSS newly crossed a fraction, the snapshot's trigger
  // detail ("RSS 58.2 MiB = 91% of the cgroup1 memory limit 64.0 MiB; crossed
  // 90%"); nullopt when there is nothing to do; an error when statm could not
  // be read.
  Result<std::optional<std::string>> check(Clock::time_point now);

 private:
  MemoryPressureCheck(core::UniqueFd statm, MemoryLimit limit, Clock::time_point limit_read,
                      std::vector<double> fractions)
      : statm_(std::move(statm)),
        limit_(limit),
        limit_read_(limit_read),
        thresholds_(std::move(fractions)) {}
  Result<std::uint64_t> readRss();

  core::UniqueFd statm_;
  MemoryLimit limit_;
  Clock::time_point limit_read_;
  PressureThresholds thresholds_;
};

// The trigger detail of a memory-pressure snapshot (see check()).
std::string pressureDetail(std::uint64_t rss_bytes, const MemoryLimit& limit, double fraction);
// The same for a crossing someone else saw (leakscope run's watcher): this
// process's RSS and limit now, read once.
std::string pressureDetailNow(double fraction);

}  // namespace leakscope::diag
