// The join of V8 heap snapshots with captures (join.h) on hand-made inputs:
// pairing by pid and time, a file without a pid, the line, disagreements.
#include "leakscope/analysis/join.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace la = leakscope::analysis;

namespace {

constexpr std::int64_t kSecond = 1'000'000'000;
constexpr std::int64_t kT0 = 1'795'000'000 * kSecond;

// A V8 heap snapshot with `sockets` TLSSocket objects (and handles), taken
// at kT0 + `at` seconds, named as Node names it when `pid` is not 0.
la::Snapshot heap(std::int64_t pid, std::int64_t at, std::int64_t sockets,
                  std::int64_t handles = -1) {
  la::Snapshot s;
  s.source = la::SourceKind::kV8HeapSnapshot;
  s.path = pid != 0 ? "Heap.20261130.000000." + std::to_string(pid) + ".0." + std::to_string(at) +
                          ".heapsnapshot"
                    : "named-" + std::to_string(at) + ".heapsnapshot";
  s.process.pid = pid;
  s.taken_unix_ns = kT0 + at * kSecond;
  if (sockets > 0) s.v8.socket_classes = {{"TLSSocket", sockets}};
  s.v8.tcp_handles = handles < 0 ? sockets : handles;
  return s;
}

la::Socket tcp(const std::string& remote, const std::string& state) {
  la::Socket k;
  k.protocol = "tcp";
  k.local = "127.0.0.1:40000";
  k.remote = remote;
  k.state = state;
  k.peer = remote.empty() ? "none" : "other";
  return k;
}

// A capture of `pid` at kT0 + `at_ns`, with `established` connections to
// 127.0.0.1:8443 and a unix socket (not TCP: not counted).
la::Snapshot capture(std::int64_t pid, std::int64_t at_ns, int established,
                     const std::string& name = "") {
  la::Snapshot s;
  s.source = la::SourceKind::kSnapshot;
  s.trigger = "capture";
  s.path =
      name.empty() ? "node." + std::to_string(pid) + "." + std::to_string(at_ns) + ".lsnap" : name;
  s.process.pid = pid;
  s.taken_unix_ns = kT0 + at_ns;
  for (int i = 0; i < established; ++i) s.sockets.push_back(tcp("127.0.0.1:8443", "ESTABLISHED"));
  la::Socket u;
  u.protocol = "unix";
  s.sockets.push_back(u);
  return s;
}

TEST(Join, OnlyCapturesAreJoined) {
  la::Snapshot own = capture(7, 0, 1);
  own.trigger = "signal (SIGUSR2)";
  EXPECT_FALSE(la::isCapture(own));
  EXPECT_TRUE(la::isCapture(capture(7, 0, 1)));
  own.trigger = "capture (SIGUSR2)";
  EXPECT_TRUE(la::isCapture(own));
  la::JoinBuilder b;
  own.trigger = "signal";
  b.add(heap(7, 0, 2));
  b.add(own);
  const la::JoinResult r = b.finish();
  EXPECT_TRUE(r.pairs.empty());
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("no capture of pid 7"), std::string::npos) << r.notes[0];
}

// Each heap snapshot gets the capture of its own pid nearest in time; a
// capture within the second a Node name gives is as near as can be, and of
// two such the earlier wins.
TEST(Join, PairsByPidAndNearestTime) {
  la::JoinBuilder b;
  b.add(capture(9, 0, 1, "other-pid.lsnap"));
  b.add(capture(7, -3 * kSecond, 1, "early.lsnap"));
  b.add(capture(7, 300'000'000, 2, "within-a.lsnap"));
  b.add(capture(7, 800'000'000, 3, "within-b.lsnap"));
  b.add(capture(7, 10 * kSecond, 4, "late.lsnap"));
  b.add(heap(7, 0, 2));
  b.add(heap(7, 8, 4));
  const la::JoinResult r = b.finish();
  ASSERT_EQ(r.pairs.size(), 2u);
  EXPECT_EQ(r.pairs[0].capture_path, "within-a.lsnap");
  EXPECT_EQ(r.pairs[0].seconds_apart, 0);
  EXPECT_EQ(r.pairs[1].capture_path, "late.lsnap");
  EXPECT_DOUBLE_EQ(r.pairs[1].seconds_apart, 1.0);  // 10 s against the second 8..9
  EXPECT_TRUE(r.notes.empty());
}

