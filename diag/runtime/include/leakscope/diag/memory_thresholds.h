// Snapshots before the OOM kill, the half without I/O on this process: the
// defaults, the state machine that decides when RSS crossed a fraction of the
// memory limit, and one process's reading of both. Two users: the runtime's
// MemoryPressureCheck (a linked daemon checks itself on its snapshot thread,
// memory_pressure.h) and `leakscope run`'s watcher (watcher.h), which checks
// the programs it watches from the outside and so must work without
// tcmalloc: this is leakscope::collect.
//
// PressureThresholds: each fraction is armed or fired:
//
//   armed --RSS >= fraction x limit--> fired   (asks for one snapshot)
//   fired --RSS <  (fraction - kRearmMargin) x limit--> armed
//
// One reading that crosses several armed fractions fires all of them but asks
// for one snapshot, named by the highest: a burst from 70 % to 96 % between
// two checks leaves no time for three snapshots, and three copies of the same
// state would only cost memory when there is least of it.
//
// ProcessPressure: one pread of /proc/PID/statm per check (opened once, kept
// open), the limit re-read once a minute so that a limit changed at run time
// (systemctl set-property MemoryMax=) is followed.
//
// None is thread-safe: each belongs to the one thread that checks.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "leakscope/core/unique_fd.h"
#include "leakscope/diag/process.h"
#include "leakscope/diag/result.h"

namespace leakscope::diag {

// The fractions of the memory limit that ask for a snapshot, and how often
// RSS is compared with them: Config's defaults (runtime.h) and the watcher's.
inline constexpr std::array<double, 3> kDefaultMemoryPressureFractions = {0.8, 0.9, 0.95};
inline constexpr std::chrono::milliseconds kDefaultMemoryCheckInterval{1000};

// Each fraction in (0, 1], none twice; the error names the value.
Status validateMemoryPressureFractions(const std::vector<double>& fractions);

class PressureThresholds {
 public:
  // Why 5 points of the limit: RSS wobbles by allocator caching and page
  // faults by a percent or two, and without a margin a daemon hovering at a
  // threshold would write a snapshot on every check (disk, and memory at the
  // worst time). A real second climb, after the daemon freed memory, falls
  // far more than that and is recorded again. 5 points is also the gap
  // between the default 0.9 and 0.95.
  static constexpr double kRearmMargin = 0.05;

  // `fractions` must pass validateMemoryPressureFractions; they are sorted
  // here.
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

// The trigger detail of a memory-pressure snapshot ("RSS 58.2 MiB = 91% of
// the memory limit 64.0 MiB (cgroup1); crossed 90%").
std::string pressureDetail(std::uint64_t rss_bytes, const MemoryLimit& limit, double fraction);

// One process's RSS against its memory limit and the thresholds.
class ProcessPressure {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::seconds kLimitRefresh{60};

  struct Crossing {
    std::uint64_t rss_bytes = 0;
    MemoryLimit limit;
    double fraction = 0;  // the highest fraction newly crossed
  };

  // Opens /proc/PID/statm (pid 0: this process) and reads the limit;
  // errors name the file. `fractions` must pass
  // validateMemoryPressureFractions.
  static Result<ProcessPressure> open(int pid, std::vector<double> fractions);

  // Compares with `bytes` instead of the process's real limit, never
  // re-read: the watcher's test seam (WatcherOptions::memory_limit_bytes).
  void fixLimit(std::uint64_t bytes);

  // One check: the crossing when RSS newly crossed a fraction; nullopt when
  // there is nothing to do; an error when statm could not be read (the
  // process is gone).
  Result<std::optional<Crossing>> check(Clock::time_point now);

  // The parts of a check, for a reading without thresholds (the detail of a
  // crossing the watcher saw): RSS now, and the limit as last read.
  Result<std::uint64_t> readRss();
  const MemoryLimit& limit() const { return limit_; }

 private:
  ProcessPressure(int pid, core::UniqueFd statm, MemoryLimit limit, Clock::time_point limit_read,
                  std::vector<double> fractions)
      : pid_(pid),
        statm_(std::move(statm)),
        limit_(limit),
        limit_read_(limit_read),
        thresholds_(std::move(fractions)) {}

  int pid_;
  core::UniqueFd statm_;
  MemoryLimit limit_;
  Clock::time_point limit_read_;
  bool limit_fixed_ = false;
  PressureThresholds thresholds_;
};

}  // namespace leakscope::diag
