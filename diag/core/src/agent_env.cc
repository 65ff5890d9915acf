#include "leakscope/core/agent_env.h"

#include <signal.h>

#include <charconv>

namespace leakscope::core {
namespace {

// The whole of `text` as a number, or nothing.
template <class T>
bool wholeNumber(std::string_view text, T& out) {
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return !text.empty() && ec == std::errc() && p == text.data() + text.size();
}

}  // namespace

Result<int> parseSignal(std::string_view name) {
  const std::string quoted = "signal '" + std::string(name) + "'";
  const std::optional<int> sig = signalNumber(name);
  if (!sig) {
    return Error{Errc::kInvalidArgument,
                 quoted + ": not a signal name (USR2, SIGUSR1, RTMIN+3) or number"};
  }
  // A handler cannot have KILL or STOP; the fault signals mean a crash.
  for (int bad : {SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP}) {
    if (*sig == bad) {
      return Error{Errc::kInvalidArgument,
                   quoted + ": " + signalName(*sig) +
                       " cannot be a snapshot signal (uncatchable or a fault); use USR2, USR1 "
                       "or RTMIN+N"};
    }
  }
  return *sig;
}

Result<std::chrono::milliseconds> parseDuration(std::string_view text) {
  if (text == "0") return std::chrono::milliseconds(0);
  struct Unit {
    std::string_view suffix;
    std::int64_t ms;
  };
  // "ms" before "m" and "s": the longest suffix that matches.
  static constexpr Unit kUnits[] = {{"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}};
  for (const Unit& u : kUnits) {
    if (!text.ends_with(u.suffix)) continue;
    std::int64_t n = 0;
    if (!wholeNumber(text.substr(0, text.size() - u.suffix.size()), n) || n < 0 ||
        n > std::int64_t{1} << 40) {
      break;
    }
    return std::chrono::milliseconds(n * u.ms);
  }
  return Error{Errc::kInvalidArgument, "duration '" + std::string(text) +
                                           "': expected a number with ms, s, m or h (30s, 5m), "
                                           "or 0 for none"};
}

namespace {

// One variable: unset/empty leaves `out` alone; returns the error otherwise.
Status readNumber(const char* var, const char* value, std::uint64_t& out) {
  if (value == nullptr || *value == '\0') return Ok{};
  if (!wholeNumber(std::string_view(value), out)) {
    return Error{Errc::kInvalidArgument,
                 std::string(var) + "='" + value + "': expected a whole number"};
  }
  return Ok{};
}

template <class T, class Parse>
Status readWith(const char* var, const char* value, T& out, Parse parse) {
  if (value == nullptr || *value == '\0') return Ok{};
  auto r = parse(std::string_view(value));
  if (!r.ok()) return Error{r.error().code, std::string(var) + ": " + r.error().message};
  out = *r;
  return Ok{};
}

}  // namespace

Result<AgentSettings> readAgentSettings(const std::function<const char*(const char*)>& get) {
  AgentSettings s;
  auto text = [&](const char* var, std::string& out) {
    if (const char* v = get(var); v != nullptr) out = v;
  };
  text(kEnvSnapshotDir, s.snapshot_dir);
  text(kEnvMetrics, s.metrics);
  text(kEnvHeap, s.heap);
  if (s.heap.empty()) s.heap = "sampled";
  const char* follow = get(kEnvFollowExec);
  s.follow_exec = follow != nullptr && std::string_view(follow) == "1";
  for (Status st : {readWith(kEnvSignal, get(kEnvSignal), s.signal, parseSignal),
                    readWith(kEnvInterval, get(kEnvInterval), s.interval, parseDuration),
                    readNumber(kEnvKeep, get(kEnvKeep), s.keep),
                    readNumber(kEnvMaxBytes, get(kEnvMaxBytes), s.max_bytes)}) {
    if (!st.ok()) return st.error();
  }
  return s;
}

std::vector<std::string> agentEnvironment(const AgentSettings& s) {
  auto var = [](const char* name, const std::string& value) {
    return std::string(name) + "=" + value;
  };
  std::vector<std::string> env = {
      var(kEnvSnapshotDir, s.snapshot_dir),
      var(kEnvSignal, signalName(s.signal)),
      var(kEnvInterval, std::to_string(s.interval.count()) + "ms"),
      var(kEnvHeap, s.heap),
      var(kEnvKeep, std::to_string(s.keep)),
      var(kEnvMaxBytes, std::to_string(s.max_bytes)),
      var(kEnvFollowExec, s.follow_exec ? "1" : "0"),
  };
  if (!s.metrics.empty()) env.push_back(var(kEnvMetrics, s.metrics));
  return env;
}

}  // namespace leakscope::core
