// pushdaemon end to end: a real MariaDB, the mock push server, the daemon
// binary. One schedule of 10,000 tokens with every outcome class, bad
// schedules and bad input, SIGTERM drain, and secrets kept out of logs,
// snapshots and argv.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "daemon_test_support.h"
#include "gtest/gtest.h"

namespace leakscope::testing {
namespace {

struct Mix {
  std::vector<std::string> valid, invalid, permanent, retryable;
  std::size_t size() const {
    return valid.size() + invalid.size() + permanent.size() + retryable.size();
  }
};

// Tokens per platform: prefixes select the mock's answer.
Mix makeMix(const std::string& p, std::size_t n) {
  Mix m;
  const std::string invalid = p + "dead", permanent = p + "c0", retry = p + "b5";
  for (std::size_t i = 0; i < n; ++i) {
    if (i % 10 == 1) {
      m.invalid.push_back(deviceToken(i, invalid));
    } else if (i % 50 == 2) {
      m.permanent.push_back(deviceToken(i, permanent));
    } else if (i % 100 == 3) {
      m.retryable.push_back(deviceToken(i, retry));
    } else {
      m.valid.push_back(deviceToken(i, p + "0"));
    }
  }
  return m;
}

// The daemon, started so that whether it is dumpable shows: the kernel
// gives a non-dumpable process's /proc/PID files to root:root, a dumpable
// one's to its own euid:egid. As root the daemon gets egid nobody
// (setpriv), so that its files differ from root's; otherwise it runs as
// this user.
struct ProbedDaemon {
  std::unique_ptr<Child> child;
  uid_t uid = 0;
  gid_t gid = 0;
};

ProbedDaemon startProbed(DaemonProcess& d) {
  d.writeConfig({});
  const std::string bin = std::string(LEAKSCOPE_BIN_DIR) + "/pushdaemon";
  ProbedDaemon p{nullptr, geteuid(), getegid()};
  std::vector<std::string> argv = {bin, "--config", d.configPath()};
  if (geteuid() == 0) {
    p.gid = 65534;
    argv.insert(argv.begin(), {"/usr/bin/setpriv", "--regid=65534", "--clear-groups"});
  }
  p.child = std::make_unique<Child>(argv);
  EXPECT_TRUE(p.child->waitForLine("pushdaemon pid=", 20000)) << p.child->err();
  return p;
}

// uid:gid of /proc/PID/status.
std::string procOwner(int pid) {
  struct stat st {};
  if (::stat(("/proc/" + std::to_string(pid) + "/status").c_str(), &st) != 0) return "?";
  return std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid);
}

// "Max core file size  SOFT  HARD  bytes" of /proc/PID/limits.
std::string coreLimit(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Max core file size", 0) == 0) {
      std::istringstream f(line.substr(18));
      std::string soft, hard;
      f >> soft >> hard;
      return soft + " " + hard;
    }
  }
  return "?";
}

class PushDaemonTest : public DaemonStackTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(DaemonStackTest::SetUp());
    // Token prefixes select the answer ("a..." APNs, "f..." FCM tokens).
    ASSERT_TRUE(mock_.rules(nlohmann::json::array({
        {{"prefix", "adead"}, {"status", 410}, {"reason", "Unregistered"}},
        {{"prefix", "fdead"}, {"status", 404}, {"fcm_code", "UNREGISTERED"}},
        {{"prefix", "ac0"}, {"status", 400}, {"reason", "BadExpirationDate"}},
        {{"prefix", "fc0"}, {"status", 400}, {"fcm_code", "INVALID_ARGUMENT"}},
        {{"prefix", "ab5"}, {"status", 503}, {"reason", "ServiceUnavailable"}},
        {{"prefix", "fb5"}, {"status", 503}, {"fcm_code", "UNAVAILABLE"}},
    })));
  }
};

