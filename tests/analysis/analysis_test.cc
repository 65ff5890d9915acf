// The analysis library on hand-made inputs: how trend classifies series,
// how diff counts by id, how sockets are grouped, and the reader's limits.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "leakscope/analysis/analysis.h"
#include "leakscope/analysis/input.h"
#include "leakscope/analysis/runs.h"
#include "render.h"
#include "test_support.h"

namespace la = leakscope::analysis;

namespace {

constexpr std::int64_t kMinute = 60'000'000'000;

// A snapshot with one tracked kind whose live ids are `ids`, one heap site of
// `heap_bytes`, and `sockets` ESTABLISHED sockets to "apns".
la::Snapshot snap(la::SymbolTable& symbols, int index, std::vector<std::uint64_t> ids,
                  double heap_bytes = 0, int sockets = 0, std::int64_t pid = 100) {
  la::Snapshot s;
  s.path = "s" + std::to_string(index);
  s.sequence = index;
  s.taken_unix_ns = index * kMinute;
  s.process.pid = pid;
  s.process.rss_bytes = 1 << 20;
  la::TrackedKind k;
  k.name = "apns.connection";
  for (auto id : ids) {
    k.objects.push_back(
        {id, static_cast<std::int64_t>(id) * 1000, 4096, symbols.intern("api.push.apple.com"), -1});
  }
  k.live = static_cast<std::int64_t>(ids.size());
  k.live_bytes = k.live * 4096;
  s.kinds.push_back(k);
  s.heap.available = true;
  s.heap.mode = "full";
  la::FrameInfo f;
  f.function = "Cache::grow";
  const la::StackId stack = symbols.internStack({symbols.internFrame(f)});
  s.heap.sites.push_back({stack, heap_bytes / 64, heap_bytes, heap_bytes / 64, heap_bytes});
  for (int i = 0; i < sockets; ++i) {
    la::Socket k2;
    k2.inode = static_cast<std::uint64_t>(1000 + i);
    k2.protocol = "tcp";
    k2.local = "10.0.0.1:" + std::to_string(40000 + i);
    k2.remote = "17.188.1.1:443";
    k2.state = "ESTABLISHED";
    k2.peer = "apns";
    s.sockets.push_back(k2);
  }
  return s;
}

// The first group of kind `g`; an empty flat group when there is none.
const la::TrendGroup& group(const la::TrendResult& r, la::Group g) {
  static const la::TrendGroup kNone;
  for (const auto& x : r.groups) {
    if (x.group == g) return x;
  }
  return kNone;
}

la::TrendResult trendOf(la::SymbolTable& symbols, const std::vector<la::Snapshot>& snaps,
                        la::TrendOptions o = {}) {
  la::TrendBuilder b(symbols, o);
  for (const auto& s : snaps) b.add(s);
  return b.finish();
}

TEST(Trend, SteadyGrowthIsASuspectWithSurvivorsAndRates) {
  la::SymbolTable sy;
  std::vector<la::Snapshot> s = {snap(sy, 1, {1, 2}), snap(sy, 2, {1, 2, 3, 4}),
                                 snap(sy, 3, {1, 2, 3, 4, 5, 6}),
                                 snap(sy, 4, {1, 2, 4, 5, 6, 7, 8, 9})};
  const auto r = trendOf(sy, s);
  const auto& g = group(r, la::Group::kTracked);
  EXPECT_EQ(g.verdict, la::Verdict::kSteady);
  EXPECT_DOUBLE_EQ(g.growth_count_per_interval, 2.0);
  EXPECT_NEAR(g.growth_count_per_hour, 120.0, 1e-6);  // 2 per minute
  EXPECT_EQ(g.survivor_count, 2u);                    // ids 1 and 2
  ASSERT_EQ(g.survivors.size(), 2u);
  EXPECT_EQ(g.survivors[0].id, 1u);
  EXPECT_EQ(g.survivors[0].label, "api.push.apple.com");
  ASSERT_EQ(r.suspects.size(), 1u);
  EXPECT_EQ(r.suspects[0].name, "apns.connection");
}

TEST(Trend, ASpikeFreedLaterIsTransientNotASuspect) {
  la::SymbolTable sy;
  const double mib = 1 << 20;
  std::vector<la::Snapshot> s = {snap(sy, 1, {}, 1 * mib), snap(sy, 2, {}, 300 * mib),
                                 snap(sy, 3, {}, 1 * mib), snap(sy, 4, {}, 1 * mib)};
  const auto r = trendOf(sy, s);
  const auto& g = group(r, la::Group::kHeap);
  EXPECT_EQ(g.verdict, la::Verdict::kTransient);
  EXPECT_EQ(g.peak_index, 1u);
  EXPECT_TRUE(r.suspects.empty());
}

TEST(Trend, GrowthThatLevelsOffIsBounded) {
  la::SymbolTable sy;
  const double mib = 1 << 20;
  std::vector<la::Snapshot> s;
  const double v[] = {2, 6, 8, 8.1, 7.9, 8.05};
  for (int i = 0; i < 6; ++i) s.push_back(snap(sy, i + 1, {}, v[i] * mib));
  const auto r = trendOf(sy, s);
  EXPECT_EQ(group(r, la::Group::kHeap).verdict, la::Verdict::kBounded);
  EXPECT_TRUE(r.suspects.empty());
}

// One sampled heap site (heap_v2 at the runtime's 512 KiB sample period) of
// `object_bytes` objects holding `mib[i]` MiB (estimated) in snapshot i.
std::vector<la::Snapshot> sampledSite(la::SymbolTable& symbols, const std::vector<double>& mib,
                                      double object_bytes) {
  la::FrameInfo f;
  f.function = "example::allocateReceiveBuffer(unsigned long)";
  const la::StackId stack = symbols.internStack({symbols.internFrame(f)});
  std::vector<la::Snapshot> out;
  for (std::size_t i = 0; i < mib.size(); ++i) {
    la::Snapshot s;
    s.path = "s" + std::to_string(i + 1);
    s.sequence = static_cast<std::int64_t>(i + 1);
    s.taken_unix_ns = static_cast<std::int64_t>(i + 1) * 5 * kMinute;
    s.process.pid = 100;
    s.heap.available = true;
    s.heap.mode = "sampled";
    s.heap.format = "heap_v2";
    s.heap.sample_period = 512 * 1024;
    const double bytes = mib[i] * (1 << 20);
    s.heap.sites.push_back({stack, bytes / object_bytes, bytes, bytes / object_bytes, bytes});
    out.push_back(std::move(s));
  }
  return out;
}

// Issue #13: example::allocateReceiveBuffer (64 KiB buffers) rose in every
// interval and was called bounded, "grew, then levelled off". Its growth over
// the series is far beyond sampling error, and so (just) is the second
// half's: the fitted 5.4 MiB rise of points 4-8 against a 2-sigma error of
// 5.2 MiB, with its four intervals all rising (Kendall p = 1/120, which
// would decide if the slope did not): steady.
TEST(Trend, ASampledSiteRisingInEveryIntervalIsSteadyNotBounded) {
  la::SymbolTable sy;
  const auto r = trendOf(sy, sampledSite(sy, {0.5, 4, 5, 6, 8.5, 9, 10, 12}, 64 * 1024));
  const auto& g = group(r, la::Group::kHeap);
  EXPECT_EQ(g.verdict, la::Verdict::kSteady) << g.reason;
  ASSERT_TRUE(g.sampling.has_value());
  EXPECT_EQ(g.sampling->claim, "growth in the second half");
  EXPECT_NEAR(g.sampling->margin_bytes, 5.40 * (1 << 20), 0.01 * (1 << 20));
  EXPECT_NEAR(g.sampling->error_bytes, 5.21 * (1 << 20), 0.01 * (1 << 20));
  ASSERT_EQ(r.suspects.size(), 1u);
  EXPECT_EQ(g.reason.find("levelled"), std::string::npos);
}

// Growth the size of the sampling error is neither a leak nor levelled off:
// uncertain, listed on its own, never as "levelled off" or among the growth
// that did not persist.
TEST(Trend, SampledGrowthWithinItsErrorIsUncertain) {
  la::SymbolTable sy;
  const auto r = trendOf(sy, sampledSite(sy, {8, 9.5, 9, 10.5, 10, 11}, 64 * 1024));
  const auto& g = group(r, la::Group::kHeap);
  ASSERT_EQ(g.verdict, la::Verdict::kUncertain) << g.reason;
  ASSERT_TRUE(g.sampling.has_value());
  EXPECT_EQ(g.sampling->claim, "growth over the series");
  // The fitted growth over the series: 2.6 MiB, within its error.
  EXPECT_NEAR(g.sampling->margin_bytes, 2.6 * (1 << 20), 0.05 * (1 << 20));
  EXPECT_GT(g.sampling->error_bytes, g.sampling->margin_bytes);
  EXPECT_TRUE(r.suspects.empty());
  EXPECT_EQ(g.reason.rfind("growth within sampling error: take more snapshots or lower the "
                           "sampling period",
                           0),
            0u)
      << g.reason;

  std::ostringstream text;
  la::renderTrend(text, r, sy, {});
  EXPECT_NE(text.str().find("Uncertain — growth within sampling error (1)"), std::string::npos)
      << text.str();
  EXPECT_EQ(text.str().find("No steady growth: no leak suspected"), std::string::npos);
  EXPECT_EQ(text.str().find("Not leaks"), std::string::npos) << text.str();
  EXPECT_EQ(text.str().find("levelled"), std::string::npos) << text.str();

  const auto j = la::trendJson(r, sy, {});
  ASSERT_EQ(j["uncertain"].size(), 1u);
  EXPECT_EQ(j["uncertain"][0]["verdict"], "uncertain");
  EXPECT_EQ(j["uncertain"][0]["sampling"]["claim"], "growth over the series");
  EXPECT_TRUE(j["not_suspects"].empty());
  EXPECT_TRUE(j["suspects"].empty());
}

// The same figures from a full profile are exact: no sampling error.
TEST(Trend, ExactFiguresAreNeverUncertain) {
  la::SymbolTable sy;
  auto snaps = sampledSite(sy, {8, 9.5, 9, 10.5, 10, 11}, 64 * 1024);
  for (auto& s : snaps) s.heap.mode = "full";
  const auto r = trendOf(sy, snaps);
  EXPECT_EQ(group(r, la::Group::kHeap).verdict, la::Verdict::kSteady);
  EXPECT_FALSE(group(r, la::Group::kHeap).sampling.has_value());
}

TEST(Trend, GrowthInTheLastIntervalOnlyIsTooEarlyToTell) {
  la::SymbolTable sy;
  std::vector<la::Snapshot> s = {snap(sy, 1, {1}), snap(sy, 2, {1}), snap(sy, 3, {1, 2, 3})};
  const auto r = trendOf(sy, s);
  EXPECT_EQ(group(r, la::Group::kTracked).verdict, la::Verdict::kRecent);
  EXPECT_TRUE(r.suspects.empty());
}

TEST(Trend, AcceleratingGrowthAndTimeToTheMemoryLimit) {
  la::SymbolTable sy;
  const double mib = 1 << 20;
  std::vector<la::Snapshot> s;
  const double v[] = {10, 12, 16, 24, 40};  // increments double
  for (int i = 0; i < 5; ++i) s.push_back(snap(sy, i + 1, {}, v[i] * mib));
  la::TrendOptions o;
  o.memory_limit_bytes = 1024 * mib;
  const auto r = trendOf(sy, s, o);
  const auto& g = group(r, la::Group::kHeap);
  ASSERT_EQ(g.verdict, la::Verdict::kSteady);
  EXPECT_TRUE(g.accelerating);
  ASSERT_TRUE(g.hours_to_limit.has_value());
  EXPECT_GT(*g.hours_to_limit, 0);
  // RSS is 1 MiB everywhere: (1024 - 1) MiB at the fitted slope.
  EXPECT_NEAR(*g.hours_to_limit, (1023 * mib) / g.growth_bytes_per_hour, 1e-6);
}

// Issue #13 item 9: the limit the snapshots recorded is projected against
// without a flag; the flag still wins, and the result says which was used.
TEST(Trend, TheMemoryLimitTheSnapshotsRecordedIsUsedUnlessTheFlagOverrides) {
  la::SymbolTable sy;
  const double mib = 1 << 20;
  std::vector<la::Snapshot> s;
  for (int i = 0; i < 4; ++i) {
    s.push_back(snap(sy, i + 1, {}, (10 + 4 * i) * mib));
    s.back().process.rss_bytes = static_cast<std::int64_t>((20 + 4 * i) * mib);
    s.back().process.memory_limit_bytes = static_cast<std::int64_t>(512 * mib);
    s.back().process.memory_limit_source = "cgroup2";
  }
  const auto r = trendOf(sy, s);
  ASSERT_TRUE(r.memory_limit.has_value());
  EXPECT_EQ(r.memory_limit->bytes, 512 * mib);
  EXPECT_EQ(r.memory_limit->from, "snapshot");
  EXPECT_EQ(r.memory_limit->source, "cgroup2");
  ASSERT_TRUE(r.hours_to_limit.has_value());
  // RSS grows 4 MiB a minute from 32 MiB: (512 - 32) / 240 MiB/h.
  EXPECT_NEAR(*r.hours_to_limit, 480.0 / 240.0, 1e-9);
  ASSERT_TRUE(group(r, la::Group::kHeap).hours_to_limit.has_value());

  la::TrendOptions o;
  o.memory_limit_bytes = 64 * mib;
  const auto f = trendOf(sy, s, o);
  ASSERT_TRUE(f.memory_limit.has_value());
  EXPECT_EQ(f.memory_limit->from, "flag");
  EXPECT_EQ(f.memory_limit->bytes, 64 * mib);
  EXPECT_NEAR(*f.hours_to_limit, 32.0 / 240.0, 1e-9);

  // Older snapshots recorded none: no limit, no projection.
  for (auto& x : s) x.process.memory_limit_bytes = 0;
  const auto old = trendOf(sy, s);
  EXPECT_FALSE(old.memory_limit.has_value());
  EXPECT_FALSE(old.hours_to_limit.has_value());
}

TEST(Reader, TheMemoryLimitIsAnOptionalFieldOfTheProcess) {
  la::SymbolTable sy;
  const std::string head =
      R"({"format":"leakscope-snapshot","version":1,"sequence":1,"name":"m",)"
      R"("taken":{"unix_ns":1000,"utc":"x"},"process":{"pid":7,"rss_bytes":10)";
  auto with = la::parseSnapshotText(
      head + R"(,"memory_limit_bytes":2147483648,"memory_limit_source":"cgroup1"}})", "w", sy);
  ASSERT_TRUE(with.ok()) << with.error().message;
  EXPECT_EQ(with->process.memory_limit_bytes, std::int64_t{2147483648});
  EXPECT_EQ(with->process.memory_limit_source, "cgroup1");
  auto without = la::parseSnapshotText(head + "}}", "o", sy);
  ASSERT_TRUE(without.ok()) << without.error().message;
  EXPECT_EQ(without->process.memory_limit_bytes, 0);
  // Held to the rules of every size.
  auto negative = la::parseSnapshotText(head + R"(,"memory_limit_bytes":-1}})", "n", sy);
  ASSERT_FALSE(negative.ok());
  EXPECT_NE(negative.error().message.find("process.memory_limit_bytes: must not be negative"),
            std::string::npos)
      << negative.error().message;
}

TEST(Trend, ARestartVoidsSurvivorsWithANote) {
  la::SymbolTable sy;
  std::vector<la::Snapshot> s = {snap(sy, 1, {1, 2}, 0, 0, 100), snap(sy, 2, {1, 2, 3}, 0, 0, 100),
                                 snap(sy, 3, {1, 2, 3, 4}, 0, 0, 200)};
  const auto r = trendOf(sy, s);
  EXPECT_EQ(group(r, la::Group::kTracked).survivor_count, 0u);
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("restarted"), std::string::npos);
}

