// The leakscope CLI as users run it: golden snapshots from the example
// program, real gperftools profiles from tests/cli/heap_fixture.cc, bad
// inputs, usage errors and help.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "test_support.h"

namespace {

using json = nlohmann::json;
using leakscope::testing::Child;
using leakscope::testing::readFile;
using leakscope::testing::TempDir;
using leakscope::testing::writeFile;

const std::string kBin = std::string(LEAKSCOPE_BIN_DIR) + "/leakscope";
const std::string kData = std::string(LEAKSCOPE_TEST_DATA) + "/snapshots";

struct CliRun {
  int status = -1;
  std::string out, err;
};

// Runs `argv` (a shell line running leakscope) to its end.
CliRun run(const std::vector<std::string>& argv) {
  Child c(argv);
  CliRun r;
  r.status = c.wait(60000);
  r.out = c.out();
  r.err = c.err();
  return r;
}

// Runs leakscope with `args` in `cwd` (so paths in its output are relative),
// with `env` ("NAME=value") in its environment. $COLUMNS is taken from it
// unless given, so that the text is as wide whoever runs the tests.
CliRun leakscope(std::vector<std::string> args, const std::string& cwd = kData,
                 const std::vector<std::string>& env = {}) {
  std::vector<std::string> argv = {"/bin/sh", "-c", "cd \"$0\" && unset COLUMNS && exec env \"$@\"",
                                   cwd};
  argv.insert(argv.end(), env.begin(), env.end());
  argv.push_back(kBin);
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

std::vector<std::string> series(const std::string& dir, std::vector<int> order = {1, 2, 3, 4}) {
  std::vector<std::string> out;
  for (int i : order) {
    char name[64];
    std::snprintf(name, sizeof name, "/leakscope-example.%06d.lsnap", i);
    out.push_back(dir + name);
  }
  return out;
}

const json* findSuspect(const json& j, const std::string& group, const std::string& name) {
  for (const auto& s : j["suspects"]) {
    if (s["group"] == group && s["name"] == name) return &s;
  }
  return nullptr;
}

// ---- golden snapshots ------------------------------------------------------

TEST(GoldenSnapshots, TrendFlagsTheLeakingConnectionKindItsSocketsAndSurvivors) {
  auto args = series("leak");
  args.insert(args.begin(), {"trend", "--json"});
  const CliRun r = leakscope(args);
  ASSERT_EQ(r.status, 1) << r.err;
  const json j = json::parse(r.out);
  const json* kind = findSuspect(j, "tracked", "example.connection");
  ASSERT_NE(kind, nullptr) << r.out;
  // --leak-every 3 with 6 connections per round: live objects only ever grow.
  EXPECT_EQ((*kind)["objects"], json({30, 50, 70, 88}));
  EXPECT_EQ((*kind)["verdict"], "steady");
  EXPECT_EQ((*kind)["growing_intervals"], 3);
  EXPECT_DOUBLE_EQ((*kind)["growth_objects_per_interval"].get<double>(), 58.0 / 3);
  EXPECT_EQ((*kind)["survivor_count"], 30);
  // Survivors: oldest first, each with its ESTABLISHED socket to the server.
  const json& sv = (*kind)["survivors"];
  ASSERT_EQ(sv.size(), 20u);
  EXPECT_EQ(sv[0]["id"], 6);
  EXPECT_EQ(sv[0]["label"], "example-server");
  EXPECT_EQ(sv[0]["bytes"], 65536);
  for (const auto& s : sv) {
    EXPECT_NE(s["socket"].get<std::string>().find("ESTABLISHED"), std::string::npos) << s;
  }
  // Its sockets: the client side by peer name and the server side.
  const json* sock = findSuspect(j, "socket", "example-server ESTABLISHED");
  ASSERT_NE(sock, nullptr) << r.out;
  EXPECT_EQ((*sock)["objects"], json({30, 50, 70, 88}));
  EXPECT_NE(findSuspect(j, "heap", "example::allocateReceiveBuffer(unsigned long)"), nullptr);
  // The listening sockets did not grow and are not suspects.
  for (const auto& s : j["suspects"]) {
    EXPECT_EQ(s["name"].get<std::string>().find("LISTEN"), std::string::npos) << s;
  }
}

TEST(GoldenSnapshots, TrendFlagsNothingWithoutTheLeak) {
  auto args = series("clean");
  args.insert(args.begin(), {"trend", "--json"});
  const CliRun r = leakscope(args);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  const json j = json::parse(r.out);
  EXPECT_TRUE(j["suspects"].is_array());
  EXPECT_TRUE(j["suspects"].empty());
  EXPECT_EQ(j["inputs"].size(), 4u);
}

TEST(GoldenSnapshots, TrendTextMatchesTheGoldenFiles) {
  for (const std::string name : {"leak", "clean"}) {
    auto args = series(name);
    args.insert(args.begin(), "trend");
    const CliRun r = leakscope(args);
    EXPECT_EQ(r.status, name == "leak" ? 1 : 0);
    EXPECT_EQ(r.out, readFile(kData + "/" + name + ".trend.txt")) << "golden: " << name;
  }
}

TEST(GoldenSnapshots, TrendOrdersBySnapshotTimeNotArgumentOrder) {
  auto forward = series("leak");
  auto backward = series("leak", {3, 1, 4, 2});
  forward.insert(forward.begin(), "trend");
  backward.insert(backward.begin(), "trend");
  const CliRun a = leakscope(forward);
  const CliRun b = leakscope(backward);
  EXPECT_EQ(a.status, 1);
  EXPECT_EQ(a.out, b.out);
}

TEST(GoldenSnapshots, DiffCountsNewAndDeletedObjectsById) {
  const CliRun r = leakscope({"diff", "--json", "leak/leakscope-example.000001.lsnap",
                              "leak/leakscope-example.000004.lsnap"});
  ASSERT_EQ(r.status, 1) << r.err;
  const json j = json::parse(r.out);
  bool seen = false;
  for (const auto& row : j["rows"]) {
    if (row["group"] != "tracked" || row["name"] != "example.connection") continue;
    seen = true;
    EXPECT_EQ(row["basis"], "ids");
    EXPECT_EQ(row["new"], 58);
    EXPECT_EQ(row["deleted"], 0);
    EXPECT_EQ(row["delta"], 58);
    EXPECT_EQ(row["alloc_bytes"], 58 * 65536);
    EXPECT_EQ(row["delta_bytes"], 58 * 65536);
    // 150 connections opened in between, 92 of them closed again.
    EXPECT_GT(row["created"].get<int>(), row["new"].get<int>());
    EXPECT_EQ(row["created"].get<int>() - row["destroyed"].get<int>(), 58);
  }
  EXPECT_TRUE(seen);
  ASSERT_FALSE(j["suspects"].empty());
  EXPECT_NE(findSuspect(j, "tracked", "example.connection"), nullptr);
}

// Version-1 snapshots declare no owners, but every socket names the object
// that declared its fd: diff and trend list the sockets under their kinds.
TEST(GoldenSnapshots, DiffAndTrendChainTheSocketsUnderTheKindsThatHoldThem) {
  const CliRun d = leakscope({"diff", "--json", "leak/leakscope-example.000001.lsnap",
                              "leak/leakscope-example.000004.lsnap"});
  const CliRun t =
      leakscope({"trend", "--json", "leak/leakscope-example.000001.lsnap",
                 "leak/leakscope-example.000002.lsnap", "leak/leakscope-example.000003.lsnap",
                 "leak/leakscope-example.000004.lsnap"});
  for (const CliRun* r : {&d, &t}) {
    ASSERT_EQ(r->status, 1) << r->err;
    const json j = json::parse(r->out);
    ASSERT_EQ(j["chains"].size(), 3u) << j["chains"].dump(2);
    const json& first = j["chains"][0];
    ASSERT_EQ(first["members"].size(), 2u) << first.dump(2);
    EXPECT_EQ(first["members"][0]["name"], "example.connection");
    EXPECT_EQ(first["members"][1]["name"], "example-server ESTABLISHED");
    EXPECT_EQ(first["members"][1]["depth"], 1);
    EXPECT_EQ(first["members"][1]["each"], 1);
    EXPECT_TRUE(first["held_by"].is_null());
    EXPECT_EQ(j["chains"][2]["members"].size(), 1u);  // the heap site, alone
  }
  // No owner declared: the survivors' chains are empty, and so are the paths.
  const json conns = *findSuspect(json::parse(t.out), "tracked", "example.connection");
  EXPECT_EQ(conns["survivors"][0]["chain"], "");
  EXPECT_TRUE(conns["retainers"].empty());
}

TEST(GoldenSnapshots, DiffOfTheCleanRunFlagsNothing) {
  const CliRun r = leakscope(
      {"diff", "clean/leakscope-example.000001.lsnap", "clean/leakscope-example.000004.lsnap"});
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("No leak suspected."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("# New"), std::string::npos);
}

TEST(GoldenSnapshots, SocketsShowsOwnersAndFlagsGrowingGroups) {
  auto args = series("leak");
  args.insert(args.begin(), {"sockets", "--json"});
  const CliRun r = leakscope(args);
  ASSERT_EQ(r.status, 1) << r.err;
  const json j = json::parse(r.out);
  bool client_side = false;
  for (const auto& g : j["groups"]) {
    if (g["name"] == "example-server" && g["state"] == "ESTABLISHED") {
      client_side = true;
      EXPECT_EQ(g["counts"], json({30, 50, 70, 88}));
      EXPECT_EQ(g["owned"], 88);
      EXPECT_EQ(g["unowned"], 0);
    }
  }
  EXPECT_TRUE(client_side);
  std::size_t owned_by_connection = 0;
  for (const auto& s : j["sockets"]) {
    if (s["owner"].is_string() &&
        s["owner"].get<std::string>().rfind("example.connection#", 0) == 0) {
      ++owned_by_connection;
    }
  }
  EXPECT_EQ(owned_by_connection, 88u);
  EXPECT_NE(findSuspect(j, "socket", "example-server ESTABLISHED"), nullptr);

  auto clean = series("clean");
  clean.insert(clean.begin(), "sockets");
  EXPECT_EQ(leakscope(clean).status, 0);
}

TEST(GoldenSnapshots, SocketsNamesEachSuspectWithPeerStateAndOwners) {
  auto args = series("leak");
  // Unwrapped: one line per fact (wrapping has tests of its own).
  args.insert(args.begin(), {"sockets", "--width", "0"});
  const CliRun text = leakscope(args);
  ASSERT_EQ(text.status, 1) << text.err;
  // Not a bare count: each suspect, why, and whose sockets they are (owner
  // ids in numeric order: #6, #12, #18 — the sockets' fd order was #6, #18, #30).
  EXPECT_NE(text.out.find("Leak suspects (2):\n"
                          "  1. [socket] example-server ESTABLISHED\n"
                          "     open sockets keep growing (30, 50, 70, 88)\n"
                          "     peer example-server, state ESTABLISHED, owners "
                          "example.connection#6 (example-server), example.connection#12 "
                          "(example-server), example.connection#18 (example-server), ... 85 more\n"
                          "  2. [socket] inbound :49189 ESTABLISHED\n"),
            std::string::npos)
      << text.out;
  EXPECT_EQ(text.out.find("leak suspect(s)."), std::string::npos) << text.out;

  args[0] = "--json";
  args.insert(args.begin(), "sockets");
  const CliRun r = leakscope(args);
  ASSERT_EQ(r.status, 1) << r.err;
  const json j = json::parse(r.out);
  const json* inbound = findSuspect(j, "socket", "inbound :49189 ESTABLISHED");
  ASSERT_NE(inbound, nullptr) << r.out;
  EXPECT_EQ((*inbound)["peer"], "inbound :49189");
  EXPECT_EQ((*inbound)["state"], "ESTABLISHED");
  EXPECT_EQ((*inbound)["owners"],
            json({"example.session#5 (example-client)", "example.session#11 (example-client)",
                  "example.session#17 (example-client)", "example.session#23 (example-client)",
                  "example.session#29 (example-client)"}));
  EXPECT_EQ((*inbound)["more_owners"], 83);
}

TEST(GoldenSnapshots, ShowSummarisesOneSnapshot) {
  const CliRun r = leakscope({"show", "--json", "leak/leakscope-example.000004.lsnap"});
  ASSERT_EQ(r.status, 0) << r.err;  // one snapshot: nothing is CLOSE_WAIT or unowned
  const json j = json::parse(r.out);
  EXPECT_TRUE(j["suspects"].empty());
  bool found = false;
  for (const auto& k : j["tracked"]) {
    if (k["kind"] == "example.connection") {
      found = true;
      EXPECT_EQ(k["live"], 88);
      EXPECT_EQ(k["live_bytes"], 88 * 65536);
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(j["heap"]["top_sites"][0]["name"], "example::allocateReceiveBuffer(unsigned long)");
}

// ---- output for a terminal and a ticket (issue #13 items 7, 11) -----------

std::vector<std::string> linesOf(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Display columns (UTF-8 code points) of the widest line.
std::size_t widest(const std::string& text) {
  std::size_t most = 0;
  for (const auto& line : linesOf(text)) {
    std::size_t columns = 0;
    for (char c : line) columns += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    most = std::max(most, columns);
  }
  return most;
}

TEST(Output, TextFitsTheWidthFromTheFlagColumnsOrTheDefault) {
  // The golden leak's heap suspect has a stack of 248 characters.
  const std::vector<std::string> pair = {"leak/leakscope-example.000001.lsnap",
                                         "leak/leakscope-example.000004.lsnap"};
  auto diff = [&pair](std::vector<std::string> options, std::vector<std::string> env = {}) {
    std::vector<std::string> args = {"diff"};
    args.insert(args.end(), options.begin(), options.end());
    args.insert(args.end(), pair.begin(), pair.end());
    const CliRun r = leakscope(args, kData, env);
    EXPECT_EQ(r.status, 1) << r.err;
    return r.out;
  };
  const std::string narrow = diff({"--width", "80"});
  EXPECT_LE(widest(narrow), 80u) << narrow;
  // Wrapped, not cut: the outer frames are still shown.
  EXPECT_NE(narrow.find("(example.cc:346)"), std::string::npos) << narrow;
  EXPECT_NE(narrow.find("<- _start"), std::string::npos) << narrow;
  const std::string columns = diff({}, {"COLUMNS=90"});
  EXPECT_LE(widest(columns), 90u) << columns;
  EXPECT_GT(widest(columns), 80u) << columns;
  EXPECT_LE(widest(diff({})), 100u);  // not a terminal, no $COLUMNS
  EXPECT_GT(widest(diff({"--width", "0"})), 200u);
  EXPECT_EQ(leakscope({"diff", "--width", "-1", pair[0], pair[1]}).status, 2);
}

TEST(Output, JsonCountsAreIntegers) {
  const CliRun d = leakscope({"diff", "--json", "leak/leakscope-example.000001.lsnap",
                              "leak/leakscope-example.000004.lsnap"});
  ASSERT_EQ(d.status, 1) << d.err;
  const json diff = json::parse(d.out);
  ASSERT_FALSE(diff["rows"].empty()) << d.out;
  for (const auto& row : diff["rows"]) {
    for (const char* key : {"new", "deleted", "delta", "base_objects", "target_objects",
                            "alloc_bytes", "freed_bytes", "delta_bytes"}) {
      EXPECT_TRUE(row[key].is_number_integer()) << key << ": " << row;
    }
  }
  auto args = series("leak");
  args.insert(args.begin(), {"trend", "--json"});
  const CliRun t = leakscope(args);
  ASSERT_EQ(t.status, 1) << t.err;
  const json trend = json::parse(t.out);
  ASSERT_FALSE(trend["suspects"].empty()) << t.out;
  for (const auto& g : trend["suspects"]) {
    for (const auto& n : g["objects"]) EXPECT_TRUE(n.is_number_integer()) << g["objects"];
    for (const auto& n : g["bytes"]) EXPECT_TRUE(n.is_number_integer()) << g["bytes"];
    EXPECT_TRUE(g["delta_objects"].is_number_integer()) << g;
  }
}

TEST(Output, DiffOfAPairInReverseOrderSaysSoRatherThanZeroApart) {
  const CliRun r = leakscope(
      {"diff", "leak/leakscope-example.000002.lsnap", "leak/leakscope-example.000001.lsnap"});
  ASSERT_NE(r.status, 2) << r.err;
  EXPECT_EQ(r.out.find("apart"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("note: TARGET was taken 1s before BASE"), std::string::npos) << r.out;
}

// ---- the memory limit (issue #13 item 9) -----------------------------------

// The leak series as a runtime that records its memory limit writes it.
std::vector<std::string> seriesWithMemoryLimit(const std::string& dir, std::int64_t limit) {
  std::vector<std::string> out;
  for (const std::string& f : series(kData + "/leak")) {
    std::string text = readFile(f);
    const auto at = text.find("\"process\":{");
    EXPECT_NE(at, std::string::npos);
    text.insert(at + 11, "\"memory_limit_bytes\":" + std::to_string(limit) +
                             ",\"memory_limit_source\":\"cgroup2\",");
    out.push_back(dir + "/" + std::filesystem::path(f).filename().string());
    writeFile(out.back(), text);
  }
  return out;
}

TEST(MemoryLimit, TrendProjectsAgainstTheLimitTheSnapshotsRecorded) {
  TempDir dir;
  auto args = seriesWithMemoryLimit(dir.path(), std::int64_t{64} << 20);
  args.insert(args.begin(), {"trend", "--json"});
  const CliRun r = leakscope(args);
  ASSERT_EQ(r.status, 1) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["memory_limit_bytes"], std::int64_t{64} << 20);
  EXPECT_EQ(j["memory_limit_from"], "snapshot");
  EXPECT_EQ(j["memory_limit_source"], "cgroup2");
  EXPECT_GT(j["hours_to_memory_limit"].get<double>(), 0) << r.out;
  args.erase(args.begin() + 1);
  const CliRun text = leakscope(args);
  EXPECT_NE(text.out.find("  Memory limit: 64.0 MiB (recorded in the snapshot: cgroup2); last "
                          "RSS 27% of it\n"),
            std::string::npos)
      << text.out;
  // Over 3 s the projection is not printed as text (an extrapolation from
  // seconds means nothing: item 11); the JSON above carries it.
  EXPECT_EQ(text.out.find("memory limit reached in ~"), std::string::npos) << text.out;
}

TEST(MemoryLimit, TheFlagOverridesTheRecordedLimitAndItsUnitsAreBinary) {
  TempDir dir;
  auto args = seriesWithMemoryLimit(dir.path(), std::int64_t{64} << 20);
  args.insert(args.begin(), {"trend", "--json", "--memory-limit", "2G"});
  const CliRun r = leakscope(args);
  ASSERT_EQ(r.status, 1) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["memory_limit_bytes"], std::int64_t{2} << 30);
  EXPECT_EQ(j["memory_limit_from"], "flag");
  EXPECT_FALSE(j.contains("memory_limit_source"));
  args[3] = "2GiB";
  EXPECT_EQ(json::parse(leakscope(args).out)["memory_limit_bytes"], std::int64_t{2} << 30);
  args[1] = "--top=5";
  const CliRun text = leakscope(args);
  EXPECT_NE(text.out.find("  Memory limit: 2.0 GiB (--memory-limit)"), std::string::npos)
      << text.out;
  // "GB" is 10^9 to some and 2^30 to others: refused, not guessed.
  args[3] = "2GB";
  const CliRun gb = leakscope(args);
  EXPECT_EQ(gb.status, 2);
  EXPECT_EQ(gb.err,
            "leakscope: --memory-limit: '2GB' is ambiguous (GB means powers of 1000 to some and "
            "of 1024 to others); write '2GiB' (powers of 1024) or the number of bytes\n");
}

// ---- real gperftools profiles ----------------------------------------------

struct FixtureRun {
  std::vector<std::string> profiles;
  double leaked_bytes = 0;
};

FixtureRun runFixture(const std::string& mode, const std::string& dir) {
  Child c(
      {std::string(LEAKSCOPE_BIN_DIR) + "/leakscope-heap-fixture", "--mode", mode, "--out", dir});
  EXPECT_EQ(c.wait(60000), 0) << c.err();
  const json j = json::parse(c.out());
  FixtureRun f;
  f.leaked_bytes = j["leaked_bytes"].get<double>();
  for (const auto& p : j["profiles"]) f.profiles.push_back(p.get<std::string>());
  return f;
}

void expectOnlyTheLeakIsASuspect(const std::string& mode, double tolerance) {
  TempDir dir;
  const FixtureRun f = runFixture(mode, dir.path());
  ASSERT_EQ(f.profiles.size(), 6u);
  std::vector<std::string> args = {"trend", "--json"};
  args.insert(args.end(), f.profiles.begin(), f.profiles.end());
  const CliRun r = leakscope(args, dir.path());
  ASSERT_EQ(r.status, 1) << r.err;
  const json j = json::parse(r.out);
  ASSERT_FALSE(j["suspects"].empty()) << r.out;
  const json& top = j["suspects"][0];
  EXPECT_EQ(top["group"], "heap");
  EXPECT_EQ(top["name"], "(anonymous namespace)::leakyRemember()");
  const double estimated = top["bytes"].back().get<double>();
  EXPECT_NEAR(estimated, f.leaked_bytes, tolerance * f.leaked_bytes)
      << mode << ": estimated " << estimated << " of " << f.leaked_bytes;
  for (const auto& s : j["suspects"]) {
    const std::string name = s["name"];
    EXPECT_EQ(name.find("transientSpike"), std::string::npos) << "spike flagged: " << s;
    EXPECT_EQ(name.find("boundedCache"), std::string::npos) << "cache flagged: " << s;
  }
  std::map<std::string, std::string> verdicts;
  for (const auto& g : j["not_suspects"]) verdicts[g["name"]] = g["verdict"];
  EXPECT_EQ(verdicts["(anonymous namespace)::transientSpike(int)"], "transient") << r.out;
  EXPECT_EQ(verdicts["(anonymous namespace)::boundedCache()"], "bounded") << r.out;
}

TEST(HeapProfiles, FullProfilesNameTheLeakingFunctionExactly) {
  expectOnlyTheLeakIsASuspect("full", 0.0);
}

TEST(HeapProfiles, SampledProfilesEstimateTheLeakWithin30Percent) {
  expectOnlyTheLeakIsASuspect("sampled", 0.30);
}

TEST(HeapProfiles, DiffOfFullProfilesCountsAllocationsAndFrees) {
  TempDir dir;
  const FixtureRun f = runFixture("full", dir.path());
  const CliRun r = leakscope({"diff", "--json", f.profiles[2], f.profiles[5]}, dir.path());
  ASSERT_EQ(r.status, 1) << r.err;
  const json j = json::parse(r.out);
  std::map<std::string, json> rows;
  for (const auto& row : j["rows"]) rows[row["name"]] = row;
  const json& leak = rows["(anonymous namespace)::leakyRemember()"];
  EXPECT_EQ(leak["basis"], "counters");
  EXPECT_EQ(leak["new"], 3 * 64);  // three rounds of 64 blocks
  EXPECT_EQ(leak["deleted"], 0);
  EXPECT_EQ(leak["delta_bytes"], 3 * 64 * 16384);
  // The cache churns: 300 entries allocated, as many freed, no net change.
  const json& cache = rows["(anonymous namespace)::boundedCache()"];
  EXPECT_EQ(cache["new"], 300);
  EXPECT_EQ(cache["deleted"], 300);
  EXPECT_EQ(cache["delta_bytes"], 0);
  EXPECT_EQ(j["suspects"][0]["name"], "(anonymous namespace)::leakyRemember()");
  EXPECT_EQ(j["suspects"].size(), 1u);
}

TEST(HeapProfiles, BinaryFlagSymbolizesProfilesFromAnotherMachine) {
  TempDir dir;
  const FixtureRun f = runFixture("full", dir.path());
  // Pretend the profiles came from elsewhere: the executable's path in
  // MAPPED_LIBRARIES does not exist here.
  const std::string fixture = std::string(LEAKSCOPE_BIN_DIR) + "/leakscope-heap-fixture";
  std::vector<std::string> moved;
  for (const auto& p : f.profiles) {
    std::string text = readFile(p);
    std::size_t at = 0;
    while ((at = text.find(fixture, at)) != std::string::npos) {
      text.replace(at, fixture.size(), "/opt/elsewhere/leakscope-heap-fixture");
    }
    writeFile(p + ".moved", text);
    moved.push_back(p + ".moved");
  }
  std::vector<std::string> args = {"trend", "--json"};
  args.insert(args.end(), moved.begin(), moved.end());
  const CliRun without = leakscope(args, dir.path());
  ASSERT_EQ(without.status, 1) << without.err;
  const std::string unnamed = json::parse(without.out)["suspects"][0]["name"];
  EXPECT_EQ(unnamed.rfind("leakscope-heap-fixture+0x", 0), 0u) << unnamed;

  args.insert(args.begin() + 2, {"--binary", fixture});
  const CliRun with = leakscope(args, dir.path());
  ASSERT_EQ(with.status, 1) << with.err;
  EXPECT_EQ(json::parse(with.out)["suspects"][0]["name"], "(anonymous namespace)::leakyRemember()");
}

// ---- bad input -------------------------------------------------------------

// Exit 2, one line on stderr naming the file and a position, nothing on stdout.
void expectInputError(const std::string& file, const std::string& position_pattern,
                      const std::string& command = "show") {
  const CliRun r = leakscope({command, file}, "/");
  EXPECT_EQ(r.status, 2) << file << ": " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.err.rfind("leakscope: " + file + ": ", 0), 0u) << r.err;
  EXPECT_TRUE(std::regex_search(r.err, std::regex(position_pattern))) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST(BadInput, TruncatedSnapshot) {
  TempDir dir;
  const std::string text = readFile(kData + "/leak/leakscope-example.000002.lsnap");
  for (std::size_t cut : {text.size() / 3, text.size() - 2}) {
    const std::string path = dir.path() + "/cut" + std::to_string(cut) + ".lsnap";
    writeFile(path, text.substr(0, cut));
    expectInputError(path, "byte [0-9]+ \\(line [0-9]+\\): the file ends early \\(truncated\\?\\)");
  }
}

TEST(BadInput, EmptyFile) {
  TempDir dir;
  writeFile(dir.path() + "/empty.lsnap", "");
  expectInputError(dir.path() + "/empty.lsnap", "byte 0: empty file");
}

TEST(BadInput, BinaryGarbage) {
  TempDir dir;
  std::string junk;
  for (int i = 0; i < 4096; ++i) junk.push_back(static_cast<char>((i * 7919 + 13) % 256));
  writeFile(dir.path() + "/junk.bin", junk);
  expectInputError(dir.path() + "/junk.bin",
                   "byte [0-9]+: not a leakscope snapshot, a gperftools heap profile or a V8 "
                   "heap snapshot");
  // Garbage after a valid start.
  writeFile(dir.path() + "/junk.lsnap", "{\"format\":\"leakscope-snapshot\",\"version\":1," + junk);
  expectInputError(dir.path() + "/junk.lsnap", "byte 4[0-9] \\(line 1\\)");
}

TEST(BadInput, NewerSnapshotVersionIsRefusedNamingBothVersions) {
  TempDir dir;
  std::string text = readFile(kData + "/clean/leakscope-example.000001.lsnap");
  const auto at = text.find("\"version\":1");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 11, "\"version\":3");
  writeFile(dir.path() + "/v3.lsnap", text);
  expectInputError(dir.path() + "/v3.lsnap",
                   "snapshot version 3 is newer than this leakscope reads \\(version 2\\)");
}

TEST(BadInput, WrongTypesAreNamedByJsonPath) {
  TempDir dir;
  std::string text = readFile(kData + "/leak/leakscope-example.000001.lsnap");
  const auto at = text.find("\"live\":");
  ASSERT_NE(at, std::string::npos);
  text.insert(at + 7, "\"many\",\"x\":");
  writeFile(dir.path() + "/types.lsnap", text);
  expectInputError(dir.path() + "/types.lsnap", "tracked\\[[0-9]+\\]\\.live: expected an integer");
  writeFile(dir.path() + "/other.json", "{\"format\":\"something-else\"}");
  expectInputError(dir.path() + "/other.json",
                   "not a leakscope snapshot \\(format is \"something-else\"\\)");
}

TEST(BadInput, ProfileWithoutMappings) {
  TempDir dir;
  const FixtureRun f = runFixture("full", dir.path());
  std::string text = readFile(f.profiles[0]);
  text.resize(text.find("MAPPED_LIBRARIES:"));
  writeFile(dir.path() + "/nomaps.heap", text);
  expectInputError(dir.path() + "/nomaps.heap", "line [0-9]+: no MAPPED_LIBRARIES section");
}

TEST(BadInput, MalformedProfileLine) {
  TempDir dir;
  writeFile(dir.path() + "/bad.heap",
            "heap profile:    1:   100 [     1:   100] @ heapprofile\n"
            "     1:   100 [     1:   100] @ 0x401000 0xzz\n");
  expectInputError(dir.path() + "/bad.heap", "line 2: malformed stack address");
}

TEST(BadInput, MissingFileAndDirectory) {
  expectInputError("/nonexistent/x.lsnap", "No such file or directory");
  // A directory is accepted for its snapshot files (issue #13 item 10).
  TempDir dir;
  expectInputError(dir.path(),
                   "a directory without snapshot files \\(\\*\\.lsnap, \\*\\.heapsnapshot, plain "
                   "or \\.gz\\)");
}

TEST(BadInput, TrendStopsAtTheFirstBadInputWithExit2) {
  TempDir dir;
  writeFile(dir.path() + "/empty.lsnap", "");
  auto args = series(kData + "/leak");
  args.insert(args.begin(), "trend");
  args.push_back(dir.path() + "/empty.lsnap");
  const CliRun r = leakscope(args);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("empty.lsnap: byte 0: empty file"), std::string::npos) << r.err;
}

// ---- inputs: directories, stdin, gzip, BOM, other formats (issue #13 item 10)

// leakscope with `args`, its standard input read from `file`.
CliRun leakscopeReading(const std::string& file, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/bin/sh", "-c", "exec \"$@\" < \"$0\"", file, kBin};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

void gzipFile(const std::string& from, const std::string& to) {
  Child c({"/bin/sh", "-c", "gzip -c \"$0\" > \"$1\"", from, to});
  ASSERT_EQ(c.wait(10000), 0) << c.err();
}

std::vector<std::string> inputPaths(const json& j) {
  std::vector<std::string> out;
  for (const auto& i : j["inputs"]) out.push_back(i["path"]);
  return out;
}

TEST(Inputs, ADirectoryStandsForItsSnapshotFilesInTheOrderTheyWereTaken) {
  TempDir dir;
  const auto files = series(kData + "/leak");
  for (std::size_t i = 0; i < files.size(); ++i) {
    const std::string name = std::filesystem::path(files[i]).filename().string();
    if (i == 2) {
      gzipFile(files[i], dir.path() + "/" + name + ".gz");
    } else {
      writeFile(dir.path() + "/" + name, readFile(files[i]));
    }
  }
  writeFile(dir.path() + "/notes.txt", "not a snapshot");
  writeFile(dir.path() + "/.leakscope-example.000005.99.x.tmp", "{");
  const CliRun r = leakscope({"trend", "--json", dir.path()});
  ASSERT_EQ(r.status, 1) << r.err;
  const std::string d = dir.path() + "/leakscope-example.";
  EXPECT_EQ(inputPaths(json::parse(r.out)),
            (std::vector<std::string>{d + "000001.lsnap", d + "000002.lsnap", d + "000003.lsnap.gz",
                                      d + "000004.lsnap"}));
  // diff of a directory of two: the earlier one is BASE, whatever the names.
  TempDir two;
  writeFile(two.path() + "/b.000001.lsnap", readFile(files[3]));
  writeFile(two.path() + "/b.000002.lsnap", readFile(files[0]));
  const CliRun diff = leakscope({"diff", "--json", two.path()});
  ASSERT_EQ(diff.status, 1) << diff.err;
  EXPECT_EQ(json::parse(diff.out)["base"], two.path() + "/b.000002.lsnap") << diff.out;
}

TEST(Inputs, DashReadsStandardInputPlainOrGzip) {
  TempDir dir;
  const auto files = series(kData + "/leak");
  const CliRun plain = leakscopeReading(files[3], {"show", "--json", "-"});
  ASSERT_EQ(plain.status, 0) << plain.err;
  EXPECT_EQ(json::parse(plain.out)["input"], "-");
  EXPECT_EQ(json::parse(plain.out)["sequence"], 4);
  gzipFile(files[0], dir.path() + "/first.gz");
  // In a series standard input is read twice (header, then the whole).
  const CliRun trend =
      leakscopeReading(dir.path() + "/first.gz", {"trend", "--json", files[3], "-", files[1]});
  ASSERT_EQ(trend.status, 1) << trend.err;
  EXPECT_EQ(inputPaths(json::parse(trend.out)),
            (std::vector<std::string>{"-", files[1], files[3]}));
  const CliRun twice = leakscopeReading(files[0], {"diff", "-", "-"});
  EXPECT_EQ(twice.status, 2);
  EXPECT_EQ(twice.err, "leakscope: -: standard input named twice (it can be read once)\n");
}

TEST(Inputs, GzipFilesReadLikeTheirContent) {
  TempDir dir;
  auto plain = series(kData + "/leak");
  std::vector<std::string> gz;
  for (const auto& f : plain) {
    gz.push_back(dir.path() + "/" + std::filesystem::path(f).filename().string() + ".gz");
    gzipFile(f, gz.back());
  }
  plain.insert(plain.begin(), {"trend", "--json"});
  gz.insert(gz.begin(), {"trend", "--json"});
  const CliRun a = leakscope(plain);
  const CliRun b = leakscope(gz);
  ASSERT_EQ(b.status, 1) << b.err;
  EXPECT_EQ(json::parse(a.out)["suspects"], json::parse(b.out)["suspects"]);
}

TEST(Inputs, AByteOrderMarkIsSkipped) {
  TempDir dir;
  const std::string f = dir.path() + "/bom.lsnap";
  writeFile(f, "\xef\xbb\xbf" + readFile(kData + "/leak/leakscope-example.000004.lsnap"));
  const CliRun r = leakscope({"show", "--json", f});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["sequence"], 4);
}

// V8 heap snapshots (issue #14): read by content in every command, their
// classes in show's JSON, retainers, and bad input as one line naming the
// byte.
TEST(V8, ShowListsClassesAndRetainersPrintsTheirPaths) {
  const std::string v8 = std::string(LEAKSCOPE_TEST_DATA) + "/v8/node7.heapsnapshot";
  const CliRun show = leakscope({"show", "--json", v8}, "/");
  ASSERT_EQ(show.status, 0) << show.err;
  const json j = json::parse(show.out);
  EXPECT_EQ(j["source"], "v8-heapsnapshot");
  ASSERT_EQ(j["classes"].size(), 3u);
  EXPECT_EQ(j["classes"][0]["name"], "Foo");  // the largest retained size first
  EXPECT_EQ(j["classes"][0]["retained_bytes"], 156);
  EXPECT_EQ(j["v8"]["nodes"], 5);
  // The same file gzip-compressed (and named otherwise) reads the same.
  TempDir dir;
  gzipFile(v8, dir.path() + "/snap.json.gz");
  const CliRun gz = leakscope({"show", "--json", dir.path() + "/snap.json.gz"}, "/");
  ASSERT_EQ(gz.status, 0) << gz.err;
  EXPECT_EQ(json::parse(gz.out)["classes"], j["classes"]);
  const CliRun r = leakscope({"retainers", "--json", "--class", "Node / TLSWrap", v8}, "/");
  ASSERT_EQ(r.status, 0) << r.err;
  const json paths = json::parse(r.out)["retainers"];
  ASSERT_EQ(paths.size(), 1u);
  EXPECT_EQ(paths[0]["count"], 1);
  EXPECT_NE(paths[0]["path"].get<std::string>().find("Foo"), std::string::npos) << paths[0];
}

// retainers --kind: a tracked kind's declared owners, in the V8 view's shape.
TEST(Retainers, KindPrintsTheDeclaredOwnersFromTheRootByShape) {
  const std::string file =
      std::string(LEAKSCOPE_TEST_DATA) + "/hostile/accept/owner-loops-and-dangling-owners.lsnap";
  const CliRun r = leakscope({"retainers", "--json", "--kind", "b", file}, "/");
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["kind"], "b");
  EXPECT_EQ(j["objects"], 2);
  EXPECT_EQ(j["retainers"], json::parse(R"([{"count":1,"path":"(gone) \u2192 b"},
                                            {"count":1,"path":"(owner loop) \u2192 a \u2192 b"}])"));
  const CliRun text = leakscope({"retainers", "--width", "0", "--kind", "a", file}, "/");
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("  1 of 2: (owner loop) \u2192 b \u2192 a\n"), std::string::npos)
      << text.out;
}

