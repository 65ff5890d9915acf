#include "pprof_check.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <sstream>

#include "test_support.h"

namespace leakscope::testing {

namespace pp = perftools::profiles;
using json = nlohmann::json;

CliRun runCommand(const std::vector<std::string>& argv) {
  Child c(argv);
  CliRun r;
  r.status = c.wait(120000);
  r.out = c.out();
  r.err = c.err();
  return r;
}

CliRun runLeakscope(std::vector<std::string> args) {
  args.insert(args.begin(), std::string(LEAKSCOPE_BIN_DIR) + "/leakscope");
  return runCommand(args);
}

std::string exportPprof(const std::string& dir, const std::string& input, const std::string& base,
                        const std::string& name) {
  const std::string out = dir + "/" + name;
  std::vector<std::string> args = {"export", "--format", "pprof", out, input};
  if (!base.empty()) args.insert(args.end(), {"--base", base});
  const CliRun r = runLeakscope(args);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  return out;
}

json showJson(const std::string& input) {
  const CliRun r = runLeakscope({"show", "--json", "--top", "100000", input});
  EXPECT_LE(r.status, 1) << r.err;
  return json::parse(r.out);
}

json diffRows(const json& diff, const std::string& group) {
  json rows = json::array();
  for (const auto& row : diff["rows"]) {
    if (row["group"] == group) rows.push_back(row);
  }
  return rows;
}

namespace {

std::string goBinary() {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (::access((dir + "/go").c_str(), X_OK) == 0) return dir + "/go";
  }
  return "";
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

}  // namespace

CliRun goToolPprof(const std::string& home, std::vector<std::string> args) {
  const std::string go = goBinary();
  EXPECT_FALSE(go.empty()) << "go not on PATH: scripts/setup.sh installs golang-go";
  std::vector<std::string> argv = {
      "/usr/bin/env", "HOME=" + home, "GOCACHE=" + home + "/gocache", "GOPATH=" + home + "/gopath",
      "GOPROXY=off",  "GOFLAGS=",     "PPROF_TMPDIR=" + home,         go,
      "tool",         "pprof"};
  argv.insert(argv.end(), args.begin(), args.end());
  return runCommand(argv);
}

TopFlat topFlat(const std::string& home, const std::vector<std::string>& args) {
  std::vector<std::string> a = {"-top", "-unit=B", "-nodefraction=0", "-nodecount=100000"};
  a.insert(a.end(), args.begin(), args.end());
  const CliRun r = goToolPprof(home, a);
  EXPECT_EQ(r.status, 0) << r.err;
  TopFlat out;
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

Flat byPprofName(const json& rows, const char* value) {
  Flat f;
  for (const auto& r : rows) {
    const std::string n = pprofName(r["name"].get<std::string>());
    f.bytes[n] += std::llround(r[value].get<double>());
    ++f.rows[n];
  }
  return f;
}

void expectSameFlat(const TopFlat& got, const Flat& want, long long slack,
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

pp::Profile decodePprof(const std::string& path) {
  pp::Profile p;
  EXPECT_TRUE(p.ParseFromString(gunzip(readFile(path)))) << path << ": not a Profile";
  return p;
}

std::string sampleTypeName(const pp::Profile& p, int i) {
  return p.string_table(static_cast<int>(p.sample_type(i).type()));
}

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

}  // namespace leakscope::testing
