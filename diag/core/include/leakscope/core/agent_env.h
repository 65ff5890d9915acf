// The preload agent's settings and their one spelling as LEAKSCOPE_*
// environment variables. `leakscope run` checks its options into an
// AgentSettings and writes them with agentEnvironment(); the agent
// (libleakscope-preload.so) reads them back with readAgentSettings() before
// the program's main. The variables are the agent's only input, so a user
// can also set them (and LD_PRELOAD) in a systemd unit; docs/run-and-capture.md
// lists them. Plain values and functions: thread-safe.
#pragma once

#include <signal.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "leakscope/core/result.h"
#include "leakscope/core/signal_names.h"

namespace leakscope::core {

// A snapshot signal: a name or number as signalNumber() takes it, and only
// one a handler can catch and that no fault raises (so not KILL, STOP, SEGV,
// BUS, FPE, ILL, TRAP): the error names the value and why.
Result<int> parseSignal(std::string_view name);
// "500ms", "30s", "5m", "1h"; "0" alone means none. The error names the text.
Result<std::chrono::milliseconds> parseDuration(std::string_view text);

// What the agent does in the program it is preloaded into.
struct AgentSettings {
  std::string snapshot_dir;               // required: the agent stays off without it
  int signal = SIGUSR2;                   // snapshot on this signal
  std::chrono::milliseconds interval{0};  // 0: no interval snapshots
  std::string metrics;                    // HOST:PORT of /metrics; "" = none
  std::string heap = "sampled";           // sampled | full | off (checked by the agent)
  std::uint64_t keep = 0;                 // keep the newest N snapshots (0 = all)
  std::uint64_t max_bytes = 0;            // and at most this many bytes (0 = no limit)
  bool follow_exec = false;               // keep LD_PRELOAD for programs it execs
};

inline constexpr const char* kEnvSnapshotDir = "LEAKSCOPE_SNAPSHOT_DIR";
inline constexpr const char* kEnvSignal = "LEAKSCOPE_SIGNAL";
inline constexpr const char* kEnvInterval = "LEAKSCOPE_INTERVAL";
inline constexpr const char* kEnvMetrics = "LEAKSCOPE_METRICS";
inline constexpr const char* kEnvHeap = "LEAKSCOPE_HEAP";
inline constexpr const char* kEnvKeep = "LEAKSCOPE_KEEP";
inline constexpr const char* kEnvMaxBytes = "LEAKSCOPE_MAX_BYTES";
inline constexpr const char* kEnvFollowExec = "LEAKSCOPE_FOLLOW_EXEC";

// Reads the LEAKSCOPE_* variables through `get` (getenv in the agent; unset
// is nullptr). Unset or empty keeps the default; a bad value is an error
// naming the variable and the value.
Result<AgentSettings> readAgentSettings(const std::function<const char*(const char*)>& get);
// "NAME=VALUE" for every setting, for the program's environment.
std::vector<std::string> agentEnvironment(const AgentSettings& s);

}  // namespace leakscope::core