TEST_F(PushDaemonTest, TenThousandTokensOverBothPlatformsEndWithTheExpectedOutcomeEach) {
  const std::uint64_t app = createTestApp(*conn_, mock_, dir_.path() + "/app", "game");
  ASSERT_NE(app, 0u);
  const Mix apns = makeMix("a", 5000), fcm = makeMix("f", 5000);
  for (const auto* m : {&apns, &fcm}) {
    const std::string p = m == &apns ? "apns" : "fcm";
    for (const auto* v : {&m->valid, &m->invalid, &m->permanent, &m->retryable}) {
      ASSERT_EQ(insertTokens(*conn_, app, p, *v).size(), v->size());
    }
  }
  auto sid = pushdaemon::addSchedule(*conn_, app, bothPlatformsPayload(), -1);
  ASSERT_TRUE(sid.ok());

  const int kClientAttempts = 2, kRounds = 3;
  DaemonProcess d(db_, mock_, dir_.path(),
                  {{"apns.retry_max_attempts", std::to_string(kClientAttempts)},
                   {"fcm.retry_max_attempts", std::to_string(kClientAttempts)},
                   {"sending.max_token_attempts", std::to_string(kRounds)}});
  ASSERT_TRUE(d.start()) << d.log();
  ASSERT_TRUE(waitForState(*conn_, *sid, "done", 90000)) << d.log();

  // Exactly one result per token, with the outcome its prefix asked for.
  const auto results = resultsByToken(*conn_, *sid);
  EXPECT_EQ(results.size(), 10000u);
  EXPECT_EQ(
      count(*conn_, "SELECT COUNT(*) FROM push_result WHERE schedule_id = " + std::to_string(*sid)),
      10000u);
  const auto received = receivedCounts(mock_.received());
  auto expect = [&](const std::vector<std::string>& tokens, const std::string& platform,
                    const std::string& outcome, int requests) {
    for (const auto& t : tokens) {
      const auto it = results.find(t);
      ASSERT_NE(it, results.end()) << platform << " token without result";
      ASSERT_EQ(it->second.size(), 1u);
      EXPECT_EQ(it->second[0].outcome, outcome) << t;
      EXPECT_EQ(it->second[0].platform, platform);
      EXPECT_EQ(it->second[0].attempts, requests) << t;
      const auto r = received.find(t);
      EXPECT_EQ(r == received.end() ? 0 : r->second, requests) << "mock requests for " << t;
    }
  };
  for (const auto* m : {&apns, &fcm}) {
    const std::string p = m == &apns ? "apns" : "fcm";
    expect(m->valid, p, "success", 1);
    expect(m->invalid, p, "invalid_token", 1);
    expect(m->permanent, p, "permanent", 1);
    // Server said 503 every time: the client's own attempts, in each of
    // the daemon's rounds, then recorded as retryable.
    expect(m->retryable, p, "retryable", kClientAttempts * kRounds);
  }
  EXPECT_EQ(results.at(apns.invalid[0])[0].reason, "Unregistered");
  EXPECT_EQ(results.at(fcm.invalid[0])[0].reason, "UNREGISTERED");
  EXPECT_EQ(results.at(apns.retryable[0])[0].status, 503);

  // Counters on the schedule row and in the metrics agree with the rows.
  const auto st = status(*conn_, *sid);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->success, apns.valid.size() + fcm.valid.size());
  EXPECT_EQ(st->invalid_token, apns.invalid.size() + fcm.invalid.size());
  EXPECT_EQ(st->permanent, apns.permanent.size() + fcm.permanent.size());
  EXPECT_EQ(st->retryable, apns.retryable.size() + fcm.retryable.size());
  const std::string text = d.metrics();
  EXPECT_EQ(metricValue(text, R"(pushdaemon_tokens_total{outcome="success",platform="apns"})"),
            static_cast<double>(apns.valid.size()));
  EXPECT_EQ(metricValue(text, R"(pushdaemon_tokens_total{outcome="retryable",platform="fcm"})"),
            static_cast<double>(fcm.retryable.size()));
  EXPECT_EQ(metricValue(text, R"(pushdaemon_tokens_deactivated_total{platform="apns"})"),
            static_cast<double>(apns.invalid.size()));
  EXPECT_EQ(metricValue(text, R"(pushdaemon_result_backlog_tokens)"), 0.0);
  EXPECT_EQ(metricValue(text, R"(pushdaemon_schedules_finished_total{state="done"})"), 1.0);

  // Invalid tokens are deactivated with their reason; no other token is.
  EXPECT_EQ(count(*conn_, "SELECT COUNT(*) FROM device_token WHERE active = 0"),
            apns.invalid.size() + fcm.invalid.size());
  EXPECT_EQ(count(*conn_,
                  "SELECT COUNT(*) FROM device_token WHERE active = 0 AND last_error "
                  "NOT IN ('Unregistered', 'UNREGISTERED')"),
            0u);

  // One long-lived client per platform, bounded connections.
  EXPECT_EQ(metricValue(text, R"(leakscope_tracked_objects{kind="apns.provider"})"), 1.0);
  EXPECT_EQ(metricValue(text, R"(leakscope_tracked_objects{kind="fcm.provider"})"), 1.0);
  EXPECT_LE(*metricValue(text, R"(leakscope_tracked_objects{kind="apns.connection"})"), 2.0);
  EXPECT_EQ(d.terminate(), 0) << d.log();
}