TEST(Trend, SocketGroupsGrowWithTheirConnections) {
  la::SymbolTable sy;
  std::vector<la::Snapshot> s = {snap(sy, 1, {}, 0, 2), snap(sy, 2, {}, 0, 4),
                                 snap(sy, 3, {}, 0, 6)};
  const auto r = trendOf(sy, s);
  const auto& g = group(r, la::Group::kSocket);
  EXPECT_EQ(g.name, "apns ESTABLISHED");
  EXPECT_EQ(g.verdict, la::Verdict::kSteady);
}

// ---- runs -------------------------------------------------------------------

// Snapshot `index` of a process (pid, start time) holding `live` leaked
// objects (ids 1..live) and `rss` bytes resident.
la::Snapshot runSnap(la::SymbolTable& sy, int index, std::uint64_t live, std::int64_t pid,
                     double start, std::int64_t rss) {
  std::vector<std::uint64_t> ids;
  for (std::uint64_t id = 1; id <= live; ++id) ids.push_back(id);
  la::Snapshot s = snap(sy, index, ids, 0, 0, pid);
  s.process.start_time_unix = start;
  s.process.rss_bytes = rss;
  return s;
}

la::RunsResult runsOf(la::SymbolTable& sy, const std::vector<la::Snapshot>& snaps,
                      la::TrendOptions o = {}) {
  la::RunsBuilder b(sy, o);
  for (const auto& s : snaps) b.add(s);
  return b.finish();
}