TEST(Retainers, KindAndClassAreForTheirOwnInputsAndOneIsNeeded) {
  const std::string v8 = std::string(LEAKSCOPE_TEST_DATA) + "/v8/node7.heapsnapshot";
  const std::string lsnap = kData + "/leak/leakscope-example.000002.lsnap";
  const CliRun on_v8 = leakscope({"retainers", "--kind", "x", v8}, "/");
  EXPECT_EQ(on_v8.status, 2);
  EXPECT_NE(on_v8.err.find("retainers --kind reads leakscope snapshots; this is a "
                           "v8-heapsnapshot (use --class NAME)"),
            std::string::npos)
      << on_v8.err;
  const CliRun both = leakscope({"retainers", "--kind", "x", "--class", "y", lsnap}, "/");
  EXPECT_EQ(both.status, 2);
  EXPECT_NE(both.err.find("one of them"), std::string::npos) << both.err;
  const CliRun unknown = leakscope({"retainers", "--kind", "nope", lsnap}, "/");
  EXPECT_EQ(unknown.status, 2);
  EXPECT_NE(unknown.err.find("no tracked kind 'nope'"), std::string::npos) << unknown.err;
  for (const CliRun* r : {&on_v8, &both, &unknown}) {
    EXPECT_EQ(std::count(r->err.begin(), r->err.end(), '\n'), 1) << r->err;
  }
}

