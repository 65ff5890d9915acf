#include "log.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace pushdaemon {

void Log::write(LogLevel level, std::string_view component, std::string_view message) {
  if (!enabled(level)) return;
  static std::mutex mu;
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string line;
  line.reserve(64 + message.size());
  line += stamp;
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03dZ ", static_cast<int>(ms.count()));
  line += frac;
  line += logLevelName(level);
  line += ' ';
  line += component;
  line += ": ";
  line += message;
  line += '\n';
  const std::lock_guard lock(mu);
  // One write(2) per line: lines from several threads never interleave.
  [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace pushdaemon