TEST_F(PushDaemonTest, SecretsNeverAppearInLogsSnapshotsMetricsOrArgv) {
  const std::uint64_t app = createTestApp(*conn_, mock_, dir_.path() + "/app", "game");
  const std::vector<std::string> apns = {deviceToken(7, "a0"), deviceToken(8, "adead")};
  const std::vector<std::string> fcm = {deviceToken(9, "f0"), deviceToken(10, "fdead")};
  insertTokens(*conn_, app, "apns", apns);
  insertTokens(*conn_, app, "fcm", fcm);
  auto sid = pushdaemon::addSchedule(*conn_, app, bothPlatformsPayload(), -1);
  ASSERT_TRUE(sid.ok());
  DaemonProcess d(db_, mock_, dir_.path());
  ASSERT_TRUE(d.start()) << d.log();
  ASSERT_TRUE(waitForState(*conn_, *sid, "done")) << d.log();
  d.signal(SIGUSR2);
  const std::string snaps = dir_.path() + "/snapshots";
  ASSERT_TRUE(eventually([&] {
    if (!std::filesystem::exists(snaps)) return false;
    for (const auto& e : std::filesystem::directory_iterator(snaps)) {
      if (e.path().extension() == ".lsnap") return true;
    }
    return false;
  })) << d.log();
  std::string snapshot;
  for (const auto& e : std::filesystem::directory_iterator(snaps)) {
    if (e.path().extension() != ".lsnap") continue;
    std::ifstream in(e.path());
    std::stringstream s;
    s << in.rdbuf();
    snapshot += s.str();
  }
  // The snapshot names the DB connections and the push providers.
  EXPECT_NE(snapshot.find("db.connection"), std::string::npos);
  EXPECT_NE(snapshot.find("apns.provider"), std::string::npos);
  std::ifstream cmdline("/proc/" + std::to_string(d.pid()) + "/cmdline");
  std::stringstream argv;
  argv << cmdline.rdbuf();
  const std::string metrics = d.metrics();
  EXPECT_EQ(d.terminate(), 0);
  const std::string log = d.log() + d.out();
  std::ifstream key(TestPki::get().apns_key);
  std::stringstream key_text;
  key_text << key.rdbuf();
  std::string key_body = key_text.str().substr(key_text.str().find('\n') + 1, 40);
  std::vector<std::string> secrets = {db_.password(), key_body};
  secrets.insert(secrets.end(), apns.begin(), apns.end());
  secrets.insert(secrets.end(), fcm.begin(), fcm.end());
  for (const auto& s : secrets) {
    EXPECT_EQ(log.find(s), std::string::npos) << "log leaks " << s;
    EXPECT_EQ(snapshot.find(s), std::string::npos) << "snapshot leaks " << s;
    EXPECT_EQ(metrics.find(s), std::string::npos) << "metrics leak " << s;
    EXPECT_EQ(argv.str().find(s), std::string::npos) << "argv leaks " << s;
  }
}

