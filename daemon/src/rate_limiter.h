// A token bucket per platform: `rate` sends per second with a burst of a
// tenth of a second's worth (at least 1), so a page of 2000 tokens at
// 500/s goes out in 50-token chunks rather than all at once. rate 0 means
// unlimited. The clock is injected (unit tests never sleep). Not
// thread-safe: the scheduler thread owns it.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>

namespace pushdaemon {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  explicit RateLimiter(double rate = 0, Clock::time_point now = Clock::now()) {
    setRate(rate, now);
  }

  // A new rate; the same rate again (a reload) keeps the bucket as it is.
  void setRate(double rate, Clock::time_point now) {
    if (rate == rate_ && last_ != Clock::time_point{}) return;
    rate_ = rate;
    burst_ = std::max(1.0, rate / 10);
    available_ = burst_;
    last_ = now;
  }

  // How many of `want` may go now (0..want); those are taken.
  std::size_t take(std::size_t want, Clock::time_point now) {
    if (rate_ <= 0) return want;
    refill(now);
    const auto n = std::min(want, static_cast<std::size_t>(available_));
    available_ -= static_cast<double>(n);
    return n;
  }

  // When at least one send will be allowed (now if already).
  Clock::time_point nextAt(Clock::time_point now) {
    if (rate_ <= 0) return now;
    refill(now);
    if (available_ >= 1) return now;
    const double secs = (1 - available_) / rate_;
    return now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(secs));
  }

 private:
  void refill(Clock::time_point now) {
    if (now > last_) {
      available_ =
          std::min(burst_, available_ + rate_ * std::chrono::duration<double>(now - last_).count());
      last_ = now;
    }
  }

  double rate_ = 0;
  double burst_ = 1;
  double available_ = 1;
  Clock::time_point last_;
};

}  // namespace pushdaemon