TEST(V8, BadInputToRetainersIsOneLineAndExit2) {
  const std::string v8 = std::string(LEAKSCOPE_TEST_DATA) + "/v8/node7.heapsnapshot";
  const CliRun unknown = leakscope({"retainers", "--class", "Nope", v8}, "/");
  EXPECT_EQ(unknown.status, 2);
  EXPECT_NE(unknown.err.find("no object of class 'Nope'"), std::string::npos) << unknown.err;
  const CliRun lsnap =
      leakscope({"retainers", "--class", "X", kData + "/leak/leakscope-example.000002.lsnap"}, "/");
  EXPECT_EQ(lsnap.status, 2);
  EXPECT_NE(lsnap.err.find("retainers --class reads V8 heap snapshots"), std::string::npos)
      << lsnap.err;
  EXPECT_NE(lsnap.err.find("(use --kind NAME)"), std::string::npos) << lsnap.err;
  const CliRun missing = leakscope({"retainers", v8}, "/");
  EXPECT_EQ(missing.status, 2);
  EXPECT_NE(missing.err.find("retainers needs --class NAME"), std::string::npos) << missing.err;
  // Every hand-made bad file of the reader's seeds: exit 2, one line, a byte.
  for (const char* bad : {"bad-truncated", "bad-escape", "bad-to-node-range", "bad-edge-counts",
                          "bad-incomplete-meta", "bad-non-numeric", "bad-trailing"}) {
    expectInputError(std::string(LEAKSCOPE_TEST_DATA) + "/v8/" + bad + ".heapsnapshot",
                     "byte [0-9]+ \\(line [0-9]+\\)");
  }
}

