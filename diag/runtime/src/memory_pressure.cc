#include "memory_pressure.h"

#include <cstdio>

namespace leakscope::diag {

std::string pressureDetailNow(double fraction) {
  // One statm read and the limit: what the runtime's own check reads, not
  // the whole of readProcessStats (the executable's build id, fds...).
  auto self = ProcessPressure::open(0, {});
  auto rss = self.ok() ? self->readRss() : Result<std::uint64_t>(self.error());
  if (!rss.ok()) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "crossed %g%% of the memory limit (seen by leakscope-watch)",
                  fraction * 100);
    return buf;
  }
  return pressureDetail(*rss, self->limit(), fraction);
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