TEST_F(PushDaemonTest, CoreDumpsAreOffByDefaultAndAllowCoreDumpsLeavesThemOn) {
  {
    DaemonProcess d(db_, mock_, dir_.path());
    ProbedDaemon p = startProbed(d);
    ASSERT_TRUE(p.child->alive()) << p.child->err();
    const int pid = p.child->pid();
    EXPECT_EQ(coreLimit(pid), "0 0");
    EXPECT_EQ(procOwner(pid), "0:0")
        << "the daemon is dumpable (it runs as " << p.uid << ":" << p.gid << ")";
    EXPECT_EQ(p.child->terminate(30000), 0);
  }
  {
    // leakscope's own /proc/self reads still work while non-dumpable.
    DaemonProcess d(db_, mock_, dir_.path() + "/metrics");
    ASSERT_TRUE(d.start()) << d.log();
    const std::string m = d.metrics();
    EXPECT_GE(metricValue(m, "process_open_fds").value_or(0), 5.0) << m;
    EXPECT_NE(m.find(R"(protocol="tcp",state="ESTABLISHED"})"), std::string::npos) << m;
    EXPECT_EQ(d.terminate(), 0);
  }
  DaemonProcess d(db_, mock_, dir_.path() + "/allowed", {{"daemon.allow_core_dumps", "true"}});
  ProbedDaemon p = startProbed(d);
  ASSERT_TRUE(p.child->alive()) << p.child->err();
  EXPECT_EQ(procOwner(p.child->pid()), std::to_string(p.uid) + ":" + std::to_string(p.gid));
  EXPECT_EQ(p.child->terminate(30000), 0);
}

TEST_F(PushDaemonTest, MetricsPassPromtool) {
  const std::uint64_t app = createTestApp(*conn_, mock_, dir_.path() + "/app", "game");
  insertTokens(*conn_, app, "apns", {deviceToken(1, "a0"), deviceToken(2, "adead")});
  insertTokens(*conn_, app, "fcm", {deviceToken(3, "f0"), deviceToken(4, "fb5")});
  auto sid = pushdaemon::addSchedule(*conn_, app, bothPlatformsPayload(), -1);
  DaemonProcess d(db_, mock_, dir_.path());
  ASSERT_TRUE(d.start()) << d.log();
  ASSERT_TRUE(waitForState(*conn_, *sid, "done")) << d.log();
  const std::string text = d.metrics();
  for (const char* family :
       {"pushdaemon_tokens_total", "pushdaemon_batch_duration_seconds_bucket",
        "pushdaemon_db_errors_total", "pushdaemon_result_backlog_tokens", "pushdaemon_schedules",
        "pushdaemon_apns_upstream_cx_active", "leakscope_tracked_objects"}) {
    EXPECT_NE(text.find(std::string("\n") + family), std::string::npos) << family;
  }
  // The transport's connection gauge and the tracked objects agree.
  EXPECT_EQ(metricValue(text, "pushdaemon_apns_upstream_cx_active"),
            metricValue(text, R"(leakscope_tracked_objects{kind="apns.connection"})"));
  EXPECT_EQ(metricValue(text, R"(leakscope_tracked_objects{kind="db.connection"})"), 2.0);
  const std::string file = dir_.path() + "/metrics.txt";
  std::ofstream(file) << text;
  Child promtool({"/bin/sh", "-c", "promtool check metrics < " + file});
  EXPECT_EQ(promtool.wait(30000), 0) << promtool.out() << promtool.err();
  EXPECT_EQ(d.terminate(), 0);
}

