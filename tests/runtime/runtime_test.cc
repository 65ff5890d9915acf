#include "leakscope/diag/runtime.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "leakscope/diag/metrics.h"
#include "leakscope/diag/tracked.h"
#include "test_support.h"

namespace leakscope::diag {
namespace {

namespace fs = std::filesystem;
using leakscope::testing::eventually;
using leakscope::testing::httpGet;
using leakscope::testing::metricValue;
using leakscope::testing::TempDir;

std::vector<std::string> dirEntries(const std::string& dir) {
  std::vector<std::string> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> snapshotFiles(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& f : dirEntries(dir)) {
    if (f.size() > 6 && f.compare(f.size() - 6, 6, ".lsnap") == 0) out.push_back(f);
  }
  return out;
}

struct Captured {
  std::mutex mu;
  std::vector<std::string> lines;
  std::function<void(std::string_view)> sink() {
    return [this](std::string_view s) {
      std::lock_guard lock(mu);
      lines.emplace_back(s);
    };
  }
  std::string all() {
    std::lock_guard lock(mu);
    std::string out;
    for (auto& l : lines) out += l + "\n";
    return out;
  }
};

TEST(ValidateListenAddress, AcceptsHostPortAndRejectsWithAReason) {
  EXPECT_TRUE(validateListenAddress("127.0.0.1:0").ok());
  EXPECT_TRUE(validateListenAddress("127.0.0.1:9477").ok());
  EXPECT_TRUE(validateListenAddress("[::1]:9477").ok());
  for (const char* bad : {"127.0.0.1", "127.0.0.1:", ":9477", "127.0.0.1:99999", "127.0.0.1:http",
                          "[::1]9477", "[::1"}) {
    auto r = validateListenAddress(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find(bad), std::string::npos) << r.error().message;
  }
}

TEST(Runtime, Sigusr2WritesASnapshotFromTheSnapshotThread) {
  TempDir tmp;
  Config c;
  c.snapshot_dir = tmp.path() + "/snaps";
  c.snapshot_name = "rt";
  c.heap_mode = HeapMode::kOff;
  c.metrics_address = "";
  Tracked t(kind("rt.connection"), "peer");
  Runtime rt(c);
  ASSERT_EQ(raise(SIGUSR2), 0);
  ASSERT_TRUE(eventually([&] { return snapshotFiles(c.snapshot_dir).size() == 1; }));
  std::ifstream in(snapshotFiles(c.snapshot_dir)[0]);
  const auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["trigger"]["reason"], "signal");
  EXPECT_EQ(j["trigger"]["detail"], "SIGUSR2");
}

TEST(Runtime, ABurstOfSignalsLeavesOnlyCompleteFiles) {
  TempDir tmp;
  Config c;
  c.snapshot_dir = tmp.path() + "/snaps";
  c.snapshot_name = "burst";
  c.heap_mode = HeapMode::kOff;
  c.metrics_address = "";
  {
    Runtime rt(c);
    for (int i = 0; i < 50; ++i) ASSERT_EQ(raise(SIGUSR2), 0);
    ASSERT_TRUE(eventually([&] { return !snapshotFiles(c.snapshot_dir).empty(); }));
  }  // ~Runtime waits for a snapshot in progress
  const auto entries = dirEntries(c.snapshot_dir);
  ASSERT_FALSE(entries.empty());
  // Signals coalesce: far fewer snapshots than signals.
  EXPECT_LT(entries.size(), 50u);
  for (const auto& f : entries) {
    EXPECT_EQ(f.find(".tmp"), std::string::npos) << "left behind: " << f;
    std::ifstream in(f);
    const auto j = nlohmann::json::parse(in);  // throws on a torn file
    EXPECT_EQ(j["format"], "leakscope-snapshot");
  }
}

TEST(Runtime, ApiAndIntervalSnapshotsAreCountedInMetrics) {
  TempDir tmp;
  Config c;
  c.snapshot_dir = tmp.path() + "/snaps";
  c.snapshot_name = "api";
  c.heap_mode = HeapMode::kOff;
  c.metrics_address = "127.0.0.1:0";
  c.snapshot_interval = std::chrono::milliseconds(100);
  Runtime rt(c);
  auto r = rt.snapshot("from test");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_FALSE(rt.metricsAddress().empty());
  ASSERT_TRUE(eventually([&] {
    auto body = httpGet(rt.metricsAddress(), "/metrics");
    if (!body) return false;
    auto api = metricValue(*body, "leakscope_snapshots_total{trigger=\"api\"}");
    auto interval = metricValue(*body, "leakscope_snapshots_total{trigger=\"interval\"}");
    return api == 1.0 && interval.value_or(0) >= 2.0;
  }));
}

TEST(ValidateMemoryPressureFractions, AcceptsFractionsOfTheLimitAndNamesABadOne) {
  EXPECT_TRUE(validateMemoryPressureFractions({}).ok());
  EXPECT_TRUE(validateMemoryPressureFractions({0.8, 0.9, 0.95}).ok());
  EXPECT_TRUE(validateMemoryPressureFractions({1.0, 0.01}).ok());
  for (double bad : {0.0, -0.5, 1.5, std::nan("")}) {
    auto r = validateMemoryPressureFractions({0.8, bad});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("(0, 1]"), std::string::npos) << r.error().message;
  }
  auto twice = validateMemoryPressureFractions({0.8, 0.9, 0.8});
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().message, "memory-pressure fraction 0.8: listed twice");
}

