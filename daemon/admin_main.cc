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
//   pushdaemon-admin help [COMMAND]                     (also --help, -h; no database)
// The command line is checked completely before the configuration is read
// or the database touched. Output: key=value lines. Exit: 0 ok, 1 database error, 2 usage or input
// error.
#include <mysql.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "admin.h"
#include "config.h"
#include "leakscope/core/cli11.h"
#include "store.h"

using namespace pushdaemon;

namespace {

int usage(const std::string& why) {
  std::fprintf(stderr, "pushdaemon-admin: %s (see pushdaemon-admin --help or docs/pushdaemon.md)\n",
               why.c_str());
  return 2;
}

int dbFail(const diag::Error& e) {
  std::fprintf(stderr, "pushdaemon-admin: %s\n", e.message.c_str());
  return e.code == diag::Errc::kParse || e.code == diag::Errc::kInvalidArgument ? 2 : 1;
}

struct Command;  // one of kCommands, below

// What the command line asks for; the command's operands as CLI11 parsed
// them.
struct AdminArgs {
  std::string config_path;
  std::vector<std::string> overrides;
  const Command* command = nullptr;  // never null once parsed
  AppRow app;
  std::uint64_t id = 0;  // APP_ID or SCHEDULE_ID
  std::string file;      // load-tokens FILE, add-schedule PAYLOAD_FILE
  std::string platform;
  std::uint64_t count = 0;
  std::string prefix;
  double delay = 0;
};

// Each command: its output on stdout, its exit code.

int runMigrate(DbConnection& db, const AdminArgs&) {
  auto v = migrate(db);
  if (!v) return dbFail(v.error());
  std::printf("schema_version=%d\n", *v);
  return 0;
}

int runAddApp(DbConnection& db, const AdminArgs& args) {
  auto id = addApp(db, args.app);
  if (!id) return dbFail(id.error());
  std::printf("app_id=%llu\n", static_cast<unsigned long long>(*id));
  return 0;
}

int runLoadTokens(DbConnection& db, const AdminArgs& args) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (args.file != "-") {
    file.open(args.file);
    if (!file) return usage(args.file + ": cannot open");
    in = &file;
  }
  auto lines = parseTokenFile(*in, args.file == "-" ? "stdin" : args.file);
  if (!lines) return dbFail(lines.error());
  auto n = loadTokens(db, args.id, *lines);
  if (!n) return dbFail(n.error());
  std::printf("inserted=%llu\nalready_present=%llu\n", static_cast<unsigned long long>(n->inserted),
              static_cast<unsigned long long>(n->already_present));
  return 0;
}

int runGenerateTokens(DbConnection& db, const AdminArgs& args) {
  auto n = generateTokens(db, args.id, args.platform, args.count, args.prefix);
  if (!n) return dbFail(n.error());
  std::printf("inserted=%llu\n", static_cast<unsigned long long>(*n));
  return 0;
}

int runAddSchedule(DbConnection& db, const AdminArgs& args) {
  std::ifstream f(args.file);
  if (!f) return usage(args.file + ": cannot open");
  std::stringstream s;
  s << f.rdbuf();
  auto id = addSchedule(db, args.id, s.str(), args.delay);
  if (!id) {
    std::fprintf(stderr, "pushdaemon-admin: %s: %s\n", args.file.c_str(),
                 id.error().message.c_str());
    return id.error().code == diag::Errc::kInvalidArgument ? 2 : 1;
  }
  std::printf("schedule_id=%llu\n", static_cast<unsigned long long>(*id));
  return 0;
}

