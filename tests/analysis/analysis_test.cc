// The analysis library on hand-made inputs: how trend classifies series,
// how diff counts by id, how sockets are grouped, and the reader's limits.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "leakscope/analysis/analysis.h"
#include "leakscope/analysis/input.h"
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
  const std::string html = la::renderHtmlReport(t, {}, {}, sy, {});
  EXPECT_EQ(html.find('\x1b'), std::string::npos);
  EXPECT_EQ(html.find('\x07'), std::string::npos);
  EXPECT_EQ(html.find('\xff'), std::string::npos);
  EXPECT_EQ(html.find("<script>\\"), std::string::npos);
  EXPECT_NE(html.find("kind\\x1b]0;x\\x07&lt;script&gt;\\xff"), std::string::npos);
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
      {R"({"snapshot": {"meta": {"node_fields": []}}})", "a V8 heap snapshot"},
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
