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

using Reload = DaemonStackTest;

TEST_F(Reload, HundredCredentialChangesKeepOpenConnectionsBounded) {
  const auto [app, sid] = scheduleTokens(4000);
  const int kMax = 2;  // per pool
  DaemonProcess d(db_, mock_, dir_.path(),
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

  const std::string sa = dir_.path() + "/app/service-account.json";
  std::ifstream in(sa);
  auto account = nlohmann::json::parse(in);
  const std::string key = TestPki::get().apns_key;
  int peak_mock = 0;
  double peak_tracked = 0;
  for (int i = 1; i <= 100; ++i) {
    // New credentials: the APNs key at a new path, a rewritten FCM account.
    const std::string k = dir_.path() + "/key" + std::to_string(i) + ".p8";
    std::filesystem::copy_file(key, k);
    ASSERT_TRUE(conn_
                    ->exec("UPDATE app SET apns_key_file = " + conn_->quote(k) +
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
    peak_mock = std::max(peak_mock, mock_.stats().value("open_connections", 0));
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
  EXPECT_LE(mock_.stats().value("peak_open_connections", 999), 2 * kMax + 1);
  ASSERT_TRUE(waitForState(*conn_, sid, "done", 120000)) << d.log();
  // Clients replaced mid-schedule lost nothing: one result per token.
  EXPECT_EQ(resultsByToken(*conn_, sid).size(), 8000u);
  const std::string m = d.metrics();
  EXPECT_EQ(metricValue(m, R"(leakscope_tracked_objects{kind="apns.provider"})"), 1.0);
  EXPECT_EQ(metricValue(m, R"(leakscope_tracked_objects{kind="fcm.provider"})"), 1.0);
  EXPECT_LE(metricValue(m, R"(leakscope_tracked_objects{kind="apns.connection"})").value_or(99),
            kMax);
  EXPECT_EQ(d.terminate(), 0);
  EXPECT_EQ(mock_.stats().value("open_connections", -1), 0);
}

TEST_F(Reload, ABrokenConfigFileKeepsTheRunningConfiguration) {
  DaemonProcess d(db_, mock_, dir_.path());
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
