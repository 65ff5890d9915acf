// Several daemons on one database: each schedule is claimed by exactly one
// of them, and no token is sent twice (the mock push server's record is the
// witness, the result rows the second one).
#include <set>

#include "daemon_test_support.h"
#include "gtest/gtest.h"

namespace leakscope::testing {
namespace {

// Many small schedules, each for its own app and tokens, all due at once.
constexpr int kSchedules = 24;
constexpr int kTokens = 150;

class MultiDaemon : public DaemonStackTest {
 protected:
  void runDaemons(int daemons);
  void addSchedules();
  void startDaemons(int daemons);
  void expectEachScheduleClaimedOnce();
  void expectEachTokenSentOnce();

  std::vector<std::uint64_t> schedules_;
  std::set<std::string> all_tokens_;
  std::vector<std::unique_ptr<DaemonProcess>> daemons_;
};

void MultiDaemon::runDaemons(int daemons) {
  ASSERT_NO_FATAL_FAILURE(addSchedules());
  ASSERT_NO_FATAL_FAILURE(startDaemons(daemons));
  for (auto id : schedules_) ASSERT_TRUE(waitForState(*conn_, id, "done", 120000));
  expectEachScheduleClaimedOnce();
  expectEachTokenSentOnce();
  for (auto& d : daemons_) EXPECT_EQ(d->terminate(), 0) << d->log();
}

void MultiDaemon::addSchedules() {
  for (int s = 0; s < kSchedules; ++s) {
    const std::uint64_t app = createTestApp(*conn_, mock_, dir_.path() + "/app" + std::to_string(s),
                                            "app" + std::to_string(s));
    ASSERT_NE(app, 0u);
    std::vector<std::string> apns, fcm;
    for (int i = 0; i < kTokens; ++i) {
      apns.push_back(deviceToken(static_cast<std::uint64_t>(s * 1000 + i), "a0"));
      fcm.push_back(deviceToken(static_cast<std::uint64_t>(s * 1000 + i), "f0"));
    }
    insertTokens(*conn_, app, "apns", apns);
    insertTokens(*conn_, app, "fcm", fcm);
    all_tokens_.insert(apns.begin(), apns.end());
    all_tokens_.insert(fcm.begin(), fcm.end());
    // Due shortly after all daemons are up, so they compete for every one.
    auto id = pushdaemon::addSchedule(*conn_, app, bothPlatformsPayload(), 3);
    ASSERT_TRUE(id.ok());
    schedules_.push_back(*id);
  }
}

void MultiDaemon::startDaemons(int daemons) {
  for (int i = 0; i < daemons; ++i) {
    daemons_.push_back(std::make_unique<DaemonProcess>(
        db_, mock_, dir_.path() + "/d" + std::to_string(i),
        Settings{{"push.credentials_dir", "\"" + dir_.path() + "\""},
                 {"sending.page_size", "50"},
                 {"daemon.poll_interval_ms", "20"},
                 {"apns.max_connections", "1"},
                 {"fcm.max_connections", "1"}}));
  }
  for (auto& d : daemons_) ASSERT_TRUE(d->start()) << d->log();
}

// Claimed once each: epoch 1 everywhere, and the daemons' claims add up.
void MultiDaemon::expectEachScheduleClaimedOnce() {
  for (auto id : schedules_) EXPECT_EQ(status(*conn_, id)->epoch, 1u) << "schedule " << id;
  double claimed = 0;
  int busy = 0;
  for (auto& d : daemons_) {
    const double c = d->metric("pushdaemon_schedules_claimed_total").value_or(-1);
    claimed += c;
    busy += c > 0;
  }
  EXPECT_EQ(claimed, kSchedules);
  EXPECT_GE(busy, 2) << "the daemons did not share the work";
}

// Each token reached the mock exactly once and has exactly one result.
void MultiDaemon::expectEachTokenSentOnce() {
  const auto received = receivedCounts(mock_.received());
  EXPECT_EQ(received.size(), all_tokens_.size());
  for (const auto& [token, n] : received) {
    EXPECT_EQ(n, 1) << token;
    EXPECT_EQ(all_tokens_.count(token), 1u);
  }
  EXPECT_EQ(count(*conn_, "SELECT COUNT(*) FROM push_result"), all_tokens_.size());
  EXPECT_EQ(count(*conn_, "SELECT COUNT(*) FROM push_result WHERE outcome <> 'success'"), 0u);
}

TEST_F(MultiDaemon, TwoDaemonsNeverClaimAScheduleOrSendATokenTwice) { runDaemons(2); }
TEST_F(MultiDaemon, ThreeDaemonsNeverClaimAScheduleOrSendATokenTwice) { runDaemons(3); }

}  // namespace
}  // namespace leakscope::testing