// Three runs of a leaking process, each killed near a 100 MiB limit: as one
// series the drops at the restarts hide the leak; run by run it is steady.
TEST(Runs, EachRunOfARestartedProcessIsJudgedOnItsOwn) {
  la::SymbolTable sy;
  std::vector<la::Snapshot> s;
  int index = 0;
  for (std::int64_t run = 0; run < 3; ++run) {
    for (std::uint64_t k = 1; k <= 3; ++k) {
      s.push_back(runSnap(sy, ++index, 10 * k, 100 + run, 1000.0 + 100.0 * static_cast<double>(run),
                          static_cast<std::int64_t>(32 * k) << 20));
    }
  }
  // The whole series (how trend judged it before): not steady.
  EXPECT_NE(group(trendOf(sy, s), la::Group::kTracked).verdict, la::Verdict::kSteady);

  la::TrendOptions o;
  o.memory_limit_bytes = 100.0 * (1 << 20);
  const la::RunsResult r = runsOf(sy, s, o);
  ASSERT_EQ(r.runs.size(), 3u);
  EXPECT_EQ(r.points.size(), 9u);
  for (std::size_t i = 0; i < 3; ++i) {
    const la::RunVerdict& run = r.runs[i];
    EXPECT_EQ(run.id.pid, static_cast<std::int64_t>(100 + i));
    EXPECT_EQ(run.first_input, 3 * i);
    EXPECT_EQ(run.inputs, 3u);
    EXPECT_EQ(run.method, la::RunMethod::kTrend);
    EXPECT_EQ(group(run.trend, la::Group::kTracked).verdict, la::Verdict::kSteady);
    ASSERT_FALSE(run.suspects.empty());
    EXPECT_EQ(run.suspects.front().name, "apns.connection");
    ASSERT_TRUE(run.last_rss_of_limit.has_value());
    EXPECT_DOUBLE_EQ(*run.last_rss_of_limit, 0.96);
  }
  EXPECT_EQ(r.suspects.size(), 3u);
  EXPECT_EQ(r.summary,
            "3 runs; each grew apns.connection steadily; each restart came near the memory limit "
            "(last RSS 96 % of limit) — consistent with repeated OOM kills");
}

TEST(Runs, ThePidAloneDoesNotMakeARunAStartTimeDoes) {
  la::SymbolTable sy;
  // pid 7 reused by the next process; one snapshot without a start time
  // (older writers) stays with the run it follows.
  std::vector<la::Snapshot> s = {runSnap(sy, 1, 1, 7, 1000.25, 1), runSnap(sy, 2, 2, 7, 1000.25, 1),
                                 runSnap(sy, 3, 3, 7, 0, 1),       runSnap(sy, 4, 1, 7, 5000.5, 1),
                                 runSnap(sy, 5, 2, 7, 5000.5, 1),  runSnap(sy, 6, 3, 7, 5000.5, 1)};
  const la::RunsResult r = runsOf(sy, s);
  ASSERT_EQ(r.runs.size(), 2u);
  EXPECT_EQ(r.runs[0].inputs, 3u);
  EXPECT_DOUBLE_EQ(r.runs[1].id.start_time_unix, 5000.5);
  EXPECT_EQ(r.runs[1].first_input, 3u);
}

// Runs too short for a trend are compared first to last (as diff would),
// never passed over in silence; without a limit the summary says so.
TEST(Runs, ShortRunsGetTheComparisonsSuspects) {
  la::SymbolTable sy;
  std::vector<la::Snapshot> s = {
      runSnap(sy, 1, 5, 100, 10, 40 << 20), runSnap(sy, 2, 9, 100, 10, 50 << 20),
      runSnap(sy, 3, 5, 200, 20, 40 << 20), runSnap(sy, 4, 9, 200, 20, 50 << 20),
      runSnap(sy, 5, 5, 300, 30, 40 << 20)};
  const la::RunsResult r = runsOf(sy, s);
  ASSERT_EQ(r.runs.size(), 3u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(r.runs[i].method, la::RunMethod::kDiff);
    ASSERT_TRUE(r.runs[i].comparison.has_value());
    ASSERT_FALSE(r.runs[i].suspects.empty());
    EXPECT_EQ(r.runs[i].suspects.front().name, "apns.connection");
    EXPECT_NE(r.runs[i].reason.find("a trend needs three"), std::string::npos) << r.runs[i].reason;
  }
  EXPECT_EQ(r.runs[2].method, la::RunMethod::kSingle);
  EXPECT_TRUE(r.runs[2].suspects.empty());
  EXPECT_EQ(r.suspects.size(), 2u);
  EXPECT_EQ(r.summary.rfind("3 runs; 2 of 3 runs grew (run 1: apns.connection; run 2: "
                            "apns.connection); last RSS before each restart 50.0 MiB, 50.0 MiB; "
                            "no memory limit known",
                            0),
            0u)
      << r.summary;
}

// One run: the runs' view is the trend's, suspects and all.
TEST(Runs, ASeriesOfOneRunIsItsTrend) {
  la::SymbolTable sy;
  std::vector<la::Snapshot> s = {snap(sy, 1, {1, 2}), snap(sy, 2, {1, 2, 3}),
                                 snap(sy, 3, {1, 2, 3, 4}), snap(sy, 4, {1, 2, 3, 4, 5})};
  const la::TrendResult t = trendOf(sy, s);
  const la::RunsResult r = runsOf(sy, s);
  ASSERT_TRUE(r.single());
  EXPECT_EQ(r.runs[0].method, la::RunMethod::kTrend);
  ASSERT_EQ(r.suspects.size(), t.suspects.size());
  EXPECT_EQ(r.suspects.front().name, t.suspects.front().name);
  std::ostringstream a, b;
  la::renderTrend(a, t, sy, {});
  la::renderRuns(b, r, sy, {});
  EXPECT_EQ(a.str(), b.str());
  EXPECT_EQ(la::runsJson(r, sy, {})["runs"].size(), 1u);
}

TEST(Compare, NewAndDeletedComeFromObjectIds) {
  la::SymbolTable sy;
  const auto base = snap(sy, 1, {1, 2, 3});
  const auto target = snap(sy, 2, {2, 3, 4, 5, 6});
  const auto c = la::compare(base, target, sy, {});
  ASSERT_FALSE(c.rows.empty());
  const la::CompareRow& r = c.rows[0];
  EXPECT_EQ(r.name, "apns.connection");
  EXPECT_EQ(r.new_count, 3);
  EXPECT_EQ(r.deleted_count, 1);
  EXPECT_EQ(r.delta_count, 2);
  EXPECT_EQ(r.alloc_bytes, 3 * 4096);
  EXPECT_EQ(r.freed_bytes, 4096);
  EXPECT_EQ(r.delta_bytes, 2 * 4096);
  ASSERT_EQ(c.suspects.size(), 1u);
}

TEST(Compare, ARestartFallsBackToNetCounts) {
  la::SymbolTable sy;
  const auto c = la::compare(snap(sy, 1, {1, 2}, 0, 0, 1), snap(sy, 2, {1, 2, 3}, 0, 0, 2), sy, {});
  EXPECT_EQ(c.rows[0].basis, "net");
  EXPECT_EQ(c.rows[0].new_count, 1);
  EXPECT_FALSE(c.notes.empty());
}

