#include "leakscope/analysis/units.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace leakscope::analysis {

std::string formatBytes(double v) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double a = std::fabs(v);
  int u = 0;
  while (a >= 1024 && u < 4) {
    a /= 1024;
    ++u;
  }
  char buf[48];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%s%.0f B", v < 0 ? "-" : "", a);
  } else {
    std::snprintf(buf, sizeof buf, "%s%.1f %s", v < 0 ? "-" : "", a, units[u]);
  }
  return buf;
}

std::string formatDuration(double seconds) {
  if (!std::isfinite(seconds)) return "never";
  const auto s = static_cast<long long>(std::llround(std::max(0.0, seconds)));
  char buf[48];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%llds", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%lldm %llds", s / 60, s % 60);
  } else if (s < 86400) {
    std::snprintf(buf, sizeof buf, "%lldh %lldm", s / 3600, (s % 3600) / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lldd %lldh", s / 86400, (s % 86400) / 3600);
  }
  return buf;
}

std::string formatCount(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

}  // namespace leakscope::analysis
