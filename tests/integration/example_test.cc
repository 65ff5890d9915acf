// End-to-end tests of leakscope::diag through the real example program: a
// child process, real loopback sockets, real signals, real HTTP scrapes.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "test_support.h"

namespace leakscope {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Child;
using testing::eventually;
using testing::httpGet;
using testing::metricValue;
using testing::TempDir;

const std::string kExample = std::string(LEAKSCOPE_BIN_DIR) + "/leakscope-example";

// "leakscope-example pid=1 listen=127.0.0.1:5 metrics=... " -> {pid: 1, ...}
std::map<std::string, std::string> startFields(const std::string& line) {
  std::map<std::string, std::string> out;
  std::istringstream in(line);
  std::string word;
  while (in >> word) {
    const std::size_t eq = word.find('=');
    if (eq != std::string::npos) out[word.substr(0, eq)] = word.substr(eq + 1);
  }
  return out;
}

std::vector<std::string> snapshots(const std::string& dir) { return testing::lsnapFiles(dir); }

json load(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

const json& kindOf(const json& snap, const std::string& kind) {
  for (const auto& t : snap["tracked"]) {
    if (t["kind"] == kind) return t;
  }
  static const json kNone;
  return kNone;
}

// Runs the example until its rounds are done; the fixture owns the child.
struct Example {
  TempDir tmp;
  std::string snap_dir = tmp.path() + "/snaps";
  std::unique_ptr<Child> child;
  std::map<std::string, std::string> fields;

  explicit Example(std::vector<std::string> extra) {
    // A 16 KiB period samples each 64 KiB buffer with p = 1 - e^-4 = 0.98,
    // so heap assertions hold on every run, not on most.
    std::vector<std::string> argv = {kExample, "--snapshot-dir", snap_dir, "--sample-period",
                                     "16384"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    child = std::make_unique<Child>(argv);
    auto line = child->waitForLine("leakscope-example ");
    if (line) fields = startFields(*line);
  }
  bool roundsDone() { return child->waitForLine("rounds done:", 20000).has_value(); }
  // Sends SIGUSR2 and waits for snapshot number `n` to appear.
  std::string snapshot(std::size_t n) {
    kill(child->pid(), SIGUSR2);
    eventually([&] { return snapshots(snap_dir).size() >= n; });
    auto files = snapshots(snap_dir);
    return files.size() >= n ? files[n - 1] : std::string();
  }
};

TEST(ExampleProgram, Sigusr2SnapshotShowsLeakedObjectsTheirSocketsAndHeapSite) {
  Example ex({"--leak-every", "3", "--connections", "4", "--rounds", "6", "--interval-ms", "10"});
  ASSERT_FALSE(ex.fields.empty()) << ex.child->err();
  ASSERT_TRUE(ex.roundsDone()) << ex.child->err();
  // The server thread closes its ends of the closed connections on EOF; wait
  // until it has, so the snapshot sees the settled state.
  ASSERT_TRUE(eventually([&] {
    auto body = httpGet(ex.fields["metrics"], "/metrics");
    return body && metricValue(*body, "leakscope_tracked_objects{kind=\"example.session\"}") == 8.0;
  }));
  const std::string path = ex.snapshot(1);
  ASSERT_FALSE(path.empty()) << ex.child->err();
  const json snap = load(path);

  // 6 rounds x 4 connections = 24 opened; every 3rd kept: 8 leaked.
  const json& conns = kindOf(snap, "example.connection");
  ASSERT_FALSE(conns.is_null());
  EXPECT_EQ(conns["created_total"], 24);
  EXPECT_EQ(conns["destroyed_total"], 16);
  EXPECT_EQ(conns["live"], 8);
  EXPECT_EQ(conns["objects"].size(), 8u);
  EXPECT_EQ(conns["live_bytes"], 8 * 65536);
  // The server side holds the other end of each leaked connection.
  EXPECT_EQ(kindOf(snap, "example.session")["live"], 8);

  // Every leaked connection owns an ESTABLISHED socket to the listener.
  std::map<std::uint64_t, const json*> by_owner;
  for (const auto& s : snap["sockets"]) {
    if (!s["owner"].is_null()) by_owner[s["owner"].get<std::uint64_t>()] = &s;
  }
  for (const auto& o : conns["objects"]) {
    EXPECT_EQ(o["label"], "example-server");
    ASSERT_FALSE(o["fd"].is_null());
    const auto it = by_owner.find(o["id"].get<std::uint64_t>());
    ASSERT_NE(it, by_owner.end()) << "no socket owned by object " << o["id"];
    const json& s = *it->second;
    EXPECT_EQ(s["fd"], o["fd"]);
    EXPECT_EQ(s["state"], "ESTABLISHED");
    EXPECT_EQ(s["remote"], ex.fields["listen"]);
    EXPECT_EQ(s["peer"], "example-server");
  }

  // The heap profile names the function that allocated the leaked buffers.
  const json& heap = snap["heap"];
  ASSERT_TRUE(heap["available"].get<bool>()) << heap.dump();
  EXPECT_EQ(heap["format"], "heap_v2");
  EXPECT_EQ(heap["sample_period"], 16384);
  bool found = false;
  double estimated = 0;
  for (const auto& site : heap["sites"]) {
    const json& top = heap["frames"][site["stack"][0].get<std::size_t>()];
    if (top["function"].get<std::string>().find("allocateReceiveBuffer") == std::string::npos) {
      continue;
    }
    found = true;
    estimated += site["estimated_inuse_bytes"].get<double>();
    EXPECT_NE(top["module"].get<std::string>().find("leakscope-example"), std::string::npos);
    bool has_caller = false;
    for (const auto& id : site["stack"]) {
      const json& f = heap["frames"][id.get<std::size_t>()];
      if (f["function"].get<std::string>().find("example::Connection::open") != std::string::npos) {
        has_caller = true;
        EXPECT_NE(f["file"].get<std::string>().find("example.cc"), std::string::npos);
        EXPECT_GT(f["line"].get<int>(), 0);
      }
    }
    EXPECT_TRUE(has_caller) << site.dump();
  }
  EXPECT_TRUE(found) << "no heap site in allocateReceiveBuffer";
  // 8 leaked 64 KiB buffers; the unsampled estimate is within 2x of the truth.
  EXPECT_GT(estimated, 0.5 * 8 * 65536);
  EXPECT_LT(estimated, 2.0 * 8 * 65536);
  EXPECT_EQ(ex.child->terminate(), 0);
}

// A scrape and `leakscope sockets` over a snapshot of the same moment call
// each socket's peer by the same name: the outbound side by its configured
// name, the side the example accepted `inbound :PORT` (one rule, core's
// peerName, behind both).
TEST(ExampleProgram, AScrapeAndLeakscopeSocketsNameTheSamePeers) {
  Example ex({"--leak-every", "3", "--connections", "4", "--rounds", "6", "--interval-ms", "10"});
  ASSERT_FALSE(ex.fields.empty()) << ex.child->err();
  ASSERT_TRUE(ex.roundsDone()) << ex.child->err();
  const std::string listen = ex.fields["listen"];
  const std::string inbound = "inbound :" + listen.substr(listen.rfind(':') + 1);
  const auto series = [](const std::string& peer) {
    return "leakscope_sockets{peer=\"" + peer + "\",protocol=\"tcp\",state=\"ESTABLISHED\"}";
  };
  // Settled: the 8 kept connections, both ends, and nothing closing.
  std::optional<std::string> body;
  ASSERT_TRUE(eventually([&] {
    body = httpGet(ex.fields["metrics"], "/metrics");
    return body && metricValue(*body, series("example-server")) == 8.0 &&
           metricValue(*body, series(inbound)) == 8.0;
  })) << body.value_or("no scrape");
  EXPECT_FALSE(metricValue(*body, series("other")).has_value()) << *body;
  const std::string path = ex.snapshot(1);
  ASSERT_FALSE(path.empty()) << ex.child->err();

  // The snapshot records the runtime's name beside each socket ...
  for (const auto& s : load(path)["sockets"]) {
    if (s["state"] != "ESTABLISHED") continue;
    if (s["remote"] == listen) {
      EXPECT_EQ(s["peer"], "example-server") << s;
    }
    if (s["local"] == listen) {
      EXPECT_EQ(s["peer"], inbound) << s;
    }
  }
  // ... and the CLI groups by the same names.
  Child cli({std::string(LEAKSCOPE_BIN_DIR) + "/leakscope", "sockets", "--json", path});
  const int status = cli.wait(60000);
  ASSERT_TRUE(status == 0 || status == 1) << status << cli.err();
  const json j = json::parse(cli.out());
  // (A scrape's own connection to the metrics port may still be open: it is
  // another peer, `inbound :METRICS_PORT`, and not counted here.)
  std::map<std::string, std::int64_t> established;  // peer -> count
  for (const auto& g : j["groups"]) {
    if (g["state"] == "ESTABLISHED" && (g["peer"] == "example-server" || g["peer"] == inbound)) {
      established[g["peer"]] += g["counts"].back().get<int>();
    }
  }
  EXPECT_EQ(established, (std::map<std::string, std::int64_t>{{"example-server", 8}, {inbound, 8}}))
      << j["groups"].dump();
  for (const auto& s : j["sockets"]) {
    if (s["state"] != "ESTABLISHED") continue;
    if (s["remote"] == listen) {
      EXPECT_EQ(s["peer"], "example-server") << s;
    }
    if (s["local"] == listen) {
      EXPECT_EQ(s["peer"], inbound) << s;
    }
  }
  EXPECT_EQ(ex.child->terminate(), 0);
}

TEST(ExampleProgram, FullHeapModeGivesExactInUseAndAllocatedCounts) {
  Example ex({"--heap-mode", "full", "--leak-every", "3", "--connections", "4", "--rounds", "6",
              "--interval-ms", "10"});
  ASSERT_TRUE(ex.roundsDone()) << ex.child->err();
  const json snap = load(ex.snapshot(1));
  const json& heap = snap["heap"];
  ASSERT_TRUE(heap["available"].get<bool>()) << heap.dump();
  EXPECT_EQ(heap["mode"], "full");
  EXPECT_EQ(heap["format"], "heapprofile");
  EXPECT_GE(heap["totals"]["alloc_bytes"].get<std::int64_t>(),
            heap["totals"]["inuse_bytes"].get<std::int64_t>());
  std::int64_t inuse = 0;
  std::int64_t allocated = 0;
  for (const auto& site : heap["sites"]) {
    const json& top = heap["frames"][site["stack"][0].get<std::size_t>()];
    if (top["function"].get<std::string>().find("allocateReceiveBuffer") == std::string::npos) {
      continue;
    }
    inuse += site["inuse_objects"].get<std::int64_t>();
    allocated += site["alloc_objects"].get<std::int64_t>();
    EXPECT_FALSE(site.contains("estimated_inuse_bytes"));  // exact: nothing to estimate
  }
  // 24 buffers allocated, 8 of them (the leaked connections') still in use.
  EXPECT_EQ(inuse, 8);
  EXPECT_EQ(allocated, 24);
  EXPECT_EQ(ex.child->terminate(), 0);
}

TEST(ExampleProgram, ARealScrapePassesPromtoolCheckMetrics) {
  Example ex({"--leak-every", "2", "--rounds", "2", "--interval-ms", "10"});
  ASSERT_TRUE(ex.roundsDone()) << ex.child->err();
  auto body = httpGet(ex.fields["metrics"], "/metrics");
  ASSERT_TRUE(body.has_value());
  const std::string file = ex.tmp.path() + "/scrape.txt";
  std::ofstream(file) << *body;
  const std::string out_file = ex.tmp.path() + "/promtool.out";
  const std::string cmd = "promtool check metrics < " + file + " > " + out_file + " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream in(out_file);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string out = ss.str();
  ASSERT_TRUE(WIFEXITED(rc)) << cmd;
  ASSERT_NE(WEXITSTATUS(rc), 127) << "promtool not installed (scripts/setup.sh installs it)";
  EXPECT_EQ(WEXITSTATUS(rc), 0) << out;
  EXPECT_EQ(out, "") << "promtool lint findings:\n" << out;
  EXPECT_EQ(ex.child->terminate(), 0);
}

TEST(ExampleProgram, FiftySignalsInABurstLeaveItAliveAndEveryFileValid) {
  Example ex({"--leak-every", "2", "--rounds", "3", "--interval-ms", "10"});
  ASSERT_TRUE(ex.roundsDone()) << ex.child->err();
  for (int i = 0; i < 50; ++i) ASSERT_EQ(kill(ex.child->pid(), SIGUSR2), 0);
  ASSERT_TRUE(eventually([&] { return !snapshots(ex.snap_dir).empty(); }));
  EXPECT_TRUE(ex.child->alive());
  ASSERT_TRUE(httpGet(ex.fields["metrics"], "/metrics").has_value()) << "not serving";
  // A clean exit waits for a snapshot in progress; after it, every file in the
  // directory must be a complete snapshot (no temp file, no torn JSON).
  EXPECT_EQ(ex.child->terminate(), 0);
  for (const auto& e : fs::directory_iterator(ex.snap_dir)) {
    EXPECT_EQ(e.path().extension(), ".lsnap") << "left behind: " << e.path();
    struct stat st {};
    ASSERT_EQ(stat(e.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    const json j = load(e.path());  // throws on a torn or partial file
    EXPECT_EQ(j["format"], "leakscope-snapshot");
    EXPECT_EQ(kindOf(j, "example.connection")["live"], 6);
  }
}

TEST(ExampleProgram, MetricsCountersMoveAndActiveEqualsCreatedMinusDestroyed) {
  // 40 rounds x 2 connections, every 5th kept: the example reports how many
  // it opened and kept, an independent count to check the gauges against.
  Example ex({"--leak-every", "5", "--connections", "2", "--interval-ms", "50", "--rounds", "40"});
  ASSERT_FALSE(ex.fields["metrics"].empty());
  const std::string conn = "{kind=\"example.connection\"}";
  struct Reading {
    double created, destroyed, live, bytes;
  };
  auto read = [&]() -> std::optional<Reading> {
    auto body = httpGet(ex.fields["metrics"], "/metrics");
    if (!body) return std::nullopt;
    const auto c = metricValue(*body, "leakscope_tracked_created_total" + conn);
    const auto d = metricValue(*body, "leakscope_tracked_destroyed_total" + conn);
    const auto l = metricValue(*body, "leakscope_tracked_objects" + conn);
    const auto b = metricValue(*body, "leakscope_tracked_bytes" + conn);
    if (!c || !d || !l || !b) return std::nullopt;
    return Reading{*c, *d, *l, *b};
  };
  // While rounds run: counters only ever move forward, and they do move.
  std::optional<Reading> first;
  std::optional<Reading> last;
  int scrapes = 0;
  ASSERT_TRUE(eventually(
      [&] {
        auto r = read();
        if (!r) return false;
        ++scrapes;
        EXPECT_EQ(r->live, r->created - r->destroyed);
        if (last) {
          EXPECT_GE(r->created, last->created);
          EXPECT_GE(r->destroyed, last->destroyed);
        }
        if (!first) first = r;
        last = r;
        return last->created >= first->created + 10 && last->destroyed > first->destroyed;
      },
      20000));
  EXPECT_GT(scrapes, 1);

  // Idle after the rounds: the gauges equal what the program itself counted.
  auto done = ex.child->waitForLine("rounds done:", 20000);
  ASSERT_TRUE(done.has_value()) << ex.child->err();
  const auto f = startFields(*done);
  const double opened = std::stod(f.at("opened"));
  const double leaked = std::stod(f.at("leaked"));
  EXPECT_EQ(opened, 80);
  EXPECT_EQ(leaked, 16);
  auto idle = read();
  ASSERT_TRUE(idle.has_value());
  EXPECT_EQ(idle->created, opened);
  EXPECT_EQ(idle->destroyed, opened - leaked);
  EXPECT_EQ(idle->live, leaked);
  EXPECT_EQ(idle->bytes, leaked * 65536);

  auto body = httpGet(ex.fields["metrics"], "/metrics");
  ASSERT_TRUE(body.has_value());
  // Each kept connection is an ESTABLISHED socket to the named peer.
  EXPECT_EQ(
      metricValue(
          *body,
          "leakscope_sockets{peer=\"example-server\",protocol=\"tcp\",state=\"ESTABLISHED\"}"),
      leaked);
  EXPECT_GT(metricValue(*body, "process_open_fds").value_or(0), 2 * leaked);
  EXPECT_GT(metricValue(*body, "process_resident_memory_bytes").value_or(0), 0);
  EXPECT_GT(metricValue(*body, "leakscope_allocator_allocated_bytes").value_or(0), leaked * 65536);
  EXPECT_EQ(ex.child->terminate(), 0);
}

TEST(ExampleProgram, UnwritableSnapshotDirIsAClearErrorAndItKeepsRunning) {
  TempDir tmp;
  std::ofstream(tmp.path() + "/file") << "x";
  const std::string bad = tmp.path() + "/file/snaps";
  Child child({kExample, "--snapshot-dir", bad, "--rounds", "2", "--interval-ms", "10"});
  auto line = child.waitForLine("leakscope-example ");
  ASSERT_TRUE(line.has_value()) << child.err();
  const auto f = startFields(*line);
  EXPECT_TRUE(eventually([&] { return child.err().find(bad) != std::string::npos; }))
      << child.err();
  EXPECT_NE(child.err().find("Not a directory"), std::string::npos) << child.err();
  kill(child.pid(), SIGUSR2);
  EXPECT_TRUE(eventually([&] { return child.err().find("snapshot failed") != std::string::npos; }));
  EXPECT_TRUE(child.alive());
  auto body = httpGet(f.at("metrics"), "/metrics");
  ASSERT_TRUE(body.has_value());
  EXPECT_EQ(metricValue(*body, "leakscope_snapshot_failures_total"), 1.0);
  EXPECT_EQ(child.terminate(), 0);
}

TEST(ExampleProgram, FullByteBudgetIsAClearErrorAndItKeepsRunning) {
  Example ex({"--snapshot-max-bytes", "512", "--rounds", "2", "--interval-ms", "10"});
  ASSERT_TRUE(ex.roundsDone());
  kill(ex.child->pid(), SIGUSR2);
  EXPECT_TRUE(eventually([&] {
    return ex.child->err().find("byte budget (512)") != std::string::npos;
  })) << ex.child->err();
  EXPECT_TRUE(ex.child->alive());
  EXPECT_TRUE(snapshots(ex.snap_dir).empty());
  EXPECT_EQ(ex.child->terminate(), 0);
}

TEST(ExampleProgram, InvalidMetricsAddressIsAClearErrorAndSnapshotsStillWork) {
  Example ex({"--metrics-address", "127.0.0.1:70000", "--rounds", "2", "--interval-ms", "10"});
  ASSERT_FALSE(ex.fields.empty()) << ex.child->err();
  EXPECT_EQ(ex.fields["metrics"], "off");
  EXPECT_NE(ex.child->err().find("'127.0.0.1:70000'"), std::string::npos) << ex.child->err();
  EXPECT_NE(ex.child->err().find("not 0-65535"), std::string::npos) << ex.child->err();
  ASSERT_TRUE(ex.roundsDone());
  EXPECT_FALSE(ex.snapshot(1).empty());
  EXPECT_TRUE(ex.child->alive());
  EXPECT_EQ(ex.child->terminate(), 0);
}

TEST(ExampleProgram, BadFlagsExitTwoWithTheFlagNamed) {
  Child child({kExample, "--leak-every", "many"});
  EXPECT_EQ(child.wait(), 2);
  EXPECT_NE(child.err().find("--leak-every: 'many'"), std::string::npos) << child.err();
}

// What CLI11 finds itself (an unknown flag, a missing value, a stray word)
// is still one line naming it, exit 2; --help is the program's own text.
TEST(ExampleProgram, UsageErrorsAreOneLineAndHelpIsItsOwnText) {
  for (const auto& [args, says] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--bogus"}, "--bogus"},
           {{"--connections"}, "--connections"},
           {{"--connections", "0"}, "--connections: '0'"},
           {{"--buffer-bytes", "8"}, "--buffer-bytes: '8'"},
           {{"--heap-mode", "bad"}, "bad"},
           {{"--memory-pressure", "0.8,1.5"}, "--memory-pressure: memory-pressure fraction 1.5"},
           {{"--memory-pressure", "0.8,much"}, "--memory-pressure"},
           {{"--memory-check-interval-ms", "-1"}, "--memory-check-interval-ms: '-1'"},
           {{"stray"}, "stray"}}) {
    std::vector<std::string> argv = {kExample};
    argv.insert(argv.end(), args.begin(), args.end());
    Child child(argv);
    EXPECT_EQ(child.wait(), 2) << says;
    const std::string err = child.err();
    EXPECT_EQ(err.rfind("leakscope-example: ", 0), 0u) << err;
    EXPECT_NE(err.find(says), std::string::npos) << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  }
  Child help({kExample, "--help"});
  EXPECT_EQ(help.wait(), 0);
  EXPECT_EQ(help.out().rfind("usage: leakscope-example [options]", 0), 0u) << help.out();
  EXPECT_NE(help.out().find("--snapshot-interval-ms MS"), std::string::npos) << help.out();
  EXPECT_NE(help.out().find("--memory-pressure F,F,..."), std::string::npos) << help.out();
}

}  // namespace
}  // namespace leakscope
