// Leveled log lines on stderr (journald adds its own timestamps, but we
// keep ours for plain files): "2026-11-24T16:00:00.123Z info scheduler: ...".
//
// Lines name schedules, token *ids*, hosts and reasons; never a device
// token, a key or a password (the callers are written that way and the
// integration tests grep the log for the secrets they used).
// Thread-safe: one mutex around each write; the level is an atomic.
#pragma once

#include <atomic>
#include <string>
#include <string_view>

#include "config.h"

namespace pushdaemon {

class Log {
 public:
  static void setLevel(LogLevel level) { level_.store(level); }
  static bool enabled(LogLevel level) { return level <= level_.load(); }
  static void write(LogLevel level, std::string_view component, std::string_view message);

 private:
  static inline std::atomic<LogLevel> level_{LogLevel::kInfo};
};

inline void logError(std::string_view c, std::string_view m) { Log::write(LogLevel::kError, c, m); }
inline void logWarn(std::string_view c, std::string_view m) { Log::write(LogLevel::kWarn, c, m); }
inline void logInfo(std::string_view c, std::string_view m) { Log::write(LogLevel::kInfo, c, m); }
inline void logDebug(std::string_view c, std::string_view m) { Log::write(LogLevel::kDebug, c, m); }

}  // namespace pushdaemon