// A class name with raw bytes that are not UTF-8 (a V8 string as the file
// has it) is printed with U+FFFD in --json: valid JSON, exit 0, never the
// serializer's exception (fuzz.snapshot found it).
TEST(V8, RawBytesThatAreNotUtf8AreReplacedInTheJson) {
  const std::string v8 = std::string(LEAKSCOPE_TEST_DATA) + "/v8/raw-invalid-utf8.heapsnapshot";
  const CliRun r = leakscope({"show", "--json", v8}, "/");
  ASSERT_EQ(r.status, 0) << r.err;
  const json out = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(out.is_discarded()) << r.out.substr(0, 300);
  bool replaced = false;
  for (const json& c : out["classes"]) {
    replaced = replaced || c["name"].get<std::string>().find("\xef\xbf\xbd") != std::string::npos;
  }
  EXPECT_TRUE(replaced) << r.out.substr(0, 600);
}

TEST(Inputs, OtherFormatsAreNamedInTheError) {
  TempDir dir;
  writeFile(dir.path() + "/app.heapsnapshot",
            R"({"snapshot":{"meta":{"node_fields":["type","name"]},"node_count":1}})");
  // Read as what it is, and its error names the byte.
  expectInputError(dir.path() + "/app.heapsnapshot", "app\\.heapsnapshot: byte [0-9]+");
  writeFile(dir.path() + "/raw.pb", std::string("\x0a\x04\x08\x01\x10\x02\x12\x00", 8));
  gzipFile(dir.path() + "/raw.pb", dir.path() + "/heap.pb.gz");
  expectInputError(dir.path() + "/heap.pb.gz", "this is a pprof profile \\(protobuf");
  expectInputError(kBin, "this is an ELF file");
}

