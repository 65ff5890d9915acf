// Retainer chains of tracked objects (chains.h, snapshot version 2): owners
// read from files, chains of suspects, owner loops, missing owners, deep
// chains, and trend/diff grouping their suspects.
#include "leakscope/analysis/chains.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "leakscope/analysis/analysis.h"
#include "leakscope/analysis/input.h"

namespace la = leakscope::analysis;

namespace {

struct Obj {
  std::string kind;
  std::uint64_t id;
  std::uint64_t owner;  // 0: null
  int fd = -1;
};

// A version-2 snapshot of `objects`, with one ESTABLISHED socket per object
// that has an fd (owned by it, as the writer joins them).
std::string snapshotText(const std::vector<Obj>& objects, std::int64_t seq = 1,
                         std::int64_t destroyed = 0) {
  std::map<std::string, std::vector<const Obj*>> kinds;
  for (const Obj& o : objects) kinds[o.kind].push_back(&o);
  std::string t = R"({"format":"leakscope-snapshot","version":2,"sequence":)" +
                  std::to_string(seq) + R"(,"taken":{"unix_ns":)" +
                  std::to_string(seq * 1000000000) + R"(},"process":{"pid":7},"tracked":[)";
  bool first_kind = true;
  for (const auto& [name, objs] : kinds) {
    t += (first_kind ? "" : ",") + std::string(R"({"kind":")") + name + R"(","objects":[)";
    first_kind = false;
    for (std::size_t i = 0; i < objs.size(); ++i) {
      const Obj& o = *objs[i];
      t += (i ? "," : "") + std::string(R"({"id":)") + std::to_string(o.id) +
           R"(,"birth_unix_ns":1,"label":"l","bytes":1,"fd":)" +
           (o.fd >= 0 ? std::to_string(o.fd) : "null") + R"(,"owner":)" +
           (o.owner ? std::to_string(o.owner) : "null") + "}";
    }
    t += R"(],"live":)" + std::to_string(objs.size()) + R"(,"created_total":)" +
         std::to_string(objs.size() + static_cast<std::size_t>(destroyed)) +
         R"(,"destroyed_total":)" + std::to_string(destroyed) + "}";
  }
  t += R"(],"sockets":[)";
  bool first_socket = true;
  for (const Obj& o : objects) {
    if (o.fd < 0) continue;
    t += (first_socket ? "" : ",") + std::string(R"({"fd":)") + std::to_string(o.fd) +
         R"(,"inode":)" + std::to_string(1000 + o.id) + R"(,"protocol":"tcp","local":"127.0.0.1:)" +
         std::to_string(40000 + o.id) +
         R"(","remote":"17.0.0.1:443","state":"ESTABLISHED","peer":"apns","owner":)" +
         std::to_string(o.id) + "}";
    first_socket = false;
  }
  return t + "]}";
}

la::Snapshot parse(const std::string& text, la::SymbolTable& sy, const std::string& path = "s") {
  auto s = la::parseSnapshotText(text, path, sy);
  EXPECT_TRUE(s) << (s ? "" : s.error().message);
  return s ? std::move(*s) : la::Snapshot{};
}

// The drill's shape: `providers` providers (the first `abandoned` held by a
// list, the rest by a registry), each holding 3 connections, each with a
// socket. Ids from 1: list 1, registry 2, then providers and connections.
std::vector<Obj> drill(int providers, int abandoned) {
  std::vector<Obj> v = {{"list", 1, 0}, {"registry", 2, 0}};
  std::uint64_t id = 10;
  for (int p = 0; p < providers; ++p) {
    const std::uint64_t pid = id++;
    v.push_back({"apns.provider", pid, p < abandoned ? 1u : 2u});
    for (int c = 0; c < 3; ++c) {
      const std::uint64_t cid = id++;
      v.push_back({"apns.connection", cid, pid, static_cast<int>(cid)});
    }
  }
  return v;
}

TEST(Owners, AVersion2FileRoundTripsOwnersAndVersion1HasNone) {
  la::SymbolTable sy;
  const la::Snapshot s = parse(snapshotText({{"pool", 1, 0}, {"conn", 2, 1}, {"conn", 3, 99}}), sy);
  ASSERT_EQ(s.kinds.size(), 2u);
  EXPECT_EQ(s.kind("conn")->find(2)->owner, 1u);
  EXPECT_EQ(s.kind("conn")->find(3)->owner, 99u);  // dangling: read, not refused
  EXPECT_EQ(s.kind("pool")->find(1)->owner, 0u);
  std::string v1 = snapshotText({{"pool", 1, 0}, {"conn", 2, 0}});
  v1.replace(v1.find("\"version\":2"), 11, "\"version\":1");
  const la::Snapshot old = parse(v1, sy);
  EXPECT_EQ(old.kind("conn")->find(2)->owner, 0u);
}

