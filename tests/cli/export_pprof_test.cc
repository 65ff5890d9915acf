// `leakscope export --format pprof` checked by its real consumer: `go tool
// pprof` (Debian's golang-go) reads the exports of real gperftools profiles
// (tests/cli/heap_fixture.cc, full and sampled) and of real snapshots of the
// example program, and its -top shows what `leakscope show` and `leakscope
// diff` show. The file itself is decoded with the classes protoc generated
// from pprof's profile.proto and held to the schema's rules.
#include <gtest/gtest.h>
#include <profile.pb.h>

#include <cmath>
#include <csignal>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "pprof_check.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
namespace pp = perftools::profiles;
using json = nlohmann::json;
using leakscope::testing::byPprofName;
using leakscope::testing::Child;
using leakscope::testing::CliRun;
using leakscope::testing::decodePprof;
using leakscope::testing::diffRows;
using leakscope::testing::expectSameFlat;
using leakscope::testing::expectValidProfile;
using leakscope::testing::exportPprof;
using leakscope::testing::readFile;
using leakscope::testing::runLeakscope;
using leakscope::testing::sampleTypeName;
using leakscope::testing::showJson;
using leakscope::testing::TempDir;
using leakscope::testing::topFlat;
using leakscope::testing::writeFile;

const std::string kData = LEAKSCOPE_TEST_DATA;
const std::string kLeak = kData + "/snapshots/leak/leakscope-example.00000";

std::vector<std::string> fixtureProfiles(const std::string& mode, const std::string& dir) {
  Child c(
      {std::string(LEAKSCOPE_BIN_DIR) + "/leakscope-heap-fixture", "--mode", mode, "--out", dir});
  EXPECT_EQ(c.wait(60000), 0) << c.err();
  std::vector<std::string> out;
  const json j = json::parse(c.out());
  for (const auto& p : j["profiles"]) out.push_back(p.get<std::string>());
  return out;
}

// show's heap sites against pprof -top; then diff's heap rows against both
// pprof -base and our --base export. Full: exact; sampled: 1 byte per site
// (each side rounds its own unsampled estimate).
void expectPprofAgrees(const std::string& mode) {
  TempDir dir;
  const auto profiles = fixtureProfiles(mode, dir.path());
  ASSERT_EQ(profiles.size(), 6u);
  ASSERT_GT(decodePprof(exportPprof(dir.path(), profiles[5], "", "check.pb.gz")).sample_size(), 0);
  const long long slack = mode == "full" ? 0 : 1;
  const std::string last = exportPprof(dir.path(), profiles[5], "", "last.pb.gz");
  const auto top = topFlat(dir.path(), {"-sample_index=inuse_space", last});
  expectSameFlat(top, byPprofName(showJson(profiles[5])["heap"]["top_sites"], "inuse_bytes"), slack,
                 mode + " show");
  EXPECT_TRUE(top.count("::leakyRemember")) << "the leak is a top function";

  const std::string first = exportPprof(dir.path(), profiles[1], "", "first.pb.gz");
  const std::string growth = exportPprof(dir.path(), profiles[5], profiles[1], "growth.pb.gz");
  const auto pprof_base = topFlat(dir.path(), {"-sample_index=inuse_space", "-base", first, last});
  const auto ours = topFlat(dir.path(), {"-sample_index=inuse_space", growth});
  EXPECT_EQ(ours, pprof_base) << "--base and pprof -base differ";
  const CliRun diff = runLeakscope({"diff", "--json", "--top", "100000", profiles[1], profiles[5]});
  ASSERT_LE(diff.status, 1) << diff.err;
  // diff rounds the difference, the export each side: at most 1 byte apart.
  expectSameFlat(ours, byPprofName(diffRows(json::parse(diff.out), "heap"), "delta_bytes"), slack,
                 mode + " diff");
  EXPECT_LT(ours.at("::transientSpike"), 0) << "a freed spike is negative growth";
  EXPECT_GT(ours.at("::leakyRemember"), 0);

  const pp::Profile p = decodePprof(last);
  expectValidProfile(p);
  expectValidProfile(decodePprof(growth));
  std::vector<std::string> types;
  for (int i = 0; i < p.sample_type_size(); ++i) types.push_back(sampleTypeName(p, i));
  if (mode == "full") {
    EXPECT_EQ(types, (std::vector<std::string>{"inuse_objects", "inuse_space", "alloc_objects",
                                               "alloc_space"}));
    EXPECT_EQ(p.period(), 0);
  } else {
    EXPECT_EQ(types, (std::vector<std::string>{"inuse_objects", "inuse_space"}));
    EXPECT_EQ(p.period(), 16384) << "heap_v2/R's R";
  }
  // The main executable is the first mapping, with its build id from the file.
  ASSERT_GT(p.mapping_size(), 0);
  EXPECT_NE(p.string_table(static_cast<int>(p.mapping(0).filename())).find("heap-fixture"),
            std::string::npos);
  EXPECT_EQ(p.string_table(static_cast<int>(p.mapping(0).build_id())).size(), 40u);
}

