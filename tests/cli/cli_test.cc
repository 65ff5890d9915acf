// The leakscope CLI as users run it: golden snapshots from the example
// program, real gperftools profiles from tests/cli/heap_fixture.cc, bad
// inputs, usage errors and help.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
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

// Runs leakscope with `args` in `cwd` (so paths in its output are relative).
CliRun leakscope(std::vector<std::string> args, const std::string& cwd = kData) {
  std::vector<std::string> argv = {"/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", cwd, kBin};
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
  EXPECT_NE(text.out.find("memory limit reached in ~"), std::string::npos) << text.out;
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
                   "byte [0-9]+: not a leakscope snapshot or a gperftools heap profile");
  // Garbage after a valid start.
  writeFile(dir.path() + "/junk.lsnap", "{\"format\":\"leakscope-snapshot\",\"version\":1," + junk);
  expectInputError(dir.path() + "/junk.lsnap", "byte 4[0-9] \\(line 1\\)");
}

TEST(BadInput, NewerSnapshotVersionIsRefusedNamingBothVersions) {
  TempDir dir;
  std::string text = readFile(kData + "/clean/leakscope-example.000001.lsnap");
  const auto at = text.find("\"version\":1");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 11, "\"version\":2");
  writeFile(dir.path() + "/v2.lsnap", text);
  expectInputError(dir.path() + "/v2.lsnap",
                   "snapshot version 2 is newer than this leakscope reads \\(version 1\\)");
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
                   "a directory without snapshot files \\(\\*\\.lsnap, \\*\\.lsnap\\.gz\\)");
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

TEST(Inputs, OtherFormatsAreNamedInTheError) {
  TempDir dir;
  writeFile(dir.path() + "/app.heapsnapshot",
            R"({"snapshot":{"meta":{"node_fields":["type","name"]},"node_count":1}})");
  expectInputError(dir.path() + "/app.heapsnapshot",
                   "this is a V8 heap snapshot \\(\\.heapsnapshot from Chrome DevTools or "
                   "Node\\.js\\), not a leakscope snapshot");
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