TEST(Owners, ChainOfAnObjectGoesUpToItsRootOrSaysWhyItStopped) {
  la::SymbolTable sy;
  const la::Snapshot s = parse(snapshotText({{"registry", 1, 0},
                                             {"provider", 2, 1},
                                             {"conn", 3, 2},
                                             {"conn", 4, 77},
                                             {"a", 5, 6},
                                             {"b", 6, 5}}),
                               sy);
  const la::Ownership own(s, sy);
  EXPECT_TRUE(own.any());
  EXPECT_EQ(own.chainOf(3), "registry#1 (l) \u2192 provider#2 (l)");
  EXPECT_EQ(own.chainOf(1), "");
  EXPECT_EQ(own.chainOf(4), "(gone #77)");
  EXPECT_EQ(own.chainOf(5), "(owner loop) \u2192 b#6 (l)");
  const auto paths = own.retainers("conn", {}, 5);
  ASSERT_EQ(paths.size(), 2u);
  EXPECT_EQ(paths[0].path, "(gone) \u2192 conn");
  EXPECT_EQ(paths[1].path, "registry \u2192 provider \u2192 conn");
}

TEST(Owners, ADeepChainIsCutNotFollowedForever) {
  std::vector<Obj> v;
  for (std::uint64_t i = 1; i <= 5000; ++i) v.push_back({"k", i, i + 1 <= 5000 ? i + 1 : 0});
  la::SymbolTable sy;
  const la::Snapshot s = parse(snapshotText(v), sy);
  const la::Ownership own(s, sy);
  const std::string c = own.chainOf(1);
  EXPECT_EQ(c.rfind("(\u2026) \u2192 ", 0), 0u) << c.substr(0, 80);
  EXPECT_EQ(own.retainers("k", {}, 3).size(), 3u);
}

TEST(Chains, TheDrillsProviderIsTheTopAndHoldsItsConnectionsAndTheirSockets) {
  la::SymbolTable sy;
  std::vector<la::Snapshot> snaps;
  for (int i = 1; i <= 4; ++i) snaps.push_back(parse(snapshotText(drill(i, i - 1), i), sy));
  la::TrendBuilder b(sy, {});
  for (const auto& s : snaps) b.add(s);
  const la::TrendResult t = b.finish();
  ASSERT_EQ(t.suspects.size(), 3u);
  ASSERT_FALSE(t.chains.empty());
  const la::Chain& c = t.chains[0];
  ASSERT_EQ(c.members.size(), 3u);
  EXPECT_EQ(t.suspects[c.members[0].suspect].name, "apns.provider");
  EXPECT_EQ(t.suspects[c.members[1].suspect].name, "apns.connection");
  EXPECT_EQ(c.members[1].depth, 1u);
  EXPECT_EQ(t.suspects[c.members[2].suspect].group, la::Group::kSocket);
  EXPECT_EQ(c.members[2].depth, 2u);
  EXPECT_DOUBLE_EQ(c.members[2].each, 3);
  EXPECT_EQ(c.summary,
            "apns.provider +1 per interval, never destroyed, holds 3 apns.connection each \u2192 3 "
            "ESTABLISHED sockets each");
  EXPECT_EQ(c.held_by, "list");
  // The survivors of the first snapshot say what holds them, up to a root.
  for (const la::TrendGroup& g : t.groups) {
    if (g.name != "apns.connection") continue;
    ASSERT_EQ(g.survivors.size(), 3u);
    EXPECT_EQ(g.survivors[0].chain, "list#1 (l) \u2192 apns.provider#10 (l)");
    ASSERT_FALSE(g.retainers.empty());
    EXPECT_EQ(g.retainers[0].path, "list \u2192 apns.provider \u2192 apns.connection");
  }
}

