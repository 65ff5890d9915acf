// Exponential back-off with jitter, for reconnecting after failed connection
// attempts and for retrying retryable answers.
//
// The n-th consecutive failure waits d = min(max, base * multiplier^(n-1)),
// drawn uniformly from [d/2, d] ("equal jitter": a pool that failed together
// does not reconnect together, and no delay collapses to zero). Not
// thread-safe; one per pool or per retry loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace leakscope::push {

struct BackoffOptions {
  std::chrono::milliseconds base{100};
  std::chrono::milliseconds max{std::chrono::seconds(30)};
  double multiplier = 2.0;
};

class Backoff {
 public:
  explicit Backoff(BackoffOptions options, std::uint64_t seed = std::random_device{}());

  // Records one more failure and returns how long to wait before the next try.
  std::chrono::milliseconds next();
  // After a success: the next failure starts again from `base`.
  void reset() { failures_ = 0; }
  int failures() const { return failures_; }

  // The delay for the `failures`-th consecutive failure (>= 1) with
  // `unit_random` in [0, 1]. Pure, for tests and for callers with their own RNG.
  static std::chrono::milliseconds delayFor(const BackoffOptions& options, int failures,
                                            double unit_random);

 private:
  BackoffOptions options_;
  std::mt19937_64 rng_;
  int failures_ = 0;
};

}  // namespace leakscope::push
