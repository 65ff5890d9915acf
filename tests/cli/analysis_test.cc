// The analysis library on hand-made inputs: how trend classifies series,
// how diff counts by id, how sockets are grouped, and the reader's limits.
#include <gtest/gtest.h>

#include <string>

#include "leakscope/analysis/analysis.h"
#include "leakscope/analysis/input.h"

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
  s.peer = "other";
  EXPECT_EQ(la::socketGroupName(s, listening), "17.188.1.1:443");
  s.local = "10.0.0.1:8080";
  EXPECT_EQ(la::socketGroupName(s, listening), "inbound :8080");
  s.remote = "";
  s.peer = "none";
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
  EXPECT_TRUE(flags.count("unowned 10.9.9.9:3306 ESTABLISHED")) << r.flags.size();
  EXPECT_TRUE(flags.count("owner-without-socket apns.connection"));
  EXPECT_TRUE(flags.count("close-wait 10.9.9.10:80 CLOSE_WAIT"));
  EXPECT_EQ(r.suspects.size(), r.flags.size());
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

}  // namespace
