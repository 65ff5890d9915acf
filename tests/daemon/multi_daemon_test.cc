// Several daemons on one database: each schedule is claimed by exactly one
// of them, and no token is sent twice (the mock push server's record is the
// witness, the result rows the second one).
#include <set>

#include "daemon_test_support.h"
#include "gtest/gtest.h"

namespace leakscope::testing {
namespace {

void runDaemons(int daemons) {
  MariaDbServer db;
  ASSERT_TRUE(db.ok()) << db.error();
  MockPushServer mock;
  ASSERT_TRUE(mock.ok());
  TempDir dir;
  auto conn = db.connect();
  ASSERT_NE(conn, nullptr);
  ASSERT_TRUE(pushdaemon::migrate(*conn).ok());
  // Many small schedules, each for its own app and tokens, all due at once.
  const int kSchedules = 24, kTokens = 150;
  std::vector<std::uint64_t> schedules;
  std::set<std::string> all_tokens;
  for (int s = 0; s < kSchedules; ++s) {
    const std::uint64_t app = createTestApp(*conn, mock, dir.path() + "/app" + std::to_string(s),
                                            "app" + std::to_string(s));
    ASSERT_NE(app, 0u);
    std::vector<std::string> apns, fcm;
    for (int i = 0; i < kTokens; ++i) {
      apns.push_back(deviceToken(static_cast<std::uint64_t>(s * 1000 + i), "a0"));
      fcm.push_back(deviceToken(static_cast<std::uint64_t>(s * 1000 + i), "f0"));
    }
    insertTokens(*conn, app, "apns", apns);
    insertTokens(*conn, app, "fcm", fcm);
    all_tokens.insert(apns.begin(), apns.end());
    all_tokens.insert(fcm.begin(), fcm.end());
    // Due shortly after all daemons are up, so they compete for every one.
    auto id = pushdaemon::addSchedule(*conn, app, bothPlatformsPayload(), 3);
    ASSERT_TRUE(id.ok());
    schedules.push_back(*id);
  }
  std::vector<std::unique_ptr<DaemonProcess>> ds;
  for (int i = 0; i < daemons; ++i) {
    ds.push_back(
        std::make_unique<DaemonProcess>(db, mock, dir.path() + "/d" + std::to_string(i),
                                        Settings{{"push.credentials_dir", "\"" + dir.path() + "\""},
                                                 {"sending.page_size", "50"},
                                                 {"daemon.poll_interval_ms", "20"},
                                                 {"apns.max_connections", "1"},
                                                 {"fcm.max_connections", "1"}}));
  }
  for (auto& d : ds) ASSERT_TRUE(d->start()) << d->log();
  for (auto id : schedules) ASSERT_TRUE(waitForState(*conn, id, "done", 120000));

  // Claimed once each: epoch 1 everywhere, and the daemons' claims add up.
  for (auto id : schedules) EXPECT_EQ(status(*conn, id)->epoch, 1u) << "schedule " << id;
  double claimed = 0;
  int busy = 0;
  for (auto& d : ds) {
    const double c = d->metric("pushdaemon_schedules_claimed_total").value_or(-1);
    claimed += c;
    busy += c > 0;
  }
  EXPECT_EQ(claimed, kSchedules);
  EXPECT_GE(busy, 2) << "the daemons did not share the work";
  // Each token reached the mock exactly once and has exactly one result.
  const auto received = receivedCounts(mock.received());
  EXPECT_EQ(received.size(), all_tokens.size());
  for (const auto& [token, n] : received) {
    EXPECT_EQ(n, 1) << token;
    EXPECT_EQ(all_tokens.count(token), 1u);
  }
  EXPECT_EQ(count(*conn, "SELECT COUNT(*) FROM push_result"), all_tokens.size());
  EXPECT_EQ(count(*conn, "SELECT COUNT(*) FROM push_result WHERE outcome <> 'success'"), 0u);
  for (auto& d : ds) EXPECT_EQ(d->terminate(), 0) << d->log();
}

TEST(MultiDaemon, TwoDaemonsNeverClaimAScheduleOrSendATokenTwice) { runDaemons(2); }
TEST(MultiDaemon, ThreeDaemonsNeverClaimAScheduleOrSendATokenTwice) { runDaemons(3); }

}  // namespace
}  // namespace leakscope::testing
