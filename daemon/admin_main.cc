// pushdaemon-admin: load apps, device tokens and schedules into pushdaemon's
// database, and read a schedule's state. Uses the daemon's configuration
// (file and --section.key=value flags) for the connection, so the password
// comes from database.password_file, never from argv.
//
//   pushdaemon-admin [--config F] [--db.flags..] migrate
//   pushdaemon-admin ... add-app NAME [--apns-key-file F --apns-key-id ID
//                        --apns-team-id ID --apns-topic T] [--fcm-service-account F]
//   pushdaemon-admin ... load-tokens APP_ID FILE        ("PLATFORM TOKEN" lines; - = stdin)
//   pushdaemon-admin ... generate-tokens APP_ID PLATFORM COUNT [PREFIX]
//   pushdaemon-admin ... add-schedule APP_ID PAYLOAD_FILE [--in SECONDS]
//   pushdaemon-admin ... status SCHEDULE_ID
// Output: key=value lines. Exit: 0 ok, 1 database error, 2 usage or input error.
#include <mysql.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "admin.h"
#include "config.h"
#include "store.h"

using namespace pushdaemon;

namespace {

int usage(const std::string& why) {
  std::fprintf(
      stderr,
      "pushdaemon-admin: %s (see the header of daemon/admin_main.cc or docs/pushdaemon.md)\n",
      why.c_str());
  return 2;
}

int dbFail(const diag::Error& e) {
  std::fprintf(stderr, "pushdaemon-admin: %s\n", e.message.c_str());
  return e.code == diag::Errc::kParse || e.code == diag::Errc::kInvalidArgument ? 2 : 1;
}

std::uint64_t toU64(const std::string& s, const char* what) {
  std::size_t pos = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(s, &pos);
  } catch (...) {
    pos = 0;
  }
  if (pos != s.size() || s.empty())
    throw std::invalid_argument(std::string(what) + " '" + s + "' is not a number");
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  std::vector<std::string> overrides;
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a.rfind("--", 0) == 0 && a.find('.') != std::string::npos &&
               a.find('=') != std::string::npos && a.find('.') < a.find('=')) {
      overrides.push_back(a.substr(2));
    } else {
      args.push_back(a);
    }
  }
  if (args.empty()) return usage("no command");
  Config config;
  DbParams p;
  try {
    config = loadConfig(config_path, overrides);
    p.password = readPasswordFile(config.db_password_file);
  } catch (const ConfigError& e) {
    return usage(e.what());
  }
  p.host = config.db_host;
  p.port = config.db_port;
  p.socket = config.db_socket;
  p.user = config.db_user;
  p.name = config.db_name;
  p.connect_timeout = config.db_connect_timeout;
  p.io_timeout = std::chrono::seconds(600);
  p.ssl_mode = config.db_ssl_mode;
  p.ssl_ca = config.db_ssl_ca;
  p.ssl_cert = config.db_ssl_cert;
  p.ssl_key = config.db_ssl_key;
  mysql_library_init(0, nullptr, nullptr);
  auto conn = DbConnection::connect(p);
  if (!conn) return dbFail(conn.error());
  DbConnection& db = **conn;
  const std::string cmd = args[0];
  try {
    if (cmd == "migrate") {
      auto v = migrate(db);
      if (!v) return dbFail(v.error());
      std::printf("schema_version=%d\n", *v);
    } else if (cmd == "add-app") {
      if (args.size() < 2) return usage("add-app NAME [options]");
      AppRow a;
      a.name = args[1];
      for (std::size_t i = 2; i < args.size(); ++i) {
        if (i + 1 >= args.size()) return usage(args[i] + " needs a value");
        const std::string& k = args[i];
        const std::string& v = args[++i];
        if (k == "--apns-key-file")
          a.apns_key_file = v;
        else if (k == "--apns-key-id")
          a.apns_key_id = v;
        else if (k == "--apns-team-id")
          a.apns_team_id = v;
        else if (k == "--apns-topic")
          a.apns_topic = v;
        else if (k == "--fcm-service-account")
          a.fcm_service_account_file = v;
        else
          return usage("unknown add-app option " + k);
      }
      auto id = addApp(db, a);
      if (!id) return dbFail(id.error());
      std::printf("app_id=%llu\n", static_cast<unsigned long long>(*id));
    } else if (cmd == "load-tokens") {
      if (args.size() != 3) return usage("load-tokens APP_ID FILE");
      const std::uint64_t app = toU64(args[1], "APP_ID");
      std::ifstream file;
      std::istream* in = &std::cin;
      if (args[2] != "-") {
        file.open(args[2]);
        if (!file) return usage(args[2] + ": cannot open");
        in = &file;
      }
      auto lines = parseTokenFile(*in, args[2] == "-" ? "stdin" : args[2]);
      if (!lines) return dbFail(lines.error());
      auto n = loadTokens(db, app, *lines);
      if (!n) return dbFail(n.error());
      std::printf("inserted=%llu\nalready_present=%llu\n",
                  static_cast<unsigned long long>(n->inserted),
                  static_cast<unsigned long long>(n->already_present));
    } else if (cmd == "generate-tokens") {
      if (args.size() < 4 || args.size() > 5)
        return usage("generate-tokens APP_ID PLATFORM COUNT [PREFIX]");
      auto n = generateTokens(db, toU64(args[1], "APP_ID"), args[2], toU64(args[3], "COUNT"),
                              args.size() == 5 ? args[4] : "");
      if (!n) return dbFail(n.error());
      std::printf("inserted=%llu\n", static_cast<unsigned long long>(*n));
    } else if (cmd == "add-schedule") {
      if (args.size() != 3 && args.size() != 5)
        return usage("add-schedule APP_ID PAYLOAD_FILE [--in SECONDS]");
      std::ifstream f(args[2]);
      if (!f) return usage(args[2] + ": cannot open");
      std::stringstream s;
      s << f.rdbuf();
      double delay = 0;
      if (args.size() == 5) {
        if (args[3] != "--in") return usage("unknown add-schedule option " + args[3]);
        delay = std::stod(args[4]);
      }
      auto id = addSchedule(db, toU64(args[1], "APP_ID"), s.str(), delay);
      if (!id) {
        std::fprintf(stderr, "pushdaemon-admin: %s: %s\n", args[2].c_str(),
                     id.error().message.c_str());
        return id.error().code == diag::Errc::kInvalidArgument ? 2 : 1;
      }
      std::printf("schedule_id=%llu\n", static_cast<unsigned long long>(*id));
    } else if (cmd == "status") {
      if (args.size() != 2) return usage("status SCHEDULE_ID");
      auto st = scheduleStatus(db, toU64(args[1], "SCHEDULE_ID"));
      if (!st) return dbFail(st.error());
      if (!*st) return usage("no schedule " + args[1]);
      const ScheduleStatus& x = **st;
      std::printf(
          "state=%s\nsuccess=%llu\ninvalid_token=%llu\npermanent=%llu\nretryable=%llu\n"
          "apns_cursor=%llu\nfcm_cursor=%llu\nepoch=%u\nfailure_reason=%s\n",
          x.state.c_str(), static_cast<unsigned long long>(x.success),
          static_cast<unsigned long long>(x.invalid_token),
          static_cast<unsigned long long>(x.permanent),
          static_cast<unsigned long long>(x.retryable),
          static_cast<unsigned long long>(x.apns_cursor),
          static_cast<unsigned long long>(x.fcm_cursor), x.epoch, x.failure_reason.c_str());
    } else {
      return usage("unknown command '" + cmd + "'");
    }
  } catch (const std::exception& e) {
    return usage(e.what());
  }
  return 0;
}