TEST_F(PushDaemonTest, BadSchedulesFailWithTheReasonAndTheDaemonCarriesOn) {
  const std::uint64_t app = createTestApp(*conn_, mock_, dir_.path() + "/app", "game");
  const auto good_ids =
      insertTokens(*conn_, app, "apns", {deviceToken(1, "a0"), deviceToken(2, "a0")});
  // An empty token in the table (by hand: the loader refuses it).
  ASSERT_TRUE(conn_
                  ->exec("INSERT INTO device_token (app_id, platform, token) VALUES (" +
                         std::to_string(app) + ", 'fcm', '')")
                  .ok());
  insertTokens(*conn_, app, "fcm", {deviceToken(3, "f0")});
  const std::string big(5000, 'x');
  auto oversized = pushdaemon::addSchedule(
      *conn_, app, R"({"apns":{"aps":{"alert":")" + big + R"("}}})", -5, false);
  auto not_json = pushdaemon::addSchedule(*conn_, app, R"({"apns": {"aps": )", -4, false);
  auto unknown = pushdaemon::addSchedule(*conn_, app, R"({"webpush":{"title":"x"}})", -3, false);
  auto no_platform = pushdaemon::addSchedule(*conn_, app, R"({})", -2, false);
  auto good = pushdaemon::addSchedule(*conn_, app, bothPlatformsPayload(), -1);
  ASSERT_TRUE(oversized.ok() && not_json.ok() && unknown.ok() && no_platform.ok() && good.ok());

  DaemonProcess d(db_, mock_, dir_.path());
  ASSERT_TRUE(d.start()) << d.log();
  ASSERT_TRUE(waitForState(*conn_, *good, "done")) << d.log();
  auto reason = [&](std::uint64_t id) {
    auto s = status(*conn_, id);
    EXPECT_TRUE(s && s->state == "failed") << id;
    return s ? s->failure_reason : "";
  };
  EXPECT_NE(reason(*oversized).find("apns payload is 50"), std::string::npos) << reason(*oversized);
  EXPECT_NE(reason(*oversized).find("4096-byte limit"), std::string::npos);
  EXPECT_NE(reason(*not_json).find("not valid JSON"), std::string::npos);
  EXPECT_NE(reason(*unknown).find("unknown platform 'webpush'"), std::string::npos);
  EXPECT_NE(reason(*no_platform).find("names no platform"), std::string::npos);
  // Nothing of the failed schedules was sent or recorded.
  for (auto id : {*oversized, *not_json, *unknown, *no_platform}) {
    EXPECT_EQ(
        count(*conn_, "SELECT COUNT(*) FROM push_result WHERE schedule_id = " + std::to_string(id)),
        0u);
  }
  // The good schedule: every token one result; the empty one recorded as
  // permanent without being sent.
  const auto results = resultsByToken(*conn_, *good);
  EXPECT_EQ(results.size(), 4u);
  ASSERT_EQ(results.count(""), 1u);
  EXPECT_EQ(results.at("")[0].outcome, "permanent");
  EXPECT_EQ(results.at("")[0].reason, "EmptyToken");
  EXPECT_EQ(results.at("")[0].attempts, 0);
  EXPECT_EQ(mock_.stats().value("requests", nlohmann::json::object()).value("fcm", 0), 1);
  EXPECT_EQ(d.metric(R"(pushdaemon_schedules_finished_total{state="failed"})"), 4.0);
  EXPECT_TRUE(d.alive());
  EXPECT_NE(d.health().value_or("").find("\"ok\""), std::string::npos);
  EXPECT_EQ(d.terminate(), 0);
  (void)good_ids;
}

