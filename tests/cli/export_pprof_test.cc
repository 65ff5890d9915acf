// `leakscope export --format pprof` checked by its real consumer: `go tool
// pprof` (Debian's golang-go) reads the exports of real gperftools profiles
// (tests/cli/heap_fixture.cc, full and sampled) and of real snapshots of the
// example program, and its -top shows what `leakscope show` and `leakscope
// diff` show. The file itself is decoded with the classes protoc generated
// from pprof's profile.proto and held to the schema's rules.
#include <gtest/gtest.h>
#include <profile.pb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>
#include <csignal>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "test_support.h"

namespace {

namespace fs = std::filesystem;
namespace pp = perftools::profiles;
using json = nlohmann::json;
using leakscope::testing::Child;
using leakscope::testing::readFile;
using leakscope::testing::TempDir;
using leakscope::testing::writeFile;

const std::string kBin = std::string(LEAKSCOPE_BIN_DIR) + "/leakscope";
const std::string kData = LEAKSCOPE_TEST_DATA;
const std::string kLeak = kData + "/snapshots/leak/leakscope-example.00000";

struct CliRun {
  int status = -1;
  std::string out, err;
};

CliRun run(const std::vector<std::string>& argv) {
  Child c(argv);
  CliRun r;
  r.status = c.wait(120000);
  r.out = c.out();
  r.err = c.err();
  return r;
}

CliRun leakscope(std::vector<std::string> args) {
  args.insert(args.begin(), kBin);
  return run(args);
}

std::string goBinary() {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (::access((dir + "/go").c_str(), X_OK) == 0) return dir + "/go";
  }
  return "";
}

// `go tool pprof ARGS...` with its caches in `home` and no network.
CliRun pprof(const std::string& home, std::vector<std::string> args) {
  const std::string go = goBinary();
  EXPECT_FALSE(go.empty()) << "go not on PATH: scripts/setup.sh installs golang-go";
  std::vector<std::string> argv = {
      "/usr/bin/env", "HOME=" + home, "GOCACHE=" + home + "/gocache", "GOPATH=" + home + "/gopath",
      "GOPROXY=off",  "GOFLAGS=",     "PPROF_TMPDIR=" + home,         go,
      "tool",         "pprof"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

// pprof's default display of a demangled C++ name (internal/symbolizer
// Demangle: parameter and template lists removed), so that leakscope's
// names can be compared with what -top prints.
std::string pprofName(std::string name) {
  if (name.find("::") == std::string::npos && name.find_first_of("<>[]") == std::string::npos) {
    return name;
  }
  for (const char* pair : {"()", "<>"}) {
    std::string out;
    int depth = 0;
    for (char c : name) {
      if (c == pair[0]) ++depth;
      if (depth == 0) out += c;
      if (c == pair[1] && --depth < 0) return name;  // unbalanced: pprof keeps it
    }
    name = out;
  }
  return name;
}

// `-top` rows: function name -> flat value in bytes (-unit=B), every node
// (-nodefraction=0), positive or negative.
std::map<std::string, long long> topFlat(const std::string& home,
                                         const std::vector<std::string>& args) {
  std::vector<std::string> a = {"-top", "-unit=B", "-nodefraction=0", "-nodecount=100000"};
  a.insert(a.end(), args.begin(), args.end());
  const CliRun r = pprof(home, a);
  EXPECT_EQ(r.status, 0) << r.err;
  std::map<std::string, long long> out;
  std::istringstream in(r.out);
  std::string line;
  bool rows = false;
  while (std::getline(in, line)) {
    if (line.find("flat  flat%") != std::string::npos) {
      rows = true;
      continue;
    }
    if (!rows) continue;
    std::istringstream f(line);
    std::string flat, pct, sum, cum, cum_pct, name;
    f >> flat >> pct >> sum >> cum >> cum_pct;
    std::getline(f >> std::ws, name);
    if (!flat.empty() && flat.back() == 'B') flat.pop_back();
    const long long v = std::stoll(flat);
    if (v != 0) out[name] += v;
  }
  return out;
}

// Sums a leakscope view's rows by the name pprof would print; `count` is how
// many rows each name merges (each rounded on its own: the tolerance).
struct Flat {
  std::map<std::string, long long> bytes;
  std::map<std::string, long long> rows;
};

Flat byPprofName(const json& rows, const char* value) {
  Flat f;
  for (const auto& r : rows) {
    const std::string n = pprofName(r["name"].get<std::string>());
    f.bytes[n] += std::llround(r[value].get<double>());
    ++f.rows[n];
  }
  return f;
}

// Every function pprof shows has the bytes leakscope shows for it, and the
// reverse; `slack` bytes per merged row (1: each side rounds its own
// estimate to whole bytes; 0 for exact figures).
void expectSameFlat(const std::map<std::string, long long>& got, const Flat& want, long long slack,
                    const std::string& what) {
  for (const auto& [name, bytes] : want.bytes) {
    if (bytes == 0) continue;
    ASSERT_TRUE(got.count(name)) << what << ": pprof lacks " << name;
    EXPECT_LE(std::llabs(got.at(name) - bytes), slack * want.rows.at(name))
        << what << ": " << name << " pprof " << got.at(name) << " leakscope " << bytes;
  }
  for (const auto& [name, bytes] : got) {
    if (name.rfind("[tracked]", 0) == 0) continue;
    EXPECT_TRUE(want.bytes.count(name)) << what << ": pprof has " << name << " " << bytes;
  }
}

std::string gunzip(const std::string& gz) {
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, 16 + MAX_WBITS), Z_OK);
  std::string out;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  z.avail_in = static_cast<uInt>(gz.size());
  char buf[65536];
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
  }
  inflateEnd(&z);
  EXPECT_EQ(rc, Z_STREAM_END) << "not a complete gzip stream";
  return out;
}