TEST(ExportPprof, FullFixtureProfileTopAndGrowthMatchShowAndDiff) { expectPprofAgrees("full"); }

TEST(ExportPprof, SampledFixtureProfileTopAndGrowthMatchShowAndDiff) {
  expectPprofAgrees("sampled");
}

// A real snapshot of the example program (sampled heap, tracked kinds).
TEST(ExportPprof, ExampleSnapshotHeapAndTrackedKindsMatchShow) {
  TempDir dir;
  const std::string input = kLeak + "4.lsnap";
  const std::string out = exportPprof(dir.path(), input, "", "example.pb.gz");
  const json show = showJson(input);
  const auto heap = topFlat(dir.path(), {out});  // inuse_space is the default
  expectSameFlat(heap, byPprofName(show["heap"]["top_sites"], "inuse_bytes"), 1, "example show");
  for (const auto& [name, bytes] : heap) {
    EXPECT_NE(name.rfind("[tracked]", 0), 0u) << "a tracked kind among heap bytes: " << name;
  }
  const auto tracked = topFlat(dir.path(), {"-sample_index=tracked_space", out});
  ASSERT_FALSE(show["tracked"].empty());
  for (const auto& k : show["tracked"]) {
    const std::string frame = "[tracked] " + k["kind"].get<std::string>();
    ASSERT_TRUE(tracked.count(frame)) << frame;
    EXPECT_EQ(tracked.at(frame), k["live_bytes"].get<long long>()) << frame;
  }
  const pp::Profile p = decodePprof(out);
  expectValidProfile(p);
  // Each kind's sample carries kind=NAME and its live count.
  std::map<std::string, long long> live;
  for (const auto& s : p.sample()) {
    for (const auto& l : s.label()) {
      if (p.string_table(static_cast<int>(l.key())) == "kind") {
        live[p.string_table(static_cast<int>(l.str()))] = s.value(2);
      }
    }
  }
  for (const auto& k : show["tracked"]) {
    EXPECT_EQ(live[k["kind"].get<std::string>()], k["live"].get<long long>()) << k;
  }
  EXPECT_EQ(p.string_table(static_cast<int>(p.mapping(0).build_id())),
            "082f8ba6c0c0e34447271af946126a50f4daf3ad")
      << "process.build_id on the main executable's mapping";
  EXPECT_EQ(p.period(), show["heap"]["sample_period"].get<long long>());
}

TEST(ExportPprof, ExampleSnapshotGrowthMatchesDiffForHeapAndTrackedKinds) {
  TempDir dir;
  const std::string base = kLeak + "1.lsnap", target = kLeak + "4.lsnap";
  const std::string out = exportPprof(dir.path(), target, base, "growth.pb.gz");
  const CliRun diff = runLeakscope({"diff", "--json", "--top", "100000", base, target});
  ASSERT_EQ(diff.status, 1) << diff.err;
  const json d = json::parse(diff.out);
  expectSameFlat(topFlat(dir.path(), {out}), byPprofName(diffRows(d, "heap"), "delta_bytes"), 1,
                 "heap");
  const auto kinds = topFlat(dir.path(), {"-sample_index=tracked_space", out});
  for (const auto& row : diffRows(d, "tracked")) {
    const std::string frame = "[tracked] " + row["name"].get<std::string>();
    const long long want = std::llround(row["delta_bytes"].get<double>());
    if (want == 0) continue;
    ASSERT_TRUE(kinds.count(frame)) << row;
    EXPECT_EQ(kinds.at(frame), want) << row;
  }
  expectValidProfile(decodePprof(out));
}

