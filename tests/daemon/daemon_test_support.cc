#include "daemon_test_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace leakscope::testing {

namespace {

// mariadbd refuses to run as root without --user; getlogin() needs a
// terminal, which CI has not.
std::string currentUser() {
  const passwd* pw = getpwuid(geteuid());
  return pw != nullptr ? pw->pw_name : "root";
}

std::string randomHex(int n) {
  std::mt19937_64 rng{std::random_device{}()};
  std::string s;
  const char* hex = "0123456789abcdef";
  for (int i = 0; i < n; ++i) s += hex[rng() % 16];
  return s;
}

pushdaemon::DbParams rootParams(const std::string& dir) {
  pushdaemon::DbParams p;
  p.socket = dir + "/mysqld.sock";
  p.user = "root";
  p.connect_timeout = std::chrono::seconds(2);
  p.io_timeout = std::chrono::seconds(30);
  return p;
}

}  // namespace

std::vector<std::string> tlsFlags(bool require) {
  const TestPki& pki = TestPki::get();
  std::vector<std::string> f = {"--ssl-ca=" + pki.ca, "--ssl-cert=" + pki.server_cert,
                                "--ssl-key=" + pki.server_key};
  if (require) f.push_back("--require-secure-transport");
  return f;
}

MariaDbServer::MariaDbServer(std::vector<std::string> extra_flags)
    : extra_flags_(std::move(extra_flags)) {
  // A temp dir of its own: servers bootstrapped at the same time (ctest -j)
  // otherwise remove each other's temporary tables in /tmp.
  std::filesystem::create_directories(dir() + "/tmp");
  Child install({"/usr/bin/mariadb-install-db", "--no-defaults", "--datadir=" + dir() + "/data",
                 "--auth-root-authentication-method=normal", "--skip-test-db",
                 "--user=" + currentUser(), "--tmpdir=" + dir() + "/tmp"});
  if (install.wait(60000) != 0) {
    error_ = "mariadb-install-db failed: " + install.err();
    return;
  }
  password_ = "pw-" + randomHex(24);
  password_file_ = dir() + "/db-password";
  {
    std::ofstream(password_file_) << password_ << "\n";
    chmod(password_file_.c_str(), 0600);
  }
  for (int attempt = 0; attempt < 3 && !ok_; ++attempt) {
    port_ = freePort();
    if (!start()) continue;
    auto root = pushdaemon::DbConnection::connect(rootParams(dir()));
    if (!root.ok()) {
      error_ = root.error().message;
      continue;
    }
    for (const std::string& sql :
         {std::string("CREATE DATABASE pushdaemon"),
          "CREATE USER 'pushdaemon'@'127.0.0.1' IDENTIFIED BY '" + password_ + "'",
          "CREATE USER 'pushdaemon'@'localhost' IDENTIFIED BY '" + password_ + "'",
          std::string("GRANT ALL ON pushdaemon.* TO 'pushdaemon'@'127.0.0.1'"),
          std::string("GRANT ALL ON pushdaemon.* TO 'pushdaemon'@'localhost'")}) {
      if (auto s = (*root)->exec(sql); !s.ok()) {
        error_ = s.error().message;
        return;
      }
    }
    ok_ = true;
  }
}

MariaDbServer::~MariaDbServer() { stop(); }

bool MariaDbServer::start() {
  std::vector<std::string> argv = {"/usr/sbin/mariadbd",
                                   "--no-defaults",
                                   "--datadir=" + dir() + "/data",
                                   "--socket=" + dir() + "/mysqld.sock",
                                   "--port=" + std::to_string(port_),
                                   "--bind-address=127.0.0.1",
                                   "--user=" + currentUser(),
                                   "--pid-file=" + dir() + "/mysqld.pid",
                                   "--tmpdir=" + dir() + "/tmp",
                                   "--skip-name-resolve",
                                   "--innodb-log-file-size=16M",
                                   "--innodb-buffer-pool-size=64M",
                                   "--max-connections=200",
                                   "--log-error=" + dir() + "/error.log"};
  argv.insert(argv.end(), extra_flags_.begin(), extra_flags_.end());
  server_ = std::make_unique<Child>(argv);
  return waitReady();
}

