// The seed story's incident, replayed and caught (issue #6), end to end:
// pushdaemon against a real MariaDB and the mock push server runs five
// schedules one after the other, a `kill -USR2` snapshot after each, and
// `leakscope trend --json` judges the series.
//  - Drill on (`--leak-drill`): every schedule leaves its APNs client open.
//    trend exits 1 and names `apns.connection`, whose live count grows by
//    exactly the pool's max_connections per schedule; the connections of the
//    first schedule are the survivors, each holding an ESTABLISHED socket to
//    the mock's port, and the mock counts the same open connections.
//    The verdict's first line is the chain's top (issue #16): the abandoned
//    `apns.provider`s, held by the drill's list, each holding its
//    connections, each holding its socket.
//  - Drill off: trend exits 0, and neither the mock nor the daemon's own
//    metric ever sees more open APNs connections than the pool's maximum.
//  - pprof (issue #16): the drill's last snapshot, exported with `leakscope
//    export --format pprof`, reads in `go tool pprof -top` with the heap
//    bytes per function and the tracked kinds' counts and bytes `leakscope
//    show` gives; its growth since the first snapshot (`--base`) with the
//    heap bytes `leakscope diff` gives.
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "daemon_test_support.h"
#include "gtest/gtest.h"
#include "pprof_check.h"

namespace leakscope::testing {
namespace {

constexpr int kSchedules = 5;
constexpr int kApnsMax = 3;  // apns.max_connections
constexpr int kFcmMax = 2;   // fcm.max_connections
constexpr int kApnsTokens = 1500;
constexpr int kFcmTokens = 100;

struct AfterSchedule {
  double tracked_apns = -1;  // leakscope_tracked_objects{kind="apns.connection"}
  double cx_active = -1;     // pushdaemon_apns_upstream_cx_active
  double tracked_fcm = -1;
  double tracked_oauth = -1;
  int mock_open = -1;  // the mock's own count of open connections
};

struct Drill {
  int mock_port = 0;
  std::vector<AfterSchedule> after;
  int mock_peak = -1;
  int trend_status = -1;
  nlohmann::json trend;
  std::string trend_err;
  std::string trend_text;  // the same trend, as text
  std::string log;
  int exit_status = -1;
  int mock_open_after_exit = -1;
};

class LeakDrill : public DaemonStackTest {
 protected:
  void runDrill(bool drill, Drill& r, const Settings& extra = {});
  void addAppWithTokens();
  void runSchedules(DaemonProcess& d, Drill& r);
  AfterSchedule sample(const DaemonProcess& d) const;
  void runTrend(Drill& r) const;
  std::string snapshotDir() const { return dir_.path() + "/snapshots"; }