int runStatus(DbConnection& db, const AdminArgs& args) {
  auto st = scheduleStatus(db, args.id);
  if (!st) return dbFail(st.error());
  if (!*st) return usage("no schedule " + std::to_string(args.id));
  const ScheduleStatus& x = **st;
  std::printf(
      "state=%s\nsuccess=%llu\ninvalid_token=%llu\npermanent=%llu\nretryable=%llu\n"
      "apns_cursor=%llu\nfcm_cursor=%llu\nepoch=%u\nfailure_reason=%s\n",
      x.state.c_str(), static_cast<unsigned long long>(x.success),
      static_cast<unsigned long long>(x.invalid_token),
      static_cast<unsigned long long>(x.permanent), static_cast<unsigned long long>(x.retryable),
      static_cast<unsigned long long>(x.apns_cursor), static_cast<unsigned long long>(x.fcm_cursor),
      x.epoch, x.failure_reason.c_str());
  return 0;
}

// Each command's operands and options, as CLI11 parses them into AdminArgs.

void declareNothing(CLI::App&, AdminArgs&) {}

void declareAddApp(CLI::App& c, AdminArgs& a) {
  c.add_option("NAME", a.app.name)->required();
  c.add_option("--apns-key-file", a.app.apns_key_file, "the .p8 key, under push.credentials_dir");
  c.add_option("--apns-key-id", a.app.apns_key_id);
  c.add_option("--apns-team-id", a.app.apns_team_id);
  c.add_option("--apns-topic", a.app.apns_topic);
  c.add_option("--fcm-service-account", a.app.fcm_service_account_file,
               "the service account JSON, under push.credentials_dir");
}

void declareLoadTokens(CLI::App& c, AdminArgs& a) {
  c.add_option("APP_ID", a.id)->required();
  c.add_option("FILE", a.file, "\"PLATFORM TOKEN\" lines; - = stdin")->required();
}

void declareGenerateTokens(CLI::App& c, AdminArgs& a) {
  c.add_option("APP_ID", a.id)->required();
  c.add_option("PLATFORM", a.platform, "apns or fcm")->required();
  c.add_option("COUNT", a.count)->required();
  c.add_option("PREFIX", a.prefix);
}

void declareAddSchedule(CLI::App& c, AdminArgs& a) {
  c.add_option("APP_ID", a.id)->required();
  c.add_option("PAYLOAD_FILE", a.file)->required();
  c.add_option("--in", a.delay, "start in SECONDS (default now)");
}

void declareStatus(CLI::App& c, AdminArgs& a) { c.add_option("SCHEDULE_ID", a.id)->required(); }

// One entry per command: its name, its operands as the help lists them, what
// it does in one line, how CLI11 parses it, what it runs. `help` is not
// here: it needs no database.
struct Command {
  const char* name;
  const char* operands;
  const char* summary;
  void (*declare)(CLI::App&, AdminArgs&);
  int (*run)(DbConnection&, const AdminArgs&);
};

const Command kCommands[] = {
    {"migrate", "", "apply the schema migrations", declareNothing, runMigrate},
    {"add-app", "NAME [--apns-... --fcm-...]", "add an app; prints app_id=", declareAddApp,
     runAddApp},
    {"load-tokens", "APP_ID FILE", "load \"PLATFORM TOKEN\" lines (FILE - = stdin)",
     declareLoadTokens, runLoadTokens},
    {"generate-tokens", "APP_ID PLATFORM COUNT [PREFIX]", "insert COUNT synthetic tokens",
     declareGenerateTokens, runGenerateTokens},
    {"add-schedule", "APP_ID PAYLOAD_FILE [--in S]",
     "add a schedule; prints schedule_id=", declareAddSchedule, runAddSchedule},
    {"status", "SCHEDULE_ID", "a schedule's state as key=value lines", declareStatus, runStatus},
};

