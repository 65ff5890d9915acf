#include "db.h"

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>

#include <random>
#include <thread>

#include "log.h"

namespace pushdaemon {

namespace {

diag::Kind& kDbConnection = diag::kind("db.connection");

// Errors after which the same work may simply be tried again: the server
// went away (the transaction, if any, is rolled back with the connection),
// or InnoDB rolled the transaction back itself.
bool isRetryable(unsigned code) {
  switch (code) {
    case CR_CONNECTION_ERROR:
    case CR_CONN_HOST_ERROR:
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_LOST:
    case CR_SERVER_LOST_EXTENDED:
    case CR_COMMANDS_OUT_OF_SYNC:
    case ER_SERVER_SHUTDOWN:
    case ER_CONNECTION_KILLED:
    case ER_LOCK_DEADLOCK:
    case ER_LOCK_WAIT_TIMEOUT:
    case ER_CON_COUNT_ERROR:
    case ER_QUERY_INTERRUPTED:
    case 4031:  // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8): the server hung up
      return true;
    default:
      return false;
  }
}

}  // namespace

std::string DbParams::label() const {
  return (socket.empty() ? host + ":" + std::to_string(port) : socket) + "/" + name;
}

diag::Result<std::unique_ptr<DbConnection>> DbConnection::connect(const DbParams& p) {
  MYSQL* m = mysql_init(nullptr);
  if (m == nullptr) return diag::Error{diag::Errc::kIo, "mysql_init failed (out of memory)"};
  const unsigned connect_timeout = static_cast<unsigned>(p.connect_timeout.count());
  const unsigned io_timeout = static_cast<unsigned>(p.io_timeout.count());
  mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
  mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &io_timeout);
  mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &io_timeout);
  mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  // Never read my.cnf: the configuration file is the only source.
  const unsigned proto = p.socket.empty() ? MYSQL_PROTOCOL_TCP : MYSQL_PROTOCOL_SOCKET;
  mysql_options(m, MYSQL_OPT_PROTOCOL, &proto);
  const char* pw = p.password.empty() ? nullptr : p.password.c_str();
  // A Unix socket is only used with host "localhost".
  const char* host = p.socket.empty() ? p.host.c_str() : "localhost";
  if (mysql_real_connect(m, host, p.user.c_str(), pw, p.name.c_str(), p.port,
                         p.socket.empty() ? nullptr : p.socket.c_str(),
                         CLIENT_FOUND_ROWS) == nullptr) {
    const unsigned code = mysql_errno(m);
    diag::Error e{
        isRetryable(code) ? diag::Errc::kUnavailable
        : code == ER_ACCESS_DENIED_ERROR || code == ER_DBACCESS_DENIED_ERROR
            ? diag::Errc::kPermission
            : diag::Errc::kIo,
        "database " + p.label() + ": " + mysql_error(m) + " (" + std::to_string(code) + ")"};
    mysql_close(m);
    return e;
  }
  std::unique_ptr<DbConnection> c(new DbConnection(m, p.label()));
  for (const char* sql : {"SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
                          "SET time_zone = '+00:00', sql_mode = "
                          "'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"}) {
    if (auto s = c->exec(sql); !s.ok()) return s.error();
  }
  return c;
}

DbConnection::DbConnection(MYSQL* mysql, const std::string& label)
    : mysql_(mysql), tracked_(kDbConnection, label) {
  tracked_.setFd(mysql_get_socket(mysql_));
}

DbConnection::~DbConnection() {
  tracked_.release();
  mysql_close(mysql_);
}

diag::Error DbConnection::error(std::string_view what) const {
  const unsigned code = mysql_errno(mysql_);
  return diag::Error{
      isRetryable(code) ? diag::Errc::kUnavailable : diag::Errc::kIo,
      std::string(what) + ": " + mysql_error(mysql_) + " (" + std::to_string(code) + ")"};
}