bool MariaDbServer::waitReady() {
  const bool ready = eventually(
      [&] {
        if (!server_->alive()) return true;
        return pushdaemon::DbConnection::connect(rootParams(dir())).ok();
      },
      30000);
  if (!ready || !server_->alive()) {
    std::ifstream in(dir() + "/error.log");
    std::stringstream s;
    s << in.rdbuf();
    error_ = "mariadbd did not start: " + s.str();
    return false;
  }
  return true;
}

void MariaDbServer::stop() {
  if (server_) server_->terminate(60000);
  server_.reset();
}

pushdaemon::DbParams MariaDbServer::params() const {
  pushdaemon::DbParams p;
  p.host = "127.0.0.1";
  p.port = static_cast<std::uint16_t>(port_);
  p.user = "pushdaemon";
  p.password = password_;
  p.name = "pushdaemon";
  p.connect_timeout = std::chrono::seconds(2);
  p.io_timeout = std::chrono::seconds(60);
  return p;
}

std::unique_ptr<pushdaemon::DbConnection> MariaDbServer::connect() const {
  auto c = pushdaemon::DbConnection::connect(params());
  if (!c.ok()) return nullptr;
  return std::move(*c);
}

DaemonProcess::DaemonProcess(const MariaDbServer& db, const MockPushServer& mock, std::string dir,
                             Settings overrides)
    : dir_(std::move(dir)) {
  std::filesystem::create_directories(dir_);
  const TestPki& pki = TestPki::get();
  const std::string mock_port = std::to_string(mock.port());
  settings_ = {
      {"daemon.poll_interval_ms", "50"},
      {"daemon.lease_s", "3"},
      {"daemon.drain_timeout_s", "20"},
      {"daemon.shutdown_grace_s", "2"},
      {"daemon.http_address", "\"127.0.0.1:0\""},
      {"daemon.log_level", "\"debug\""},
      {"database.host", "\"127.0.0.1\""},
      {"database.port", std::to_string(db.port())},
      {"database.user", "\"pushdaemon\""},
      {"database.password_file", "\"" + db.passwordFile() + "\""},
      {"database.name", "\"pushdaemon\""},
      {"database.connect_timeout_s", "1"},
      {"database.io_timeout_s", "5"},
      {"database.reconnect_min_ms", "50"},
      {"database.reconnect_max_ms", "500"},
      {"sending.page_size", "500"},
      {"sending.token_retry_delay_ms", "50"},
      {"sending.undelivered_backoff_min_ms", "100"},
      {"sending.undelivered_backoff_max_ms", "1000"},
      {"diag.snapshot_dir", "\"" + dir_ + "/snapshots\""},
      // createTestApp(dir_/...) puts the app's key files beneath it.
      {"push.credentials_dir", "\"" + dir_ + "\""},
  };
  for (const char* p : {"apns", "fcm"}) {
    const std::string s = p;
    settings_[s + ".host"] = "\"localhost\"";
    settings_[s + ".port"] = mock_port;
    settings_[s + ".connect_address"] = "\"127.0.0.1\"";
    settings_[s + ".ca_file"] = "\"" + pki.ca + "\"";
    settings_[s + ".request_timeout_ms"] = "5000";
    settings_[s + ".connect_timeout_ms"] = "2000";
    settings_[s + ".retry_backoff_min_ms"] = "20";
    settings_[s + ".retry_backoff_max_ms"] = "100";
  }
  settings_["fcm.oauth_connect_address"] = "\"127.0.0.1\"";
  for (const auto& [k, v] : overrides) settings_[k] = v;
}