// `leakscope capture --signal --wait` writes its capture after the dump is
// complete, seconds later for a big heap, and names the heap snapshot's file:
// that pairs them, even when the previous step's capture is nearer in time,
// and a capture taken with one heap snapshot never pairs with another.
TEST(Join, ACaptureTakenWithAHeapSnapshotPairsWithIt) {
  la::JoinBuilder b;
  la::Snapshot h1 = heap(7, 0, 2);
  la::Snapshot h2 = heap(7, 3, 4);
  la::Snapshot c1 = capture(7, 2'500'000'000, 2, "c1.lsnap");  // 1.5 s after h1's second
  c1.heap_snapshot_file = h1.path;
  la::Snapshot c2 = capture(7, 6 * kSecond, 4, "c2.lsnap");  // 2 s after h2's second
  c2.heap_snapshot_file = h2.path;
  for (auto* s : {&c2, &h2, &c1, &h1}) b.add(*s);
  const la::JoinResult r = b.finish();
  ASSERT_EQ(r.pairs.size(), 2u);
  EXPECT_EQ(r.pairs[0].capture_path, "c1.lsnap");
  EXPECT_EQ(r.pairs[1].capture_path, "c2.lsnap");  // by time, c1 (0.5 s before) was nearer
  EXPECT_DOUBLE_EQ(r.pairs[1].seconds_apart, 2.0);

  // A third heap snapshot with no capture of its own does not take theirs.
  la::JoinBuilder b2;
  for (auto* s : {&c1, &h1}) b2.add(*s);
  b2.add(heap(7, 2, 3));
  const la::JoinResult r2 = b2.finish();
  ASSERT_EQ(r2.pairs.size(), 1u);
  EXPECT_EQ(r2.pairs[0].heap_path, h1.path);
  ASSERT_EQ(r2.notes.size(), 1u);
  EXPECT_NE(r2.notes[0].find("no capture of pid 7"), std::string::npos) << r2.notes[0];
}

// A heap snapshot whose name gives no pid joins only when the captures are
// of one process.
TEST(Join, AFileWithoutAPidJoinsOnlyOneCapturedProcess) {
  {
    la::JoinBuilder b;
    b.add(capture(7, 0, 2));
    b.add(heap(0, 0, 2));
    const la::JoinResult r = b.finish();
    ASSERT_EQ(r.pairs.size(), 1u);
    EXPECT_EQ(r.pairs[0].pid, 7);
  }
  la::JoinBuilder b;
  b.add(capture(7, 0, 2));
  b.add(capture(8, 0, 2));
  b.add(heap(0, 0, 2));
  const la::JoinResult r = b.finish();
  EXPECT_TRUE(r.pairs.empty());
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("gives no pid"), std::string::npos) << r.notes[0];
  EXPECT_NE(r.notes[0].find("2 processes"), std::string::npos) << r.notes[0];
}

TEST(Join, TheLineNamesTheClassAndTheEstablishedGroups) {
  la::JoinBuilder b;
  la::Snapshot c = capture(7, 0, 36);
  c.sockets.push_back(tcp("10.0.0.2:443", "ESTABLISHED"));
  c.sockets.push_back(tcp("10.0.0.2:443", "CLOSE_WAIT"));
  b.add(c);
  b.add(heap(7, 0, 36, 38));
  const la::JoinResult r = b.finish();
  ASSERT_EQ(r.pairs.size(), 1u);
  const la::JoinPair& p = r.pairs[0];
  EXPECT_EQ(p.line,
            "36 TLSSocket alive in the heap, 36 ESTABLISHED sockets to 127.0.0.1:8443, 1 to "
            "10.0.0.2:443");
  EXPECT_EQ(p.kernel_connections, 38);  // TCP only, any state
  EXPECT_TRUE(p.disagreements.empty());
  ASSERT_EQ(p.groups.size(), 3u);
  EXPECT_EQ(p.groups[0].name, "other (127.0.0.1:8443)");
  EXPECT_EQ(p.groups[0].count, 36);
}

TEST(Join, DisagreementsSayWhichSideHasMore) {
  la::JoinBuilder b;
  b.add(capture(7, 0, 3));
  b.add(heap(7, 0, 5));
  b.add(capture(8, 5 * kSecond, 4));
  b.add(heap(8, 2, 1));
  const la::JoinResult r = b.finish();
  ASSERT_EQ(r.pairs.size(), 2u);
  ASSERT_EQ(r.pairs[0].disagreements.size(), 1u);
  EXPECT_NE(r.pairs[0].disagreements[0].find("2 socket objects hold a TCP handle whose socket "
                                             "the kernel no longer has"),
            std::string::npos)
      << r.pairs[0].disagreements[0];
  ASSERT_EQ(r.pairs[1].disagreements.size(), 1u);
  EXPECT_NE(r.pairs[1].disagreements[0].find(
                "3 TCP connections of pid 8 that no socket object in the heap holds"),
            std::string::npos)
      << r.pairs[1].disagreements[0];
  EXPECT_NE(r.pairs[1].disagreements[0].find("2s apart"), std::string::npos)
      << r.pairs[1].disagreements[0];
  EXPECT_EQ(r.pairs[1].line,
            "1 TLSSocket alive in the heap, 4 ESTABLISHED sockets to 127.0.0.1:8443");
}

}  // namespace
