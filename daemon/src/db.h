// The database layer: one MySQL/MariaDB connection (libmysqlclient API,
// MariaDB Connector/C on Debian) per thread that needs one, tracked as
// "db.connection" (label: host:port/db or socket/db, never the password;
// fd: the connection's socket).
//
// `DbConnection` is one MYSQL* with exactly one owner. `Db` is what threads
// use: it (re)connects on demand with exponential back-off and classifies
// errors, so that callers can retry a unit of work after the server went
// away (Errc::kUnavailable) and give up on anything else.
// Not thread-safe: one Db per thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "leakscope/diag/result.h"
#include "leakscope/diag/tracked.h"
#include "model.h"

typedef struct st_mysql MYSQL;  // NOLINT: the library's own name

namespace pushdaemon {

namespace diag = leakscope::diag;

class DaemonMetrics;

struct DbParams {
  std::string host = "127.0.0.1";
  std::uint16_t port = 3306;
  std::string socket;
  std::string user;
  std::string password;  // in memory only; never logged
  std::string name;
  std::chrono::seconds connect_timeout{5};
  std::chrono::seconds io_timeout{30};
  // TLS (docs/config.md, database.ssl_*). Files are passed to Connector/C
  // by path; the key file is checked against the secret-file rule first.
  DbSslMode ssl_mode = DbSslMode::kDisabled;
  std::string ssl_ca;
  std::string ssl_cert;
  std::string ssl_key;
  // Where we connect, for logs and the tracked label: no credentials.
  std::string label() const;
};

// The connection settings of a configuration (database.*), with the
// password read from database.password_file.
DbParams dbParams(const Config& c, std::string password);

using Row = std::vector<std::optional<std::string>>;
using Rows = std::vector<Row>;

class DbConnection {
 public:
  // Connects (and sets utf8mb4, autocommit on, READ COMMITTED). Errors:
  // kUnavailable when the server cannot be reached, kPermission for refused
  // credentials and for TLS that ssl_mode requires but did not get (a
  // certificate that does not verify, a server without TLS), kIo otherwise.
  // Messages name the server and the setting, never the password.
  static diag::Result<std::unique_ptr<DbConnection>> connect(const DbParams& params);
  ~DbConnection();
  DbConnection(const DbConnection&) = delete;
  DbConnection& operator=(const DbConnection&) = delete;

  diag::Status exec(std::string_view sql);
  diag::Result<Rows> query(std::string_view sql);
  std::uint64_t affectedRows() const;
  std::uint64_t insertId() const;
  // The TLS cipher of this connection ("" when not encrypted).
  std::string tlsCipher() const;
  // Escapes for a single-quoted SQL string literal.
  std::string quote(std::string_view s) const;

 private:
  DbConnection(MYSQL* mysql, const std::string& label);
  diag::Error error(std::string_view what) const;

  MYSQL* mysql_;  // owned; mysql_close() in the destructor
  diag::Tracked tracked_;
};

// A connection that comes back: get() connects if needed (one attempt),
// run() retries `fn` across reconnects with back-off until it succeeds,
// fails for another reason, or `stop` is set.
class Db {
 public:
  Db(DbParams params, DaemonMetrics* metrics, std::chrono::milliseconds backoff_min,
     std::chrono::milliseconds backoff_max, std::string who);
  ~Db();

  // The connection, connecting now if there is none. nullptr (and the
  // error in lastError()) when that fails.
  DbConnection* get();
  // Closes the connection (after an error that left it unusable).
  void reset() { conn_.reset(); }
  bool connected() const { return conn_ != nullptr; }
  // False from a failed connect or a lost connection until the next
  // successful connect. Read by /healthz from other threads.
  bool up() const { return up_.load(); }
  const std::string& lastError() const { return last_error_; }
  // The code of the last failed connect: kPermission means waiting will not
  // help (refused credentials or TLS).
  diag::Errc lastErrorCode() const { return last_code_; }

  // Runs fn(DbConnection&) -> diag::Result<T>. On kUnavailable (connection
  // lost, server gone, deadlock or lock wait timeout: safe to repeat because
  // the transaction rolled back) it drops the connection, waits
  // (back-off), reconnects and runs fn again. Returns the first success, the
  // first other error, or kUnavailable once `stop` is set.
  template <class Fn>
  auto run(DbOp op, Fn fn, const std::atomic<bool>* stop = nullptr) -> decltype(fn(*get()));

  // Sleeps for the next back-off delay (interruptible by `stop`, polled).
  void backoff(const std::atomic<bool>* stop);
  void resetBackoff() { failures_ = 0; }

 private:
  // pushdaemon_db_errors_total{op} (out of line: the metrics stay out of
  // this header, which the SQL layer includes).
  void countError(DbOp op);

  DbParams params_;
  DaemonMetrics* metrics_;  // may be null
  std::chrono::milliseconds backoff_min_;
  std::chrono::milliseconds backoff_max_;
  std::string who_;
  std::unique_ptr<DbConnection> conn_;
  std::string last_error_;
  diag::Errc last_code_ = diag::Errc::kUnavailable;
  int failures_ = 0;
  std::atomic<bool> up_{true};
};

template <class Fn>
auto Db::run(DbOp op, Fn fn, const std::atomic<bool>* stop) -> decltype(fn(*get())) {
  for (;;) {
    if (DbConnection* c = get()) {
      auto r = fn(*c);
      if (r.ok()) {
        failures_ = 0;
        return r;
      }
      countError(op);
      last_error_ = r.error().message;
      if (r.error().code != diag::Errc::kUnavailable) return r;
      up_ = false;
      reset();
    }
    if (stop != nullptr && stop->load()) {
      return diag::Error{diag::Errc::kUnavailable, "database unavailable: " + last_error_};
    }
    backoff(stop);
  }
}

// Builds "a, b, c" lists of integers.
std::string joinIds(const std::vector<std::uint64_t>& ids);

}  // namespace pushdaemon
