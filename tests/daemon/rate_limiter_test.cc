// The per-platform token bucket, on an injected clock.
#include "rate_limiter.h"

#include "gtest/gtest.h"

namespace pushdaemon {
namespace {

using std::chrono::milliseconds;

TEST(RateLimiter, UnlimitedTakesEverything) {
  RateLimiter r(0);
  const auto now = RateLimiter::Clock::now();
  EXPECT_EQ(r.take(1000000, now), 1000000u);
  EXPECT_EQ(r.nextAt(now), now);
}

TEST(RateLimiter, BurstIsATenthOfASecondThenTheRate) {
  const auto t0 = RateLimiter::Clock::time_point{} + std::chrono::hours(1);
  RateLimiter r(1000, t0);
  EXPECT_EQ(r.take(5000, t0), 100u);  // burst
  EXPECT_EQ(r.take(5000, t0), 0u);
  EXPECT_EQ(r.nextAt(t0), t0 + milliseconds(1));
  EXPECT_EQ(r.take(5000, t0 + milliseconds(50)), 50u);
  // Over one simulated second at most rate + burst go out.
  std::size_t sent = 0;
  for (int ms = 51; ms <= 1050; ++ms) sent += r.take(5000, t0 + milliseconds(ms));
  EXPECT_EQ(sent, 1000u);
}

TEST(RateLimiter, SlowRatesStillSendOneAtATime) {
  const auto t0 = RateLimiter::Clock::time_point{} + std::chrono::hours(1);
  RateLimiter r(2, t0);
  EXPECT_EQ(r.take(10, t0), 1u);
  EXPECT_EQ(r.take(10, t0 + milliseconds(100)), 0u);
  EXPECT_EQ(r.nextAt(t0 + milliseconds(100)), t0 + milliseconds(500));
  EXPECT_EQ(r.take(10, t0 + milliseconds(500)), 1u);
}

}  // namespace
}  // namespace pushdaemon
