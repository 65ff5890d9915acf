#include "leakscope/diag/heap_profile.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>

namespace leakscope::diag {
namespace {

using core::parseHeapProfile;
using core::unsample;

TEST(HeapModes, ParseAndName) {
  EXPECT_EQ(*parseHeapMode("sampled"), HeapMode::kSampled);
  EXPECT_EQ(*parseHeapMode("full"), HeapMode::kFull);
  EXPECT_EQ(*parseHeapMode("off"), HeapMode::kOff);
  auto bad = parseHeapMode("always");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("always"), std::string::npos);
  EXPECT_STREQ(heapModeName(HeapMode::kFull), "full");
}

// Runs with TCMALLOC_SAMPLE_PARAMETER set by ctest (see tests/CMakeLists.txt).
TEST(HeapProfiler, SampledCaptureSeesALiveAllocationSite) {
#ifndef LEAKSCOPE_WITH_TCMALLOC
  GTEST_SKIP() << "this build does not use tcmalloc";
#else
  ASSERT_GT(activeSamplePeriod(), 0) << "ctest sets TCMALLOC_SAMPLE_PARAMETER for this test";
  primeHeapSampler();
  HeapProfiler heap(HeapMode::kSampled, "");
  std::vector<std::unique_ptr<char[]> > held;
  for (int i = 0; i < 64; ++i) held.emplace_back(new char[256 * 1024]);
  auto text = heap.captureText();
  ASSERT_TRUE(text.ok()) << text.error().message;
  auto p = parseHeapProfile(*text);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->format, "heap_v2");
  // 64 x 256 KiB held; every 256 KiB object is sampled with p = 1-e^-(256K/R).
  double estimated = 0;
  for (const auto& r : p->records) {
    if (r.inuse_bytes >= 256 * 1024)
      estimated += unsample(r.inuse_objects, r.inuse_bytes, p->sample_period).bytes;
  }
  EXPECT_GT(estimated, 0.5 * 64 * 256 * 1024);
  EXPECT_LT(estimated, 2.0 * 64 * 256 * 1024);
#endif
}

// A program may clear its environment after start (nginx's workers keep only
// TZ): tcmalloc samples on with the period it read, and so do snapshots.
TEST(HeapProfiler, SamplingOutlivesTheEnvironmentItStartedWith) {
#ifndef LEAKSCOPE_WITH_TCMALLOC
  GTEST_SKIP() << "this build does not use tcmalloc";
#else
  const char* set = std::getenv("TCMALLOC_SAMPLE_PARAMETER");
  ASSERT_NE(set, nullptr) << "ctest sets TCMALLOC_SAMPLE_PARAMETER for this test";
  const std::string saved = set;
  const std::int64_t period = activeSamplePeriod();
  ASSERT_GT(period, 0);
  ASSERT_EQ(unsetenv("TCMALLOC_SAMPLE_PARAMETER"), 0);
  const std::int64_t after = activeSamplePeriod();
  auto text = HeapProfiler(HeapMode::kSampled, "").captureText();
  ASSERT_EQ(setenv("TCMALLOC_SAMPLE_PARAMETER", saved.c_str(), 1), 0);
  EXPECT_EQ(after, period);
  EXPECT_TRUE(text.ok()) << text.error().message;
#endif
}

TEST(HeapProfiler, OffModeIsUnavailableWithAReason) {
  HeapProfiler heap(HeapMode::kOff, "");
  auto text = heap.captureText();
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error().code, Errc::kUnavailable);
}

}  // namespace
}  // namespace leakscope::diag