const Command* findCommand(const std::string& name) {
  for (const Command& c : kCommands) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

// --help, -h and `help`: every command on one line with its operands.
std::string mainHelp() {
  std::string text =
      "usage: pushdaemon-admin [--config FILE] [--section.key=value ...] COMMAND [OPERANDS]\n"
      "\n"
      "Loads apps, device tokens and schedules into pushdaemon's database and reads a\n"
      "schedule's state. The database is the one pushdaemon's configuration names\n"
      "(--config FILE and --section.key=value flags, before or after the command); the\n"
      "password is read from database.password_file only.\n"
      "\n"
      "commands:\n";
  auto line = [&text](const std::string& synopsis, const std::string& summary) {
    text += "  " + synopsis + std::string(synopsis.size() < 47 ? 47 - synopsis.size() : 1, ' ') +
            summary + "\n";
  };
  for (const Command& c : kCommands) {
    line(std::string(c.name) + (*c.operands != '\0' ? " " : "") + c.operands, c.summary);
  }
  line("help [COMMAND]", "this text, or a command's operands and options");
  text +=
      "\n"
      "Output: key=value lines. Exit: 0 ok, 1 database error, 2 usage or input error.\n"
      "'pushdaemon-admin COMMAND --help' shows a command's operands and options.\n";
  return text;
}

// `help [COMMAND]`: the exit code.
int printHelp(CLI::App& app, const std::string& topic) {
  if (topic.empty()) {
    std::cout << mainHelp();
    return 0;
  }
  if (findCommand(topic) == nullptr) return usage("unknown command '" + topic + "'");
  std::cout << app.get_subcommand(topic)->help(app.get_name());
  return 0;
}

// The --section.key=value flags among what CLI11 did not take; the exit
// code of the usage error when anything else is there.
std::optional<int> takeOverrides(const CLI::App& app, AdminArgs& a) {
  if (app.get_subcommands().empty()) {
    for (const std::string& x : app.remaining()) {
      if (x.rfind("-", 0) != 0) return usage("unknown command '" + x + "'");
    }
    return usage("no command");
  }
  for (const std::string& x : app.remaining(true)) {
    if (x.rfind("--", 0) == 0 && x.find('.') != std::string::npos &&
        x.find('=') != std::string::npos && x.find('.') < x.find('=')) {
      a.overrides.push_back(x.substr(2));
    } else {
      return usage("unexpected argument '" + x + "'");
    }
  }
  return std::nullopt;
}

// Returns the exit code when the command line is all there is to do (help,
// a usage error), or nothing to go on. Nothing here reads the configuration
// or touches the database.
std::optional<int> parseCommandLine(int argc, char** argv, AdminArgs& a) {
  CLI::App app("", "pushdaemon-admin");
  app.add_option("--config", a.config_path, "pushdaemon's TOML configuration");
  // --section.key=value flags are not declared: they come back as extras.
  app.allow_extras();
  app.require_subcommand(0, 1);
  for (const Command& c : kCommands) c.declare(*app.add_subcommand(c.name, c.summary), a);
  CLI::App* help = app.add_subcommand("help", "the commands, or one command's operands");
  std::string topic;
  help->add_option("COMMAND", topic);
  for (CLI::App* sub : app.get_subcommands({})) sub->fallthrough();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << (app.get_subcommands().empty() ? mainHelp() : app.help());
    return 0;
  } catch (const CLI::ParseError& e) {
    return usage(e.what());
  }
  if (const auto done = takeOverrides(app, a)) return done;
  if (help->parsed()) return printHelp(app, topic);
  a.command = findCommand(app.get_subcommands().front()->get_name());
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  AdminArgs args;
  if (const auto done = parseCommandLine(argc, argv, args)) return *done;
  Config config;
  std::string password;
  try {
    config = loadConfig(args.config_path, args.overrides);
    password = readPasswordFile(config.db_password_file);
  } catch (const ConfigError& e) {
    return usage(e.what());
  }
  DbParams p = dbParams(config, std::move(password));
  // Not database.io_timeout_s: one admin statement (a whole token file,
  // millions of generated tokens) may run far longer than the daemon's.
  p.io_timeout = std::chrono::seconds(600);
  mysql_library_init(0, nullptr, nullptr);
  auto conn = DbConnection::connect(p);
  if (!conn) return dbFail(conn.error());
  return args.command->run(**conn, args);
}
