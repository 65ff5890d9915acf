// SIGHUP with changed credentials, 100 times, while a schedule runs: each
// time the old pools are shut down and replaced, and the connections on
// both sides stay bounded (the seed story's leak would grow them by one
// pool per reload).
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "daemon_test_support.h"
#include "gtest/gtest.h"

namespace leakscope::testing {
namespace {

TEST(Reload, HundredCredentialChangesKeepOpenConnectionsBounded) {
  MariaDbServer db;
  ASSERT_TRUE(db.ok()) << db.error();
  MockPushServer mock;
  ASSERT_TRUE(mock.ok());
  TempDir dir;
  auto conn = db.connect();
  ASSERT_TRUE(pushdaemon::migrate(*conn).ok());
  const std::uint64_t app = createTestApp(*conn, mock, dir.path() + "/app", "game");
  std::vector<std::string> apns, fcm;
  for (int i = 0; i < 4000; ++i) {
    apns.push_back(deviceToken(static_cast<std::uint64_t>(i), "a0"));
    fcm.push_back(deviceToken(static_cast<std::uint64_t>(i), "f0"));
  }
  insertTokens(*conn, app, "apns", apns);
  insertTokens(*conn, app, "fcm", fcm);
  auto sid = pushdaemon::addSchedule(*conn, app, bothPlatformsPayload(), -1);
  const int kMax = 2;  // per pool
  DaemonProcess d(db, mock, dir.path(),
                  {{"sending.page_size", "100"},
                   {"apns.rate_limit", "600"},
                   {"fcm.rate_limit", "600"},
                   {"apns.max_connections", std::to_string(kMax)},
                   {"fcm.max_connections", std::to_string(kMax)},
                   {"daemon.lease_s", "5"}});
  ASSERT_TRUE(d.start()) << d.log();
  ASSERT_TRUE(eventually([&] {
    return d.metric(R"(pushdaemon_push_clients_created_total{platform="apns"})").value_or(0) >= 1;
  }));

  const std::string sa = dir.path() + "/app/service-account.json";
  std::ifstream in(sa);
  auto account = nlohmann::json::parse(in);
  const std::string key = TestPki::get().apns_key;
  int peak_mock = 0;
  double peak_tracked = 0;
  for (int i = 1; i <= 100; ++i) {
    // New credentials: the APNs key at a new path, a rewritten FCM account.
    const std::string k = dir.path() + "/key" + std::to_string(i) + ".p8";
    std::filesystem::copy_file(key, k);
    ASSERT_TRUE(conn->exec("UPDATE app SET apns_key_file = " + conn->quote(k) +
                           " WHERE id = " + std::to_string(app))
                    .ok());
    account["private_key_id"] = "rotation-" + std::to_string(i);
    std::ofstream(sa) << account.dump();
    d.signal(SIGHUP);
    ASSERT_TRUE(eventually([&] {
      return d.metric(R"(pushdaemon_config_reloads_total{result="ok"})").value_or(0) >= i;
    })) << "reload "
        << i << "\n"
        << d.log().substr(d.log().size() > 4000 ? d.log().size() - 4000 : 0);
    peak_mock = std::max(peak_mock, mock.stats().value("open_connections", 0));
    const std::string m = d.metrics();
    peak_tracked = std::max(
        peak_tracked,
        metricValue(m, R"(leakscope_tracked_objects{kind="apns.connection"})").value_or(0) +
            metricValue(m, R"(leakscope_tracked_objects{kind="fcm.connection"})").value_or(0));
  }
  EXPECT_EQ(d.metric(R"(pushdaemon_push_clients_replaced_total{platform="apns"})"), 100.0);
  EXPECT_EQ(d.metric(R"(pushdaemon_push_clients_replaced_total{platform="fcm"})"), 100.0);
  // The old pool is gone before the new one opens: never more than one
  // pool per platform (+ the OAuth connection) open at once.
  EXPECT_LE(peak_mock, 2 * kMax + 1);
  EXPECT_LE(peak_tracked, 2 * kMax);
  EXPECT_LE(mock.stats().value("peak_open_connections", 999), 2 * kMax + 1);
  ASSERT_TRUE(waitForState(*conn, *sid, "done", 120000)) << d.log();
  // Clients replaced mid-schedule lost nothing: one result per token.
  EXPECT_EQ(resultsByToken(*conn, *sid).size(), 8000u);
  const std::string m = d.metrics();
  EXPECT_EQ(metricValue(m, R"(leakscope_tracked_objects{kind="apns.provider"})"), 1.0);
  EXPECT_EQ(metricValue(m, R"(leakscope_tracked_objects{kind="fcm.provider"})"), 1.0);
  EXPECT_LE(metricValue(m, R"(leakscope_tracked_objects{kind="apns.connection"})").value_or(99),
            kMax);
  EXPECT_EQ(d.terminate(), 0);
  EXPECT_EQ(mock.stats().value("open_connections", -1), 0);
}

TEST(Reload, ABrokenConfigFileKeepsTheRunningConfiguration) {
  MariaDbServer db;
  ASSERT_TRUE(db.ok()) << db.error();
  MockPushServer mock;
  TempDir dir;
  DaemonProcess d(db, mock, dir.path());
  ASSERT_TRUE(d.start()) << d.log();
  std::ofstream(d.configPath()) << "[sending]\npage_size = \"many\"\n";
  d.signal(SIGHUP);
  ASSERT_TRUE(eventually([&] {
    return d.metric(R"(pushdaemon_config_reloads_total{result="error"})").value_or(0) == 1;
  }));
  EXPECT_NE(d.log().find(d.configPath() + ":2: sending.page_size"), std::string::npos) << d.log();
  EXPECT_TRUE(d.alive());
  EXPECT_NE(d.health().value_or("").find("\"ok\""), std::string::npos);
  EXPECT_EQ(d.terminate(), 0);
}

}  // namespace
}  // namespace leakscope::testing
