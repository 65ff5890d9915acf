#include "memory_pressure.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace leakscope::diag {

PressureThresholds::PressureThresholds(std::vector<double> fractions) {
  std::sort(fractions.begin(), fractions.end());
  for (double f : fractions) thresholds_.push_back(Threshold{f, false});
}

std::optional<double> PressureThresholds::observe(std::uint64_t rss_bytes,
                                                  std::uint64_t limit_bytes) {
  if (limit_bytes == 0) return std::nullopt;  // no limit known: nothing to compare with
  const double share = static_cast<double>(rss_bytes) / static_cast<double>(limit_bytes);
  std::optional<double> crossed;
  for (Threshold& t : thresholds_) {
    if (!t.fired && share >= t.fraction) {
      t.fired = true;
      crossed = t.fraction;  // ascending: the last one set is the highest
    } else if (t.fired && share < t.fraction - kRearmMargin) {
      t.fired = false;
    }
  }
  return crossed;
}

std::string pressureDetail(std::uint64_t rss_bytes, const MemoryLimit& limit, double fraction) {
  constexpr double kMiB = 1024.0 * 1024.0;
  const double share =
      limit.bytes == 0 ? 0 : static_cast<double>(rss_bytes) / static_cast<double>(limit.bytes);
  char buf[160];
  std::snprintf(
      buf, sizeof buf, "RSS %.1f MiB = %.0f%% of the memory limit %.1f MiB (%s); crossed %g%%",
      static_cast<double>(rss_bytes) / kMiB, std::floor(share * 100),
      static_cast<double>(limit.bytes) / kMiB, memoryLimitSourceName(limit.source), fraction * 100);
  return buf;
}

std::string pressureDetailNow(double fraction) {
  auto stats = readProcessStats();
  auto limit = readMemoryLimit();
  if (!stats.ok() || !limit.ok()) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "crossed %g%% of the memory limit (seen by leakscope-watch)",
                  fraction * 100);
    return buf;
  }
  return pressureDetail(stats->rss_bytes, *limit, fraction);
}

Result<MemoryPressureCheck> MemoryPressureCheck::open(std::vector<double> fractions) {
  core::UniqueFd statm(::open("/proc/self/statm", O_RDONLY | O_CLOEXEC));
  if (!statm.valid()) {
    return Error{Errc::kIo, std::string("/proc/self/statm: ") + std::strerror(errno)};
  }
  auto limit = readMemoryLimit();
  if (!limit.ok()) return limit.error();
  return MemoryPressureCheck(std::move(statm), *limit, Clock::now(), std::move(fractions));
}

Result<std::uint64_t> MemoryPressureCheck::readRss() {
  // statm is a few dozen bytes; a stack buffer keeps the check free of
  // allocations, which matters most when memory is tight.
  char buf[128];
  const ssize_t n = ::pread(statm_.get(), buf, sizeof buf - 1, 0);
  if (n < 0) return Error{Errc::kIo, std::string("/proc/self/statm: ") + std::strerror(errno)};
  const auto pages = parseStatmResidentPages(std::string_view(buf, static_cast<std::size_t>(n)));
  if (!pages) return Error{Errc::kParse, "/proc/self/statm: no resident page count"};
  return *pages * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

Result<std::optional<std::string>> MemoryPressureCheck::check(Clock::time_point now) {
  if (now - limit_read_ >= kLimitRefresh) {
    // A limit that cannot be read now keeps the last one known.
    if (auto limit = readMemoryLimit(); limit.ok()) limit_ = *limit;
    limit_read_ = now;
  }
  auto rss = readRss();
  if (!rss.ok()) return rss.error();
  const auto crossed = thresholds_.observe(*rss, limit_.bytes);
  if (!crossed) return std::optional<std::string>();
  return std::optional<std::string>(pressureDetail(*rss, limit_, *crossed));
}

}  // namespace leakscope::diag