// A snapshot the running example program writes now, in full heap mode:
// exact in-use and allocated figures, tracked kinds, its build id.
TEST(ExportPprof, LiveFullModeSnapshotOfTheExampleMatchesShowAndTheFile) {
  TempDir dir;
  const std::string snaps = dir.path() + "/snaps";
  Child ex({std::string(LEAKSCOPE_BIN_DIR) + "/leakscope-example", "--snapshot-dir", snaps,
            "--heap-mode", "full", "--leak-every", "3", "--connections", "4", "--rounds", "6",
            "--interval-ms", "10"});
  ASSERT_TRUE(ex.waitForLine("rounds done:", 20000)) << ex.err();
  ::kill(ex.pid(), SIGUSR2);
  ASSERT_TRUE(leakscope::testing::eventually(
      [&] { return leakscope::testing::lsnapFiles(snaps).size() == 1; }));
  EXPECT_EQ(ex.terminate(), 0);
  const std::string input = leakscope::testing::lsnapFiles(snaps).front();
  const json snap = json::parse(readFile(input));
  ASSERT_EQ(snap["heap"]["mode"], "full") << snap["heap"].dump();
  const std::string out = exportPprof(dir.path(), input, "", "live.pb.gz");

  const json show = showJson(input);
  expectSameFlat(topFlat(dir.path(), {out}), byPprofName(show["heap"]["top_sites"], "inuse_bytes"),
                 0, "live inuse_space");
  // alloc_space against the file's own sites (show prints in-use only).
  json alloc_rows = json::array();
  for (const auto& site : snap["heap"]["sites"]) {
    const json& top = snap["heap"]["frames"][site["stack"][0].get<std::size_t>()];
    // An unnamed frame is named module+offset, as leakscope names it.
    std::string name = top["function"];
    if (name.empty()) {
      name = fs::path(top["module"].get<std::string>()).filename().string() + "+" +
             top["module_offset"].get<std::string>();
    }
    alloc_rows.push_back({{"name", name}, {"alloc_bytes", site["alloc_bytes"]}});
  }
  expectSameFlat(topFlat(dir.path(), {"-sample_index=alloc_space", out}),
                 byPprofName(alloc_rows, "alloc_bytes"), 0, "live alloc_space");
  const auto tracked = topFlat(dir.path(), {"-sample_index=tracked_space", out});
  EXPECT_TRUE(tracked.count("[tracked] example.connection")) << "tracked kinds exported";

  const pp::Profile p = decodePprof(out);
  expectValidProfile(p);
  ASSERT_EQ(p.sample_type_size(), 6) << "inuse, alloc and tracked";
  EXPECT_EQ(p.string_table(static_cast<int>(p.mapping(0).filename())), snap["process"]["exe"]);
  EXPECT_EQ(p.string_table(static_cast<int>(p.mapping(0).build_id())), snap["process"]["build_id"]);
}

// A raw profile from another machine: its executable's path does not exist
// here, so its frames are module+offset until --binary names the file.
TEST(ExportPprof, BinaryFlagSymbolizesARawProfileFromElsewhere) {
  TempDir dir;
  const auto profiles = fixtureProfiles("full", dir.path());
  ASSERT_FALSE(profiles.empty());
  const std::string fixture = std::string(LEAKSCOPE_BIN_DIR) + "/leakscope-heap-fixture";
  std::string text = readFile(profiles.back());
  for (std::size_t at = 0; (at = text.find(fixture, at)) != std::string::npos;) {
    text.replace(at, fixture.size(), "/opt/elsewhere/leakscope-heap-fixture");
  }
  const std::string moved = dir.path() + "/moved.heap";
  writeFile(moved, text);
  const auto without = topFlat(dir.path(), {exportPprof(dir.path(), moved, "", "without.pb.gz")});
  EXPECT_FALSE(without.count("::leakyRemember"));
  const std::string out = dir.path() + "/with.pb.gz";
  const CliRun r = runLeakscope({"export", "--format", "pprof", out, moved, "--binary", fixture});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto with = topFlat(dir.path(), {out});
  ASSERT_TRUE(with.count("::leakyRemember"));
  EXPECT_EQ(with.at("::leakyRemember"), 6291456) << "6 rounds of 1 MiB, exact";
  const pp::Profile p = decodePprof(out);
  EXPECT_EQ(p.string_table(static_cast<int>(p.mapping(0).filename())),
            "/opt/elsewhere/leakscope-heap-fixture")
      << "the mapping keeps the path the profile names";
}

// ---- bad input: one line, exit 2, no file left behind ----------------------

