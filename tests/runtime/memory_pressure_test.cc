// The memory-pressure state machine (leakscope/diag/memory_thresholds.h, with
// the runtime's MemoryPressureCheck over it in diag/runtime/src/memory_pressure.h),
// fed RSS readings against a limit of 1000 bytes so the fractions read as
// plain numbers.
#include "memory_pressure.h"

#include <gtest/gtest.h>

#include <chrono>

namespace leakscope::diag {
namespace {

constexpr std::uint64_t kLimit = 1000;

TEST(PressureThresholds, EachFractionFiresOnceAsRssClimbs) {
  PressureThresholds t({0.8, 0.9, 0.95});
  EXPECT_EQ(t.observe(700, kLimit), std::nullopt);
  EXPECT_EQ(t.observe(799, kLimit), std::nullopt);
  EXPECT_EQ(t.observe(800, kLimit), 0.8);
  EXPECT_EQ(t.observe(850, kLimit), std::nullopt);  // still above 0.8: no second snapshot
  EXPECT_EQ(t.observe(900, kLimit), 0.9);
  EXPECT_EQ(t.observe(949, kLimit), std::nullopt);
  EXPECT_EQ(t.observe(950, kLimit), 0.95);
  EXPECT_EQ(t.observe(999, kLimit), std::nullopt);
}

TEST(PressureThresholds, AJumpOverSeveralFractionsAsksForOneSnapshotNamedByTheHighest) {
  PressureThresholds t({0.8, 0.9, 0.95});
  EXPECT_EQ(t.observe(500, kLimit), std::nullopt);
  EXPECT_EQ(t.observe(960, kLimit), 0.95);
  // The lower ones fired with it: coming down to them asks for nothing.
  EXPECT_EQ(t.observe(910, kLimit), std::nullopt);
  EXPECT_EQ(t.observe(810, kLimit), std::nullopt);
}

TEST(PressureThresholds, AFractionRearmsOnlyAfterRssFellTheMarginBelowIt) {
  PressureThresholds t({0.8});
  EXPECT_EQ(t.observe(800, kLimit), 0.8);
  // Wobbling around the threshold: within the 5-point margin, no re-arm.
  EXPECT_EQ(t.observe(760, kLimit), std::nullopt);
  EXPECT_EQ(t.observe(750, kLimit), std::nullopt);
  EXPECT_EQ(t.observe(801, kLimit), std::nullopt);
  // Below 0.75 of the limit: armed again, and the next climb is recorded.
  EXPECT_EQ(t.observe(749, kLimit), std::nullopt);
  EXPECT_EQ(t.observe(790, kLimit), std::nullopt);
  EXPECT_EQ(t.observe(805, kLimit), 0.8);
}

TEST(PressureThresholds, OnlyTheFractionsRssFellBelowRearm) {
  PressureThresholds t({0.8, 0.9, 0.95});
  EXPECT_EQ(t.observe(960, kLimit), 0.95);
  EXPECT_EQ(t.observe(880, kLimit), std::nullopt);  // 0.95 re-armed (< 0.90), 0.9 not (>= 0.85)
  EXPECT_EQ(t.observe(955, kLimit), 0.95);
  EXPECT_EQ(t.observe(700, kLimit), std::nullopt);  // all re-armed
  EXPECT_EQ(t.observe(820, kLimit), 0.8);
  EXPECT_EQ(t.observe(905, kLimit), 0.9);
}

TEST(PressureThresholds, FractionsInAnyOrderAndAnUnknownLimit) {
  PressureThresholds t({0.9, 0.5});
  EXPECT_EQ(t.observe(10'000, 0), std::nullopt);  // no limit: nothing to compare with
  EXPECT_EQ(t.observe(600, kLimit), 0.5);
  EXPECT_EQ(t.observe(950, kLimit), 0.9);
}

TEST(PressureDetail, SaysRssTheShareTheLimitItsSourceAndTheFraction) {
  const MemoryLimit limit{64ull << 20, MemoryLimitSource::kCgroup1};
  EXPECT_EQ(pressureDetail(58ull << 20, limit, 0.9),
            "RSS 58.0 MiB = 90% of the memory limit 64.0 MiB (cgroup1); crossed 90%");
  EXPECT_EQ(pressureDetail(52ull << 20, MemoryLimit{64ull << 20, MemoryLimitSource::kCgroup2}, 0.8),
            "RSS 52.0 MiB = 81% of the memory limit 64.0 MiB (cgroup2); crossed 80%");
}

// The real check on this process: its RSS is far above a millionth of any
// limit, so the first check asks for a snapshot and the next ones do not.
TEST(MemoryPressureCheck, FirstCheckAboveAFractionAsksOnceFromRealStatm) {
  auto check = MemoryPressureCheck::open({1e-6});
  ASSERT_TRUE(check.ok()) << check.error().message;
  const auto now = std::chrono::steady_clock::now();
  auto first = check->check(now);
  ASSERT_TRUE(first.ok()) << first.error().message;
  ASSERT_TRUE(first->has_value());
  EXPECT_EQ((*first)->rfind("RSS ", 0), 0u) << **first;
  auto second = check->check(now + std::chrono::seconds(1));
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_FALSE(second->has_value()) << **second;
}

}  // namespace
}  // namespace leakscope::diag