pp::Profile decode(const std::string& path) {
  pp::Profile p;
  EXPECT_TRUE(p.ParseFromString(gunzip(readFile(path)))) << path << ": not a Profile";
  return p;
}

std::string typeName(const pp::Profile& p, int i) {
  return p.string_table(static_cast<int>(p.sample_type(i).type()));
}

// profile.proto's rules: string_table[0] == "", ids non-zero and unique,
// every id and string index referenced exists, one value per sample type.
void expectValidProfile(const pp::Profile& p) {
  const auto strings = static_cast<std::int64_t>(p.string_table_size());
  ASSERT_GT(strings, 0);
  EXPECT_EQ(p.string_table(0), "");
  auto str = [&](std::int64_t i) { EXPECT_TRUE(i >= 0 && i < strings) << "string " << i; };
  std::set<std::uint64_t> mappings, locations, functions;
  for (const auto& m : p.mapping()) {
    EXPECT_NE(m.id(), 0u);
    EXPECT_TRUE(mappings.insert(m.id()).second) << "mapping id " << m.id() << " twice";
    EXPECT_LE(m.memory_start(), m.memory_limit());
    str(m.filename());
    str(m.build_id());
  }
  for (const auto& f : p.function()) {
    EXPECT_NE(f.id(), 0u);
    EXPECT_TRUE(functions.insert(f.id()).second) << "function id " << f.id() << " twice";
    str(f.name());
    str(f.system_name());
    str(f.filename());
  }
  for (const auto& l : p.location()) {
    EXPECT_NE(l.id(), 0u);
    EXPECT_TRUE(locations.insert(l.id()).second) << "location id " << l.id() << " twice";
    EXPECT_TRUE(l.mapping_id() == 0 || mappings.count(l.mapping_id())) << l.mapping_id();
    ASSERT_GT(l.line_size(), 0);
    for (const auto& line : l.line()) EXPECT_TRUE(functions.count(line.function_id()));
  }
  for (const auto& s : p.sample()) {
    EXPECT_EQ(s.value_size(), p.sample_type_size());
    ASSERT_GT(s.location_id_size(), 0);
    for (auto id : s.location_id()) EXPECT_TRUE(locations.count(id)) << "location " << id;
    for (const auto& l : s.label()) {
      str(l.key());
      str(l.str());
    }
  }
  for (const auto& t : p.sample_type()) {
    str(t.type());
    str(t.unit());
  }
  EXPECT_EQ(p.string_table(static_cast<int>(p.default_sample_type())), "inuse_space");
  EXPECT_EQ(p.string_table(static_cast<int>(p.period_type().type())), "space");
  EXPECT_EQ(p.string_table(static_cast<int>(p.period_type().unit())), "bytes");
}