TEST(Inputs, SkipBadLeavesOutAnUnreadableFileWithAWarning) {
  TempDir dir;
  writeFile(dir.path() + "/empty.lsnap", "");
  const std::string text = readFile(kData + "/leak/leakscope-example.000003.lsnap");
  // Its header reads; the rest does not.
  writeFile(dir.path() + "/cut.lsnap", text.substr(0, text.size() / 2));
  auto args = series(kData + "/leak");
  args.insert(args.begin(), {"trend", "--json", "--skip-bad"});
  args.push_back(dir.path() + "/empty.lsnap");
  args.push_back(dir.path() + "/cut.lsnap");
  const CliRun r = leakscope(args);
  ASSERT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(json::parse(r.out)["inputs"].size(), 4u);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 2) << r.err;
  EXPECT_NE(r.err.find("leakscope: warning: skipped (--skip-bad): " + dir.path() +
                       "/empty.lsnap: byte 0: empty file\n"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("cut.lsnap: byte "), std::string::npos) << r.err;
  // Too few left for a trend: exit 2, saying so.
  const CliRun few =
      leakscope({"trend", "--skip-bad", kData + "/leak/leakscope-example.000001.lsnap",
                 kData + "/leak/leakscope-example.000002.lsnap", dir.path() + "/empty.lsnap"});
  EXPECT_EQ(few.status, 2);
  EXPECT_NE(few.err.find("leakscope: only 2 of 3 inputs could be read; 'trend' takes three or "
                         "more inputs\n"),
            std::string::npos)
      << few.err;
}

TEST(Inputs, TheSameFileTwiceIsRefused) {
  const std::string f = kData + "/leak/leakscope-example.000001.lsnap";
  const CliRun diff = leakscope({"diff", f, f});
  EXPECT_EQ(diff.status, 2);
  EXPECT_EQ(diff.err,
            "leakscope: " + f + " and " + f + " are the same file: name each input once\n");
  TempDir dir;
  const std::string link = dir.path() + "/link.lsnap";
  ASSERT_EQ(::symlink(f.c_str(), link.c_str()), 0);
  const CliRun trend =
      leakscope({"trend", f, kData + "/leak/leakscope-example.000002.lsnap", link});
  EXPECT_EQ(trend.status, 2);
  EXPECT_NE(trend.err.find("are the same file"), std::string::npos) << trend.err;
}

