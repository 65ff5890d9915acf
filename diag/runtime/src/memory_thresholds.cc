#include "leakscope/diag/memory_thresholds.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>

namespace leakscope::diag {

Status validateMemoryPressureFractions(const std::vector<double>& fractions) {
  for (std::size_t i = 0; i < fractions.size(); ++i) {
    const double f = fractions[i];
    std::ostringstream text;
    text << f;
    // !(f > 0) also catches NaN.
    if (!(f > 0) || f > 1) {
      return Error{Errc::kInvalidArgument, "memory-pressure fraction " + text.str() +
                                               ": expected a fraction of the limit in (0, 1]"};
    }
    if (std::find(fractions.begin(), fractions.begin() + static_cast<std::ptrdiff_t>(i), f) !=
        fractions.begin() + static_cast<std::ptrdiff_t>(i)) {
      return Error{Errc::kInvalidArgument,
                   "memory-pressure fraction " + text.str() + ": listed twice"};
    }
  }
  return Ok{};
}

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

Result<ProcessPressure> ProcessPressure::open(int pid, std::vector<double> fractions) {
  const std::string path = procDir(pid) + "/statm";
  core::UniqueFd statm(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!statm.valid()) return Error{Errc::kIo, path + ": " + std::strerror(errno)};
  auto limit = readMemoryLimit("", pid);
  if (!limit.ok()) return limit.error();
  return ProcessPressure(pid, std::move(statm), *limit, Clock::now(), std::move(fractions));
}

void ProcessPressure::fixLimit(std::uint64_t bytes) {
  limit_ = MemoryLimit{bytes, MemoryLimitSource::kMemTotal};
  limit_fixed_ = true;
}

Result<std::uint64_t> ProcessPressure::readRss() {
  // statm is a few dozen bytes; a stack buffer keeps the check free of
  // allocations, which matters most when memory is tight.
  char buf[128];
  const ssize_t n = ::pread(statm_.get(), buf, sizeof buf - 1, 0);
  if (n < 0) return Error{Errc::kIo, procDir(pid_) + "/statm: " + std::strerror(errno)};
  const auto pages = parseStatmResidentPages(std::string_view(buf, static_cast<std::size_t>(n)));
  if (!pages) return Error{Errc::kParse, procDir(pid_) + "/statm: no resident page count"};
  return *pages * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

Result<std::optional<ProcessPressure::Crossing>> ProcessPressure::check(Clock::time_point now) {
  if (!limit_fixed_ && now - limit_read_ >= kLimitRefresh) {
    // A limit that cannot be read now keeps the last one known.
    if (auto limit = readMemoryLimit("", pid_); limit.ok()) limit_ = *limit;
    limit_read_ = now;
  }
  auto rss = readRss();
  if (!rss.ok()) return rss.error();
  const auto crossed = thresholds_.observe(*rss, limit_.bytes);
  if (!crossed) return std::optional<Crossing>();
  return std::optional<Crossing>(Crossing{*rss, limit_, *crossed});
}

}  // namespace leakscope::diag
