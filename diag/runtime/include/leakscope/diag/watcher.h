// `leakscope run`'s watcher: the process that runs the program's clock jobs
// (interval snapshots, the memory-pressure check) so that the preload agent
// keeps the program free of threads until a snapshot is asked for. The
// protocol — LEAKSCOPE_WATCHER, the +pid/-pid registration records, the
// signal's sigqueue value — is core/watch_protocol.h; how `run` starts it is
// docs/run-and-capture.md.
//
// One loop in one thread: poll over the registration socket (core/watch_protocol.h) and one
// pidfd per watched process, with the time of the next job due as timeout.
// Per watched process (a Watched, watcher.cc) it owns a pidfd, its
// /proc/PID/statm (opened once) and memory-pressure thresholds:
//
//   +pid record        → watched (a pid that cannot be opened: one log line,
//                        not watched; +pid of one already watched: kept)
//   -pid record        → forgotten (the program took the signal over)
//   pidfd readable     → forgotten (the process exited)
//   every check period → one pread of statm; a fraction newly crossed sends
//                        {kMemoryPressure, permille}
//   every interval     → sends {kInterval}
//
// A request is sent only while /proc/PID/status's SigCgt has the signal's
// bit, else skipped quietly: the process exec'd a program without the agent,
// and the signal's default action would end it. Records of 0 or INT32_MIN
// mean nothing and are ignored; a record split over reads is buffered.
// runWatcher returns (0) once every agent's end of the socket is closed, it is
// drained, and no process is left to watch; 1 when poll fails.
#pragma once

#include <signal.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

#include "leakscope/core/unique_fd.h"
#include "leakscope/diag/memory_thresholds.h"

namespace leakscope::diag {

struct WatcherOptions {
  int signal = SIGUSR2;                   // the snapshot signal (the agent's)
  std::chrono::milliseconds interval{0};  // interval requests; 0 = none
  // Memory-pressure requests: empty fractions or a check interval of 0 turn
  // them off; invalid fractions are logged and turn them off.
  std::vector<double> memory_pressure_fractions{kDefaultMemoryPressureFractions.begin(),
                                                kDefaultMemoryPressureFractions.end()};
  std::chrono::milliseconds memory_check_interval = kDefaultMemoryCheckInterval;
  // Test seam: compare RSS with this many bytes instead of each process's
  // real memory limit (0 = the real one), so a test crosses a fraction by
  // touching a few MiB rather than most of the machine's memory.
  std::uint64_t memory_limit_bytes = 0;
  // One line per problem, without a prefix; unset: stderr, each line
  // prefixed `leakscope watcher: `.
  std::function<void(std::string_view)> log;
};

// Runs the watcher until it is done (above); returns the process's exit
// status. Owns `registration_read_end` (made non-blocking here).
int runWatcher(const WatcherOptions& options, core::UniqueFd registration_read_end);

// The mask of signals a process catches: the hex `SigCgt:` field of the
// text of /proc/PID/status (bit N-1 for signal N); nullopt when missing or
// malformed.
std::optional<std::uint64_t> parseCaughtSignals(std::string_view status);

}  // namespace leakscope::diag