// ---- usage -----------------------------------------------------------------

TEST(Usage, ErrorsExitWith2AndSayWhatIsWrong) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{}, "no command given"},
      {{"frobnicate", "x"}, "unknown command 'frobnicate'"},
      {{"trend", "a", "b"}, "'trend' takes three or more inputs (got 2)"},
      {{"diff", "a"}, "'diff' takes two inputs"},
      {{"show", "--top", "zero", "a"}, "--top: 'zero' is not a whole number"},
      {{"trend", "--memory-limit", "2XB", "a", "b", "c"}, "unknown unit 'xb'"},
      {{"report", "a", "b"}, "report needs --html OUT.html"},
      {{"show", "--bogus", "a"}, "unknown option '--bogus' for 'show'"},
      {{"show", "--bogus=3", "a"}, "unknown option '--bogus=3' for 'show'"},
      {{"--bogus"}, "unknown command '--bogus'"},
      {{"frobnicate", "--help"}, "unknown command 'frobnicate'"},
      {{"show", "--top"}, "--top"},
      {{"show", "--top=x", "a"}, "--top: 'x' is not a whole number"},
      {{"sockets", "--binary"}, "--binary"},
      {{"trend", "--survivors", "-1", "a", "b", "c"}, "--survivors: '-1' is not a whole number"},
      // Options belong to the commands that take them.
      {{"show", "--memory-limit", "1GiB", "a"}, "unknown option '--memory-limit' for 'show'"},
      {{"diff", "--html", "x.html", "a", "b"}, "unknown option '--html' for 'diff'"},
  };
  for (const auto& c : cases) {
    const CliRun r = leakscope(c.args);
    EXPECT_EQ(r.status, 2) << c.message;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    // One line, whatever the parser found; nothing on stdout.
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.err.rfind("leakscope: ", 0), 0u) << r.err;
    EXPECT_EQ(r.out, "") << c.message;
  }
}

// "--" ends the options, and an input named like a command stays an input:
// both reach the loader, which names the file it cannot read.
TEST(Usage, InputsThatLookLikeOptionsOrCommandsAreInputs) {
  const CliRun dashes = leakscope({"show", "--", "--top"});
  EXPECT_EQ(dashes.status, 2);
  EXPECT_EQ(dashes.err.rfind("leakscope: --top: ", 0), 0u) << dashes.err;
  const CliRun named = leakscope({"diff", "show", "trend"});
  EXPECT_EQ(named.status, 2);
  EXPECT_EQ(named.err.rfind("leakscope: show: ", 0), 0u) << named.err;
}

// Every way of asking for a command's help prints the same text, exit 0.
TEST(Usage, HelpIsTheSameHoweverItIsAskedFor) {
  const CliRun diff = leakscope({"diff", "--help"});
  ASSERT_EQ(diff.status, 0);
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"diff", "-h"}, {"help", "diff"}, {"--help", "diff"}, {"diff", "a", "--help"}}) {
    const CliRun r = leakscope(args);
    EXPECT_EQ(r.status, 0) << args.front();
    EXPECT_EQ(r.out, diff.out) << args.front();
  }
  const CliRun top = leakscope({"--help"});
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"-h"}, {"help"}, {"help", "nosuch"}}) {
    const CliRun r = leakscope(args);
    EXPECT_EQ(r.status, 0) << args.front();
    EXPECT_EQ(r.out, top.out) << args.front();
  }
  const CliRun version = leakscope({"--version"});
  EXPECT_EQ(version.status, 0);
  EXPECT_EQ(version.out.rfind("leakscope ", 0), 0u) << version.out;
}