TEST(Sockets, GroupNamesForNamedUnnamedInboundAndListening) {
  std::set<std::string> listening = {"8080"};
  la::Socket s;
  s.protocol = "tcp";
  s.local = "10.0.0.1:40000";
  s.remote = "17.188.1.1:443";
  s.peer = "apns";
  EXPECT_EQ(la::socketGroupName(s, listening), "apns");
  EXPECT_EQ(la::socketPeerName(s, listening), "apns");
  // An unnamed remote is `other`, as /metrics names it; its group keeps the
  // endpoint, which tells the reader which server it is.
  s.peer = "other";
  EXPECT_EQ(la::socketPeerName(s, listening), "other");
  EXPECT_EQ(la::socketGroupName(s, listening), "other (17.188.1.1:443)");
  // Accepted on a listening port: older runtimes wrote `other`, newer ones
  // `inbound :PORT`; both read as the rule says.
  s.local = "10.0.0.1:8080";
  EXPECT_EQ(la::socketPeerName(s, listening), "inbound :8080");
  EXPECT_EQ(la::socketGroupName(s, listening), "inbound :8080");
  s.peer = "inbound :8080";
  EXPECT_EQ(la::socketGroupName(s, listening), "inbound :8080");
  s.remote = "";
  s.peer = "none";
  EXPECT_EQ(la::socketPeerName(s, listening), "none");
  EXPECT_EQ(la::socketGroupName(s, listening), "tcp 10.0.0.1:8080");
}

TEST(Sockets, FlagsCloseWaitUnownedAndOrphanedOwners) {
  la::SymbolTable sy;
  la::Snapshot s = snap(sy, 1, {7, 8});
  s.kinds[0].objects[0].fd = 12;  // #7 declares fd 12 ...
  s.kinds[0].objects[1].fd = 13;  // ... #8 declares fd 13, which is gone
  la::Socket owned;
  owned.protocol = "tcp";
  owned.local = "10.0.0.1:1";
  owned.remote = "17.188.1.1:443";
  owned.state = "ESTABLISHED";
  owned.peer = "apns";
  owned.owner = 7;
  la::Socket unowned = owned;
  unowned.owner.reset();
  unowned.remote = "10.9.9.9:3306";
  unowned.peer = "other";
  la::Socket cw = unowned;
  cw.state = "CLOSE_WAIT";
  cw.remote = "10.9.9.10:80";
  s.sockets = {owned, unowned, cw};
  const auto r = la::analyseSockets({&s}, sy, {});
  std::set<std::string> flags;
  for (const auto& f : r.flags) flags.insert(f.what + " " + f.name);
  EXPECT_TRUE(flags.count("unowned other (10.9.9.9:3306) ESTABLISHED")) << r.flags.size();
  EXPECT_TRUE(flags.count("owner-without-socket apns.connection"));
  EXPECT_TRUE(flags.count("close-wait other (10.9.9.10:80) CLOSE_WAIT"));
  EXPECT_EQ(r.suspects.size(), r.flags.size());
}

// An ESTABLISHED TCP socket `inode` at fd `fd`, owned by `owner` (0: none).
la::Socket connection(std::uint64_t inode, std::int32_t fd, std::uint64_t owner) {
  la::Socket k;
  k.fd = fd;
  k.inode = inode;
  k.protocol = "tcp";
  k.local = "10.0.0.1:" + std::to_string(40000 + inode);
  k.remote = "10.9.9.9:3306";
  k.state = "ESTABLISHED";
  k.peer = "other";
  if (owner != 0) k.owner = owner;
  return k;
}

// Snapshots `index` of a program whose socket 500 is always owned by #1 (it
// declares owners), plus `sockets`.
la::Snapshot withSockets(la::SymbolTable& sy, int index, std::vector<la::Socket> sockets) {
  la::Snapshot s = snap(sy, index, {1});
  s.sockets = {connection(500, 3, 1)};
  s.sockets.insert(s.sockets.end(), sockets.begin(), sockets.end());
  return s;
}

std::set<std::string> flagNames(const la::SocketsResult& r) {
  std::set<std::string> out;
  for (const auto& f : r.flags) out.insert(f.what + " " + f.name);
  return out;
}

TEST(Sockets, AnUnownedSocketOwnedInTheSnapshotBeforeWasBeingClosed) {
  la::SymbolTable sy;
  // #2 owned socket 501, then was destroyed an instant before its fd closed.
  const la::Snapshot a = withSockets(sy, 1, {connection(501, 4, 2)});
  const la::Snapshot b = withSockets(sy, 2, {connection(501, 4, 0)});
  const auto r = la::analyseSockets({&a, &b}, sy, {});
  EXPECT_TRUE(flagNames(r).empty()) << r.flags.size();
  EXPECT_TRUE(r.suspects.empty());
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("1 owned in a neighbouring snapshot"), std::string::npos) << r.notes[0];
}

TEST(Sockets, AnUnownedSocketYoungerThanAnIntervalIsNotHeldAgainstTheProgram) {
  la::SymbolTable sy;
  // 502 appeared since the previous snapshot: its owner may not be declared yet.
  const la::Snapshot a = withSockets(sy, 1, {});
  const la::Snapshot b = withSockets(sy, 2, {connection(502, 5, 0)});
  const auto r = la::analyseSockets({&a, &b}, sy, {});
  EXPECT_TRUE(flagNames(r).empty());
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("1 younger than one snapshot interval"), std::string::npos)
      << r.notes[0];
}

TEST(Sockets, AnUnownedSocketWhoseOwnerAppearsInTheNextSnapshotWasBeingOpened) {
  la::SymbolTable sy;
  // 503 is unowned in two snapshots in a row, but the next one shows its owner.
  const la::Snapshot a = withSockets(sy, 1, {connection(503, 6, 0)});
  const la::Snapshot b = withSockets(sy, 2, {connection(503, 6, 0)});
  const la::Snapshot c = withSockets(sy, 3, {connection(503, 6, 3)});
  EXPECT_TRUE(flagNames(la::analyseSockets({&a, &b, &c}, sy, {})).empty());
  // Without that next snapshot it has been unowned for a whole interval.
  const auto r = la::analyseSockets({&a, &b}, sy, {});
  EXPECT_EQ(flagNames(r), std::set<std::string>{"unowned other (10.9.9.9:3306) ESTABLISHED"});
  ASSERT_EQ(r.suspects.size(), 1u);
  EXPECT_NE(r.suspects[0].reason.find("in two snapshots in a row"), std::string::npos);
}

TEST(Sockets, OwnerIdsSortNumerically) {
  la::SymbolTable sy;
  la::Snapshot s = snap(sy, 1, {9, 10});
  // #10 holds the lower fd: fd order (or text order) would list it first.
  s.sockets = {connection(600, 3, 10), connection(601, 4, 9)};
  const auto r = la::analyseSockets({&s}, sy, {});
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0].owners,
            (std::vector<std::string>{"apns.connection#9 (api.push.apple.com)",
                                      "apns.connection#10 (api.push.apple.com)"}));
}