  std::uint64_t app_ = 0;
};

// Runs kSchedules schedules (APNs and FCM tokens) through one daemon, with
// a snapshot after each, and `leakscope trend --json` over the snapshots;
// `extra` settings override the drill's.
void LeakDrill::runDrill(bool drill, Drill& r, const Settings& extra) {
  r.mock_port = mock_.port();
  ASSERT_NO_FATAL_FAILURE(addAppWithTokens());
  // Few streams per connection: every schedule keeps requests queued long
  // enough for its pool to open all of its connections.
  Settings settings = {{"apns.max_connections", std::to_string(kApnsMax)},
                       {"apns.max_streams", "10"},
                       {"fcm.max_connections", std::to_string(kFcmMax)},
                       {"daemon.leak_drill", drill ? "true" : "false"},
                       {"daemon.log_level", "\"info\""}};
  for (const auto& [key, value] : extra) settings[key] = value;
  DaemonProcess d(db_, mock_, dir_.path(), settings);
  ASSERT_TRUE(d.start()) << d.log();
  ASSERT_NO_FATAL_FAILURE(runSchedules(d, r));
  r.mock_peak = mock_.stats().value("peak_open_connections", -1);
  runTrend(r);
  r.exit_status = d.terminate();
  r.log = d.log();
  r.mock_open_after_exit = mock_.stats().value("open_connections", -1);
}

void LeakDrill::addAppWithTokens() {
  app_ = createTestApp(*conn_, mock_, dir_.path() + "/app", "game");
  ASSERT_NE(app_, 0u);
  std::vector<std::string> apns, fcm;
  for (int i = 0; i < kApnsTokens; ++i) apns.push_back(deviceToken(std::uint64_t(i), "a0"));
  for (int i = 0; i < kFcmTokens; ++i) fcm.push_back(deviceToken(std::uint64_t(i), "f0"));
  ASSERT_EQ(insertTokens(*conn_, app_, "apns", apns).size(), apns.size());
  ASSERT_EQ(insertTokens(*conn_, app_, "fcm", fcm).size(), fcm.size());
}

// One schedule after the other, each followed by a sample and a snapshot.
void LeakDrill::runSchedules(DaemonProcess& d, Drill& r) {
  for (int i = 1; i <= kSchedules; ++i) {
    auto sid = pushdaemon::addSchedule(*conn_, app_, bothPlatformsPayload(), -1);
    ASSERT_TRUE(sid.ok());
    ASSERT_TRUE(waitForState(*conn_, *sid, "done", 30000))
        << "schedule " << i << " state "
        << (status(*conn_, *sid) ? status(*conn_, *sid)->state : "?") << "\n"
        << d.log();
    r.after.push_back(sample(d));
    d.signal(SIGUSR2);
    ASSERT_TRUE(eventually([&] { return lsnapFiles(snapshotDir()).size() == std::size_t(i); }))
        << "snapshot " << i << " was not written\n"
        << d.log();
  }
}

AfterSchedule LeakDrill::sample(const DaemonProcess& d) const {
  AfterSchedule a;
  const std::string m = d.metrics();
  a.tracked_apns =
      metricValue(m, R"(leakscope_tracked_objects{kind="apns.connection"})").value_or(-1);
  a.tracked_fcm =
      metricValue(m, R"(leakscope_tracked_objects{kind="fcm.connection"})").value_or(-1);
  a.tracked_oauth =
      metricValue(m, R"(leakscope_tracked_objects{kind="oauth.connection"})").value_or(0);
  a.cx_active = metricValue(m, "pushdaemon_apns_upstream_cx_active").value_or(-1);
  a.mock_open = mock_.stats().value("open_connections", -1);
  return a;
}

void LeakDrill::runTrend(Drill& r) const {
  std::vector<std::string> argv = {std::string(LEAKSCOPE_BIN_DIR) + "/leakscope", "trend", "--json",
                                   "--survivors", "100"};
  for (const auto& s : lsnapFiles(snapshotDir())) argv.push_back(s);
  Child trend(argv);
  r.trend_status = trend.wait(30000);
  r.trend = nlohmann::json::parse(trend.out(), nullptr, false);
  r.trend_err = trend.err();
  argv[2] = "--width=0";  // for --json: text, lines unwrapped
  Child text(argv);
  text.wait(30000);
  r.trend_text = text.out();
}

const nlohmann::json* suspect(const nlohmann::json& trend, const std::string& group,
                              const std::string& name) {
  for (const auto& s : trend["suspects"]) {
    if (s.value("group", "") == group && s.value("name", "") == name) return &s;
  }
  return nullptr;
}

TEST_F(LeakDrill, TrendNamesTheApnsConnectionsEveryScheduleLeavesOpen) {
  Drill r;
  runDrill(true, r);
  if (HasFatalFailure()) return;
  ASSERT_EQ(r.trend_status, 1) << r.trend_err << r.trend.dump(2);
  ASSERT_TRUE(r.trend.is_object()) << r.trend_err;

  // The kind, its exact growth, its survivors.
  const nlohmann::json* conns = suspect(r.trend, "tracked", "apns.connection");
  ASSERT_NE(conns, nullptr) << r.trend.dump(2);
  EXPECT_EQ(conns->value("verdict", ""), "steady");
  std::vector<int> expected;
  for (int i = 1; i <= kSchedules; ++i) expected.push_back(i * kApnsMax);
  EXPECT_EQ((*conns)["objects"].get<std::vector<int>>(), expected);
  EXPECT_EQ(conns->value("delta_objects", 0), (kSchedules - 1) * kApnsMax);
  EXPECT_DOUBLE_EQ(conns->value("growth_objects_per_interval", 0.0), double(kApnsMax));
  EXPECT_EQ(conns->value("growing_intervals", 0), kSchedules - 1);
  // The first schedule's connections were alive in every snapshot, each
  // still ESTABLISHED to the push server.
  ASSERT_EQ(conns->value("survivor_count", 0), kApnsMax);
  ASSERT_EQ((*conns)["survivors"].size(), std::size_t(kApnsMax));
  const std::string to_mock = " -> 127.0.0.1:" + std::to_string(r.mock_port) + " ESTABLISHED";
  for (const auto& s : (*conns)["survivors"]) {
    const std::string sock = s.value("socket", "");
    EXPECT_EQ(sock.rfind("tcp 127.0.0.1:", 0), 0u) << sock;
    EXPECT_TRUE(sock.ends_with(to_mock)) << sock << " (expected ..." << to_mock << ")";
    EXPECT_EQ(s.value("label", ""), "localhost");
  }
  // One provider per schedule, the first one surviving.
  const nlohmann::json* providers = suspect(r.trend, "tracked", "apns.provider");
  ASSERT_NE(providers, nullptr) << r.trend.dump(2);
  EXPECT_EQ((*providers)["objects"], nlohmann::json({1, 2, 3, 4, 5}));
  EXPECT_EQ(providers->value("survivor_count", 0), 1);
  // FCM is not drilled: its pool stays bounded and is not a suspect.
  EXPECT_EQ(suspect(r.trend, "tracked", "fcm.connection"), nullptr);

  // One chain explains them: the providers the drill's list abandoned hold
  // the connections, which hold the sockets to the mock.
  const std::string sockets_to_mock =
      "other (127.0.0.1:" + std::to_string(r.mock_port) + ") ESTABLISHED";
  ASSERT_FALSE(r.trend["chains"].empty()) << r.trend.dump(2);
  const nlohmann::json& chain = r.trend["chains"][0];
  ASSERT_EQ(chain["members"].size(), 3u) << chain.dump(2);
  EXPECT_EQ(chain["members"][0]["name"], "apns.provider");
  EXPECT_EQ(chain["members"][1]["name"], "apns.connection");
  EXPECT_EQ(chain["members"][1]["depth"], 1);
  EXPECT_EQ(chain["members"][1]["each"], kApnsMax);
  EXPECT_EQ(chain["members"][2]["name"], sockets_to_mock);
  EXPECT_EQ(chain["members"][2]["depth"], 2);
  EXPECT_EQ(chain["held_by"], "pushdaemon.leak_drill");
  const std::string top = "apns.provider +1 per interval, never destroyed, holds " +
                          std::to_string(kApnsMax) + " apns.connection each \u2192 " +
                          std::to_string(kApnsMax) + " ESTABLISHED sockets each";
  EXPECT_EQ(chain["summary"], top);
  // The text verdict's first line is that top.
  const auto verdict = r.trend_text.find("Leak suspects");
  ASSERT_NE(verdict, std::string::npos) << r.trend_text;
  const auto line = r.trend_text.find('\n', verdict) + 1;
  EXPECT_EQ(r.trend_text.substr(line, r.trend_text.find('\n', line) - line), "  \u25b8 " + top)
      << r.trend_text;
  // The first schedule's connections: held by its provider, held by the list.
  for (const auto& s : (*conns)["survivors"]) {
    const std::string held = s.value("chain", "");
    EXPECT_EQ(held.rfind("pushdaemon.leak_drill#", 0), 0u) << held;
    EXPECT_NE(held.find(" \u2192 apns.provider#"), std::string::npos) << held;
  }

  // Every figure agrees after every schedule: leakscope's tracked objects,
  // the transport's own gauge, and the connections the mock has open (all
  // of the daemon's connections go to the mock).
  for (int i = 0; i < kSchedules; ++i) {
    const AfterSchedule& a = r.after[std::size_t(i)];
    SCOPED_TRACE("after schedule " + std::to_string(i + 1));
    EXPECT_EQ(a.tracked_apns, (i + 1) * kApnsMax);
    EXPECT_EQ(a.cx_active, (i + 1) * kApnsMax);
    EXPECT_EQ(a.mock_open, a.tracked_apns + a.tracked_fcm + a.tracked_oauth);
  }
  // ... and so do the sockets in the last snapshot: one ESTABLISHED socket
  // to the mock's port per connection the mock has open.
  const nlohmann::json* socks = suspect(
      r.trend, "socket", "other (127.0.0.1:" + std::to_string(r.mock_port) + ") ESTABLISHED");
  ASSERT_NE(socks, nullptr) << r.trend.dump(2);
  EXPECT_EQ((*socks)["objects"].back().get<int>(), r.after.back().mock_open);

  // Loudly logged: at start, and once per schedule.
  EXPECT_NE(r.log.find("LEAK DRILL ON"), std::string::npos) << r.log;
  std::size_t per_schedule = 0;
  for (std::size_t at = r.log.find("LEAK DRILL: schedule "); at != std::string::npos;
       at = r.log.find("LEAK DRILL: schedule ", at + 1)) {
    ++per_schedule;
  }
  EXPECT_EQ(per_schedule, std::size_t(kSchedules)) << r.log;
  // SIGTERM still ends the drill cleanly, leaked connections closed.
  EXPECT_EQ(r.exit_status, 0) << r.log;
  EXPECT_EQ(r.mock_open_after_exit, 0);
}

TEST_F(LeakDrill, WithoutTheDrillTrendIsCleanAndConnectionsStayWithinThePool) {
  Drill r;
  runDrill(false, r);
  if (HasFatalFailure()) return;
  EXPECT_EQ(r.trend_status, 0) << r.trend_err << r.trend.dump(2);
  ASSERT_TRUE(r.trend.is_object()) << r.trend_err;
  EXPECT_TRUE(r.trend["suspects"].empty()) << r.trend["suspects"].dump(2);
  EXPECT_TRUE(r.trend["chains"].empty()) << r.trend["chains"].dump(2);
  for (int i = 0; i < kSchedules; ++i) {
    const AfterSchedule& a = r.after[std::size_t(i)];
    SCOPED_TRACE("after schedule " + std::to_string(i + 1));
    // One pool, reused: exactly its connections, never more.
    EXPECT_EQ(a.tracked_apns, kApnsMax);
    EXPECT_EQ(a.cx_active, kApnsMax);
    EXPECT_EQ(a.mock_open, a.tracked_apns + a.tracked_fcm + a.tracked_oauth);
  }
  // The mock's high-water mark over the whole run: one APNs pool, one FCM
  // pool and the OAuth connection, never more.
  EXPECT_GE(r.mock_peak, kApnsMax);
  EXPECT_LE(r.mock_peak, kApnsMax + kFcmMax + 1);
  EXPECT_EQ(r.log.find("LEAK DRILL"), std::string::npos);
  EXPECT_EQ(r.exit_status, 0) << r.log;
  EXPECT_EQ(r.mock_open_after_exit, 0);
}

// `go tool pprof -top` on the export of a pushdaemon snapshot: per function
// the heap bytes of show's top sites (the daemon's heap is sampled: each
// side rounds its own unsampled estimate, so 1 byte per site apart at most),
// and per tracked kind exactly show's live count (tracked_objects) and live
// bytes (tracked_space), under its `[tracked] KIND` frame.
void expectPprofTopMatchesShow(const std::string& home, const std::string& snapshot) {
  const std::string out = exportPprof(home, snapshot, "", "last.pb.gz");
  const nlohmann::json show = showJson(snapshot);
  ASSERT_EQ(show["heap"]["mode"], "sampled") << show["heap"].dump();
  ASSERT_FALSE(show["heap"]["top_sites"].empty()) << show["heap"].dump();
  const TopFlat heap = topFlat(home, {"-sample_index=inuse_space", out});
  expectSameFlat(heap, byPprofName(show["heap"]["top_sites"], "inuse_bytes"), 1, "show heap");
  const TopFlat objects = topFlat(home, {"-sample_index=tracked_objects", out});
  const TopFlat space = topFlat(home, {"-sample_index=tracked_space", out});
  ASSERT_FALSE(show["tracked"].empty());
  std::size_t live_kinds = 0;
  for (const auto& k : show["tracked"]) {
    const std::string frame = "[tracked] " + k["kind"].get<std::string>();
    const auto live = k["live"].get<long long>(), bytes = k["live_bytes"].get<long long>();
    EXPECT_EQ(objects.count(frame) ? objects.at(frame) : 0, live) << frame;
    EXPECT_EQ(space.count(frame) ? space.at(frame) : 0, bytes) << frame;
    if (live != 0) ++live_kinds;
  }
  EXPECT_EQ(objects.size(), live_kinds) << "one frame per live kind, no other";
  ASSERT_TRUE(objects.count("[tracked] apns.connection")) << "the leaking kind is exported";
  EXPECT_EQ(objects.at("[tracked] apns.connection"), kSchedules * kApnsMax);
  expectValidProfile(decodePprof(out));
}

// The growth profile (`--base FIRST`) against `leakscope diff FIRST LAST`:
// per function the heap rows' delta_bytes (diff rounds the difference, the
// export each side: 1 byte per site apart at most), and the kinds' growth.
void expectPprofGrowthMatchesDiff(const std::string& home, const std::string& first,
                                  const std::string& last) {
  const std::string growth = exportPprof(home, last, first, "growth.pb.gz");
  const CliRun diff = runLeakscope({"diff", "--json", "--top", "100000", first, last});
  ASSERT_EQ(diff.status, 1) << "the drill's growth is a leak\n" << diff.err << diff.out;
  const nlohmann::json d = nlohmann::json::parse(diff.out);
  ASSERT_FALSE(diffRows(d, "heap").empty()) << diff.out;
  expectSameFlat(topFlat(home, {"-sample_index=inuse_space", growth}),
                 byPprofName(diffRows(d, "heap"), "delta_bytes"), 1, "diff heap");
  const TopFlat kinds = topFlat(home, {"-sample_index=tracked_space", growth});
  for (const auto& row : diffRows(d, "tracked")) {
    const std::string frame = "[tracked] " + row["name"].get<std::string>();
    const long long want = std::llround(row["delta_bytes"].get<double>());
    EXPECT_EQ(kinds.count(frame) ? kinds.at(frame) : 0, want) << row;
  }
  const TopFlat grown = topFlat(home, {"-sample_index=tracked_objects", growth});
  ASSERT_TRUE(grown.count("[tracked] apns.connection"));
  EXPECT_EQ(grown.at("[tracked] apns.connection"), (kSchedules - 1) * kApnsMax);
  expectValidProfile(decodePprof(growth));
}

TEST_F(LeakDrill, PprofExportOfItsSnapshotsMatchesShowAndDiff) {
  Drill r;
  // tcmalloc samples every 4 KiB instead of 512 KiB: dozens of the daemon's
  // heap sites (TLS, HTTP/2, MariaDB, its own code) to compare by name, and
  // heap growth between the first and the last snapshot always sampled.
  runDrill(true, r, {{"diag.heap_sample_bytes", "4096"}});
  if (HasFatalFailure()) return;
  const std::vector<std::string> snaps = lsnapFiles(snapshotDir());
  ASSERT_EQ(snaps.size(), std::size_t(kSchedules));
  TempDir home;  // the exports, and go's caches
  expectPprofTopMatchesShow(home.path(), snaps.back());
  expectPprofGrowthMatchesDiff(home.path(), snaps.front(), snaps.back());
}

}  // namespace
}  // namespace leakscope::testing
