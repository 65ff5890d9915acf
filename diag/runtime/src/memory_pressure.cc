#include "memory_pressure.h"

namespace leakscope::diag {

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