TEST(Sockets, SuspectsAreNamedWithPeerStateAndOwnersInTextAndJson) {
  la::SymbolTable sy;
  // Connections to the database that keep growing, all owned; one that no
  // code tracks, unowned in both snapshots.
  const la::Snapshot a = withSockets(sy, 1, {connection(700, 7, 0)});
  la::Snapshot b = withSockets(sy, 2, {connection(700, 7, 0)});
  b.kinds[0].objects.push_back({12, 0, 0, sy.intern("db"), 8});
  b.kinds[0].objects.push_back({4, 0, 0, sy.intern("db"), 9});
  b.sockets.push_back(connection(701, 8, 12));
  b.sockets.push_back(connection(702, 9, 4));
  const auto r = la::analyseSockets({&a, &b}, sy, {});
  ASSERT_EQ(r.suspects.size(), 2u);

  std::ostringstream text;
  la::RenderOptions unwrapped;
  unwrapped.width = 0;  // one line per fact (wrapping has tests of its own)
  la::renderSockets(text, r, unwrapped);
  const std::string t = text.str();
  EXPECT_NE(t.find("Leak suspects (2):"), std::string::npos) << t;
  EXPECT_NE(t.find("1. [socket] other (10.9.9.9:3306) ESTABLISHED\n"
                   "     1 ESTABLISHED TCP socket(s) with no tracked owner in two snapshots in a "
                   "row: opened by code that does not track its connections\n"
                   "     peer other, state ESTABLISHED, no owner\n"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("2. [socket] other (10.9.9.9:3306) ESTABLISHED\n"
                   "     open sockets keep growing (2, 4)\n"
                   "     peer other, state ESTABLISHED, owners apns.connection#1 "
                   "(api.push.apple.com), apns.connection#4 (db), apns.connection#12 (db)\n"),
            std::string::npos)
      << t;

  const nlohmann::json j = la::socketsJson(r, {});
  ASSERT_EQ(j["suspects"].size(), 2u);
  const auto& growing = j["suspects"][1];
  EXPECT_EQ(growing["peer"], "other");
  EXPECT_EQ(growing["state"], "ESTABLISHED");
  EXPECT_EQ(growing["owners"],
            nlohmann::json({"apns.connection#1 (api.push.apple.com)", "apns.connection#4 (db)",
                            "apns.connection#12 (db)"}));
  EXPECT_EQ(j["suspects"][0]["owners"], nlohmann::json::array());
  EXPECT_EQ(j["groups"][0]["peer"], "other");
}

TEST(Reader, ParsesAMinimalSnapshotInAnyKeyOrder) {
  la::SymbolTable sy;
  // Sites before frames, objects before kind: the reader does not rely on order.
  const std::string text = R"({"heap":{"mode":"full","available":true,
      "sites":[{"inuse_objects":2,"inuse_bytes":64,"alloc_objects":3,"alloc_bytes":96,"stack":[0]}],
      "frames":[{"id":0,"function":"f","module":"/bin/x","module_offset":"0x10"}]},
    "tracked":[{"objects":[{"id":9,"birth_unix_ns":1,"label":"l","bytes":5,"fd":null}],"kind":"k",
      "live":1,"live_bytes":5,"created_total":1,"destroyed_total":0}],
    "version":1,"format":"leakscope-snapshot","sequence":3,"taken":{"unix_ns":42}})";
  auto s = la::parseSnapshotText(text, "mem", sy);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->sequence, 3);
  EXPECT_EQ(s->taken_unix_ns, 42);
  ASSERT_EQ(s->kinds.size(), 1u);
  EXPECT_EQ(s->kinds[0].objects[0].id, 9u);
  EXPECT_EQ(s->kinds[0].objects[0].fd, -1);
  ASSERT_EQ(s->heap.sites.size(), 1u);
  EXPECT_EQ(la::siteName(sy, s->heap.sites[0].stack), "f");
  EXPECT_DOUBLE_EQ(s->heap.sites[0].alloc_bytes, 96);
}

TEST(Reader, RejectsDeepNestingAndDanglingFrames) {
  la::SymbolTable sy;
  std::string deep = R"({"format":"leakscope-snapshot","version":1,"x":)";
  for (int i = 0; i < 200; ++i) deep += "[";
  auto a = la::parseSnapshotText(deep, "deep", sy);
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message.find("nesting deeper than 64"), std::string::npos)
      << a.error().message;
  auto b = la::parseSnapshotText(
      R"({"format":"leakscope-snapshot","version":1,"heap":{"frames":[],"sites":[{"stack":[5]}]}})",
      "dangling", sy);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message.find("heap.sites[0].stack: frame 5 is not in heap.frames"),
            std::string::npos)
      << b.error().message;
}

TEST(Reader, ProfileWithUnknownTypeNamesTheLine) {
  la::SymbolTable sy;
  auto p = la::parseProfileText("heap profile: 1: 2 [ 3: 4] @ growthz\n", "p.heap", sy, {});
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message.rfind("p.heap: line 1: unknown profile type", 0), 0u)
      << p.error().message;
}

// ---- hostile input (issue #11) ---------------------------------------------

std::string snapshotWith(const std::string& body) {
  return R"({"format":"leakscope-snapshot","version":1,"taken":{"unix_ns":5},)" + body + "}";
}

std::string errorOf(const std::string& text) {
  la::SymbolTable sy;
  auto s = la::parseSnapshotText(text, "h.lsnap", sy);
  return s ? std::string("(accepted)") : s.error().message;
}

TEST(Reader, RefusesNegativeSizesCountsAndTimes) {
  EXPECT_EQ(errorOf(snapshotWith(R"("tracked":[{"kind":"k","live":1,"live_bytes":-5}])")),
            "h.lsnap: tracked[0].live_bytes: must not be negative");
  EXPECT_EQ(errorOf(snapshotWith(R"("process":{"pid":1,"rss_bytes":-1})")),
            "h.lsnap: process.rss_bytes: must not be negative");
  EXPECT_EQ(errorOf(snapshotWith(
                R"("tracked":[{"kind":"k","objects":[{"id":1,"bytes":-7,"birth_unix_ns":1}]}])")),
            "h.lsnap: tracked[0].objects[0].bytes: must not be negative");
  EXPECT_EQ(errorOf(R"({"format":"leakscope-snapshot","version":1,"taken":{"unix_ns":-1}})"),
            "h.lsnap: taken.unix_ns: must not be negative");
}

TEST(Reader, RefusesHeapFiguresThatCouldSumToInfinity) {
  const std::string site =
      R"({"inuse_objects":1,"inuse_bytes":1e308,"alloc_objects":1,"alloc_bytes":1,"stack":[0]})";
  EXPECT_EQ(errorOf(snapshotWith(R"("heap":{"frames":[{"id":0,"function":"f"}],"sites":[)" + site +
                                 "," + site + "]}")),
            "h.lsnap: heap.sites[0].inuse_bytes: must be a number from 0 to 2^63");
  EXPECT_EQ(errorOf(snapshotWith(
                R"("heap":{"frames":[{"id":0}],"sites":[{"inuse_bytes":-1,"stack":[0]}]})")),
            "h.lsnap: heap.sites[0].inuse_bytes: must be a number from 0 to 2^63");
}

TEST(Reader, RefusesDuplicateKeysAtTheirOffset) {
  EXPECT_EQ(errorOf(R"({"format":"leakscope-snapshot","version":1,"version":2})"),
            "h.lsnap: byte 52 (line 1): duplicate key \"version\"");
  EXPECT_EQ(errorOf(snapshotWith(R"("process":{"pid":1,"pid":2})")),
            "h.lsnap: byte 89 (line 1): duplicate key \"pid\"");
}

TEST(Reader, AFrameIdMustBeItsIndex) {
  // 286 bytes naming frame 50000000 made a table of 50 million entries.
  EXPECT_EQ(
      errorOf(snapshotWith(
          R"("heap":{"frames":[{"id":50000000,"function":"f"}],"sites":[{"stack":[50000000]}]})")),
      "h.lsnap: heap.frames[0].id: 50000000 is not the frame's index 0");
  EXPECT_EQ(errorOf(snapshotWith(R"("heap":{"frames":[{"id":0},{"id":0}]})")),
            "h.lsnap: heap.frames[1].id: 0 is not the frame's index 1");
}

TEST(Reader, ErrorsQuoteAtMost100BytesOfAToken) {
  const std::string message =
      errorOf(R"({"format":"leakscope-snapshot","name":")" + std::string(100000, 'A'));
  EXPECT_LT(message.size(), 300u) << message.size();
  EXPECT_NE(message.find("...(100001 bytes)"), std::string::npos) << message;
}

TEST(Reader, ValuesOfUnknownKeysAreSkipped) {
  la::SymbolTable sy;
  auto s = la::parseSnapshotText(
      snapshotWith(R"("future":[[1,{"a":2}],{"b":[3]}],"sequence":4,"name":"n")"), "h", sy);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->sequence, 4);
  EXPECT_EQ(s->name, "n");
}

TEST(Reader, ProfileRefusesNegativeAndOverflowingCounts) {
  const std::string maps =
      "\nMAPPED_LIBRARIES:\n555500000000-555500010000 r-xp 00000000 08:01 1 /nonexistent/x\n";
  la::SymbolTable sy;
  auto neg = la::parseProfileText(
      "heap profile: 1: 2 [ 1: 2] @ heapprofile\n -1: 2 [ 1: 2] @ 0x555500001000\n" + maps, "p", sy,
      {});
  ASSERT_FALSE(neg);
  EXPECT_EQ(neg.error().message,
            "p: line 2: malformed record 'N: B [N: B] @ ...' (non-negative integers)");
  auto big = la::parseProfileText(
      "heap profile: 1: 99999999999999999999 [ 1: 2] @ heapprofile\n" + maps, "p", sy, {});
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().message,
            "p: line 1: malformed totals 'N: B [N: B]' (non-negative integers)");
}

