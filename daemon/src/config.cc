#include "config.h"

#include <toml++/toml.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <sstream>

#include "credentials.h"
#include "leakscope/diag/runtime.h"

namespace pushdaemon {

namespace {

// What went wrong with one value; the caller adds where.
struct BadValue {
  std::string why;
};

const char* typeName(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    default:
      return "a date/time";
  }
}

std::int64_t intIn(const toml::node& n, std::int64_t lo, std::int64_t hi) {
  const auto* v = n.as_integer();
  if (v == nullptr || v->get() < lo || v->get() > hi) {
    throw BadValue{"expected an integer in " + std::to_string(lo) + ".." + std::to_string(hi) +
                   ", got " + (v != nullptr ? std::to_string(v->get()) : std::string(typeName(n)))};
  }
  return v->get();
}

std::string str(const toml::node& n) {
  const auto* v = n.as_string();
  if (v == nullptr) throw BadValue{std::string("expected a string, got ") + typeName(n)};
  return v->get();
}

bool boolean(const toml::node& n) {
  const auto* v = n.as_boolean();
  if (v == nullptr) throw BadValue{std::string("expected true or false, got ") + typeName(n)};
  return v->get();
}

double number(const toml::node& n, double lo, double hi) {
  double d = 0;
  if (const auto* i = n.as_integer()) {
    d = static_cast<double>(i->get());
  } else if (const auto* f = n.as_floating_point()) {
    d = f->get();
  } else {
    throw BadValue{std::string("expected a number, got ") + typeName(n)};
  }
  if (!(d >= lo && d <= hi)) {
    std::ostringstream s;
    s << "expected a number in " << lo << ".." << hi << ", got " << d;
    throw BadValue{s.str()};
  }
  return d;
}

using Setter = std::function<void(Config&, const toml::node&)>;

template <class T>
Setter intOpt(T Config::*field, std::int64_t lo, std::int64_t hi) {
  return [=](Config& c, const toml::node& n) { c.*field = static_cast<T>(intIn(n, lo, hi)); };
}
template <class D>
Setter durOpt(D Config::*field, std::int64_t lo, std::int64_t hi) {
  return [=](Config& c, const toml::node& n) { c.*field = D(intIn(n, lo, hi)); };
}
Setter strOpt(std::string Config::*field) {
  return [=](Config& c, const toml::node& n) { c.*field = str(n); };
}
Setter boolOpt(bool Config::*field) {
  return [=](Config& c, const toml::node& n) { c.*field = boolean(n); };
}

using Options = std::map<std::string, Setter>;

// [daemon]
void addDaemonOptions(Options& o) {
  o["daemon.instance_id"] = [](Config& c, const toml::node& n) {
    c.instance_id = str(n);
    if (c.instance_id.size() > 100) throw BadValue{"at most 100 characters"};
  };
  o["daemon.log_level"] = [](Config& c, const toml::node& n) {
    const std::string v = str(n);
    if (v == "error") {
      c.log_level = LogLevel::kError;
    } else if (v == "warn") {
      c.log_level = LogLevel::kWarn;
    } else if (v == "info") {
      c.log_level = LogLevel::kInfo;
    } else if (v == "debug") {
      c.log_level = LogLevel::kDebug;
    } else {
      throw BadValue{"expected error, warn, info or debug, got '" + v + "'"};
    }
  };
  o["daemon.poll_interval_ms"] = durOpt(&Config::poll_interval, 10, 3600000);
  o["daemon.lease_s"] = durOpt(&Config::lease, 2, 86400);
  o["daemon.drain_timeout_s"] = durOpt(&Config::drain_timeout, 0, 3600);
  o["daemon.shutdown_grace_s"] = durOpt(&Config::shutdown_grace, 0, 600);
  o["daemon.http_address"] = strOpt(&Config::http_address);
  o["daemon.http_max_connections"] = intOpt(&Config::http_max_connections, 1, 10000);
  o["daemon.http_request_timeout_ms"] = durOpt(&Config::http_request_timeout, 100, 600000);
  o["daemon.http_max_header_bytes"] = intOpt(&Config::http_max_header_bytes, 1024, 1 << 20);
  o["daemon.http_fd_reserve"] = intOpt(&Config::http_fd_reserve, 0, 100000);
  o["daemon.leak_drill"] = boolOpt(&Config::leak_drill);
  o["daemon.allow_core_dumps"] = boolOpt(&Config::allow_core_dumps);
}

// [database]
void addDatabaseOptions(Options& o) {
  o["database.host"] = strOpt(&Config::db_host);
  o["database.port"] = intOpt(&Config::db_port, 1, 65535);
  o["database.socket"] = strOpt(&Config::db_socket);
  o["database.user"] = strOpt(&Config::db_user);
  o["database.password_file"] = strOpt(&Config::db_password_file);
  o["database.name"] = strOpt(&Config::db_name);
  o["database.connect_timeout_s"] = durOpt(&Config::db_connect_timeout, 1, 3600);
  o["database.io_timeout_s"] = durOpt(&Config::db_io_timeout, 1, 3600);
  o["database.reconnect_min_ms"] = durOpt(&Config::db_reconnect_min, 1, 600000);
  o["database.reconnect_max_ms"] = durOpt(&Config::db_reconnect_max, 1, 3600000);
  o["database.migrate"] = boolOpt(&Config::db_migrate);
  o["database.ssl_mode"] = [](Config& c, const toml::node& n) {
    const std::string v = str(n);
    for (DbSslMode m : {DbSslMode::kDisabled, DbSslMode::kPreferred, DbSslMode::kRequired,
                        DbSslMode::kVerifyCa, DbSslMode::kVerifyIdentity}) {
      if (v == dbSslModeName(m)) {
        c.db_ssl_mode = m;
        return;
      }
    }
    throw BadValue{"expected disabled, preferred, required, verify_ca or verify_identity, got '" +
                   v + "'"};
  };
  o["database.ssl_ca"] = strOpt(&Config::db_ssl_ca);
  o["database.ssl_cert"] = strOpt(&Config::db_ssl_cert);
  o["database.ssl_key"] = strOpt(&Config::db_ssl_key);
}

// [sending] and [push]
void addSendingOptions(Options& o) {
  o["sending.page_size"] = intOpt(&Config::page_size, 1, 100000);
  o["sending.pages_in_flight"] = intOpt(&Config::pages_in_flight, 1, 64);
  o["sending.max_token_attempts"] = intOpt(&Config::max_token_attempts, 1, 100);
  o["sending.token_retry_delay_ms"] = durOpt(&Config::token_retry_delay, 0, 3600000);
  o["sending.undelivered_backoff_min_ms"] = durOpt(&Config::undelivered_backoff_min, 1, 600000);
  o["sending.undelivered_backoff_max_ms"] = durOpt(&Config::undelivered_backoff_max, 1, 3600000);
  o["sending.max_payload_bytes"] = intOpt(&Config::max_payload_bytes, 1, 1 << 20);

  o["push.credentials_dir"] = [](Config& c, const toml::node& n) {
    c.credentials_dir = str(n);
    if (c.credentials_dir.empty() || c.credentials_dir.front() != '/') {
      throw BadValue{"expected an absolute directory, got '" + c.credentials_dir + "'"};
    }
  };
}

// Platform options exist twice, as [apns] and [fcm].
using PlatformSetter = std::function<void(PlatformConfig&, const toml::node&)>;

// [apns] and [fcm]: the same keys for each (PlatformConfig), and FCM's
// OAuth endpoint.
void addPlatformOptions(Options& o) {
  std::map<std::string, PlatformSetter> p;
  p["enabled"] = [](PlatformConfig& c, const toml::node& n) { c.enabled = boolean(n); };
  p["host"] = [](PlatformConfig& c, const toml::node& n) { c.host = str(n); };
  p["port"] = [](PlatformConfig& c, const toml::node& n) {
    c.port = static_cast<std::uint16_t>(intIn(n, 1, 65535));
  };
  p["connect_address"] = [](PlatformConfig& c, const toml::node& n) { c.connect_address = str(n); };
  p["ca_file"] = [](PlatformConfig& c, const toml::node& n) { c.ca_file = str(n); };
  p["max_connections"] = [](PlatformConfig& c, const toml::node& n) {
    c.max_connections = static_cast<std::size_t>(intIn(n, 1, 64));
  };
  p["max_streams"] = [](PlatformConfig& c, const toml::node& n) {
    c.max_streams = static_cast<std::uint32_t>(intIn(n, 1, 100000));
  };
  p["max_outstanding"] = [](PlatformConfig& c, const toml::node& n) {
    c.max_outstanding = static_cast<std::size_t>(intIn(n, 1, 1000000));
  };
  p["connect_timeout_ms"] = [](PlatformConfig& c, const toml::node& n) {
    c.connect_timeout = std::chrono::milliseconds(intIn(n, 1, 600000));
  };
  p["request_timeout_ms"] = [](PlatformConfig& c, const toml::node& n) {
    c.request_timeout = std::chrono::milliseconds(intIn(n, 1, 600000));
  };
  p["idle_timeout_ms"] = [](PlatformConfig& c, const toml::node& n) {
    c.idle_timeout = std::chrono::milliseconds(intIn(n, 0, 86400000));
  };
  p["retry_max_attempts"] = [](PlatformConfig& c, const toml::node& n) {
    c.retry_max_attempts = static_cast<int>(intIn(n, 1, 20));
  };
  p["retry_backoff_min_ms"] = [](PlatformConfig& c, const toml::node& n) {
    c.retry_backoff_min = std::chrono::milliseconds(intIn(n, 1, 600000));
  };
  p["retry_backoff_max_ms"] = [](PlatformConfig& c, const toml::node& n) {
    c.retry_backoff_max = std::chrono::milliseconds(intIn(n, 1, 600000));
  };
  p["rate_limit"] = [](PlatformConfig& c, const toml::node& n) {
    c.rate_limit = number(n, 0, 1e9);
  };
  for (const auto& [key, setter] : p) {
    // Copied by an init-capture: clang before 16 cannot capture a
    // structured binding.
    o["apns." + key] = [set = setter](Config& c, const toml::node& n) { set(c.apns, n); };
    o["fcm." + key] = [set = setter](Config& c, const toml::node& n) { set(c.fcm, n); };
  }
  o["fcm.oauth_connect_address"] = [](Config& c, const toml::node& n) {
    c.fcm.oauth_connect_address = str(n);
  };
}

// [diag]
void addDiagOptions(Options& o) {
  o["diag.snapshot_dir"] = strOpt(&Config::snapshot_dir);
  o["diag.snapshot_name"] = strOpt(&Config::snapshot_name);
  o["diag.snapshot_keep"] = intOpt(&Config::snapshot_keep, 0, 1000000);
  o["diag.snapshot_max_bytes"] =
      intOpt(&Config::snapshot_max_bytes, 0, std::numeric_limits<std::int64_t>::max());
  o["diag.snapshot_interval_s"] = durOpt(&Config::snapshot_interval, 0, 86400 * 7);
  o["diag.memory_pressure_fractions"] = [](Config& c, const toml::node& n) {
    const auto* list = n.as_array();
    if (list == nullptr) {
      throw BadValue{std::string("expected an array of fractions such as [0.8, 0.9, 0.95], got ") +
                     typeName(n)};
    }
    std::vector<double> fractions;
    for (const toml::node& f : *list) fractions.push_back(number(f, 0, 1));
    if (auto s = leakscope::diag::validateMemoryPressureFractions(fractions); !s.ok()) {
      throw BadValue{s.error().message};
    }
    c.memory_pressure_fractions = std::move(fractions);
  };
  o["diag.memory_check_interval_ms"] = durOpt(&Config::memory_check_interval, 0, 3600000);
  o["diag.heap_mode"] = [](Config& c, const toml::node& n) {
    const std::string v = str(n);
    if (v != "sampled" && v != "full" && v != "off") {
      throw BadValue{"expected sampled, full or off, got '" + v + "'"};
    }
    c.heap_mode = v;
  };
  o["diag.heap_sample_bytes"] = intOpt(&Config::heap_sample_bytes, 1, std::int64_t{1} << 40);
}

Options makeOptions() {
  Options o;
  addDaemonOptions(o);
  addDatabaseOptions(o);
  addSendingOptions(o);
  addPlatformOptions(o);
  addDiagOptions(o);
  return o;
}

const Options& options() {
  static const Options o = makeOptions();
  return o;
}

Config defaults() {
  Config c;
  c.apns.host = "api.push.apple.com";
  c.fcm.host = "fcm.googleapis.com";
  return c;
}

// Names that look like secrets are refused outright, with the reason.
void refuseSecretKey(const std::string& where, const std::string& name) {
  if (name.find("password") != std::string::npos && name.find("_file") == std::string::npos) {
    throw ConfigError(where + ": " + name +
                      ": secrets are never configured inline; use database.password_file");
  }
}

void apply(Config& c, const std::string& name, const toml::node& n, const std::string& where) {
  refuseSecretKey(where, name);
  const auto it = options().find(name);
  if (it == options().end()) throw ConfigError(where + ": unknown option '" + name + "'");
  try {
    it->second(c, n);
  } catch (const BadValue& e) {
    throw ConfigError(where + ": " + name + ": " + e.why);
  }
}

void checkDbTls(const Config& c, const std::string& where) {
  const bool verifies =
      c.db_ssl_mode == DbSslMode::kVerifyCa || c.db_ssl_mode == DbSslMode::kVerifyIdentity;
  if (verifies && c.db_ssl_ca.empty()) {
    throw ConfigError(where + ": database.ssl_mode " + dbSslModeName(c.db_ssl_mode) +
                      " needs database.ssl_ca (the CA that signed the server's certificate)");
  }
  if (!verifies && !c.db_ssl_ca.empty()) {
    throw ConfigError(where +
                      ": database.ssl_ca is used by ssl_mode verify_ca or verify_identity "
                      "only (ssl_mode is " +
                      dbSslModeName(c.db_ssl_mode) + ")");
  }
  if (c.db_ssl_cert.empty() != c.db_ssl_key.empty()) {
    throw ConfigError(where + ": database.ssl_cert and database.ssl_key go together");
  }
  if (!c.db_ssl_cert.empty() && c.db_ssl_mode == DbSslMode::kDisabled) {
    throw ConfigError(where + ": database.ssl_cert needs a database.ssl_mode other than disabled");
  }
}

void checkConsistency(const Config& c, const std::string& where) {
  checkDbTls(c, where);
  if (c.db_reconnect_min > c.db_reconnect_max) {
    throw ConfigError(where + ": database.reconnect_min_ms exceeds database.reconnect_max_ms");
  }
  if (c.undelivered_backoff_min > c.undelivered_backoff_max) {
    throw ConfigError(where +
                      ": sending.undelivered_backoff_min_ms exceeds "
                      "sending.undelivered_backoff_max_ms");
  }
  for (const auto* p : {&c.apns, &c.fcm}) {
    const char* name = p == &c.apns ? "apns" : "fcm";
    if (p->max_outstanding < c.page_size) {
      throw ConfigError(
          where + ": " + name + ".max_outstanding (" + std::to_string(p->max_outstanding) +
          ") must be at least sending.page_size (" + std::to_string(c.page_size) + ")");
    }
    if (p->enabled && p->host.empty()) {
      throw ConfigError(where + ": " + name + ".host must not be empty");
    }
  }
}

Config parseImpl(const std::string& text, const std::string& name,
                 const std::vector<std::string>& overrides) {
  Config c = defaults();
  c.source = name;
  toml::table root;
  try {
    root = toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    throw ConfigError(name + ":" + std::to_string(e.source().begin.line) + ":" +
                      std::to_string(e.source().begin.column) + ": " +
                      std::string(e.description()));
  }
  for (auto&& [section, node] : root) {
    const std::string where = name + ":" + std::to_string(section.source().begin.line);
    const auto* table = node.as_table();
    if (table == nullptr) {
      throw ConfigError(where + ": '" + std::string(section.str()) + "' must be a section ([" +
                        std::string(section.str()) + "]), got " + typeName(node));
    }
    for (auto&& [key, value] : *table) {
      const std::string full = std::string(section.str()) + "." + std::string(key.str());
      apply(c, full, value, name + ":" + std::to_string(key.source().begin.line));
    }
  }
  for (const std::string& o : overrides) {
    const std::size_t eq = o.find('=');
    const std::string where = "flag --" + o.substr(0, eq);
    if (eq == std::string::npos) throw ConfigError(where + ": expected --section.key=value");
    const std::string key = o.substr(0, eq);
    const std::string value = o.substr(eq + 1);
    // The value as TOML (numbers, booleans, quoted strings); anything else
    // is taken as a bare string.
    toml::table t;
    try {
      t = toml::parse("v = " + value);
    } catch (const toml::parse_error&) {
      t = toml::table{{"v", value}};
    }
    apply(c, key, *t.get("v"), where);
  }
  checkConsistency(c, name.empty() ? "config" : name);
  return c;
}

}  // namespace