void expectOneLineError(const CliRun& r, const std::string& contains) {
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  EXPECT_EQ(r.out, "");
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  EXPECT_NE(r.err.find(contains), std::string::npos) << r.err;
}

TEST(ExportPprof, UnknownOrMissingFormatIsAUsageError) {
  TempDir dir;
  const std::string out = dir.path() + "/x.pb.gz";
  expectOneLineError(runLeakscope({"export", "--format", "svg", out, kLeak + "1.lsnap"}),
                     "unknown --format 'svg'");
  expectOneLineError(runLeakscope({"export", out, kLeak + "1.lsnap"}),
                     "export needs --format pprof");
  expectOneLineError(runLeakscope({"export", "--format", "pprof", out}), "takes OUT.pb.gz and one");
  EXPECT_FALSE(fs::exists(out));
}

TEST(ExportPprof, UnwritableOutputLeavesNoFile) {
  TempDir dir;
  expectOneLineError(runLeakscope({"export", "--format", "pprof", dir.path() + "/no/such/x.pb.gz",
                                   kLeak + "1.lsnap"}),
                     "cannot write");
  // A directory where the file should go: the rename fails, the temp file goes.
  fs::create_directory(dir.path() + "/taken");
  writeFile(dir.path() + "/taken/keep", "x");
  expectOneLineError(
      runLeakscope({"export", "--format", "pprof", dir.path() + "/taken", kLeak + "1.lsnap"}),
      "cannot write");
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(dir.path())) left.push_back(e.path().filename());
  EXPECT_EQ(left, std::vector<std::string>{"taken"});
}

TEST(ExportPprof, InputsWithoutAHeapProfileAreRefused) {
  TempDir dir;
  const std::string out = dir.path() + "/x.pb.gz";
  const CliRun v8 =
      runLeakscope({"export", "--format", "pprof", out, kData + "/v8/node5.heapsnapshot"});
  expectOneLineError(v8, "a V8 heap snapshot has no native heap profile to export");
  // The example's snapshot with its heap section as written with heap off.
  json snap = json::parse(readFile(kLeak + "1.lsnap"));
  snap["heap"] = {{"mode", "off"}, {"available", false}, {"reason", "heap mode is off"}};
  writeFile(dir.path() + "/off.lsnap", snap.dump());
  expectOneLineError(runLeakscope({"export", "--format", "pprof", out, dir.path() + "/off.lsnap"}),
                     "no heap profile to export (heap mode is off)");
  EXPECT_FALSE(fs::exists(out));
}

TEST(ExportPprof, ABaseOfAnotherKindIsRefused) {
  TempDir dir;
  fs::create_directory(dir.path() + "/f");
  fs::create_directory(dir.path() + "/s");
  const auto full = fixtureProfiles("full", dir.path() + "/f");
  const auto sampled = fixtureProfiles("sampled", dir.path() + "/s");
  ASSERT_FALSE(full.empty());
  ASSERT_FALSE(sampled.empty());
  const std::string out = dir.path() + "/x.pb.gz";
  expectOneLineError(
      runLeakscope({"export", "--format", "pprof", out, full.back(), "--base", sampled.front()}),
      "a growth profile needs two of the same kind");
  expectOneLineError(runLeakscope({"export", "--format", "pprof", out, kLeak + "4.lsnap", "--base",
                                   sampled.front()}),
                     "heap-profile with a sampled heap profile");
  EXPECT_FALSE(fs::exists(out));
}

// Whatever the fuzzers' seeds hold, export ends with 0 or a one-line exit 2.
TEST(ExportPprof, FuzzSeedsNeverCrashIt) {
  TempDir dir;
  std::size_t files = 0;
  for (const char* sub : {"hostile/accept", "hostile/reject", "snapshots/leak", "profiles", "v8"}) {
    if (!fs::is_directory(kData + "/" + sub)) continue;
    for (const auto& e : fs::directory_iterator(kData + "/" + sub)) {
      if (!e.is_regular_file()) continue;
      ++files;
      const CliRun r =
          runLeakscope({"export", "--format", "pprof", dir.path() + "/x.pb.gz", e.path()});
      EXPECT_TRUE(r.status == 0 || r.status == 2) << e.path() << ": " << r.status << r.err;
      if (r.status == 2) {
        EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << e.path() << ": " << r.err;
      }
      if (r.status == 0) expectValidProfile(decodePprof(dir.path() + "/x.pb.gz"));
    }
  }
  EXPECT_GT(files, 10u);
}

}  // namespace