TEST(Render, PrintableEscapesWhatATerminalWouldActOn) {
  EXPECT_EQ(la::printable("plain text, caf\xc3\xa9, \xe2\x86\x90"),
            "plain text, caf\xc3\xa9, \xe2\x86\x90");
  EXPECT_EQ(la::printable("a\x1b]0;t\x07z\n\t\x7f"), "a\\x1b]0;t\\x07z\\x0a\\x09\\x7f");
  EXPECT_EQ(la::printable("a\nb", true), "a\nb");
  // C1 CSI as UTF-8, bidi override, invalid and overlong UTF-8, a lone C1 byte.
  EXPECT_EQ(la::printable("\xc2\x9b"
                          "1m\xe2\x80\xae\xff\xc0\xaf\x9b"),
            "\\u009b1m\\u202e\\xff\\xc0\\xaf\\x9b");
}

TEST(Render, TextViewsShowLabelsKindsAndPeersEscaped) {
  la::SymbolTable sy;
  auto s = la::parseSnapshotText(
      snapshotWith(
          R"("name":"n\u001b]2;t\u0007","tracked":[{"kind":"k\u001b[2J","live":1}],)"
          R"("sockets":[{"fd":3,"inode":4,"protocol":"tcp","local":"1.1.1.1:1","remote":"2.2.2.2:2",)"
          R"("state":"ESTABLISHED","peer":"p\u009b31m"}])"),
      "h", sy);
  ASSERT_TRUE(s) << s.error().message;
  const la::SocketsResult k = la::analyseSockets({&*s}, sy, {});
  std::ostringstream out;
  la::renderShow(out, *s, k, sy, {});
  const std::string text = out.str();
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
  EXPECT_EQ(text.find('\x07'), std::string::npos) << text;
  EXPECT_EQ(text.find("\xc2\x9b"), std::string::npos) << text;
  EXPECT_NE(text.find("snapshot n\\x1b]2;t\\x07 #0"), std::string::npos) << text;
  EXPECT_NE(text.find("k\\x1b[2J"), std::string::npos) << text;
  EXPECT_NE(text.find("p\\u009b31m"), std::string::npos) << text;
}

TEST(Render, JsonOfTextThatIsNotUtf8IsReplacedNotThrown) {
  nlohmann::json j = {{"input", "snap\xff.lsnap"}, {"module", "lib\xc3("}};
  std::string text;
  ASSERT_NO_THROW(text = la::dumpJson(j));
  EXPECT_EQ(nlohmann::json::parse(text)["input"], "snap\xef\xbf\xbd.lsnap");
}

// ---- text that fits a terminal, JSON that counts (issue #13 items 7, 11) ----

// Columns `text` takes on a terminal (UTF-8 code points).
std::size_t columnsOf(const std::string& text) {
  std::size_t columns = 0;
  for (char c : text) columns += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return columns;
}

// The lines of `text` wider than `width` columns.
std::vector<std::string> linesWiderThan(const std::string& text, std::size_t width) {
  std::vector<std::string> wide;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (columnsOf(line) > width) wide.push_back(line);
  }
  return wide;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

// A comparison whose one suspect has a stack of 200 characters and more.
la::Comparison comparisonWithALongStack(la::SymbolTable& sy) {
  std::vector<la::StringId> frames;
  for (int i = 0; i < 6; ++i) {
    la::FrameInfo f;
    f.function = "deeply::nested::namespace_" + std::to_string(i) + "::Function" +
                 std::to_string(i) + "(int, char const*)";
    f.file = "src/module_" + std::to_string(i) + ".cc";
    f.line = 100 + i;
    frames.push_back(sy.internFrame(f));
  }
  la::Comparison c;
  c.base = "a.lsnap";
  c.target = "b.lsnap";
  c.interval_seconds = 60;
  c.suspects.push_back({la::Group::kHeap, "deeply::nested::namespace_0::Function0", "grew", 3,
                        3 << 20, sy.internStack(frames)});
  return c;
}

TEST(Render, ALongStackWrapsToTheWidthAndStaysWholeInJson) {
  la::SymbolTable sy;
  const la::Comparison c = comparisonWithALongStack(sy);
  ASSERT_GE(la::describeStack(sy, *c.suspects[0].stack, 6).size(), 200u);
  la::RenderOptions o;
  o.width = 80;
  std::ostringstream out;
  la::renderCompare(out, c, sy, o);
  EXPECT_TRUE(linesWiderThan(out.str(), 80).empty()) << joined(linesWiderThan(out.str(), 80));
  // Wrapped between frames, not cut: every frame is still there.
  for (int i = 0; i < 6; ++i) {
    EXPECT_NE(out.str().find("(module_" + std::to_string(i) + ".cc:" + std::to_string(100 + i)),
              std::string::npos)
        << out.str();
  }
  EXPECT_EQ(la::compareJson(c, sy, o)["suspects"][0]["stack"].size(), 6u);
  // 0: as long as it takes.
  o.width = 0;
  std::ostringstream whole;
  la::renderCompare(whole, c, sy, o);
  EXPECT_FALSE(linesWiderThan(whole.str(), 200).empty()) << whole.str();
}

TEST(Render, ATableWiderThanTheViewShortensItsNamesAndStaysAligned) {
  la::SymbolTable sy;
  la::Comparison c;
  for (const std::string& name : {std::string("short"), std::string(120, 'k')}) {
    la::CompareRow r;
    r.name = name;
    r.new_count = 12345;
    c.rows.push_back(r);
  }
  la::RenderOptions o;
  o.width = 80;
  std::ostringstream out;
  la::renderCompare(out, c, sy, o);
  EXPECT_TRUE(linesWiderThan(out.str(), 80).empty()) << out.str();
  EXPECT_NE(out.str().find("\u2026kkk"), std::string::npos) << out.str();
  // The "# New" figures end in the same column on both rows.
  std::vector<std::size_t> ends;
  std::istringstream in(out.str());
  for (std::string line; std::getline(in, line);) {
    if (const auto p = line.find("12345"); p != std::string::npos) {
      ends.push_back(columnsOf(line.substr(0, p + 5)));
    }
  }
  ASSERT_EQ(ends.size(), 2u) << out.str();
  EXPECT_EQ(ends[0], ends[1]) << out.str();
}

TEST(Render, AColumnThatIsAlwaysADashIsDropped) {
  la::SymbolTable sy;
  // Socket groups have no sizes: their table shows counts only.
  const auto c = la::compare(snap(sy, 1, {}, 0, 2), snap(sy, 2, {}, 0, 5), sy, {});
  std::ostringstream out;
  la::renderCompare(out, c, sy, {});
  EXPECT_NE(out.str().find("socket group"), std::string::npos) << out.str();
  std::istringstream in(out.str());
  for (std::string line; std::getline(in, line);) {
    if (line.find("socket group") != std::string::npos) {
      EXPECT_EQ(line.find("Size"), std::string::npos) << line;
    }
    if (line.find("apns ESTABLISHED") != std::string::npos) {
      EXPECT_EQ(line.find('-'), std::string::npos) << line;
    }
  }
}

TEST(Render, SurvivorsShowFiveRowsAndHowManyMore) {
  la::SymbolTable sy;
  std::vector<la::Snapshot> s;
  // Ids 1-12 live throughout; the kind grows by ids 100, 101, ... that come
  // and go, two more each time.
  for (int i = 1; i <= 4; ++i) {
    std::vector<std::uint64_t> ids;
    for (std::uint64_t id = 1; id <= 12; ++id) ids.push_back(id);
    for (int k = 0; k < 2 * i; ++k) ids.push_back(static_cast<std::uint64_t>(100 * i + k));
    s.push_back(snap(sy, i, ids));
  }
  const auto r = trendOf(sy, s);
  ASSERT_EQ(group(r, la::Group::kTracked).survivor_count, 12u);
  std::ostringstream out;
  la::renderTrend(out, r, sy, {});
  const std::string text = out.str();
  for (int id = 1; id <= 5; ++id) {
    EXPECT_NE(text.find("#" + std::to_string(id) + " "), std::string::npos) << text;
  }
  EXPECT_EQ(text.find("#6 "), std::string::npos) << text;
  EXPECT_NE(text.find("\u2026 7 more"), std::string::npos) << text;
  la::RenderOptions all;
  all.survivors = 0;
  std::ostringstream every;
  la::renderTrend(every, r, sy, all);
  EXPECT_NE(every.str().find("#12 "), std::string::npos) << every.str();
  EXPECT_EQ(every.str().find("more"), std::string::npos) << every.str();
}

