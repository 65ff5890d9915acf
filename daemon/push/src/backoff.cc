#include "leakscope/push/backoff.h"

#include <algorithm>
#include <cmath>

namespace leakscope::push {

Backoff::Backoff(BackoffOptions options, std::uint64_t seed) : options_(options), rng_(seed) {}

std::chrono::milliseconds Backoff::next() {
  if (failures_ < 1000) ++failures_;  // the delay is capped long before this
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  return delayFor(options_, failures_, unit(rng_));
}

std::chrono::milliseconds Backoff::delayFor(const BackoffOptions& o, int failures,
                                            double unit_random) {
  const double base = static_cast<double>(std::max<std::int64_t>(o.base.count(), 1));
  const double max = static_cast<double>(std::max(o.max, o.base).count());
  const double mult = std::max(o.multiplier, 1.0);
  const int n = std::max(failures, 1);
  // pow() of a large exponent is inf, which min() then caps: no overflow.
  const double d = std::min(max, base * std::pow(mult, n - 1));
  const double r = std::clamp(unit_random, 0.0, 1.0);
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(d * (0.5 + 0.5 * r))));
}

}  // namespace leakscope::push