DaemonProcess::~DaemonProcess() = default;  // Child kills and reaps

void DaemonProcess::writeConfig(const Settings& more) {
  for (const auto& [k, v] : more) settings_[k] = v;
  std::map<std::string, std::vector<std::string>> sections;
  for (const auto& [k, v] : settings_) {
    const auto dot = k.find('.');
    sections[k.substr(0, dot)].push_back(k.substr(dot + 1) + " = " + v);
  }
  std::ofstream out(configPath() + ".tmp");
  for (const auto& [s, lines] : sections) {
    out << "[" << s << "]\n";
    for (const auto& l : lines) out << l << "\n";
    out << "\n";
  }
  out.close();
  std::filesystem::rename(configPath() + ".tmp", configPath());
}

bool DaemonProcess::start(const std::string& until) {
  writeConfig({});
  child_ = std::make_unique<Child>(std::vector<std::string>{
      std::string(LEAKSCOPE_BIN_DIR) + "/pushdaemon", "--config", configPath()});
  return waitForLine(until, 20000);
}

bool DaemonProcess::waitForStartLine(int timeout_ms) { return waitForLine(kStartLine, timeout_ms); }

// Both lines name the http address: "... http=ADDR[ ...]".
bool DaemonProcess::waitForLine(const std::string& prefix, int timeout_ms) {
  const auto line = child_ ? child_->waitForLine(prefix, timeout_ms) : std::nullopt;
  if (!line) return false;
  const auto at = line->find("http=");
  if (at == std::string::npos) return false;
  http_ = line->substr(at + 5, line->find(' ', at) - at - 5);
  return true;
}

void DaemonProcess::signal(int sig) const {
  if (child_ && child_->pid() > 0) ::kill(child_->pid(), sig);
}

void DaemonProcess::kill9() {
  if (!child_) return;
  ::kill(child_->pid(), SIGKILL);
  child_->wait(10000);
}

int DaemonProcess::terminate(int timeout_ms) { return child_ ? child_->terminate(timeout_ms) : -1; }

std::string DaemonProcess::metrics() const { return httpGet(http_, "/metrics").value_or(""); }

std::optional<double> DaemonProcess::metric(const std::string& series) const {
  return metricValue(metrics(), series);
}

std::optional<std::string> DaemonProcess::health() const {
  auto a = httpAsk(http_, "/healthz");  // 503 while the database is down
  if (!a) return std::nullopt;
  return a->body;
}

std::uint64_t createTestApp(pushdaemon::DbConnection& db, const MockPushServer& mock,
                            const std::string& dir, const std::string& name) {
  const TestPki& pki = TestPki::get();
  std::filesystem::create_directories(dir);
  // The key files live in `dir`, mode 0600, as a daemon whose
  // push.credentials_dir holds `dir` requires.
  const std::string key = dir + "/apns.p8";
  std::filesystem::copy_file(pki.apns_key, key, std::filesystem::copy_options::overwrite_existing);
  ::chmod(key.c_str(), 0600);
  pushdaemon::AppRow a;
  a.name = name;
  a.apns_topic = kTopic;
  a.apns_key_file = key;
  a.apns_key_id = kKeyId;
  a.apns_team_id = kTeamId;
  a.fcm_service_account_file = writeServiceAccount(mock, dir);
  auto id = pushdaemon::addApp(db, a);
  return id.ok() ? *id : 0;
}

std::vector<std::uint64_t> insertTokens(pushdaemon::DbConnection& db, std::uint64_t app_id,
                                        const std::string& platform,
                                        const std::vector<std::string>& tokens) {
  std::vector<std::uint64_t> ids;
  for (std::size_t i = 0; i < tokens.size(); i += 2000) {
    std::string sql = "INSERT INTO device_token (app_id, platform, token) VALUES ";
    const std::size_t end = std::min(tokens.size(), i + 2000);
    for (std::size_t k = i; k < end; ++k) {
      if (k > i) sql += ',';
      sql += "(" + std::to_string(app_id) + ",'" + platform + "'," + db.quote(tokens[k]) + ")";
    }
    if (!db.exec(sql).ok()) return {};
    // One multi-row INSERT gets consecutive ids (innodb_autoinc_lock_mode).
    const std::uint64_t first = db.insertId();
    for (std::size_t k = i; k < end; ++k) ids.push_back(first + (k - i));
  }
  return ids;
}

