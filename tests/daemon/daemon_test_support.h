// The pushdaemon test harness, reusable by the integration tests, the
// benchmark and the demo (issue #6):
//  - MariaDbServer: a real MariaDB in a temp dir (mariadb-install-db +
//    mariadbd --no-defaults on 127.0.0.1, a free port, its own socket), with
//    a `pushdaemon` database and user whose password lives in a 0600 file.
//    Stoppable and restartable on the same port; killed by its destructor.
//  - DaemonProcess: build/bin/pushdaemon as a child with a TOML file written
//    for a MariaDbServer and a MockPushServer (every option overridable),
//    its /metrics and /healthz, and signals (TERM, HUP, USR2, KILL).
//  - Loaders: an app with the test PKI's credentials, tokens, schedules, and
//    the queries the tests assert on (results per token, schedule rows).
//  - DaemonStackTest: the GoogleTest fixture the daemon and dashboard tests
//    start from (a MariaDB with the schema migrated, the mock, a temp dir).
// Every process started here is killed and reaped by its owner's
// destructor, also when an assertion ends the test early.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "admin.h"
#include "db.h"
#include "push_test_support.h"
#include "store.h"
#include "test_support.h"

namespace leakscope::testing {

class MariaDbServer {
 public:
  // Initialises a data dir under a fresh temp dir and starts the server,
  // with `extra_flags` for mariadbd (e.g. tlsFlags()).
  explicit MariaDbServer(std::vector<std::string> extra_flags = {});
  ~MariaDbServer();

  bool ok() const { return ok_; }
  std::string error() const { return error_; }
  int port() const { return port_; }
  const std::string& dir() const { return dir_.path(); }
  const std::string& passwordFile() const { return password_file_; }
  const std::string& password() const { return password_; }

  // SIGTERM and wait (a clean shutdown); start() again on the same port.
  void stop();
  bool start();
  bool running() const { return server_ != nullptr && server_->alive(); }

  // A new connection as the pushdaemon user (nullptr on failure).
  std::unique_ptr<pushdaemon::DbConnection> connect() const;
  pushdaemon::DbParams params() const;

 private:
  bool waitReady();
  std::vector<std::string> extra_flags_;
  TempDir dir_;
  std::unique_ptr<Child> server_;
  int port_ = 0;
  std::string password_;
  std::string password_file_;
  bool ok_ = false;
  std::string error_;
};

// mariadbd flags for TLS with the test PKI's server certificate (signed by
// TestPki::ca; names localhost and 127.0.0.1), and with
// `--require-secure-transport` when `require` (TCP without TLS refused; the
// Unix socket, which the harness's root connection uses, stays allowed).
std::vector<std::string> tlsFlags(bool require);

// Settings as "section.key" -> TOML literal ("500", "\"text\"", "true").
using Settings = std::map<std::string, std::string>;

class DaemonProcess {
 public:
  // Settings for `db` and `mock` (short timeouts, small pages, port 0 for
  // http, snapshots into dir/snapshots, push.credentials_dir = dir), then
  // `overrides`.
  DaemonProcess(const MariaDbServer& db, const MockPushServer& mock, std::string dir,
                Settings overrides = {});
  ~DaemonProcess();

  // Writes the config and starts the daemon; true once it printed its
  // start line (http address known), or the line starting with `until`
  // (kWaitLine: it waits for the database; /healthz answers meanwhile).
  static constexpr const char* kStartLine = "pushdaemon pid=";
  static constexpr const char* kWaitLine = "pushdaemon waiting for the database";
  bool start(const std::string& until = kStartLine);
  // After start(kWaitLine): true once the start line follows.
  bool waitForStartLine(int timeout_ms = 20000);
  std::string configPath() const { return dir_ + "/pushdaemon.toml"; }
  // Rewrites the config file with more overrides (for SIGHUP tests).
  void writeConfig(const Settings& more);

  int pid() const { return child_ ? child_->pid() : -1; }
  bool alive() const { return child_ && child_->alive(); }
  void signal(int sig) const;
  // SIGKILL and reap.
  void kill9();
  // SIGTERM; the exit status (or -1 on timeout).
  int terminate(int timeout_ms = 30000);
  std::string log() const { return child_ ? child_->err() : ""; }
  std::string out() const { return child_ ? child_->out() : ""; }
  const std::string& http() const { return http_; }
  std::string metrics() const;
  // One series' value from a fresh scrape (nullopt if absent or no answer).
  std::optional<double> metric(const std::string& series) const;
  // /healthz's body, whatever the status (503 while the database is down).
  std::optional<std::string> health() const;
  const std::string& dir() const { return dir_; }

 private:
  // Waits for a stdout line starting with `prefix` and takes its http=.
  bool waitForLine(const std::string& prefix, int timeout_ms);
  Settings settings_;
  std::string dir_;
  std::unique_ptr<Child> child_;
  std::string http_;
};

// An app with APNs token auth (the test PKI's key) and an FCM service
// account for `mock`, both written into `dir` with mode 0600 (a daemon's
// push.credentials_dir must hold `dir`). Returns the app id (0 on error).
std::uint64_t createTestApp(pushdaemon::DbConnection& db, const MockPushServer& mock,
                            const std::string& dir, const std::string& name);

// Inserts tokens (platform, token) for an app; returns their ids in order.
std::vector<std::uint64_t> insertTokens(pushdaemon::DbConnection& db, std::uint64_t app_id,
                                        const std::string& platform,
                                        const std::vector<std::string>& tokens);

// A valid payload for both platforms.
std::string bothPlatformsPayload();

struct ResultRecord {
  std::string token;
  std::string platform;
  std::string outcome;
  int status = 0;
  std::string reason;
  int attempts = 0;
};
// token -> result rows (more than one would be a bug) for a schedule.
std::map<std::string, std::vector<ResultRecord>> resultsByToken(pushdaemon::DbConnection& db,
                                                                std::uint64_t schedule_id);
std::uint64_t count(pushdaemon::DbConnection& db, const std::string& sql);
std::optional<pushdaemon::ScheduleStatus> status(pushdaemon::DbConnection& db,
                                                 std::uint64_t schedule_id);

// Waits until the schedule reaches `state` (polling, with a deadline).
bool waitForState(pushdaemon::DbConnection& db, std::uint64_t schedule_id, const std::string& state,
                  int timeout_ms = 60000);

// The fixture of the daemon-level integration tests (tests/daemon and
// tests/dashboards): a real MariaDB, the mock push server and a temp dir,
// started when the fixture is made; SetUp() checks that both servers came
// up, connects as the pushdaemon user and migrates the schema. Members in
// start order, so teardown runs in reverse (the connection, the dir, the
// mock, the database last), also when an assertion ends the test early;
// the daemons a test starts are its own and go before all of them.
class DaemonStackTest : public ::testing::Test {
 protected:
  void SetUp() override;
  // Both servers are up; the failure names the one that is not. For
  // fixtures whose daemon migrates the schema itself.
  ::testing::AssertionResult serversUp() const;

  struct DueSchedule {
    std::uint64_t app = 0;
    std::uint64_t id = 0;  // 0 when a step failed
  };
  // One app ("game", its key files in dir_/app), n tokens per platform
  // that the mock delivers, and one schedule for both, due now.
  DueSchedule scheduleTokens(int n);

  MariaDbServer db_;
  MockPushServer mock_;
  TempDir dir_;
  std::unique_ptr<pushdaemon::DbConnection> conn_;
};

}  // namespace leakscope::testing