std::vector<std::string> fixtureProfiles(const std::string& mode, const std::string& dir) {
  Child c(
      {std::string(LEAKSCOPE_BIN_DIR) + "/leakscope-heap-fixture", "--mode", mode, "--out", dir});
  EXPECT_EQ(c.wait(60000), 0) << c.err();
  std::vector<std::string> out;
  const json j = json::parse(c.out());
  for (const auto& p : j["profiles"]) out.push_back(p.get<std::string>());
  return out;
}

json showJson(const std::string& input) {
  const CliRun r = leakscope({"show", "--json", "--top", "100000", input});
  EXPECT_LE(r.status, 1) << r.err;
  return json::parse(r.out);
}

// An export, its file, and the check that it was written with exit 0.
std::string exportOf(const std::string& dir, const std::string& input, const std::string& base,
                     const std::string& name) {
  const std::string out = dir + "/" + name;
  std::vector<std::string> args = {"export", "--format", "pprof", out, input};
  if (!base.empty()) args.insert(args.end(), {"--base", base});
  const CliRun r = leakscope(args);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  return out;
}

// show's heap sites against pprof -top; then diff's heap rows against both
// pprof -base and our --base export. Full: exact; sampled: 1 byte per site
// (each side rounds its own unsampled estimate).
void expectPprofAgrees(const std::string& mode) {
  TempDir dir;
  const auto profiles = fixtureProfiles(mode, dir.path());
  ASSERT_EQ(profiles.size(), 6u);
  ASSERT_GT(decode(exportOf(dir.path(), profiles[5], "", "check.pb.gz")).sample_size(), 0);
  const long long slack = mode == "full" ? 0 : 1;
  const std::string last = exportOf(dir.path(), profiles[5], "", "last.pb.gz");
  const auto top = topFlat(dir.path(), {"-sample_index=inuse_space", last});
  expectSameFlat(top, byPprofName(showJson(profiles[5])["heap"]["top_sites"], "inuse_bytes"), slack,
                 mode + " show");
  EXPECT_TRUE(top.count("::leakyRemember")) << "the leak is a top function";

  const std::string first = exportOf(dir.path(), profiles[1], "", "first.pb.gz");
  const std::string growth = exportOf(dir.path(), profiles[5], profiles[1], "growth.pb.gz");
  const auto pprof_base = topFlat(dir.path(), {"-sample_index=inuse_space", "-base", first, last});
  const auto ours = topFlat(dir.path(), {"-sample_index=inuse_space", growth});
  EXPECT_EQ(ours, pprof_base) << "--base and pprof -base differ";
  const CliRun diff = leakscope({"diff", "--json", "--top", "100000", profiles[1], profiles[5]});
  ASSERT_LE(diff.status, 1) << diff.err;
  json heap_rows = json::array();
  const json d = json::parse(diff.out);
  for (const auto& row : d["rows"]) {
    if (row["group"] == "heap") heap_rows.push_back(row);
  }
  // diff rounds the difference, the export each side: at most 1 byte apart.
  expectSameFlat(ours, byPprofName(heap_rows, "delta_bytes"), slack, mode + " diff");
  EXPECT_LT(ours.at("::transientSpike"), 0) << "a freed spike is negative growth";
  EXPECT_GT(ours.at("::leakyRemember"), 0);

  const pp::Profile p = decode(last);
  expectValidProfile(p);
  expectValidProfile(decode(growth));
  std::vector<std::string> types;
  for (int i = 0; i < p.sample_type_size(); ++i) types.push_back(typeName(p, i));
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
  const std::string out = exportOf(dir.path(), input, "", "example.pb.gz");
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
  const pp::Profile p = decode(out);
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
  const std::string out = exportOf(dir.path(), target, base, "growth.pb.gz");
  const CliRun diff = leakscope({"diff", "--json", "--top", "100000", base, target});
  ASSERT_EQ(diff.status, 1) << diff.err;
  json heap = json::array(), tracked = json::array();
  const json d = json::parse(diff.out);
  for (auto row : d["rows"]) {
    if (row["group"] == "heap") heap.push_back(row);
    if (row["group"] == "tracked") {
      row["name"] = "[tracked] " + row["name"].get<std::string>();
      tracked.push_back(row);
    }
  }
  expectSameFlat(topFlat(dir.path(), {out}), byPprofName(heap, "delta_bytes"), 1, "heap");
  const auto kinds = topFlat(dir.path(), {"-sample_index=tracked_space", out});
  for (const auto& row : tracked) {
    const long long want = std::llround(row["delta_bytes"].get<double>());
    if (want == 0) continue;
    ASSERT_TRUE(kinds.count(row["name"])) << row;
    EXPECT_EQ(kinds.at(row["name"]), want) << row;
  }
  expectValidProfile(decode(out));
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
  const std::string out = exportOf(dir.path(), input, "", "live.pb.gz");

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

  const pp::Profile p = decode(out);
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
  const auto without = topFlat(dir.path(), {exportOf(dir.path(), moved, "", "without.pb.gz")});
  EXPECT_FALSE(without.count("::leakyRemember"));
  const std::string out = dir.path() + "/with.pb.gz";
  const CliRun r = leakscope({"export", "--format", "pprof", out, moved, "--binary", fixture});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto with = topFlat(dir.path(), {out});
  ASSERT_TRUE(with.count("::leakyRemember"));
  EXPECT_EQ(with.at("::leakyRemember"), 6291456) << "6 rounds of 1 MiB, exact";
  const pp::Profile p = decode(out);
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
  expectOneLineError(leakscope({"export", "--format", "svg", out, kLeak + "1.lsnap"}),
                     "unknown --format 'svg'");
  expectOneLineError(leakscope({"export", out, kLeak + "1.lsnap"}), "export needs --format pprof");
  expectOneLineError(leakscope({"export", "--format", "pprof", out}), "takes OUT.pb.gz and one");
  EXPECT_FALSE(fs::exists(out));
}

