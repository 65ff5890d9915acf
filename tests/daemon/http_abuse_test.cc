// Abuse of pushdaemon's HTTP endpoint (/metrics, /healthz), served from
// before the daemon waits for its database: a real MariaDB and the mock push server,
// build/bin/pushdaemon with its default daemon.http_* limits (64
// connections, 8 KiB of request head, 5 s per request, 32 fds kept free).
// In each attack a normal scrape must be answered within a second, and the
// daemon's memory, descriptors, CPU and log output must stay bounded (the
// bounds are the constants below).
#include <signal.h>

#include "daemon_test_support.h"
#include "gtest/gtest.h"
#include "http_abuse.h"

namespace leakscope::testing {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kMaxConnections = 64;  // daemon.http_max_connections default
constexpr auto kRequestTimeout = 5s;         // daemon.http_request_timeout_ms default
constexpr auto kScrapeWithin = 1000ms;
constexpr std::uint64_t kRssGrowthMax = 16 << 20;
constexpr std::uintmax_t kLogGrowthMax = 16 << 10;

// The daemon migrates the schema itself: only the servers are checked.
class DaemonHttpAbuse : public DaemonStackTest {
 protected:
  void SetUp() override {
    own_fd_limit_ = raiseOwnFdLimit();
    ASSERT_TRUE(serversUp());
    // info, not the harness's debug: log growth is one of the bounds.
    daemon_ = std::make_unique<DaemonProcess>(db_, mock_, dir_.path() + "/d",
                                              Settings{{"daemon.log_level", "\"info\""}});
    ASSERT_TRUE(daemon_->start()) << daemon_->log();
    ASSERT_TRUE(scrapeOk()) << "no scrape before the attack";
  }
  pid_t pid() const { return daemon_->pid(); }
  const std::string& address() const { return daemon_->http(); }

  // A normal scrape, answered 200 within kScrapeWithin.
  ::testing::AssertionResult scrapeOk() { return probe_.scrape(address()); }
  void TearDown() override { RecordProperty("scrape_ms", probe_.latencies()); }
  std::string snapshotDir() const { return daemon_->dir() + "/snapshots"; }

  std::uint64_t own_fd_limit_ = 0;
  std::unique_ptr<DaemonProcess> daemon_;
  ScrapeProbe probe_{"pushdaemon_", kScrapeWithin};
};

TEST_F(DaemonHttpAbuse, HugeHeaderIsRefusedEarlyAndKeepsNoMemory) {
  const std::uint64_t rss_before = rssBytes(pid());
  const std::size_t taken = sendHugeHeader(address(), 64 << 20);
  std::this_thread::sleep_for(200ms);
  const std::uint64_t rss_after = rssBytes(pid());
  RecordProperty("huge_header_taken_bytes", std::to_string(taken));
  RecordProperty("rss_before", std::to_string(rss_before));
  RecordProperty("rss_after", std::to_string(rss_after));
  EXPECT_LT(taken, std::size_t{16} << 20);  // the kernel's buffers, not the server's
  EXPECT_LT(rss_after, rss_before + kRssGrowthMax) << rss_before << " -> " << rss_after;
  EXPECT_TRUE(scrapeOk());
}

TEST_F(DaemonHttpAbuse, IdleFloodIsBoundedAndClosed) {
  const std::size_t fds_before = openFds(pid());
  const std::size_t n = std::min<std::size_t>(1000, own_fd_limit_ - 100);
  const auto idle = openIdle(address(), n);
  ASSERT_EQ(idle.size(), n);
  std::this_thread::sleep_for(500ms);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(scrapeOk()) << "scrape " << i << " under the flood";
  EXPECT_LE(openFds(pid()), fds_before + kMaxConnections + 4);
  EXPECT_TRUE(eventually([&] { return closedByServer(idle) == idle.size(); },
                         static_cast<int>((kRequestTimeout + 3s).count() * 1000)))
      << closedByServer(idle) << " of " << idle.size() << " closed";
  EXPECT_LE(openFds(pid()), fds_before + 2);
}

TEST_F(DaemonHttpAbuse, ByteASecondClientsAreCutAtTheRequestTimeout) {
  SlowClients slow(address(), 200, 500ms);
  ASSERT_EQ(slow.opened(), 200u);
  std::this_thread::sleep_for(1s);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(scrapeOk()) << "scrape " << i << " among slow clients";
  EXPECT_TRUE(eventually([&] { return slow.closedByServer() == slow.opened(); },
                         static_cast<int>((kRequestTimeout + 3s).count() * 1000)))
      << slow.closedByServer() << " of " << slow.opened() << " closed";
}

// Out of descriptors: the endpoint keeps 32 free for the rest of the daemon,
// so a SIGUSR2 snapshot is written and the database is reconnected while
// the attack goes on; it does not spin on accept, nor log per failure.
TEST_F(DaemonHttpAbuse, OutOfDescriptorsStillSnapshotsReconnectsAndServes) {
  const std::size_t baseline = openFds(pid());
  const std::uintmax_t log_before = stderrBytes(pid());
  ASSERT_TRUE(setFdLimit(pid(), baseline + 48));
  {
    // Held connections: more than the descriptors left.
    const auto held = openIdle(address(), 300);
    std::this_thread::sleep_for(1s);
    EXPECT_LE(openFds(pid()), baseline + 48 - 32 + 2);
    const std::size_t snaps_before = snapshotsIn(snapshotDir());
    daemon_->signal(SIGUSR2);
    EXPECT_TRUE(eventually([&] { return snapshotsIn(snapshotDir()) > snaps_before; }, 5000))
        << daemon_->log().substr(0, 4000);
    EXPECT_TRUE(scrapeOk());
    const auto cpu_before = cpuTime(pid());
    std::this_thread::sleep_for(2s);
    const auto cpu = cpuTime(pid()) - cpu_before;
    RecordProperty("cpu_ms_in_2s", std::to_string(cpu.count()));
    EXPECT_LT(cpu, 500ms) << "CPU in 2 s while out of descriptors";
  }
  {
    // Connections replaced as fast as the server closes them.
    IdleFlood flood(address(), 300);
    db_.stop();
    EXPECT_TRUE(eventually(
        [&] {
          auto h = daemon_->health();
          return h && h->find("\"db\":\"down\"") != std::string::npos;
        },
        15000));
    ASSERT_TRUE(db_.start());
    EXPECT_TRUE(eventually(
        [&] {
          auto h = daemon_->health();
          return h && h->find("\"db\":\"up\"") != std::string::npos;
        },
        15000))
        << daemon_->log().substr(0, 4000);
    EXPECT_TRUE(scrapeOk());
    RecordProperty("flood_connections", std::to_string(flood.opened()));
  }
  const std::uintmax_t logged = stderrBytes(pid()) - log_before;
  RecordProperty("log_bytes", std::to_string(logged));
  EXPECT_LT(logged, kLogGrowthMax) << daemon_->log().substr(0, 2000);
}

}  // namespace
}  // namespace leakscope::testing
