// libevent takes its timeouts as a timeval.
#pragma once

#include <sys/time.h>

#include <chrono>

namespace leakscope::push::detail {

// Microsecond precision; a negative duration becomes zero (fire at once).
inline timeval toTimeval(std::chrono::nanoseconds d) {
  if (d.count() < 0) d = std::chrono::nanoseconds(0);
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(us / 1000000);
  tv.tv_usec = static_cast<suseconds_t>(us % 1000000);
  return tv;
}

}  // namespace leakscope::push::detail