TEST(Render, JsonCountsAreIntegers) {
  la::SymbolTable sy;
  const double mib = 1 << 20;
  const auto c =
      la::compare(snap(sy, 1, {1, 2}, 1 * mib, 1), snap(sy, 2, {1, 2, 3}, 3 * mib, 3), sy, {});
  const nlohmann::json d = la::compareJson(c, sy, {});
  ASSERT_FALSE(d["rows"].empty());
  for (const auto& row : d["rows"]) {
    for (const char* key : {"new", "deleted", "delta", "base_objects", "target_objects",
                            "alloc_bytes", "delta_bytes"}) {
      EXPECT_TRUE(row[key].is_number_integer()) << key << ": " << row;
    }
  }
  ASSERT_FALSE(d["suspects"].empty());
  EXPECT_TRUE(d["suspects"][0]["delta_objects"].is_number_integer()) << d["suspects"];
  std::vector<la::Snapshot> s = {snap(sy, 1, {1}, 0, 1), snap(sy, 2, {1, 2}, 0, 2),
                                 snap(sy, 3, {1, 2, 3}, 0, 3)};
  const nlohmann::json t = la::trendJson(trendOf(sy, s), sy, {});
  ASSERT_FALSE(t["suspects"].empty());
  for (const auto& g : t["suspects"]) {
    EXPECT_TRUE(g["objects"][0].is_number_integer()) << g;
    EXPECT_TRUE(g["delta_objects"].is_number_integer()) << g;
  }
}

TEST(Render, DiffOfAPairInReverseOrderGivesTheGapNotZeroApart) {
  la::SymbolTable sy;
  const auto c = la::compare(snap(sy, 2, {1, 2}), snap(sy, 1, {1}), sy, {});
  std::ostringstream out;
  la::renderCompare(out, c, sy, {});
  EXPECT_EQ(out.str().find("apart"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("TARGET was taken 1m 0s before BASE"), std::string::npos) << out.str();
}

TEST(Render, TheRssTrendIsShownOnlyOverALongEnoughSeriesAsAnExtrapolation) {
  la::SymbolTable sy;
  auto series = [&sy](int n) {
    std::vector<la::Snapshot> s;
    for (int i = 1; i <= n; ++i) {
      s.push_back(snap(sy, i, {1}));
      s.back().process.rss_bytes = std::int64_t{i} << 20;
    }
    return s;
  };
  // Two snapshots a minute apart: a rate per hour would be noise multiplied.
  std::ostringstream two;
  la::renderTrend(two, trendOf(sy, series(2)), sy, {});
  EXPECT_EQ(two.str().find("RSS trend"), std::string::npos) << two.str();
  // Six over five minutes: shown, and said to be a straight line carried on.
  std::ostringstream six;
  la::renderTrend(six, trendOf(sy, series(6)), sy, {});
  EXPECT_NE(six.str().find("RSS trend: +60.0 MiB/h (extrapolated from 6 inputs over 5m 0s)"),
            std::string::npos)
      << six.str();
}

TEST(Render, HtmlReportEscapesControlCharactersAndMarkup) {
  la::SymbolTable sy;
  la::TrendResult t;
  la::SeriesPoint p;
  p.path = "a\x1b[2J<b>.lsnap";
  t.points = {p, p};
  la::TrendGroup g;
  g.group = la::Group::kTracked;
  g.name = "kind\x1b]0;x\x07<script>\xff";
  g.verdict = la::Verdict::kSteady;
  g.counts = {1, 2};
  g.bytes = {0, 0};
  t.groups.push_back(g);
  t.suspects.push_back({la::Group::kTracked, g.name, "r", 1, 0, std::nullopt});
  const std::string html = la::renderHtmlReport(la::singleRun(t), {}, {}, sy, {});
  EXPECT_EQ(html.find('\x1b'), std::string::npos);
  EXPECT_EQ(html.find('\x07'), std::string::npos);
  EXPECT_EQ(html.find('\xff'), std::string::npos);
  EXPECT_EQ(html.find("<script>\\"), std::string::npos);
  EXPECT_NE(html.find("kind\\x1b]0;x\\x07&lt;script&gt;\\xff"), std::string::npos);
}

// ---- the HTML report's sections (issue #13 item 8) ----------------------------

constexpr std::int64_t kNoon = 1795521600LL * 1'000'000'000;  // 2026-11-24T12:00:00Z

// A series of four snapshots 30 s apart from noon: one kind growing by two
// objects a snapshot, RSS growing by 1 MiB a snapshot from 512 MiB.
std::vector<la::Snapshot> noonSeries(la::SymbolTable& sy) {
  std::vector<la::Snapshot> out;
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 4; ++i) {
    ids.push_back(static_cast<std::uint64_t>(2 * i + 1));
    ids.push_back(static_cast<std::uint64_t>(2 * i + 2));
    la::Snapshot s = snap(sy, i + 1, ids);
    s.taken_unix_ns = kNoon + i * kMinute / 2;
    s.utc = "2026-11-24T12:0" + std::to_string(i / 2) + ":" + (i % 2 ? "30" : "00") + ".000Z";
    s.process.rss_bytes = (512LL + i) << 20;
    out.push_back(std::move(s));
  }
  return out;
}

std::string reportOf(const la::TrendResult& t) {
  return la::renderHtmlReport(la::singleRun(t), {}, {}, la::SymbolTable{}, {});
}

// The text of every element matching `re`'s one group, in order.
std::vector<std::string> allOf(const std::string& text, const std::string& re) {
  std::vector<std::string> out;
  const std::regex r(re);
  for (auto it = std::sregex_iterator(text.begin(), text.end(), r); it != std::sregex_iterator();
       ++it) {
    out.push_back((*it)[1]);
  }
  return out;
}

TEST(Render, HtmlReportNamesTheProcessOfEachRun) {
  la::SymbolTable sy;
  auto snaps = noonSeries(sy);
  for (std::size_t i = 0; i < snaps.size(); ++i) {
    la::ProcessInfo& p = snaps[i].process;
    p.pid = i < 2 ? 4101 : 4202;  // restarted between the 2nd and 3rd snapshot
    p.exe = "/usr/sbin/pushdaemon";
    p.host = "push-3.example";
    p.build_id = i < 2 ? "0a1b2c" : "3d4e5f";
  }
  const std::string html = reportOf(trendOf(sy, snaps));
  const auto process = html.substr(html.find("<table id=\"process\""));
  const auto table = process.substr(0, process.find("</table>"));
  EXPECT_EQ(allOf(table, "<tr><td class=\"n\">([0-9]+)</td>"),
            (std::vector<std::string>{"4101", "4202"}))
      << table;
  EXPECT_NE(table.find("<code>/usr/sbin/pushdaemon</code>"), std::string::npos) << table;
  EXPECT_NE(table.find("<code>push-3.example</code>"), std::string::npos) << table;
  EXPECT_NE(table.find("<code>0a1b2c</code>"), std::string::npos) << table;
  EXPECT_NE(table.find("<code>3d4e5f</code>"), std::string::npos) << table;
  EXPECT_NE(table.find("2026-11-24T12:00:00.000Z"), std::string::npos) << table;
  EXPECT_NE(table.find("2026-11-24T12:01:30.000Z"), std::string::npos) << table;
}

TEST(Render, HtmlReportChartsHaveWallClockTimesOnTheXAxis) {
  la::SymbolTable sy;
  const std::string html = reportOf(trendOf(sy, noonSeries(sy)));
  const auto labels = allOf(html, "class=\"ax\" text-anchor=\"middle\">([^<]*)<");
  ASSERT_FALSE(labels.empty()) << html;
  // Round 30 s ticks between the first and last snapshot, in UTC.
  EXPECT_EQ(std::vector<std::string>(labels.begin(), labels.begin() + 4),
            (std::vector<std::string>{"12:00:00", "12:00:30", "12:01:00", "12:01:30"}));
  for (const auto& l : labels)
    EXPECT_TRUE(std::regex_match(l, std::regex("\\d\\d:\\d\\d:\\d\\d"))) << l;
  for (const auto& chart : allOf(html, "(<svg class=\"chart\"[^]*?</svg>)")) {
    EXPECT_EQ(chart.find(">#"), std::string::npos) << chart;  // not "#1", "#2", ...
  }
}