Config parseConfig(const std::string& text, const std::string& name,
                   const std::vector<std::string>& overrides) {
  Config c = parseImpl(text, name, overrides);
  c.overrides = overrides;
  return c;
}

Config loadConfig(const std::string& path, const std::vector<std::string>& overrides) {
  if (path.empty()) return parseConfig("", "(defaults)", overrides);
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot open: " + std::strerror(errno));
  std::stringstream s;
  s << in.rdbuf();
  return parseConfig(s.str(), path, overrides);
}

std::string readPasswordFile(const std::string& path) {
  if (path.empty()) return "";
  auto text = readSecretFile(path, "database.password_file " + path);
  if (!text.ok()) throw ConfigError(text.error().message);
  const std::string_view all(text->data(), text->size());
  std::string line(all.substr(0, all.find('\n')));
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

const char* dbSslModeName(DbSslMode mode) {
  switch (mode) {
    case DbSslMode::kDisabled:
      return "disabled";
    case DbSslMode::kPreferred:
      return "preferred";
    case DbSslMode::kRequired:
      return "required";
    case DbSslMode::kVerifyCa:
      return "verify_ca";
    case DbSslMode::kVerifyIdentity:
      return "verify_identity";
  }
  return "?";
}

const char* logLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kError:
      return "error";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kDebug:
      return "debug";
  }
  return "?";
}

std::vector<std::string> allOptionNames() {
  std::vector<std::string> out;
  for (const auto& [name, set] : options()) out.push_back(name);
  return out;
}

}  // namespace pushdaemon
