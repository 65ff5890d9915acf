// Faults: kill -9 at several points and restart, a live daemon taking over
// a dead one's expired lease, MariaDB stopped and restarted mid-schedule,
// MariaDB not up yet when the daemon starts, and the push server refusing
// connections.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "daemon_test_support.h"
#include "gtest/gtest.h"

namespace leakscope::testing {
namespace {

class DaemonFaults : public DaemonStackTest {
 protected:
  std::uint64_t persisted(std::uint64_t sid) {
    return count(*conn_,
                 "SELECT COUNT(*) FROM push_result WHERE schedule_id = " + std::to_string(sid));
  }
  // The daemons run in sub-directories; the app's key files are in
  // dir_/app.
  Settings withCredentials(Settings s) const {
    s["push.credentials_dir"] = "\"" + dir_.path() + "\"";
    return s;
  }
  std::string sub(const std::string& name) {
    std::filesystem::create_directories(dir_.path() + "/" + name);
    return dir_.path() + "/" + name;
  }
};

// Page 100, 2 pages in flight per platform: what a crash can resend.
const Settings kSmallPages = {{"sending.page_size", "100"},
                              {"sending.pages_in_flight", "2"},
                              {"apns.rate_limit", "2000"},
                              {"fcm.rate_limit", "2000"},
                              {"daemon.lease_s", "2"}};
constexpr int kCrashBound = 2 * 2 * 100;  // platforms x pages_in_flight x page_size

TEST_F(DaemonFaults, KillNineAtSeveralPointsThenRestartCompletesWithinTheDuplicateBound) {
  const int n = 3000;
  const std::uint64_t sid = scheduleTokens(n).id;
  // Kill points: right after the claim, about a third in, about two thirds in.
  const std::vector<std::uint64_t> kill_after = {0, 2000, 4000};
  int kills = 0;
  for (std::size_t round = 0; round <= kill_after.size(); ++round) {
    DaemonProcess d(db_, mock_, sub("d" + std::to_string(round)), withCredentials(kSmallPages));
    ASSERT_TRUE(d.start()) << d.log();
    if (round == kill_after.size()) {
      ASSERT_TRUE(waitForState(*conn_, sid, "done", 60000)) << d.log();
      EXPECT_EQ(d.terminate(), 0);
      break;
    }
    const std::uint64_t target = kill_after[round];
    ASSERT_TRUE(eventually(
        [&] {
          auto s = status(*conn_, sid);
          return s && s->state == "running" &&
                 s->owner.find(std::to_string(d.pid())) != std::string::npos &&
                 persisted(sid) >= target;
        },
        30000))
        << d.log();
    d.kill9();
    ++kills;
    auto s = status(*conn_, sid);
    ASSERT_EQ(s->state, "running");  // the dead daemon's claim, until its lease expires
  }
  // Every token exactly one result; resends only within the bound.
  const auto results = resultsByToken(*conn_, sid);
  EXPECT_EQ(results.size(), static_cast<std::size_t>(2 * n));
  for (const auto& [t, r] : results) {
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].outcome, "success");
  }
  const auto received = receivedCounts(mock_.received());
  EXPECT_EQ(received.size(), static_cast<std::size_t>(2 * n));
  int duplicates = 0;
  for (const auto& [t, c] : received) duplicates += c - 1;
  EXPECT_LE(duplicates, kills * kCrashBound);
  EXPECT_EQ(status(*conn_, sid)->epoch, static_cast<std::uint32_t>(kills + 1));
  RecordProperty("duplicates", duplicates);
}

TEST_F(DaemonFaults, ALiveDaemonTakesOverTheExpiredLeaseOfADeadOne) {
  const std::uint64_t sid = scheduleTokens(2000).id;
  DaemonProcess a(db_, mock_, sub("a"), withCredentials(kSmallPages));
  ASSERT_TRUE(a.start());
  ASSERT_TRUE(eventually([&] { return persisted(sid) > 0; }, 30000));
  // B starts while A holds the claim: it must not touch the schedule.
  DaemonProcess b(db_, mock_, sub("b"), withCredentials(kSmallPages));
  ASSERT_TRUE(b.start());
  a.kill9();
  const auto dead = status(*conn_, sid);
  ASSERT_EQ(dead->state, "running");
  ASSERT_EQ(dead->epoch, 1u);
  ASSERT_TRUE(waitForState(*conn_, sid, "done", 60000)) << b.log();
  EXPECT_EQ(status(*conn_, sid)->epoch, 2u);
  EXPECT_NE(b.log().find("took over schedule " + std::to_string(sid)), std::string::npos);
  EXPECT_EQ(resultsByToken(*conn_, sid).size(), 4000u);
  EXPECT_EQ(b.terminate(), 0);
}