TEST(Render, HtmlReportSaysHowManySurvivorsItLeftOut) {
  la::SymbolTable sy;
  la::TrendOptions o;
  o.max_survivors = 1;  // the first snapshot's two objects survive; one is shown
  const std::string html = reportOf(trendOf(sy, noonSeries(sy), o));
  EXPECT_NE(html.find("2 object(s) alive in every snapshot"), std::string::npos) << html;
  EXPECT_NE(html.find("… 1 more (--survivors N shows more)"), std::string::npos) << html;
}

TEST(Render, HtmlReportChartOfAFlatZeroSeriesHasFiniteDistinctTicks) {
  la::TrendResult t;
  la::SeriesPoint p;
  for (int i = 0; i < 3; ++i) {
    p.taken_unix_ns = kNoon + i * kMinute;
    t.points.push_back(p);  // no RSS, no heap: the heap chart is flat at zero
  }
  la::TrendGroup g;
  g.group = la::Group::kTracked;
  g.name = "idle.kind";
  g.verdict = la::Verdict::kSteady;
  g.counts = {0, 0, 0};
  g.bytes = {0, 0, 0};
  t.groups.push_back(g);
  const std::string html = reportOf(t);
  EXPECT_EQ(html.find("nan"), std::string::npos);
  EXPECT_EQ(html.find("inf"), std::string::npos);
  const auto charts = allOf(html, "(<svg class=\"chart\"[^]*?</svg>)");
  ASSERT_EQ(charts.size(), 3u) << html;  // heap; the kind's objects and bytes
  for (const auto& chart : charts) {
    const auto ticks = allOf(chart, "class=\"ax\" text-anchor=\"end\">([^<]*)<");
    EXPECT_GE(ticks.size(), 2u) << chart;
    EXPECT_EQ(std::set<std::string>(ticks.begin(), ticks.end()).size(), ticks.size()) << chart;
    for (const auto& y : allOf(chart, " y1?=\"([^\"]*)\"")) {
      EXPECT_TRUE(std::isfinite(std::stod(y))) << chart;
    }
  }
}

TEST(Render, HtmlReportNamesTheMemoryLimitAndWhenTheRssTrendReachesIt) {
  la::SymbolTable sy;
  la::TrendOptions o;
  o.memory_limit_bytes = 1024.0 * 1024 * 1024;
  const std::string html = reportOf(trendOf(sy, noonSeries(sy), o));
  // 515 MiB at 12:01:30, growing 2 MiB a minute: 509 MiB to go, 254.5 min.
  EXPECT_NE(html.find("Memory limit 1.0 GiB; last RSS 515.0 MiB (50 % of it); at the RSS trend "
                      "it is reached in about 4h 14m, around 2026-11-24 16:16 UTC."),
            std::string::npos)
      << html;
  EXPECT_NE(reportOf(trendOf(sy, noonSeries(sy))).find("Memory limit: not known"),
            std::string::npos);
}

}  // namespace

// ---- inputs (issue #13 item 10) ---------------------------------------------

namespace {

using leakscope::testing::readFile;
using leakscope::testing::TempDir;
using leakscope::testing::writeFile;

const std::string kData = LEAKSCOPE_TEST_DATA;
const std::string kGood = kData + "/snapshots/leak/leakscope-example.000001.lsnap";

TEST(Input, GzipIsInflatedAndAByteOrderMarkSkipped) {
  la::SymbolTable sy;
  const std::string gz = readFile(kData + "/hostile/accept/gzip-snapshot.lsnap.gz");
  auto s = la::parseInput(gz, "g.lsnap.gz", sy, {});
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->name, "h");
  ASSERT_EQ(s->kinds.size(), 1u);
  EXPECT_EQ(s->kinds[0].live_bytes, 5);
  auto bom = la::parseInput("\xef\xbb\xbf" + readFile(kGood), "bom.lsnap", sy, {});
  ASSERT_TRUE(bom.ok()) << bom.error().message;
  EXPECT_EQ(bom->sequence, 1);
  auto profile = la::parseInput(
      "\xef\xbb\xbfheap profile:    1:   100 [     1:   100] @ heapprofile\n"
      "     1:   100 [     1:   100] @ 0x0000555500001234\n\nMAPPED_LIBRARIES:\n"
      "555500000000-555500010000 r-xp 00000000 08:01 1234 /nonexistent/app\n",
      "bom.heap", sy, {});
  ASSERT_TRUE(profile.ok()) << profile.error().message;
}

TEST(Input, BrokenAndOversizedGzipAreOneLineErrors) {
  la::SymbolTable sy;
  const std::string gz = readFile(kData + "/hostile/accept/gzip-snapshot.lsnap.gz");
  auto cut = la::parseInput(gz.substr(0, gz.size() / 2), "cut.gz", sy, {});
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.error().message.find("cut.gz: "), std::string::npos);
  EXPECT_NE(cut.error().message.find("gzip data ends early (truncated?)"), std::string::npos)
      << cut.error().message;
  std::string bad = gz;
  bad[12] = static_cast<char>(bad[12] ^ 0x55);
  auto corrupt = la::parseInput(bad, "bad.gz", sy, {});
  ASSERT_FALSE(corrupt.ok());
  EXPECT_NE(corrupt.error().message.find("gzip data is corrupt"), std::string::npos)
      << corrupt.error().message;
  const std::string bomb = readFile(kData + "/hostile/reject/gzip-bomb.lsnap.gz");
  auto b = la::parseInput(bomb, "bomb.gz", sy, {});
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message.find("gzip data inflates past 16.0 MiB"), std::string::npos)
      << b.error().message;
}

TEST(Input, KnownFormatsAreNamed) {
  la::SymbolTable sy;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"x({"head":{"callFrame":{"functionName":"(root)"}}})x", "a V8 sampling heap profile"},
      {R"({"nodes":[{"id":1}]})", "a V8 CPU profile"},
      {std::string("\x0a\x04\x08\x01\x10\x02\x12", 7), "a pprof profile"},
      {"\x28\xb5\x2f\xfd\x00\x00", "zstd-compressed"},
      {"\x7f"
       "ELF\x02\x01\x01",
       "an ELF file"},
      {"desc: --time-unit=B\ncmd: ./app\n", "a Valgrind massif profile"},
  };
  for (const auto& [bytes, what] : cases) {
    auto r = la::parseInput(bytes, "x", sy, {});
    ASSERT_FALSE(r.ok()) << what;
    EXPECT_EQ(r.error().message.rfind("x: this is " + what, 0), 0u) << r.error().message;
  }
}

TEST(Input, ADirectoryStandsForItsSnapshotFilesInSequenceOrder) {
  TempDir dir;
  for (const char* name : {"app.1000000.lsnap", "app.999999.lsnap.gz", "app.000002.lsnap",
                           ".app.000003.1234.abcd.tmp", "notes.txt", ".hidden.000001.lsnap"}) {
    writeFile(dir.path() + "/" + name, "{}");
  }
  ASSERT_EQ(::mkdir((dir.path() + "/sub.000001.lsnap").c_str(), 0700), 0);
  ASSERT_EQ(::symlink(kGood.c_str(), (dir.path() + "/link.000001.lsnap").c_str()), 0);
  auto r = la::resolveInputs({dir.path()});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->from_directory);
  const std::string d = dir.path() + "/";
  EXPECT_EQ(r->paths, (std::vector<std::string>{d + "app.000002.lsnap", d + "app.999999.lsnap.gz",
                                                d + "app.1000000.lsnap"}));
  TempDir empty;
  auto none = la::resolveInputs({empty.path()});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("a directory without snapshot files"), std::string::npos);
}

TEST(Input, TheSameFileTwiceIsRefused) {
  TempDir dir;
  const std::string copy = dir.path() + "/app.000001.lsnap";
  writeFile(copy, readFile(kGood));
  const std::string link = dir.path() + "/link.lsnap";
  ASSERT_EQ(::symlink(copy.c_str(), link.c_str()), 0);
  auto twice = la::resolveInputs({kGood, copy, link});
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().message,
            copy + " and " + link + " are the same file: name each input once");
  auto viaDir = la::resolveInputs({dir.path(), copy});
  ASSERT_FALSE(viaDir.ok());
  auto stdinTwice = la::resolveInputs({"-", "-"});
  ASSERT_FALSE(stdinTwice.ok());
  EXPECT_NE(stdinTwice.error().message.find("standard input named twice"), std::string::npos);
  // Names that do not exist pass through: reading them names the error.
  auto missing = la::resolveInputs({"/nonexistent/a", "/nonexistent/b"});
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->paths.size(), 2u);
}

}  // namespace
