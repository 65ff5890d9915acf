// pushdaemon's configuration: one TOML file (docs/config.md lists every
// option), each option overridable by a flag `--section.key=value`.
//
// Secrets never come from here directly: the database password is read from
// `database.password_file`, push credentials from the files the app rows
// name. There is no option that takes a secret as a value, so none can end
// up in argv.
//
// Errors throw ConfigError with a message naming the file, the line and the
// key ("pushdaemon.toml:12: sending.page_size: expected an integer in
// 1..100000, got a string"), or the flag. Plain value types; not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace pushdaemon {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

// database.ssl_mode (docs/config.md, "[database]").
enum class DbSslMode { kDisabled, kPreferred, kRequired, kVerifyCa, kVerifyIdentity };

struct PlatformConfig {
  bool enabled = true;
  std::string host;
  std::uint16_t port = 443;
  std::string connect_address;
  std::string ca_file;
  std::size_t max_connections = 2;
  std::uint32_t max_streams = 1000;
  std::size_t max_outstanding = 10000;
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds request_timeout{10000};
  std::chrono::milliseconds idle_timeout{300000};
  int retry_max_attempts = 3;
  std::chrono::milliseconds retry_backoff_min{200};
  std::chrono::milliseconds retry_backoff_max{10000};
  double rate_limit = 0;  // notifications per second; 0 = unlimited
  // FCM only: connect to this address for the OAuth2 token endpoint.
  std::string oauth_connect_address;
};

struct Config {
  std::string source;  // the file it came from ("" = defaults only)

  // [daemon]
  std::string instance_id;  // default: hostname:pid
  LogLevel log_level = LogLevel::kInfo;
  std::chrono::milliseconds poll_interval{1000};
  std::chrono::seconds lease{30};
  std::chrono::seconds drain_timeout{30};
  std::chrono::seconds shutdown_grace{5};
  std::string http_address = "127.0.0.1:9477";  // /metrics and /healthz; "" = off
  // What the HTTP endpoint tolerates from its clients (leakscope::diag::HttpServer).
  std::size_t http_max_connections = 64;
  std::chrono::milliseconds http_request_timeout{5000};
  std::size_t http_max_header_bytes = 8192;
  std::size_t http_fd_reserve = 32;
  // Reproduces the seed's bug on purpose (a new APNs client per schedule,
  // never shut down) so leakscope can be shown catching it. Never in
  // production; `--leak-drill` sets it too.
  bool leak_drill = false;

  // [database]
  std::string db_host = "127.0.0.1";
  std::uint16_t db_port = 3306;
  std::string db_socket;
  std::string db_user = "pushdaemon";
  std::string db_password_file;
  std::string db_name = "pushdaemon";
  std::chrono::seconds db_connect_timeout{5};
  std::chrono::seconds db_io_timeout{10};
  std::chrono::milliseconds db_reconnect_min{100};
  std::chrono::milliseconds db_reconnect_max{10000};
  bool db_migrate = true;
  DbSslMode db_ssl_mode = DbSslMode::kPreferred;
  std::string db_ssl_ca;    // CA certificates (PEM) for verify_ca / verify_identity
  std::string db_ssl_cert;  // client certificate (PEM), with db_ssl_key
  std::string db_ssl_key;   // its key: a secret file (mode 0600, not a symlink)

  // [push]
  // Every credential file an app row names must lie beneath this directory.
  std::string credentials_dir = "/etc/pushdaemon/credentials";

  // Core dumps (and same-user ptrace, /proc/PID/mem) are off: a core would
  // hold the database password, the push keys and the access tokens. Read
  // at start only.
  bool allow_core_dumps = false;

  // [sending]
  std::size_t page_size = 2000;
  std::size_t pages_in_flight = 4;  // per platform
  int max_token_attempts = 3;
  std::chrono::milliseconds token_retry_delay{1000};
  std::chrono::milliseconds undelivered_backoff_min{500};
  std::chrono::milliseconds undelivered_backoff_max{30000};
  std::size_t max_payload_bytes = 4096;

  // [apns], [fcm]
  PlatformConfig apns;
  PlatformConfig fcm;

  // [diag]
  std::string snapshot_dir;
  std::string snapshot_name = "pushdaemon";
  std::uint64_t snapshot_keep = 0;
  std::uint64_t snapshot_max_bytes = 0;
  std::chrono::seconds snapshot_interval{0};
  // Snapshots before the OOM kill ([] or an interval of 0 = off).
  std::vector<double> memory_pressure_fractions = {0.8, 0.9, 0.95};
  std::chrono::milliseconds memory_check_interval{1000};
  std::string heap_mode = "sampled";
  std::int64_t heap_sample_bytes = 524288;

  // Flags of the form --section.key=value, applied after the file.
  std::vector<std::string> overrides;
};

// Reads `path` (may be empty: defaults only) and applies `overrides`
// ("section.key=value"). Throws ConfigError.
Config loadConfig(const std::string& path, const std::vector<std::string>& overrides);

// Parses TOML text (for tests); `name` is used in messages.
Config parseConfig(const std::string& text, const std::string& name,
                   const std::vector<std::string>& overrides);

// The database password: the first line of `database.password_file`
// (trailing newline removed). Throws ConfigError naming the file (never its
// content); refuses what the secret-file rule refuses (credentials.h: a
// symlink, a FIFO or other non-regular file, group or other permissions).
std::string readPasswordFile(const std::string& path);

const char* dbSslModeName(DbSslMode mode);

const char* logLevelName(LogLevel level);

// Every option as "section.key", for --help and the docs test.
std::vector<std::string> allOptionNames();

}  // namespace pushdaemon