TEST_F(DaemonFaults, MariaDbStoppedAndRestartedMidScheduleLosesNoResult) {
  const int n = 3000;
  const std::uint64_t sid = scheduleTokens(n).id;
  DaemonProcess d(db_, mock_, sub("d"),
                  withCredentials({{"sending.page_size", "100"},
                                   {"apns.rate_limit", "1500"},
                                   {"fcm.rate_limit", "1500"},
                                   {"daemon.lease_s", "3"}}));
  ASSERT_TRUE(d.start()) << d.log();
  ASSERT_TRUE(eventually([&] { return persisted(sid) >= 600; }, 30000));
  conn_.reset();
  db_.stop();
  // The daemon notices, reports it, keeps its results in memory (bounded).
  EXPECT_TRUE(eventually(
      [&] {
        // /healthz has its own thread: it must answer, and say why.
        auto h = d.health();
        return h.has_value() && h->find("\"db\":\"down\"") != std::string::npos;
      },
      15000));
  EXPECT_TRUE(
      eventually([&] { return d.metric("pushdaemon_result_backlog_tokens").value_or(0) > 0; }));
  std::this_thread::sleep_for(std::chrono::seconds(4));  // an outage longer than the lease
  const double backlog = d.metric("pushdaemon_result_backlog_tokens").value_or(-1);
  EXPECT_LE(backlog, 2 * 4 * 100) << "backlog beyond pages_in_flight x page_size per platform";
  ASSERT_TRUE(db_.start()) << db_.error();
  conn_ = db_.connect();
  ASSERT_NE(conn_, nullptr);
  ASSERT_TRUE(waitForState(*conn_, sid, "done", 60000)) << d.log();
  // No result lost, none doubled, nothing sent twice (the daemon never died).
  const auto results = resultsByToken(*conn_, sid);
  EXPECT_EQ(results.size(), static_cast<std::size_t>(2 * n));
  for (const auto& [t, r] : results) EXPECT_EQ(r.size(), 1u);
  const auto received = receivedCounts(mock_.received());
  EXPECT_EQ(received.size(), static_cast<std::size_t>(2 * n));
  for (const auto& [t, c] : received) EXPECT_EQ(c, 1) << t;
  EXPECT_EQ(status(*conn_, sid)->epoch, 1u);  // kept its claim through the outage
  EXPECT_GT(d.metric(R"(pushdaemon_db_errors_total{op="connect"})").value_or(0), 0);
  EXPECT_NE(d.health().value_or("").find("\"db\":\"up\""), std::string::npos);
  EXPECT_EQ(d.terminate(), 0) << d.log();
}

std::size_t snapshotCount(const std::string& dir) {
  std::error_code ec;
  std::size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".lsnap") ++n;
  }
  return n;
}

// A daemon started before its database (a boot where MariaDB comes up
// late) answers /healthz and takes a SIGUSR2 snapshot while it waits, and
// goes on once the database is up.
TEST_F(DaemonFaults, WaitingForTheDatabaseAtStartAnswersHealthzAndSnapshotsOnSigusr2) {
  conn_.reset();
  db_.stop();
  // A known port, so that the checks below do not depend on the line the
  // daemon prints when it starts to wait.
  const std::string http = "127.0.0.1:" + std::to_string(freePort());
  DaemonProcess d(db_, mock_, sub("d"),
                  withCredentials({{"daemon.http_address", "\"" + http + "\""}}));
  EXPECT_TRUE(d.start(DaemonProcess::kWaitLine)) << d.out() << d.log();
  std::optional<HttpAnswer> waiting;
  EXPECT_TRUE(eventually(
      [&] {
        waiting = httpAsk(http, "/healthz");
        return waiting.has_value();
      },
      10000))
      << "no /healthz while waiting for the database\n"
      << d.log();
  if (waiting) {
    EXPECT_EQ(waiting->status, 503);
    EXPECT_EQ(waiting->body,
              "{\"status\":\"unhealthy\",\"reason\":\"starting: waiting for the database\","
              "\"db\":\"down\",\"draining\":false,\"schedule\":0}\n");
  }

  const std::string snapshots = d.dir() + "/snapshots";
  const std::size_t before = snapshotCount(snapshots);
  d.signal(SIGUSR2);
  EXPECT_TRUE(eventually([&] { return snapshotCount(snapshots) > before; }, 10000)) << d.log();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_TRUE(d.alive()) << "SIGUSR2 killed the daemon waiting for its database\n" << d.log();
  EXPECT_EQ(d.out().find("pushdaemon pid="), std::string::npos) << "started without a database";

  ASSERT_TRUE(db_.start()) << db_.error();
  ASSERT_TRUE(d.waitForStartLine(30000)) << d.log();
  EXPECT_TRUE(eventually(
      [&] {
        const auto h = httpAsk(http, "/healthz");
        return h && h->status == 200 && h->body.find("\"db\":\"up\"") != std::string::npos;
      },
      15000))
      << d.health().value_or("no answer");
  EXPECT_EQ(d.terminate(), 0);
}

TEST_F(DaemonFaults, PushServerDownTheScheduleWaitsAndIsNotDoneWithTokensUnsent) {
  ASSERT_TRUE(mock_.faults({{"refuse_connections", true}}));
  const std::uint64_t sid = scheduleTokens(500).id;
  DaemonProcess d(db_, mock_, sub("d"), withCredentials({{"sending.page_size", "100"}}));
  ASSERT_TRUE(d.start()) << d.log();
  ASSERT_TRUE(eventually(
      [&] {
        return d.metric(R"(pushdaemon_token_resends_total{platform="apns",reason="undelivered"})")
                   .value_or(0) > 0;
      },
      20000))
      << d.log();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  auto s = status(*conn_, sid);
  EXPECT_EQ(s->state, "running");
  EXPECT_EQ(persisted(sid), 0u);
  EXPECT_EQ(s->success + s->retryable, 0u);
  ASSERT_TRUE(mock_.faults({{"refuse_connections", false}}));
  ASSERT_TRUE(waitForState(*conn_, sid, "done", 60000)) << d.log();
  const auto results = resultsByToken(*conn_, sid);
  EXPECT_EQ(results.size(), 1000u);
  for (const auto& [t, r] : results) EXPECT_EQ(r[0].outcome, "success") << t;
  const auto received = receivedCounts(mock_.received());
  for (const auto& [t, c] : received) EXPECT_EQ(c, 1) << t;
  EXPECT_EQ(d.terminate(), 0);
}

}  // namespace
}  // namespace leakscope::testing