// Any process's RSS is above a millionth of its limit: the first check
// writes a memory_pressure snapshot, and the checks after it do not (the
// fraction stays fired while RSS stays above it).
TEST(Runtime, RssAboveAFractionOfTheLimitWritesOneMemoryPressureSnapshot) {
  TempDir tmp;
  Config c;
  c.snapshot_dir = tmp.path() + "/snaps";
  c.snapshot_name = "pressure";
  c.heap_mode = HeapMode::kOff;
  c.metrics_address = "127.0.0.1:0";
  c.memory_pressure_fractions = {1e-6};
  c.memory_check_interval = std::chrono::milliseconds(20);
  Runtime rt(c);
  ASSERT_TRUE(eventually([&] { return snapshotFiles(c.snapshot_dir).size() == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // 15 more checks
  const auto files = snapshotFiles(c.snapshot_dir);
  ASSERT_EQ(files.size(), 1u);
  std::ifstream in(files[0]);
  const auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["trigger"]["reason"], "memory_pressure");
  const std::string detail = j["trigger"]["detail"];
  EXPECT_EQ(detail.rfind("RSS ", 0), 0u) << detail;
  EXPECT_NE(detail.find("crossed 0.0001%"), std::string::npos) << detail;
  auto body = httpGet(rt.metricsAddress(), "/metrics");
  ASSERT_TRUE(body.has_value());
  EXPECT_EQ(metricValue(*body, "leakscope_snapshots_total{trigger=\"memory_pressure\"}"), 1.0);
}

TEST(Runtime, InvalidMemoryPressureFractionsAreLoggedAndTurnTheChecksOff) {
  TempDir tmp;
  Captured log;
  Config c;
  c.snapshot_dir = tmp.path() + "/snaps";
  c.heap_mode = HeapMode::kOff;
  c.metrics_address = "";
  c.memory_pressure_fractions = {1e-6, 2.0};
  c.memory_check_interval = std::chrono::milliseconds(20);
  c.log = log.sink();
  Runtime rt(c);
  EXPECT_NE(
      log.all().find("memory-pressure fraction 2: expected a fraction of the limit in (0, 1]; "
                     "memory-pressure snapshots are off"),
      std::string::npos)
      << log.all();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(snapshotFiles(c.snapshot_dir).empty());
}

TEST(Runtime, UnwritableSnapshotDirIsLoggedAndEverythingElseRuns) {
  TempDir tmp;
  std::ofstream(tmp.path() + "/file") << "x";
  Captured log;
  Config c;
  c.snapshot_dir = tmp.path() + "/file/snaps";
  c.heap_mode = HeapMode::kOff;
  c.metrics_address = "127.0.0.1:0";
  c.log = log.sink();
  Runtime rt(c);
  EXPECT_NE(log.all().find(c.snapshot_dir), std::string::npos) << log.all();
  ASSERT_EQ(raise(SIGUSR2), 0);  // must not kill us
  ASSERT_TRUE(eventually([&] { return log.all().find("snapshot failed") != std::string::npos; }));
  auto body = httpGet(rt.metricsAddress(), "/metrics");
  ASSERT_TRUE(body.has_value());
  EXPECT_EQ(metricValue(*body, "leakscope_snapshot_failures_total"), 1.0);
  auto r = rt.snapshot();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("Not a directory"), std::string::npos);
}

TEST(Runtime, InvalidOrBusyMetricsAddressIsLoggedAndSnapshotsStillWork) {
  TempDir tmp;
  for (const char* address : {"127.0.0.1:99999", "not-an-address", "256.1.1.1:9477"}) {
    Captured log;
    Config c;
    c.snapshot_dir = tmp.path() + "/snaps";
    c.heap_mode = HeapMode::kOff;
    c.metrics_address = address;
    c.log = log.sink();
    Runtime rt(c);
    EXPECT_FALSE(rt.metricsStatus().ok()) << address;
    EXPECT_TRUE(rt.metricsAddress().empty());
    EXPECT_NE(log.all().find(address), std::string::npos) << log.all();
    EXPECT_TRUE(rt.snapshot().ok());
  }
  // A port already taken by another listener.
  leakscope::testing::LoopbackConnection busy;
  ASSERT_TRUE(busy.ok());
  Captured log;
  Config c;
  c.metrics_address = busy.address();
  c.log = log.sink();
  Runtime rt(c);
  EXPECT_FALSE(rt.metricsStatus().ok());
  EXPECT_NE(log.all().find("cannot listen"), std::string::npos) << log.all();
}

TEST(Runtime, Sigusr2AfterShutdownDoesNotKillTheProcess) {
  TempDir tmp;
  {
    Config c;
    c.snapshot_dir = tmp.path() + "/snaps";
    c.heap_mode = HeapMode::kOff;
    c.metrics_address = "";
    Runtime rt(c);
  }
  // The default action of SIGUSR2 is to terminate; after a Runtime it is ignored.
  ASSERT_EQ(raise(SIGUSR2), 0);
  struct sigaction now {};
  sigaction(SIGUSR2, nullptr, &now);
  EXPECT_EQ(now.sa_handler, SIG_IGN);
}

extern "C" void programsOwnHandler(int) {}

// A program that installs its own handler for the snapshot signal while the
// Runtime lives keeps it: the destructor puts the old disposition back only
// while the Runtime's own handler is the one in place.
TEST(Runtime, AHandlerTheProgramInstalledSinceIsKeptAtDestruction) {
  TempDir tmp;
  struct sigaction before {};
  ASSERT_EQ(sigaction(SIGUSR2, nullptr, &before), 0);
  {
    Config c;
    c.snapshot_dir = tmp.path() + "/snaps";
    c.heap_mode = HeapMode::kOff;
    c.metrics_address = "";
    Runtime rt(c);
    struct sigaction own {};
    own.sa_handler = programsOwnHandler;
    sigemptyset(&own.sa_mask);
    ASSERT_EQ(sigaction(SIGUSR2, &own, nullptr), 0);
  }
  struct sigaction now {};
  ASSERT_EQ(sigaction(SIGUSR2, nullptr, &now), 0);
  ASSERT_EQ(sigaction(SIGUSR2, &before, nullptr), 0);  // for the tests after this one
  EXPECT_EQ(now.sa_handler, programsOwnHandler);
}

// A listening TCP socket on 127.0.0.1:`port` among this process's fds.
bool listensOn(int port) {
  for (const auto& e : fs::directory_iterator("/proc/self/fd")) {
    const int fd = std::stoi(e.path().filename().string());
    int accepting = 0;
    socklen_t len = sizeof accepting;
    sockaddr_in a{};
    socklen_t alen = sizeof a;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) == 0 && accepting != 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &alen) == 0 && a.sin_family == AF_INET &&
        ntohs(a.sin_port) == port) {
      return true;
    }
  }
  return false;
}