std::string bothPlatformsPayload() {
  return R"({"apns":{"aps":{"alert":"leakscope daemon test"}},)"
         R"("fcm":{"notification":{"title":"leakscope","body":"daemon test"}}})";
}

std::map<std::string, std::vector<ResultRecord>> resultsByToken(pushdaemon::DbConnection& db,
                                                                std::uint64_t schedule_id) {
  std::map<std::string, std::vector<ResultRecord>> out;
  auto rows = db.query(
      "SELECT t.token, r.platform, r.outcome, r.status, r.reason, r.attempts FROM push_result r "
      "JOIN device_token t ON t.id = r.token_id WHERE r.schedule_id = " +
      std::to_string(schedule_id));
  if (!rows.ok()) return out;
  for (const auto& r : *rows) {
    ResultRecord rec;
    rec.token = r[0].value_or("");
    rec.platform = r[1].value_or("");
    rec.outcome = r[2].value_or("");
    rec.status = std::stoi(r[3].value_or("0"));
    rec.reason = r[4].value_or("");
    rec.attempts = std::stoi(r[5].value_or("0"));
    out[rec.token].push_back(rec);
  }
  return out;
}

std::uint64_t count(pushdaemon::DbConnection& db, const std::string& sql) {
  auto rows = db.query(sql);
  if (!rows.ok() || rows->empty() || !(*rows)[0][0]) return ~0ULL;
  return std::stoull(*(*rows)[0][0]);
}

std::optional<pushdaemon::ScheduleStatus> status(pushdaemon::DbConnection& db,
                                                 std::uint64_t schedule_id) {
  auto s = pushdaemon::scheduleStatus(db, schedule_id);
  if (!s.ok()) return std::nullopt;
  return *s;
}

bool waitForState(pushdaemon::DbConnection& db, std::uint64_t schedule_id, const std::string& state,
                  int timeout_ms) {
  return eventually(
      [&] {
        auto s = status(db, schedule_id);
        return s && s->state == state;
      },
      timeout_ms);
}

void DaemonStackTest::SetUp() {
  ASSERT_TRUE(serversUp());
  conn_ = db_.connect();
  ASSERT_NE(conn_, nullptr);
  const auto version = pushdaemon::migrate(*conn_);
  ASSERT_TRUE(version.ok()) << version.error().message;
}

DaemonStackTest::DueSchedule DaemonStackTest::scheduleTokens(int n) {
  DueSchedule due;
  due.app = createTestApp(*conn_, mock_, dir_.path() + "/app", "game");
  std::vector<std::string> apns, fcm;
  for (int i = 0; i < n; ++i) {
    apns.push_back(deviceToken(static_cast<std::uint64_t>(i), "a0"));
    fcm.push_back(deviceToken(static_cast<std::uint64_t>(i), "f0"));
  }
  insertTokens(*conn_, due.app, "apns", apns);
  insertTokens(*conn_, due.app, "fcm", fcm);
  auto id = pushdaemon::addSchedule(*conn_, due.app, bothPlatformsPayload(), -1);
  due.id = id.ok() ? *id : 0;
  return due;
}

::testing::AssertionResult DaemonStackTest::serversUp() const {
  if (!db_.ok()) return ::testing::AssertionFailure() << db_.error();
  if (!mock_.ok()) {
    return ::testing::AssertionFailure() << "mock-push-server did not start: " << mock_.err();
  }
  return ::testing::AssertionSuccess();
}

}  // namespace leakscope::testing