TEST_F(PushDaemonTest, AResultThatCannotBeWrittenFailsTheScheduleAndTheCursorNeverPassesIt) {
  const std::uint64_t app = createTestApp(*conn_, mock_, dir_.path() + "/app", "game");
  std::vector<std::string> tokens;
  for (int i = 0; i < 3000; ++i) {
    tokens.push_back(deviceToken(static_cast<std::uint64_t>(i), i == 1700 ? "adead" : "a0"));
  }
  const auto ids = insertTokens(*conn_, app, "apns", tokens);
  // The database refuses the row of the one invalid token (page 4 of 6).
  ASSERT_TRUE(conn_
                  ->exec("ALTER TABLE push_result ADD CONSTRAINT no_unregistered CHECK (reason <> "
                         "'Unregistered')")
                  .ok());
  auto bad = pushdaemon::addSchedule(*conn_, app, R"({"apns":{"aps":{"alert":"x"}}})", -1);
  DaemonProcess d(db_, mock_, dir_.path(), {{"sending.page_size", "500"}});
  ASSERT_TRUE(d.start()) << d.log();
  ASSERT_TRUE(waitForState(*conn_, *bad, "failed")) << d.log();
  const auto st = status(*conn_, *bad);
  EXPECT_NE(st->failure_reason.find("writing results failed"), std::string::npos)
      << st->failure_reason;
  // Results exist exactly for the tokens at or below the cursor, which
  // stops before the page that could not be written.
  EXPECT_LT(st->apns_cursor, ids[1700]);
  EXPECT_EQ(
      count(*conn_, "SELECT COUNT(*) FROM push_result WHERE schedule_id = " + std::to_string(*bad)),
      count(*conn_,
            "SELECT COUNT(*) FROM device_token WHERE id <= " + std::to_string(st->apns_cursor)));
  EXPECT_EQ(
      count(*conn_, "SELECT COUNT(*) FROM push_result WHERE schedule_id = " + std::to_string(*bad) +
                        " AND token_id > " + std::to_string(st->apns_cursor)),
      0u);
  // The daemon carries on with the next schedule.
  ASSERT_TRUE(conn_->exec("ALTER TABLE push_result DROP CONSTRAINT no_unregistered").ok());
  auto next = pushdaemon::addSchedule(*conn_, app, R"({"apns":{"aps":{"alert":"y"}}})", -1);
  ASSERT_TRUE(waitForState(*conn_, *next, "done")) << d.log();
  EXPECT_EQ(resultsByToken(*conn_, *next).size(), 3000u);
  EXPECT_EQ(d.terminate(), 0);
}

TEST_F(PushDaemonTest, MalformedConfigIsRefusedNamingFileLineAndKey) {
  const std::string path = dir_.path() + "/bad.toml";
  auto run = [&](const std::string& text) {
    std::ofstream(path) << text;
    Child c({std::string(LEAKSCOPE_BIN_DIR) + "/pushdaemon", "--config", path});
    const int rc = c.wait(10000);
    return std::make_pair(rc, c.err());
  };
  auto [rc1, err1] = run("[database]\nhost = \"x\"\nport = \"3306\"\n");
  EXPECT_EQ(rc1, 2);
  EXPECT_NE(err1.find(path + ":3: database.port: expected an integer"), std::string::npos) << err1;
  auto [rc2, err2] = run("[sending]\n\npagesize = 10\n");
  EXPECT_EQ(rc2, 2);
  EXPECT_NE(err2.find(path + ":3: unknown option 'sending.pagesize'"), std::string::npos) << err2;
  auto [rc3, err3] = run("[daemon]\nlog_level = \"info\n");
  EXPECT_EQ(rc3, 2);
  EXPECT_NE(err3.find(path + ":2:"), std::string::npos) << err3;
  auto [rc4, err4] = run("[database]\npassword = \"hunter2\"\n");
  EXPECT_EQ(rc4, 2);
  EXPECT_NE(err4.find("password_file"), std::string::npos) << err4;
  EXPECT_EQ(err4.find("hunter2"), std::string::npos) << err4;
}

TEST_F(PushDaemonTest, AWrongDatabasePasswordEndsTheStartWithoutEchoingIt) {
  const std::string pw = dir_.path() + "/wrong-password";
  std::ofstream(pw) << "not-the-password-4711\n";
  chmod(pw.c_str(), 0600);
  DaemonProcess d(db_, mock_, dir_.path(), {{"database.password_file", "\"" + pw + "\""}});
  d.writeConfig({});
  Child c({std::string(LEAKSCOPE_BIN_DIR) + "/pushdaemon", "--config", d.configPath()});
  EXPECT_EQ(c.wait(20000), 1);
  EXPECT_NE(c.err().find("Access denied"), std::string::npos) << c.err();
  EXPECT_EQ(c.err().find("not-the-password-4711"), std::string::npos);
}