TEST(Chains, ObjectsDestroyedDuringTheSeriesAreNotCalledNeverDestroyed) {
  la::SymbolTable sy;
  std::vector<la::Snapshot> snaps;
  for (int i = 1; i <= 4; ++i) snaps.push_back(parse(snapshotText(drill(i, i - 1), i, i), sy));
  la::TrendBuilder b(sy, {});
  for (const auto& s : snaps) b.add(s);
  const la::TrendResult t = b.finish();
  ASSERT_FALSE(t.chains.empty());
  EXPECT_EQ(t.chains[0].summary.find("destroyed"), std::string::npos) << t.chains[0].summary;
}

TEST(Chains, DiffGroupsItsSuspectsTheSameWay) {
  la::SymbolTable sy;
  const la::Snapshot a = parse(snapshotText(drill(1, 0), 1), sy, "a");
  const la::Snapshot b = parse(snapshotText(drill(4, 3), 2), sy, "b");
  const la::Comparison c = la::compare(a, b, sy, {});
  ASSERT_EQ(c.chains.size(), 1u);
  EXPECT_EQ(c.chains[0].summary,
            "apns.provider +3, never destroyed, holds 3 apns.connection each \u2192 3 ESTABLISHED "
            "sockets each");
}

TEST(Chains, AnOwnerLoopBetweenSuspectsIsReportedNotFollowed) {
  // Kind a's objects are held by b's and b's by a's, and both grow.
  la::SymbolTable sy;
  std::vector<la::Snapshot> snaps;
  for (int n = 1; n <= 4; ++n) {
    std::vector<Obj> v;
    for (int i = 0; i < n; ++i) {
      const auto base = static_cast<std::uint64_t>(100 + 2 * i);
      v.push_back({"a", base, base + 1});
      v.push_back({"b", base + 1, base});
    }
    snaps.push_back(parse(snapshotText(v, n), sy));
  }
  la::TrendBuilder b(sy, {});
  for (const auto& s : snaps) b.add(s);
  const la::TrendResult t = b.finish();
  ASSERT_EQ(t.suspects.size(), 2u);
  ASSERT_EQ(t.chains.size(), 1u);
  EXPECT_EQ(t.chains[0].members.size(), 2u);
  bool noted = false;
  for (const auto& n : t.notes) noted = noted || n.rfind("owner loop: ", 0) == 0;
  EXPECT_TRUE(noted);
}

TEST(Chains, ADeepChainOfSuspectsIsCutIntoChainsOfBoundedDepth) {
  // Kind kN's object is held by k(N+1)'s: 200 suspects in one line.
  std::vector<Obj> v;
  std::vector<la::Suspect> suspects;
  for (std::uint64_t i = 1; i <= 200; ++i) {
    v.push_back({"k" + std::to_string(i), i, i < 200 ? i + 1 : 0});
    suspects.push_back({la::Group::kTracked, "k" + std::to_string(i), "", 1, 0, std::nullopt});
  }
  la::SymbolTable sy;
  const la::Snapshot s = parse(snapshotText(v), sy);
  const la::Ownership own(s, sy);
  std::vector<std::string> notes;
  const auto chains = la::buildChains(
      suspects, own, [](std::size_t) { return ""; }, notes);
  std::vector<int> seen(suspects.size(), 0);
  std::size_t deepest = 0;
  for (const auto& c : chains) {
    for (const auto& m : c.members) {
      ++seen[m.suspect];
      deepest = std::max(deepest, m.depth);
    }
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), 200);  // each in exactly one chain
  EXPECT_EQ(deepest, 64u);
  EXPECT_EQ(chains.size(), 4u);  // 200 = 3 x 65 + 5
  EXPECT_TRUE(notes.empty());
}

TEST(Chains, WithoutOwnersEverySuspectIsAChainOfItsOwn) {
  la::SymbolTable sy;
  std::vector<la::Snapshot> snaps;
  for (int n = 1; n <= 4; ++n) {
    std::vector<Obj> v;
    for (int i = 0; i < n; ++i) {
      v.push_back({"x", static_cast<std::uint64_t>(10 * n + i), 0});
      v.push_back({"y", static_cast<std::uint64_t>(1000 + 10 * n + i), 0});
    }
    snaps.push_back(parse(snapshotText(v, n), sy));
  }
  la::TrendBuilder b(sy, {});
  for (const auto& s : snaps) b.add(s);
  const la::TrendResult t = b.finish();
  ASSERT_EQ(t.chains.size(), t.suspects.size());
  for (std::size_t i = 0; i < t.chains.size(); ++i) {
    EXPECT_EQ(t.chains[i].members.size(), 1u);
    EXPECT_EQ(t.chains[i].members[0].suspect, i);
  }
}

}  // namespace