diag::Status DbConnection::exec(std::string_view sql) {
  if (mysql_real_query(mysql_, sql.data(), sql.size()) != 0) return error("statement failed");
  // Statements that return rows by accident must not leave the connection
  // out of sync.
  if (MYSQL_RES* r = mysql_store_result(mysql_)) mysql_free_result(r);
  return diag::Ok{};
}

diag::Result<Rows> DbConnection::query(std::string_view sql) {
  if (mysql_real_query(mysql_, sql.data(), sql.size()) != 0) return error("query failed");
  struct ResFree {
    void operator()(MYSQL_RES* r) const { mysql_free_result(r); }
  };
  std::unique_ptr<MYSQL_RES, ResFree> res(mysql_store_result(mysql_));
  if (res == nullptr) {
    if (mysql_field_count(mysql_) != 0) return error("reading the result failed");
    return Rows{};
  }
  const unsigned fields = mysql_num_fields(res.get());
  Rows rows;
  rows.reserve(mysql_num_rows(res.get()));
  while (MYSQL_ROW row = mysql_fetch_row(res.get())) {
    const unsigned long* lengths = mysql_fetch_lengths(res.get());
    Row r(fields);
    for (unsigned i = 0; i < fields; ++i) {
      if (row[i] != nullptr) r[i] = std::string(row[i], lengths[i]);
    }
    rows.push_back(std::move(r));
  }
  if (mysql_errno(mysql_) != 0) return error("reading rows failed");
  return rows;
}

std::uint64_t DbConnection::affectedRows() const { return mysql_affected_rows(mysql_); }
std::uint64_t DbConnection::insertId() const { return mysql_insert_id(mysql_); }

std::string DbConnection::quote(std::string_view s) const {
  std::string out(s.size() * 2 + 3, '\0');
  out[0] = '\'';
  const unsigned long n = mysql_real_escape_string(mysql_, out.data() + 1, s.data(),
                                                   static_cast<unsigned long>(s.size()));
  out.resize(n + 1);
  out += '\'';
  return out;
}

Db::Db(DbParams params, DaemonMetrics* metrics, std::chrono::milliseconds backoff_min,
       std::chrono::milliseconds backoff_max, std::string who)
    : params_(std::move(params)),
      metrics_(metrics),
      backoff_min_(backoff_min),
      backoff_max_(backoff_max),
      who_(std::move(who)) {}

Db::~Db() = default;

DbConnection* Db::get() {
  if (conn_) return conn_.get();
  auto c = DbConnection::connect(params_);
  if (metrics_ != nullptr) metrics_->dbConnect(c.ok());
  if (!c.ok()) {
    if (metrics_ != nullptr) metrics_->dbError(DbOp::kConnect);
    if (failures_ == 0 || last_error_ != c.error().message) {
      logWarn(who_, c.error().message);
    }
    last_error_ = c.error().message;
    up_ = false;
    return nullptr;
  }
  if (failures_ > 0) logInfo(who_, "database " + params_.label() + " reachable again");
  conn_ = std::move(*c);
  up_ = true;
  return conn_.get();
}

void Db::backoff(const std::atomic<bool>* stop) {
  ++failures_;
  double d = static_cast<double>(backoff_min_.count());
  for (int i = 1; i < failures_ && d < static_cast<double>(backoff_max_.count()); ++i) d *= 2;
  d = std::min(d, static_cast<double>(backoff_max_.count()));
  thread_local std::mt19937_64 rng{std::random_device{}()};
  // Equal jitter: [d/2, d].
  const auto wait = std::chrono::milliseconds(
      static_cast<std::int64_t>(std::uniform_real_distribution<double>(d / 2, d)(rng)));
  const auto until = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < until) {
    if (stop != nullptr && stop->load()) return;
    std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(
        std::chrono::milliseconds(20), until - std::chrono::steady_clock::now()));
  }
}

std::string joinIds(const std::vector<std::uint64_t>& ids) {
  std::string s;
  for (std::uint64_t id : ids) {
    if (!s.empty()) s += ',';
    s += std::to_string(id);
  }
  return s;
}

}  // namespace pushdaemon