TEST(Usage, EveryCommandHasHelpWithAnExample) {
  for (const std::string cmd : {"show", "diff", "trend", "sockets", "report"}) {
    const CliRun r = leakscope({cmd, "--help"});
    EXPECT_EQ(r.status, 0) << cmd;
    EXPECT_NE(r.out.find("Usage: leakscope " + cmd), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Example:\n  leakscope " + cmd), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("--json"), std::string::npos) << r.out;
  }
  const CliRun top = leakscope({"--help"});
  EXPECT_EQ(top.status, 0);
  EXPECT_NE(top.out.find("Exit status: 0 nothing flagged, 1 leak suspected, 2 usage"),
            std::string::npos);
}

// ---- a series across restarts ----------------------------------------------

const std::string kExample = std::string(LEAKSCOPE_BIN_DIR) + "/leakscope-example";

std::vector<std::string> snapshotFiles(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".lsnap") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// One run of the leaking example writing `count` snapshots into `dir` (kill
// -USR2 a few rounds apart), then killed as the OOM killer would.
void leakingRun(const std::string& dir, std::size_t count) {
  Child ex({kExample, "--snapshot-dir", dir, "--leak-every", "2", "--interval-ms", "20"});
  ASSERT_TRUE(ex.waitForLine("leakscope-example ").has_value()) << ex.err();
  const std::size_t before = snapshotFiles(dir).size();
  for (std::size_t n = 1; n <= count; ++n) {
    ::usleep(300 * 1000);
    ::kill(ex.pid(), SIGUSR2);
    for (int i = 0; i < 500 && snapshotFiles(dir).size() < before + n; ++i) ::usleep(10 * 1000);
    ASSERT_EQ(snapshotFiles(dir).size(), before + n) << ex.err();
  }
  ::kill(ex.pid(), SIGKILL);
}

// The directory an OOM-killed daemon under Restart=on-failure leaves: as one
// series, each run's leak looked freed at the next restart (exit 0, "No
// steady growth"); run by run it is steady in both.
TEST(Restarts, TheExampleKilledAndRestartedLeaksInEachRun) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/snaps";
  leakingRun(dir, 3);
  leakingRun(dir, 3);
  std::vector<std::string> files = snapshotFiles(dir);
  ASSERT_EQ(files.size(), 6u);
  files.insert(files.begin(), {"trend", "--json"});
  const CliRun r = leakscope(files);
  ASSERT_EQ(r.status, 1) << r.out << r.err;
  const json j = json::parse(r.out);
  ASSERT_EQ(j["runs"].size(), 2u) << r.out;
  EXPECT_NE(j["runs"][0]["pid"], j["runs"][1]["pid"]);
  for (const auto& run : j["runs"]) {
    EXPECT_EQ(run["method"], "trend");
    EXPECT_EQ(run["verdict"], "suspect") << run;
    EXPECT_EQ(run["inputs"], 3);
    bool connection = false;
    for (const auto& s : run["suspects"]) connection |= s["name"] == "example.connection";
    EXPECT_TRUE(connection) << run;
  }
  EXPECT_EQ(j["summary"].get<std::string>().rfind("2 runs; each grew ", 0), 0u) << j["summary"];
  EXPECT_NE(j["summary"].get<std::string>().find("example.connection"), std::string::npos);

  files.erase(files.begin() + 1);  // the text view names the runs
  const CliRun text = leakscope(files);
  EXPECT_EQ(text.status, 1);
  EXPECT_NE(text.out.find("== Run 1 of 2: pid "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("== Run 2 of 2: pid "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("Verdict: 2 runs; each grew "), std::string::npos) << text.out;
}

// ---- HTML report -------------------------------------------------------------

std::string chromium() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return {};
}

// Runs headless Chromium on `url` with `extra` flags; returns stdout.
CliRun browse(const std::string& url, const std::vector<std::string>& extra,
              const std::string& profile) {
  std::vector<std::string> argv = {chromium(),
                                   "--headless",
                                   "--no-sandbox",
                                   "--disable-gpu",
                                   "--no-first-run",
                                   "--user-data-dir=" + profile,
                                   "--virtual-time-budget=3000"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(url);
  Child c(argv, {"HOME=" + profile});
  CliRun r;
  r.status = c.wait(90000);
  r.out = c.out();
  r.err = c.err();
  return r;
}

TEST(ReportHtml, IsSelfContainedAndRendersTheSuspectsChartsInHeadlessChromium) {
  TempDir dir;
  const std::string html = dir.path() + "/report.html";
  auto args = series("leak");
  args.insert(args.begin(), {"report", "--html", html});
  const CliRun r = leakscope(args);
  ASSERT_EQ(r.status, 1) << r.err;
  const std::string page = readFile(html);
  ASSERT_FALSE(page.empty());
  // Self-contained: nothing is fetched from anywhere.
  EXPECT_EQ(page.find("http://"), std::string::npos);
  EXPECT_EQ(page.find("https://"), std::string::npos);
  EXPECT_EQ(page.find("<link"), std::string::npos);
  EXPECT_EQ(page.find("<script src"), std::string::npos);
  EXPECT_NE(page.find("data-name=\"example.connection\""), std::string::npos);
  EXPECT_NE(page.find("id=\"comparison\""), std::string::npos);
  EXPECT_NE(page.find("id=\"sockets\""), std::string::npos);
  // The verdict's first line is the top of the chain: the connections that
  // hold the growing sockets.
  EXPECT_NE(page.find("id=\"verdict\"><span class=\"chain-top\">example.connection +19 per "
                      "interval, holds 1 ESTABLISHED socket each</span><br>5 leak suspect(s)"),
            std::string::npos)
      << page.substr(page.find("id=\"verdict\""), 300);

  ASSERT_FALSE(chromium().empty()) << "chromium is not installed (scripts/setup.sh installs it)";
  // The DOM after load: the page's script counts the chart lines the browser
  // laid out with a non-empty box.
  const CliRun dom = browse("file://" + html, {"--dump-dom"}, dir.path() + "/profile");
  ASSERT_EQ(dom.status, 0) << dom.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(dom.out, m, std::regex("data-charts-rendered=\"([0-9]+)\"")))
      << dom.out.substr(0, 2000);
  // RSS + heap + per suspect: objects and bytes for the two kinds, bytes for
  // the heap site, objects for the two socket groups.
  const int rendered = std::stoi(m[1]);
  EXPECT_EQ(rendered, 2 + 2 * 2 + 1 + 2) << dom.out.substr(0, 2000);
  EXPECT_NE(dom.out.find("chart-tracked-"), std::string::npos);
  EXPECT_NE(dom.out.find("5 leak suspect(s) with steady growth"), std::string::npos);

  // A screenshot, kept as a test artifact.
  const std::string artifacts = std::string(LEAKSCOPE_BIN_DIR) + "/../test-artifacts";
  ::mkdir(artifacts.c_str(), 0755);
  const std::string png = artifacts + "/report.png";
  std::remove(png.c_str());
  const CliRun shot = browse(
      "file://" + html, {"--screenshot=" + png, "--window-size=1280,2200", "--hide-scrollbars"},
      dir.path() + "/profile");
  ASSERT_EQ(shot.status, 0) << shot.err;
  const std::string image = readFile(png);
  ASSERT_GT(image.size(), 20000u) << "screenshot too small to show the page";
  EXPECT_EQ(image.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
}

// ---- the flame graph (issue #16 part 3) ----

// One frame of a flame graph as the browser left it after the page's script.
struct DomFrame {
  std::string cls, id, name, style;
  double width = 0;
};

// Attribute `name` of the tag text `tag` ("" when absent).
std::string attrOf(const std::string& tag, const std::string& name) {
  auto at = tag.find(" " + name + "=\"");
  if (at == std::string::npos) return {};
  at += name.size() + 3;
  return tag.substr(at, tag.find('"', at) - at);
}

// The frames of the flame graph `svg_id` in the dumped DOM, in page order.
std::vector<DomFrame> flameFrames(const std::string& dom, const std::string& svg_id) {
  std::vector<DomFrame> out;
  const auto start = dom.find("id=\"" + svg_id + "\"");
  if (start == std::string::npos) return out;
  const auto end = dom.find("</svg>", start);
  for (auto at = dom.find("<g class=\"", start); at < end; at = dom.find("<g class=\"", at + 1)) {
    // A frame's tag ends where its tooltip starts (labels may hold '>').
    const std::string tag = dom.substr(at, dom.find("><title>", at) - at);
    const auto rect = dom.find("<rect ", at);
    DomFrame f{attrOf(tag, "class"), attrOf(tag, "id"), attrOf(tag, "data-n"),
               attrOf(tag, "style")};
    f.width = std::stod(attrOf(dom.substr(rect, dom.find('>', rect) - rect), "width"));
    out.push_back(f);
  }
  return out;
}

// The widest frame below the root.
const DomFrame* widest(const std::vector<DomFrame>& frames) {
  const DomFrame* best = nullptr;
  for (const DomFrame& f : frames) {
    if (f.cls.find("root") != std::string::npos) continue;
    if (best == nullptr || f.width > best->width) best = &f;
  }
  return best;
}

// The report of real gperftools profiles (the heap fixture, full mode) in
// headless Chromium: the graph renders, the leaking function is its widest
// frame, #search= highlights it with its share, #zoom= makes it fill the
// width and hides what is not under it; a screenshot in the artifacts.
TEST(ReportHtml, FlameGraphShowsTheLeakWidestAndSearchesAndZoomsInHeadlessChromium) {
  ASSERT_FALSE(chromium().empty()) << "chromium is not installed (scripts/setup.sh installs it)";
  TempDir dir;
  const FixtureRun f = runFixture("full", dir.path());
  ASSERT_EQ(f.profiles.size(), 6u);
  const std::string html = dir.path() + "/report.html";
  std::vector<std::string> args = {"report", "--html", html};
  args.insert(args.end(), f.profiles.begin(), f.profiles.end());
  const CliRun r = leakscope(args, dir.path());
  ASSERT_EQ(r.status, 1) << r.err;
  const std::string url = "file://" + html;

  const CliRun plain = browse(url, {"--dump-dom"}, dir.path() + "/profile");
  ASSERT_EQ(plain.status, 0) << plain.err;
  EXPECT_NE(plain.out.find("data-flame-ready=\"1\""), std::string::npos);
  const std::vector<DomFrame> frames = flameFrames(plain.out, "flame-grown");
  ASSERT_GT(frames.size(), 3u) << plain.out.substr(0, 3000);
  const DomFrame* leak = widest(frames);
  ASSERT_NE(leak, nullptr);
  EXPECT_EQ(leak->name.rfind("(anonymous namespace)::leakyRemember()", 0), 0u) << leak->name;
  EXPECT_GT(leak->width, 0.5 * 1200) << "5 MiB of about 7.4 MiB growth";

  const CliRun found =
      browse(url + "#search=leakyRemember", {"--dump-dom"}, dir.path() + "/profile");
  ASSERT_EQ(found.status, 0) << found.err;
  std::size_t matches = 0;
  for (const DomFrame& g : flameFrames(found.out, "flame-grown")) {
    const bool match = g.cls.find("match") != std::string::npos;
    if (match) ++matches;
    EXPECT_EQ(match, g.id == leak->id) << g.name;
  }
  EXPECT_EQ(matches, 1u);
  // Five rounds of 1 MiB between the first and the last profile, exactly.
  EXPECT_NE(found.out.find("data-matched-bytes=\"5242880\""), std::string::npos);
  EXPECT_NE(found.out.find("Matched: 5.0 MiB of "), std::string::npos);

  const CliRun zoomed = browse(url + "#zoom=" + leak->id, {"--dump-dom"}, dir.path() + "/profile");
  ASSERT_EQ(zoomed.status, 0) << zoomed.err;
  std::size_t hidden = 0;
  for (const DomFrame& g : flameFrames(zoomed.out, "flame-grown")) {
    if (g.id == leak->id) {
      EXPECT_GE(g.width, 1199.0) << "the zoomed frame fills the width";
    }
    if (g.style.find("display: none") != std::string::npos) ++hidden;
  }
  EXPECT_GT(hidden, 0u) << "boundedCache's frames are not under leakyRemember";

  // And a real click: the left button pressed and released on the frame
  // (DevTools protocol over a pipe, tests/cli/flame_click.py) zooms it.
  Child click({"/usr/bin/python3", std::string(LEAKSCOPE_TEST_DATA) + "/../cli/flame_click.py",
               chromium(), url, leak->id});
  ASSERT_EQ(click.wait(90000), 0) << click.err();
  const json clicked = json::parse(click.out(), nullptr, false);
  ASSERT_FALSE(clicked.is_discarded()) << click.out();
  EXPECT_LT(clicked["width_before"].get<double>(), 1199.0) << clicked.dump();
  EXPECT_GE(clicked["width_after"].get<double>(), 1199.0) << clicked.dump();
  EXPECT_EQ(clicked["data_zoom"], leak->id) << clicked.dump();

  const std::string artifacts = std::string(LEAKSCOPE_BIN_DIR) + "/../test-artifacts";
  ::mkdir(artifacts.c_str(), 0755);
  const std::string png = artifacts + "/flame.png";
  std::remove(png.c_str());
  const CliRun shot =
      browse(url + "#search=leakyRemember",
             {"--screenshot=" + png, "--window-size=1280,2000", "--hide-scrollbars"},
             dir.path() + "/profile");
  ASSERT_EQ(shot.status, 0) << shot.err;
  EXPECT_EQ(readFile(png).substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
}

// A function named like markup in a leakscope snapshot (the golden leak
// series, renamed): shown as text, its script never runs, and the page's own
// still does; the leaking allocation is still the widest frame.
TEST(ReportHtml, FlameGraphShowsAFunctionNamedScriptAsTextInHeadlessChromium) {
  ASSERT_FALSE(chromium().empty()) << "chromium is not installed (scripts/setup.sh installs it)";
  TempDir dir;
  const std::string real = "example::allocateReceiveBuffer(unsigned long)";
  const std::string evil =
      "<script>document.body.setAttribute('data-pwned','1')</script><img src=x "
      "onerror=document.body.setAttribute('data-pwned','2')>";
  std::vector<std::string> args = {"report", "--html", dir.path() + "/report.html"};
  for (const std::string& golden : series(kData + "/leak")) {
    std::string text = readFile(golden);
    const auto at = text.find("\"function\":\"" + real + "\"");
    ASSERT_NE(at, std::string::npos) << golden;
    text.replace(at + 12, real.size(), evil);
    const std::string copy = dir.path() + "/" + std::filesystem::path(golden).filename().string();
    writeFile(copy, text);
    args.push_back(copy);
  }
  const CliRun r = leakscope(args, dir.path());
  ASSERT_EQ(r.status, 1) << r.err;
  const CliRun dom =
      browse("file://" + dir.path() + "/report.html", {"--dump-dom"}, dir.path() + "/profile");
  ASSERT_EQ(dom.status, 0) << dom.err;
  const auto body = dom.out.find("<body");
  ASSERT_NE(body, std::string::npos);
  const std::string body_tag = dom.out.substr(body, dom.out.find('>', body) - body);
  EXPECT_EQ(body_tag.find("data-pwned"), std::string::npos) << body_tag;
  EXPECT_NE(body_tag.find("data-flame-ready=\"1\""), std::string::npos) << body_tag;
  const std::vector<DomFrame> frames = flameFrames(dom.out, "flame-grown");
  const DomFrame* leak = widest(frames);
  ASSERT_NE(leak, nullptr) << dom.out.substr(0, 3000);
  // Shown as its text (the DOM dump re-escapes what it must).
  EXPECT_NE(leak->name.find("document.body.setAttribute('data-pwned','1')"), std::string::npos)
      << leak->name;
}

// Issue #13 item 8: the page says which process (pid, executable, host, build
// id) the snapshots come from, puts them on a wall-clock time axis, names the
// memory limit and when the RSS trend reaches it, and says how many survivors
// a table left out. The golden snapshots predate `process.host`: a copy with
// one, as the writer now makes them.
TEST(ReportHtml, NamesTheProcessTheTimesTheMemoryLimitAndWhatATableLeftOut) {
  TempDir dir;
  std::vector<std::string> inputs;
  for (const std::string& golden : series(kData + "/leak")) {
    std::string text = readFile(golden);
    const std::string process = "\"process\":{";
    const auto at = text.find(process);
    ASSERT_NE(at, std::string::npos) << golden;
    text.insert(at + process.size(), "\"host\":\"push-3.example\",");
    inputs.push_back(dir.path() + golden.substr(golden.rfind('/')));
    writeFile(inputs.back(), text);
  }
  const std::string html = dir.path() + "/report.html";
  std::vector<std::string> args = {"report", "--html", html, "--memory-limit", "64MiB"};
  args.insert(args.end(), inputs.begin(), inputs.end());
  const CliRun r = leakscope(args);
  ASSERT_EQ(r.status, 1) << r.err;
  const std::string page = readFile(html);

  EXPECT_NE(page.find("<td class=\"n\">14118</td>"), std::string::npos);
  EXPECT_NE(page.find("<code>/work/main/build/bin/leakscope-example</code>"), std::string::npos);
  EXPECT_NE(page.find("<code>push-3.example</code>"), std::string::npos);
  EXPECT_NE(page.find("<code>082f8ba6c0c0e34447271af946126a50f4daf3ad</code>"), std::string::npos);

  // x axes: UTC times of day (the snapshots are 1 s apart from 14:32:56.9).
  std::vector<std::string> x;
  const std::regex tick("text-anchor=\"middle\">([^<]*)<");
  for (auto it = std::sregex_iterator(page.begin(), page.end(), tick); it != std::sregex_iterator();
       ++it) {
    x.push_back((*it)[1]);
  }
  ASSERT_GE(x.size(), 3u);
  EXPECT_EQ(std::vector<std::string>(x.begin(), x.begin() + 3),
            (std::vector<std::string>{"14:32:57", "14:32:58", "14:32:59"}));
  for (const auto& l : x) EXPECT_TRUE(std::regex_match(l, std::regex("\\d\\d:\\d\\d:\\d\\d"))) << l;

  EXPECT_NE(page.find("Memory limit 64.0 MiB; last RSS 17.1 MiB (27 % of it); at the RSS trend "
                      "it is reached in about "),
            std::string::npos);
  // 30 connections survive; 20 are listed (--survivors' default).
  EXPECT_NE(page.find("… 10 more (--survivors N shows more)"), std::string::npos);

  struct stat st {};
  ASSERT_EQ(::stat(html.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u) << "a report names peers and code paths";
}

// Two inputs cannot make a trend, but they are not an all-clear either: the
// report shows what their comparison found, as diff does (it used to show a
// green "no leak" banner while diff exited 1).
TEST(ReportHtml, TwoInputsShowTheComparisonsSuspectsAndSayATrendNeedsThree) {
  TempDir dir;
  const std::string html = dir.path() + "/report.html";
  auto args = series("leak", {1, 4});
  args.insert(args.begin(), {"report", "--html", html});
  const CliRun r = leakscope(args);
  ASSERT_EQ(r.status, 1) << r.out << r.err;
  const std::string page = readFile(html);
  EXPECT_EQ(page.find("verdict good"), std::string::npos);
  EXPECT_NE(page.find("<div class=\"verdict bad\" id=\"verdict\">5 suspect(s) grew between the "
                      "two inputs"),
            std::string::npos)
      << page.substr(0, 3000);
  EXPECT_NE(page.find("A trend needs three inputs"), std::string::npos);
  for (const char* name : {"example.connection", "example.session", "example-server ESTABLISHED",
                           "example::allocateReceiveBuffer(unsigned long)"}) {
    EXPECT_NE(page.find("data-name=\"" + std::string(name) + "\""), std::string::npos) << name;
  }

  // Nothing grew: still not green, a trend needs three.
  auto clean = series("clean", {1, 4});
  clean.insert(clean.begin(), {"report", "--html", html});
  const CliRun c = leakscope(clean);
  EXPECT_EQ(c.status, 0) << c.out << c.err;
  EXPECT_NE(readFile(html).find("<div class=\"verdict warn\" id=\"verdict\">Nothing grew "
                                "between the two inputs; a trend needs three"),
            std::string::npos);
}

// The report used to be written to the predictable OUT.html.tmp, opened
// through any link: in a shared directory such as /tmp another user could
// plant that name as a link to a file of ours and have the report overwrite
// it. Planted as "nobody" when the test runs as root.
TEST(ReportHtml, ALinkPlantedInASharedDirectoryIsNeverWrittenThrough) {
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);  // let the other user reach it
  const std::string shared = dir.path() + "/shared";
  ASSERT_EQ(::mkdir(shared.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(shared.c_str(), 01777), 0);  // like /tmp
  const std::string victim = dir.path() + "/victim";
  const std::string precious = "precious, not a report\n";
  writeFile(victim, precious);
  ASSERT_EQ(::chmod(victim.c_str(), 0600), 0);
  const std::string html = shared + "/report.html";
  for (const std::string& link : {html + ".tmp", html}) {  // the old temp name, the target
    std::vector<std::string> ln = {"/bin/ln", "-s", victim, link};
    if (::geteuid() == 0) {
      ln.insert(ln.begin(),
                {"/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"});
    }
    Child c(ln);
    ASSERT_EQ(c.wait(), 0) << c.err();
  }

  auto args = series("leak");
  args.insert(args.begin(), {"report", "--html", html});
  const CliRun r = leakscope(args);
  EXPECT_EQ(readFile(victim), precious);
  ASSERT_EQ(r.status, 1) << r.err;
  struct stat st {};
  ASSERT_EQ(::lstat(html.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode)) << "the link at the target is replaced, not followed";
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_NE(readFile(html).find("data-name=\"example.connection\""), std::string::npos);
  // Nothing left behind but the planted temp-name link.
  std::vector<std::string> entries;
  for (const auto& e : std::filesystem::directory_iterator(shared)) {
    entries.push_back(e.path().filename());
  }
  std::sort(entries.begin(), entries.end());
  EXPECT_EQ(entries, (std::vector<std::string>{"report.html", "report.html.tmp"}));
}

TEST(ReportHtml, AnUnwritableTargetIsAnInputErrorNamingIt) {
  TempDir dir;
  const std::string html = dir.path() + "/missing-dir/report.html";
  auto args = series("leak");
  args.insert(args.begin(), {"report", "--html", html});
  const CliRun r = leakscope(args);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find(html + ": cannot write: No such file or directory"), std::string::npos)
      << r.err;
}

}  // namespace
