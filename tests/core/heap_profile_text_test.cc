#include "leakscope/core/heap_profile_text.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>

namespace leakscope::core {
namespace {

std::string readData(const std::string& name) {
  std::ifstream in(std::string(LEAKSCOPE_TEST_DATA) + "/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(HeapProfileParser, ReadsSampledHeapV2) {
  auto p = parseHeapProfile(readData("profiles/heap_v2.heap"));
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->format, "heap_v2");
  EXPECT_EQ(p->sample_period, 524288);
  EXPECT_EQ(p->totals.inuse_objects, 7);
  EXPECT_EQ(p->totals.inuse_bytes, 655512);
  ASSERT_EQ(p->records.size(), 2u);
  EXPECT_EQ(p->records[0].inuse_objects, 5);
  EXPECT_EQ(p->records[0].inuse_bytes, 655360);
  ASSERT_EQ(p->records[0].stack.size(), 3u);
  EXPECT_EQ(p->records[0].stack[0], 0x7f0000001000u);
  EXPECT_EQ(p->records[0].stack[2], 0x555500005678u);
  EXPECT_NE(p->mapped_libraries.find("/usr/bin/leaky"), std::string::npos);
}

TEST(HeapProfileParser, ReadsFullProfileWithAllocTotalsAndSkipsRemarks) {
  auto p = parseHeapProfile(readData("profiles/heapprofile.heap"));
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->format, "heapprofile");
  EXPECT_EQ(p->sample_period, 0);
  EXPECT_EQ(p->totals.alloc_objects, 123);
  EXPECT_EQ(p->totals.alloc_bytes, 56789);
  ASSERT_EQ(p->records.size(), 2u);
  EXPECT_EQ(p->records[1].alloc_objects, 23);
  EXPECT_EQ(p->records[1].inuse_bytes, 848);
}

TEST(HeapProfileParser, ErrorsNameTheLineAndWhatWasExpected) {
  auto empty = parseHeapProfile("");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message.find("empty input"), std::string::npos);

  auto garbage = parseHeapProfile(
      "\x7f"
      "ELF\x02\x01\x01");
  ASSERT_FALSE(garbage.ok());
  EXPECT_NE(garbage.error().message.find("line 1"), std::string::npos);
  EXPECT_NE(garbage.error().message.find("heap profile:"), std::string::npos);

  auto bad_type = parseHeapProfile("heap profile: 1: 2 [ 3: 4] @ growthz\n");
  ASSERT_FALSE(bad_type.ok());
  EXPECT_NE(bad_type.error().message.find("growthz"), std::string::npos);

  auto truncated = parseHeapProfile(
      "heap profile: 1: 2 [ 1: 2] @ heap_v2/4096\n   1:  2 [ 1: 2] @ 0x1 0x2\n   1:  2 [ 1:");
  ASSERT_FALSE(truncated.ok());
  EXPECT_NE(truncated.error().message.find("line 3"), std::string::npos);

  auto bad_addr =
      parseHeapProfile("heap profile: 1: 2 [ 1: 2] @ heapprofile\n 1: 2 [1: 2] @ 0xZZ\n");
  ASSERT_FALSE(bad_addr.ok());
  EXPECT_NE(bad_addr.error().message.find("line 2: malformed stack address"), std::string::npos);
}

TEST(Unsample, MatchesPprofFormula) {
  // One sampled 512 KiB object at R = 512 KiB stands for 1/(1-e^-1) objects.
  const Estimate e = unsample(1, 524288, 524288);
  EXPECT_NEAR(e.objects, 1.0 / (1.0 - std::exp(-1.0)), 1e-9);
  EXPECT_NEAR(e.bytes, 524288.0 / (1.0 - std::exp(-1.0)), 1e-6);
  // Huge objects are always sampled: the estimate equals the sample.
  EXPECT_NEAR(unsample(1, 1 << 30, 524288).objects, 1.0, 1e-9);
  // Period 0 (full profile): unchanged.
  EXPECT_EQ(unsample(3, 30, 0).bytes, 30.0);
}

TEST(HeapProfileParser, RefusesNegativeAndOverflowingCounts) {
  auto neg = parseHeapProfile("heap profile: 1: 2 [ 1: 2] @ heapprofile\n 1: -2 [1: 2] @ 0x1\n");
  ASSERT_FALSE(neg.ok());
  EXPECT_EQ(neg.error().message,
            "line 2: malformed record 'N: B [N: B] @ ...' (non-negative integers)");
  auto totals = parseHeapProfile("heap profile: 1: 2 [ -1: 2] @ heapprofile\n");
  ASSERT_FALSE(totals.ok());
  EXPECT_EQ(totals.error().message,
            "line 1: malformed totals 'N: B [N: B]' (non-negative integers)");
  auto big = parseHeapProfile(
      "heap profile: 1: 2 [ 1: 2] @ heapprofile\n 1: 9223372036854775808 [1: 2] @ 0x1\n");
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().message.rfind("line 2: malformed record", 0), 0u);
}

TEST(HeapProfileParser, AnUnknownTypeIsQuotedShort) {
  auto p = parseHeapProfile("heap profile: 1: 2 [ 1: 2] @ " + std::string(10000, 'x') + "\n");
  ASSERT_FALSE(p.ok());
  EXPECT_LT(p.error().message.size(), 120u) << p.error().message;
}

TEST(Unsample, StaysFiniteForZeroAndTinySizes) {
  // 0 bytes: 1/(1-exp(0)) is infinite and 0*inf nan; no size, no estimate.
  const Estimate zero = unsample(9, 0, 524288);
  EXPECT_EQ(zero.objects, 9.0);
  EXPECT_EQ(zero.bytes, 0.0);
  // Many one-byte objects: 1-exp(-x) rounds to 0 for x < 1e-17.
  const Estimate tiny = unsample(INT64_MAX, 1, 524288);
  EXPECT_TRUE(std::isfinite(tiny.objects));
  EXPECT_TRUE(std::isfinite(tiny.bytes));
  // For tiny x, 1/(1-exp(-x)) ≈ 1/x = R / avg-size = R * objects / bytes.
  const double expected = 524288.0 * static_cast<double>(INT64_MAX);
  EXPECT_NEAR(tiny.bytes, expected, expected * 1e-9);
}

}  // namespace
}  // namespace leakscope::core
