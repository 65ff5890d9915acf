// Abuse of leakscope's /metrics endpoint (diag::HttpServer inside Runtime),
// through the real example program: a huge header, a flood of idle
// connections, byte-a-second clients, and a process out of descriptors. In
// each, a normal scrape must be answered within a second, and the server's
// memory, descriptors, CPU and log output must stay bounded (the bounds are
// the constants below). The endpoint runs with Runtime's default limits:
// 64 connections, 8 KiB of request head, 5 s per request, 32 fds kept free.
#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <sstream>

#include "http_abuse.h"
#include "test_support.h"

namespace leakscope {
namespace {

using namespace std::chrono_literals;
using testing::Child;
using testing::TempDir;

const std::string kExample = std::string(LEAKSCOPE_BIN_DIR) + "/leakscope-example";

constexpr std::size_t kMaxConnections = 64;  // HttpLimits default
constexpr auto kRequestTimeout = 5s;         // HttpLimits default
constexpr auto kScrapeWithin = 1000ms;       // a scrape under attack
constexpr std::uint64_t kRssGrowthMax = 16 << 20;
constexpr std::uintmax_t kLogGrowthMax = 16 << 10;

class MetricsAbuse : public ::testing::Test {
 protected:
  void SetUp() override {
    own_fd_limit_ = testing::raiseOwnFdLimit();
    child_ = std::make_unique<Child>(std::vector<std::string>{
        kExample, "--snapshot-dir", snap_dir_, "--rounds", "1", "--connections", "1"});
    const auto line = child_->waitForLine("leakscope-example ");
    ASSERT_TRUE(line) << child_->err();
    std::istringstream in(*line);
    std::string word;
    while (in >> word) {
      if (word.rfind("metrics=", 0) == 0) address_ = word.substr(8);
    }
    ASSERT_FALSE(address_.empty()) << *line;
    ASSERT_TRUE(child_->waitForLine("rounds done"));
    ASSERT_TRUE(scrapeOk()) << "no scrape before the attack";
  }

  pid_t pid() const { return child_->pid(); }
  // A normal scrape, answered 200 within kScrapeWithin.
  ::testing::AssertionResult scrapeOk() { return probe_.scrape(address_); }
  void TearDown() override { RecordProperty("scrape_ms", probe_.latencies()); }

  TempDir tmp_;
  std::string snap_dir_ = tmp_.path() + "/snaps";
  std::uint64_t own_fd_limit_ = 0;
  std::unique_ptr<Child> child_;
  std::string address_;
  testing::ScrapeProbe probe_{"leakscope_tracked_objects", kScrapeWithin};
};

TEST_F(MetricsAbuse, HugeHeaderIsRefusedEarlyAndKeepsNoMemory) {
  const std::uint64_t rss_before = testing::rssBytes(pid());
  const std::size_t taken = testing::sendHugeHeader(address_, 64 << 20);
  const std::uint64_t rss_after = testing::rssBytes(pid());
  RecordProperty("huge_header_taken_bytes", std::to_string(taken));
  RecordProperty("rss_before", std::to_string(rss_before));
  RecordProperty("rss_after", std::to_string(rss_after));
  // What the kernel's socket buffers hold, not what the server kept.
  EXPECT_LT(taken, std::size_t{16} << 20);
  EXPECT_LT(rss_after, rss_before + kRssGrowthMax) << rss_before << " -> " << rss_after;
  EXPECT_TRUE(scrapeOk());
}

TEST_F(MetricsAbuse, IdleFloodNeitherLocksOutAScrapeNorHoldsDescriptors) {
  const std::size_t fds_before = testing::openFds(pid());
  const std::uint64_t rss_before = testing::rssBytes(pid());
  const std::size_t n = std::min<std::size_t>(1000, own_fd_limit_ - 100);
  const auto idle = testing::openIdle(address_, n);
  ASSERT_EQ(idle.size(), n);
  std::this_thread::sleep_for(500ms);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(scrapeOk()) << "scrape " << i << " under the flood";
  // Never more than the limit open (a closed one may linger a moment).
  EXPECT_LE(testing::openFds(pid()), fds_before + kMaxConnections + 4);
  EXPECT_LT(testing::rssBytes(pid()), rss_before + kRssGrowthMax);
  // Idle ones are closed by the request timeout at the latest.
  EXPECT_TRUE(testing::eventually([&] { return testing::closedByServer(idle) == idle.size(); },
                                  static_cast<int>((kRequestTimeout + 3s).count() * 1000)))
      << testing::closedByServer(idle) << " of " << idle.size() << " closed";
  EXPECT_LE(testing::openFds(pid()), fds_before + 2);
}

TEST_F(MetricsAbuse, ByteASecondClientsAreCutAtTheRequestTimeout) {
  testing::SlowClients slow(address_, 200, 500ms);
  ASSERT_EQ(slow.opened(), 200u);
  std::this_thread::sleep_for(1s);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(scrapeOk()) << "scrape " << i << " among slow clients";
  // Each got at most the request timeout from accept, however it trickled.
  EXPECT_TRUE(testing::eventually([&] { return slow.closedByServer() == slow.opened(); },
                                  static_cast<int>((kRequestTimeout + 3s).count() * 1000)))
      << slow.closedByServer() << " of " << slow.opened() << " closed";
}

// Out of descriptors: the server keeps fd_reserve free for the rest of the
// process (a SIGUSR2 snapshot still gets written), does not spin on accept,
// and logs a few lines, not one per failed accept.
TEST_F(MetricsAbuse, OutOfDescriptorsStillSnapshotsAndServesWithoutSpinning) {
  const std::size_t baseline = testing::openFds(pid());
  const std::uintmax_t log_before = testing::stderrBytes(pid());
  ASSERT_TRUE(testing::setFdLimit(pid(), baseline + 48));
  const auto held = testing::openIdle(address_, 300);
  std::this_thread::sleep_for(1s);
  // The server keeps fd_reserve (32) of the 48 free.
  EXPECT_LE(testing::openFds(pid()), baseline + 48 - 32 + 2);
  const std::size_t snaps_before = testing::snapshotsIn(snap_dir_);
  ASSERT_EQ(::kill(pid(), SIGUSR2), 0);
  EXPECT_TRUE(
      testing::eventually([&] { return testing::snapshotsIn(snap_dir_) > snaps_before; }, 5000))
      << child_->err();
  EXPECT_TRUE(scrapeOk());
  const auto cpu_before = testing::cpuTime(pid());
  std::this_thread::sleep_for(2s);
  const auto cpu = testing::cpuTime(pid()) - cpu_before;
  const std::uintmax_t logged = testing::stderrBytes(pid()) - log_before;
  RecordProperty("cpu_ms_in_2s", std::to_string(cpu.count()));
  RecordProperty("log_bytes", std::to_string(logged));
  EXPECT_LT(cpu, 500ms) << "CPU in 2 s while out of descriptors";
  EXPECT_LT(logged, kLogGrowthMax) << child_->err().substr(0, 2000);
}

}  // namespace
}  // namespace leakscope