TEST(ExportPprof, UnwritableOutputLeavesNoFile) {
  TempDir dir;
  expectOneLineError(leakscope({"export", "--format", "pprof", dir.path() + "/no/such/x.pb.gz",
                                kLeak + "1.lsnap"}),
                     "cannot write");
  // A directory where the file should go: the rename fails, the temp file goes.
  fs::create_directory(dir.path() + "/taken");
  writeFile(dir.path() + "/taken/keep", "x");
  expectOneLineError(
      leakscope({"export", "--format", "pprof", dir.path() + "/taken", kLeak + "1.lsnap"}),
      "cannot write");
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(dir.path())) left.push_back(e.path().filename());
  EXPECT_EQ(left, std::vector<std::string>{"taken"});
}

TEST(ExportPprof, InputsWithoutAHeapProfileAreRefused) {
  TempDir dir;
  const std::string out = dir.path() + "/x.pb.gz";
  const CliRun v8 =
      leakscope({"export", "--format", "pprof", out, kData + "/v8/node5.heapsnapshot"});
  expectOneLineError(v8, "a V8 heap snapshot has no native heap profile to export");
  // The example's snapshot with its heap section as written with heap off.
  json snap = json::parse(readFile(kLeak + "1.lsnap"));
  snap["heap"] = {{"mode", "off"}, {"available", false}, {"reason", "heap mode is off"}};
  writeFile(dir.path() + "/off.lsnap", snap.dump());
  expectOneLineError(leakscope({"export", "--format", "pprof", out, dir.path() + "/off.lsnap"}),
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
      leakscope({"export", "--format", "pprof", out, full.back(), "--base", sampled.front()}),
      "a growth profile needs two of the same kind");
  expectOneLineError(
      leakscope({"export", "--format", "pprof", out, kLeak + "4.lsnap", "--base", sampled.front()}),
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
          leakscope({"export", "--format", "pprof", dir.path() + "/x.pb.gz", e.path()});
      EXPECT_TRUE(r.status == 0 || r.status == 2) << e.path() << ": " << r.status << r.err;
      if (r.status == 2) {
        EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << e.path() << ": " << r.err;
      }
      if (r.status == 0) expectValidProfile(decode(dir.path() + "/x.pb.gz"));
    }
  }
  EXPECT_GT(files, 10u);
}

}  // namespace
