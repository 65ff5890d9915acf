// `leakscope run`'s watcher and the preload agent: how they talk.
//
// The agent keeps the program free of threads until a snapshot is asked for
// (a thread makes glibc and the kernel take their multi-threaded paths, which
// cost nginx 1 % of its requests/s: docs/benchmarks.md, preload). The jobs
// that run on a clock — interval snapshots and the memory-pressure check —
// live in the watcher instead, a small process `run` starts beside the
// program (docs/run-and-capture.md). It reads each watched process's
// /proc/PID/statm and memory limit, and when a snapshot is due it sends the
// process its snapshot signal with a value that says why.
//
//   run → program   LEAKSCOPE_WATCHER=PID:FD in the environment: the
//                   watcher's pid and the agent's end of a SOCK_SEQPACKET
//                   socket pair (a socket, so the agent can send with
//                   MSG_NOSIGNAL: a watcher that is gone never SIGPIPEs the
//                   program).
//   agent → watcher one int32 per record on FD: +pid "watch me" (the agent
//                   has started in this process: at start and in each forked
//                   child), -pid "stop sending me signals" (the program took
//                   the snapshot signal over).
//   watcher → agent the snapshot signal by sigqueue (si_code SI_QUEUE, si_pid
//                   the watcher), si_value.sival_int = encodeWatchRequest():
//                   an interval snapshot, or a memory-pressure one with the
//                   fraction crossed. Only while /proc/PID/status says the
//                   process catches that signal, so a process that exec'd a
//                   program without the agent is never killed by it.
//
// The watcher exits when every copy of the agents' end is closed and no
// watched process is left.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "leakscope/core/result.h"

namespace leakscope::core {

inline constexpr const char* kEnvWatcher = "LEAKSCOPE_WATCHER";

struct WatcherAddress {
  pid_t pid = 0;  // the watcher: the only sender whose values are trusted
  int fd = -1;    // the agents' end of the registration socket pair
};

// "PID:FD" both positive; the error names the variable and the text.
Result<WatcherAddress> parseWatcherAddress(std::string_view text);
std::string formatWatcherAddress(const WatcherAddress& a);

enum class WatchKind : std::uint8_t { kInterval = 1, kMemoryPressure = 2 };

struct WatchRequest {
  WatchKind kind = WatchKind::kInterval;
  // kMemoryPressure: the fraction of the memory limit crossed, in permille
  // (800 = 80 %), for the snapshot's trigger detail.
  int permille = 0;
};

int encodeWatchRequest(const WatchRequest& r);
// nullopt for a value no watcher sends (another sender's sigqueue).
std::optional<WatchRequest> decodeWatchRequest(int value);

}  // namespace leakscope::core