// The /metrics port stays the parent's: a fork()ed child that abandons the
// Runtime (the preload agent's workers) keeps no copy of the listening
// socket, so a child outliving its parent does not hold the port; the
// parent still serves.
TEST(Runtime, AbandonedInAForkedChildItClosesOnlyTheChildsListeningSocket) {
  Config c;
  c.heap_mode = HeapMode::kOff;
  c.metrics_address = "127.0.0.1:0";
  auto rt = std::make_unique<Runtime>(c);
  const std::string address = rt->metricsAddress();
  ASSERT_FALSE(address.empty());
  const int port = std::stoi(address.substr(address.rfind(':') + 1));
  ASSERT_TRUE(listensOn(port));
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Runtime::abandonAfterFork(std::move(rt));
    _exit(listensOn(port) ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "the child still listens on " << address;
  EXPECT_TRUE(listensOn(port));
  EXPECT_TRUE(httpGet(address, "/metrics").has_value());
}

TEST(Runtime, OnlyOneMayExist) {
  Config c;
  c.metrics_address = "";
  Runtime rt(c);
  EXPECT_THROW(Runtime second(c), std::logic_error);
}

TEST(DiagCollector, ExportsPerKindCountersWithTheInvariant) {
  Kind& k = kind("collector.connection");
  DiagCollector collector;
  auto value = [&](const std::string& name) -> double {
    for (const auto& f : collector.Collect()) {
      if (f.name != name) continue;
      for (const auto& m : f.metric) {
        if (!m.label.empty() && m.label[0].value == "collector.connection") {
          return f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
        }
      }
    }
    return -1;
  };
  auto a = std::make_unique<Tracked>(k, "x", 100);
  auto b = std::make_unique<Tracked>(k, "y", 200);
  EXPECT_EQ(value("leakscope_tracked_objects"), 2);
  EXPECT_EQ(value("leakscope_tracked_created_total"), 2);
  EXPECT_EQ(value("leakscope_tracked_destroyed_total"), 0);
  EXPECT_EQ(value("leakscope_tracked_bytes"), 300);
  a.reset();
  EXPECT_EQ(value("leakscope_tracked_objects"), 1);
  EXPECT_EQ(value("leakscope_tracked_destroyed_total"), 1);
  EXPECT_EQ(value("leakscope_tracked_bytes"), 200);
  EXPECT_EQ(value("leakscope_tracked_objects"),
            value("leakscope_tracked_created_total") - value("leakscope_tracked_destroyed_total"));
}

TEST(DiagCollector, EveryFamilyFollowsPrometheusNaming) {
  DiagCollector collector;
  for (const auto& f : collector.Collect()) {
    const bool total = f.name.size() > 6 && f.name.compare(f.name.size() - 6, 6, "_total") == 0;
    if (f.type == prometheus::MetricType::Counter) {
      EXPECT_TRUE(total) << f.name;
    } else {
      EXPECT_FALSE(total) << f.name;
    }
    EXPECT_FALSE(f.help.empty()) << f.name;
  }
}

}  // namespace
}  // namespace leakscope::diag
