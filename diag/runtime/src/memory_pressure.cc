#include "memory_pressure.h"

#include <cstdio>

#include "leakscope/diag/process.h"

namespace leakscope::diag {

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
  auto self = ProcessPressure::open(0, std::move(fractions));
  if (!self.ok()) return self.error();
  return MemoryPressureCheck(std::move(*self));
}

Result<std::optional<std::string>> MemoryPressureCheck::check(Clock::time_point now) {
  auto crossed = self_.check(now);
  if (!crossed.ok()) return crossed.error();
  if (!*crossed) return std::optional<std::string>();
  const ProcessPressure::Crossing& c = **crossed;
  return std::optional<std::string>(pressureDetail(c.rss_bytes, c.limit, c.fraction));
}

}  // namespace leakscope::diag
