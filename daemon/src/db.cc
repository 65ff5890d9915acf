#include "db.h"

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>

#include <random>
#include <thread>

#include "credentials.h"
#include "log.h"
#include "metrics.h"

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

// Connector/C 3.3 (Debian 12) has no MYSQL_OPT_SSL_MODE, and its
// MYSQL_OPT_SSL_ENFORCE does not refuse a server without TLS; only
// MYSQL_OPT_SSL_VERIFY_SERVER_CERT does (before authenticating), and it also
// checks the host name. So: verify_identity = CA + VERIFY_SERVER_CERT;
// verify_ca = CA (the chain is verified whenever a CA is set); required and
// verify_ca check for a cipher after the handshake (afterCheck).
diag::Status applyTls(MYSQL* m, const DbParams& p) {
  const bool tcp = p.socket.empty();
  if (p.ssl_mode == DbSslMode::kDisabled) return diag::Ok{};
  // A Unix socket is local: "preferred" asks for TLS over TCP only.
  if (p.ssl_mode == DbSslMode::kPreferred && !tcp) return diag::Ok{};
  if (!p.ssl_key.empty()) {
    // The same rule as every secret; Connector/C reopens it by path.
    auto key = openSecretFile(p.ssl_key, "database.ssl_key " + p.ssl_key);
    if (!key.ok()) return key.error();
  }
  const my_bool on = 1;
  int rc = mysql_options(m, MYSQL_OPT_SSL_ENFORCE, &on);
  if (!p.ssl_ca.empty()) rc |= mysql_options(m, MYSQL_OPT_SSL_CA, p.ssl_ca.c_str());
  if (!p.ssl_cert.empty()) {
    rc |= mysql_options(m, MYSQL_OPT_SSL_CERT, p.ssl_cert.c_str());
    rc |= mysql_options(m, MYSQL_OPT_SSL_KEY, p.ssl_key.c_str());
  }
  if (p.ssl_mode == DbSslMode::kVerifyIdentity) {
    rc |= mysql_options(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &on);
  }
  if (rc != 0) {
    return diag::Error{diag::Errc::kInvalidArgument,
                       "database " + p.label() + ": this client library refuses the TLS options"};
  }
  return diag::Ok{};
}

// What a failed connect adds to the library's message so that it says
// which setting to look at.
std::string tlsHint(unsigned code, const DbParams& p) {
  if (code == CR_SSL_CONNECTION_ERROR) {
    return "; the TLS handshake or the server's certificate was refused (database.ssl_mode " +
           std::string(dbSslModeName(p.ssl_mode)) +
           (p.ssl_ca.empty() ? std::string() : ", database.ssl_ca " + p.ssl_ca) + ")";
  }
  if (code == ER_ACCESS_DENIED_ERROR && p.ssl_mode == DbSslMode::kDisabled && p.socket.empty()) {
    // MariaDB answers an unencrypted connection to a server with
    // require_secure_transport with a plain "Access denied".
    return "; the connection was not encrypted (database.ssl_mode disabled): if the server "
           "requires TLS (require_secure_transport), set database.ssl_mode";
  }
  return "";
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
  if (auto tls = applyTls(m, p); !tls.ok()) {
    mysql_close(m);
    return tls.error();
  }
  const char* pw = p.password.empty() ? nullptr : p.password.c_str();
  // A Unix socket is only used with host "localhost".
  const char* host = p.socket.empty() ? p.host.c_str() : "localhost";
  if (mysql_real_connect(m, host, p.user.c_str(), pw, p.name.c_str(), p.port,
                         p.socket.empty() ? nullptr : p.socket.c_str(),
                         CLIENT_FOUND_ROWS) == nullptr) {
    const unsigned code = mysql_errno(m);
    diag::Error e{isRetryable(code) ? diag::Errc::kUnavailable
                  : code == ER_ACCESS_DENIED_ERROR || code == ER_DBACCESS_DENIED_ERROR
                      ? diag::Errc::kPermission
                  : code == CR_SSL_CONNECTION_ERROR ? diag::Errc::kPermission
                                                    : diag::Errc::kIo,
                  "database " + p.label() + ": " + mysql_error(m) + " (" + std::to_string(code) +
                      ")" + tlsHint(code, p)};
    mysql_close(m);
    return e;
  }
  const bool must_encrypt = p.ssl_mode == DbSslMode::kRequired ||
                            p.ssl_mode == DbSslMode::kVerifyCa ||
                            p.ssl_mode == DbSslMode::kVerifyIdentity;
  if (must_encrypt && mysql_get_ssl_cipher(m) == nullptr) {
    mysql_close(m);
    return diag::Error{diag::Errc::kPermission, "database " + p.label() +
                                                    ": the server did not encrypt the connection "
                                                    "(no TLS) but database.ssl_mode is " +
                                                    dbSslModeName(p.ssl_mode) + "; closed"};
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

std::string DbConnection::tlsCipher() const {
  const char* c = mysql_get_ssl_cipher(mysql_);
  return c != nullptr ? c : "";
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
    countError(DbOp::kConnect);
    if (failures_ == 0 || last_error_ != c.error().message) {
      logWarn(who_, c.error().message);
    }
    last_error_ = c.error().message;
    last_code_ = c.error().code;
    up_ = false;
    return nullptr;
  }
  if (failures_ > 0) logInfo(who_, "database " + params_.label() + " reachable again");
  conn_ = std::move(*c);
  up_ = true;
  return conn_.get();
}

void Db::countError(DbOp op) {
  if (metrics_ != nullptr) metrics_->dbError(op);
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

DbParams dbParams(const Config& c, std::string password) {
  DbParams p;
  p.host = c.db_host;
  p.port = c.db_port;
  p.socket = c.db_socket;
  p.user = c.db_user;
  p.password = std::move(password);
  p.name = c.db_name;
  p.connect_timeout = c.db_connect_timeout;
  p.io_timeout = c.db_io_timeout;
  p.ssl_mode = c.db_ssl_mode;
  p.ssl_ca = c.db_ssl_ca;
  p.ssl_cert = c.db_ssl_cert;
  p.ssl_key = c.db_ssl_key;
  return p;
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