TEST_F(PushDaemonTest, TokenLoaderRefusesBadLinesByFileAndLineAndLoadsNothing) {
  const std::uint64_t app = createTestApp(*conn_, mock_, dir_.path() + "/app", "game");
  const std::string tokens = dir_.path() + "/tokens.txt";
  std::ofstream(tokens) << "apns " << deviceToken(1) << "\n"
                        << "blackberry 1234\n"
                        << "fcm\n"
                        << "fcm " << deviceToken(2) << "\n";
  const std::string cfg = dir_.path() + "/admin.toml";
  std::ofstream(cfg) << "[database]\nhost = \"127.0.0.1\"\nport = " << db_.port()
                     << "\nuser = \"pushdaemon\"\npassword_file = \"" << db_.passwordFile()
                     << "\"\n";
  Child c({std::string(LEAKSCOPE_BIN_DIR) + "/pushdaemon-admin", "--config", cfg, "load-tokens",
           std::to_string(app), tokens});
  EXPECT_EQ(c.wait(10000), 2);
  EXPECT_NE(c.err().find(tokens + ":2: unknown platform 'blackberry'"), std::string::npos)
      << c.err();
  EXPECT_NE(c.err().find(tokens + ":3: empty token"), std::string::npos) << c.err();
  EXPECT_EQ(count(*conn_, "SELECT COUNT(*) FROM device_token"), 0u);
  // Fixed, the same file loads completely.
  std::ofstream(tokens) << "apns " << deviceToken(1) << "\nfcm " << deviceToken(2) << "\n";
  Child ok({std::string(LEAKSCOPE_BIN_DIR) + "/pushdaemon-admin", "--config", cfg, "load-tokens",
            std::to_string(app), tokens});
  EXPECT_EQ(ok.wait(10000), 0) << ok.err();
  EXPECT_EQ(count(*conn_, "SELECT COUNT(*) FROM device_token"), 2u);
}

TEST_F(PushDaemonTest, SigtermDrainsPersistsReleasesAndClosesEveryConnection) {
  const std::uint64_t sid = scheduleTokens(3000).id;
  // Slow enough to be stopped in the middle: 1500 per second per platform.
  Settings slow = {{"apns.rate_limit", "1500"},
                   {"fcm.rate_limit", "1500"},
                   {"sending.page_size", "200"},
                   {"push.credentials_dir", "\"" + dir_.path() + "\""}};  // also for d2
  DaemonProcess d(db_, mock_, dir_.path(), slow);
  ASSERT_TRUE(d.start()) << d.log();
  ASSERT_TRUE(eventually([&] {
    auto s = status(*conn_, sid);
    return s && s->apns_cursor > 0 && s->fcm_cursor > 0;
  }));
  EXPECT_EQ(d.terminate(), 0) << d.log();
  // Released for the next daemon, with what was sent persisted.
  auto s = status(*conn_, sid);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->state, "waiting");
  const std::uint64_t persisted =
      count(*conn_, "SELECT COUNT(*) FROM push_result WHERE schedule_id = " + std::to_string(sid));
  EXPECT_GT(persisted, 0u);
  EXPECT_LT(persisted, 6000u);
  // Everything that reached the mock has its result: drained, not dropped.
  EXPECT_EQ(mock_.stats().value("requests", nlohmann::json::object()).value("apns", 0) +
                mock_.stats().value("requests", nlohmann::json::object()).value("fcm", 0),
            static_cast<int>(persisted));
  EXPECT_TRUE(eventually([&] { return mock_.stats().value("open_connections", -1) == 0; }));
  EXPECT_NE(d.log().find("released"), std::string::npos);

  // A new daemon finishes it: every token exactly once, overall.
  DaemonProcess d2(db_, mock_, dir_.path() + "/2", slow);
  std::filesystem::create_directories(dir_.path() + "/2");
  ASSERT_TRUE(d2.start()) << d2.log();
  ASSERT_TRUE(waitForState(*conn_, sid, "done")) << d2.log();
  EXPECT_EQ(resultsByToken(*conn_, sid).size(), 6000u);
  const auto received = receivedCounts(mock_.received());
  EXPECT_EQ(received.size(), 6000u);
  for (const auto& [token, n] : received) EXPECT_EQ(n, 1) << token;
  EXPECT_EQ(d2.terminate(), 0);
}

}  // namespace
}  // namespace leakscope::testing
