// Unit tests of daemon/push/src/backoff.cc: exponential growth, the cap,
// and jitter bounds (equal jitter: [d/2, d]). No timing is measured.
#include "leakscope/push/backoff.h"

#include <gtest/gtest.h>

namespace push = leakscope::push;
using std::chrono::milliseconds;

TEST(Backoff, DoublesFromBaseWithinJitterBoundsAndCaps) {
  const push::BackoffOptions o{milliseconds(100), milliseconds(1000), 2.0};
  EXPECT_EQ(push::Backoff::delayFor(o, 1, 0.0), milliseconds(50));
  EXPECT_EQ(push::Backoff::delayFor(o, 1, 1.0), milliseconds(100));
  EXPECT_EQ(push::Backoff::delayFor(o, 2, 1.0), milliseconds(200));
  EXPECT_EQ(push::Backoff::delayFor(o, 3, 0.0), milliseconds(200));
  EXPECT_EQ(push::Backoff::delayFor(o, 3, 1.0), milliseconds(400));
  EXPECT_EQ(push::Backoff::delayFor(o, 5, 1.0), milliseconds(1000));    // 1600 capped
  EXPECT_EQ(push::Backoff::delayFor(o, 500, 1.0), milliseconds(1000));  // no overflow
  EXPECT_EQ(push::Backoff::delayFor(o, 500, 0.0), milliseconds(500));
  // Out-of-range inputs are clamped, not trusted.
  EXPECT_EQ(push::Backoff::delayFor(o, 0, 2.0), milliseconds(100));
}

TEST(Backoff, SequenceStaysInBoundsAndResets) {
  push::Backoff b({milliseconds(10), milliseconds(300), 2.0}, /*seed=*/42);
  std::int64_t cap = 10;
  for (int i = 1; i <= 12; ++i) {
    const auto d = b.next();
    EXPECT_EQ(b.failures(), i);
    EXPECT_GE(d.count(), cap / 2) << i;
    EXPECT_LE(d.count(), cap) << i;
    cap = std::min<std::int64_t>(cap * 2, 300);
  }
  b.reset();
  EXPECT_EQ(b.failures(), 0);
  EXPECT_LE(b.next(), milliseconds(10));
}

TEST(Backoff, JitterSpreadsClientsThatFailedTogether) {
  // Two pools failing at the same moment should not retry in lockstep.
  push::Backoff a({milliseconds(1000), milliseconds(60000), 2.0}, 1);
  push::Backoff b({milliseconds(1000), milliseconds(60000), 2.0}, 2);
  int differ = 0;
  for (int i = 0; i < 8; ++i) differ += a.next() != b.next() ? 1 : 0;
  EXPECT_GE(differ, 6);
}
