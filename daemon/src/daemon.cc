#include "daemon.h"

#include <event2/thread.h>
#include <mysql.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "config.h"
#include "http_server.h"
#include "leakscope/core/cli11.h"
#include "leakscope/diag/heap_profile.h"
#include "leakscope/diag/metrics.h"
#include "leakscope/diag/runtime.h"
#include "leakscope/push/event_loop.h"
#include "leakscope/push/metrics.h"
#include "log.h"
#include "metrics.h"
#include "scheduler.h"
#include "store.h"

namespace pushdaemon {

namespace {

namespace diag = leakscope::diag;
namespace push = leakscope::push;

constexpr const char* kUsage = R"(usage: pushdaemon [--config FILE] [--section.key=value ...]
       pushdaemon --check-config [--config FILE] [--section.key=value ...]
       pushdaemon --migrate [--config FILE] [--section.key=value ...]

Sends scheduled push notifications (APNs, FCM) to the device tokens stored in
MySQL/MariaDB, writing one result per token back. Every option of the TOML
file can be given as a flag, e.g. --database.host=db1 --sending.page_size=5000
(docs/config.md lists them all). Secrets are read from files only
(database.password_file, the credential files named by the app rows).

Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP reloads the configuration
file and replaces the push clients whose credentials changed; SIGUSR2 writes
a leakscope snapshot to diag.snapshot_dir.
Endpoints on daemon.http_address (default 127.0.0.1:9477): /metrics, /healthz.

options:
  --config FILE       the TOML configuration (default: none, built-in defaults)
  --check-config      parse the configuration, print "config ok" and exit
  --migrate           apply the schema migrations and exit
  --leak-drill        reproduce the seed's leak on purpose: a new APNs client per
                      schedule, never shut down (= --daemon.leak_drill=true);
                      for demos and drills, never production
  --version           print the version
  -h, --help          this text
)";

std::string jsonEscape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    o += c;
  }
  return o;
}

// Before any secret is read: no core file, no same-user ptrace or
// /proc/PID/mem. A core would hold the database password, the push keys
// and the OAuth tokens. execve() (the tcmalloc re-exec) makes the process
// dumpable again, and it comes back through here; RLIMIT_CORE survives it.
bool disableCoreDumps() {
  const rlimit zero{0, 0};
  const bool ok = prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 && setrlimit(RLIMIT_CORE, &zero) == 0;
  if (!ok) std::fprintf(stderr, "pushdaemon: cannot disable core dumps: %s\n", strerror(errno));
  return ok;
}

// What the command line asks for. Every configuration key is also a flag
// (--section.key=value), so those are not declared to CLI11: it hands them
// back as extras, in order, and loadConfig() checks them against the keys.
struct CommandLine {
  std::string config_path;
  std::vector<std::string> overrides;
  bool check_only = false;
  bool migrate_only = false;
};

// Returns the exit code when the command line is all there is to do (help,
// version, a usage error), or nothing to go on.
std::optional<int> parseCommandLine(int argc, char** argv, CommandLine& cl) {
  CLI::App app("pushdaemon", "pushdaemon");
  app.allow_extras();
  bool version = false;
  bool leak_drill = false;
  app.add_option("--config", cl.config_path);
  app.add_flag("--check-config", cl.check_only);
  app.add_flag("--migrate", cl.migrate_only);
  app.add_flag("--leak-drill", leak_drill);
  app.add_flag("--version", version);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(kUsage, stdout);
    return 0;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "pushdaemon: %s (see --help)\n", e.what());
    return 2;
  }
  if (version) {
    std::puts("pushdaemon 0.1.0");
    return 0;
  }
  for (const std::string& a : app.remaining()) {
    if (a.rfind("--", 0) != 0 || a.find('.') == std::string::npos) {
      std::fprintf(stderr, "pushdaemon: unknown argument '%s' (see --help)\n", a.c_str());
      return 2;
    }
    cl.overrides.push_back(a.substr(2));
  }
  // Kept among the overrides, so a SIGHUP's re-read keeps it too; last, so
  // the flag wins over a --daemon.leak_drill=false beside it.
  if (leak_drill) cl.overrides.push_back("daemon.leak_drill=true");
  return std::nullopt;
}

// /healthz: 200 with the scheduler's state (or the start-up's), 503 when it
// is unhealthy.
std::pair<int, std::string> healthResponse(const Scheduler::Health& s) {
  const std::string body = std::string("{\"status\":\"") + (s.ok ? "ok" : "unhealthy") +
                           "\",\"reason\":\"" + jsonEscape(s.reason) + "\",\"db\":\"" +
                           (s.db_ok ? "up" : "down") +
                           "\",\"draining\":" + (s.draining ? "true" : "false") +
                           ",\"schedule\":" + std::to_string(s.schedule_id) + "}\n";
  return std::make_pair(s.ok ? 200 : 503, body);
}

// leakscope's runtime as the configuration's [diag] section asks.
diag::Config diagConfig(const Config& config) {
  auto heap_mode = diag::parseHeapMode(config.heap_mode);
  diag::Config dc;
  dc.snapshot_dir = config.snapshot_dir;
  dc.snapshot_name = config.snapshot_name;
  dc.snapshot_keep = config.snapshot_keep;
  dc.snapshot_max_bytes = config.snapshot_max_bytes;
  dc.snapshot_interval = config.snapshot_interval;
  dc.memory_pressure_fractions = config.memory_pressure_fractions;
  dc.memory_check_interval = config.memory_check_interval;
  dc.heap_mode = heap_mode.ok() ? *heap_mode : diag::HeapMode::kSampled;
  dc.metrics_address = "";  // served by HttpServer, together with /healthz
  dc.log = [](std::string_view line) { logWarn("leakscope", line); };
  return dc;
}

diag::HttpLimits httpLimits(const Config& config) {
  diag::HttpLimits limits;
  limits.max_connections = config.http_max_connections;
  limits.request_timeout = config.http_request_timeout;
  limits.max_header_bytes = config.http_max_header_bytes;
  limits.fd_reserve = config.http_fd_reserve;
  return limits;
}

// mysql_library_end() once mysql_library_init() succeeded.
struct MysqlLibrary {
  bool initialized = false;
  MysqlLibrary() = default;
  MysqlLibrary(const MysqlLibrary&) = delete;
  MysqlLibrary& operator=(const MysqlLibrary&) = delete;
  ~MysqlLibrary() {
    if (initialized) mysql_library_end();
  }
};

// One run of the daemon, in named steps: configure, take the signals,
// start the libraries, start the diagnostics (snapshots, /metrics,
// /healthz), migrate (waiting for the database), start the scheduler,
// serve until a signal says stop, tear down. Nothing before the
// diagnostics can wait for the database, so a daemon that waits at start
// answers /healthz (503) and writes a snapshot on SIGUSR2 instead of dying
// of it. Each step that can end the process returns its exit code. Used
// once, from runDaemon(), on the main thread.
class Daemon {
 public:
  int run(int argc, char** argv);

 private:
  std::optional<int> configure(char** argv);
  void blockSignals();
  bool startLibraries();
  bool startDiagnostics();
  std::optional<int> migrateSchema();
  void announceWait(const Db& db);
  void startScheduler();
  void announce();
  void serve();
  void stop();
  std::pair<int, std::string> health() const;

  CommandLine cl_;
  Config config_;
  std::string password_;  // until it is in db_; then wiped
  sigset_t wait_set_{};   // the signals serve() waits for

  // Members are destroyed in reverse order: everything below is gone
  // before the client library ends (mysql_library_end last), and the
  // metrics outlive what counts into them. stop() resets http_ and
  // scheduler_ first, in that order, after the scheduler thread ended.
  MysqlLibrary mysql_;
  DbParams db_;
  DaemonMetrics metrics_;
  std::shared_ptr<push::PushMetrics> push_metrics_;
  std::optional<diag::Runtime> runtime_;
  std::optional<push::EventLoop> loop_;
  std::unique_ptr<Scheduler> scheduler_;  // uses loop_, metrics_, push_metrics_
  // What health() (the HTTP thread) reads: the start-up's state until the
  // scheduler exists, then the scheduler.
  std::atomic<bool> start_db_up_{false};
  std::atomic<const Scheduler*> health_source_{nullptr};
  // /healthz reads the two above; /metrics the runtime and both metrics.
  std::unique_ptr<HttpServer> http_;
};

int Daemon::run(int argc, char** argv) {
  if (const auto done = parseCommandLine(argc, argv, cl_)) return *done;
  if (const auto done = configure(argv)) return *done;
  blockSignals();
  if (!startLibraries()) return 1;
  db_ = dbParams(config_, password_);
  password_.assign(password_.size(), '\0');
  if (cl_.migrate_only) {
    // A one-shot command beside a running daemon: no endpoint (its address
    // is the daemon's) and no snapshots, but a SIGUSR2 meant for the
    // daemons must not kill it.
    ::signal(SIGUSR2, SIG_IGN);
    return migrateSchema().value_or(0);
  }
  if (!startDiagnostics()) return 1;
  if (config_.db_migrate) {
    if (const auto done = migrateSchema()) return *done;
  }
  startScheduler();
  announce();
  serve();
  stop();
  return 0;
}

// The configuration, the process's protections and the password; the exit
// code when that is all (--check-config) or it fails.
std::optional<int> Daemon::configure(char** argv) {
  try {
    config_ = loadConfig(cl_.config_path, cl_.overrides);
    if (!config_.allow_core_dumps && !disableCoreDumps()) return 1;
    password_ = readPasswordFile(config_.db_password_file);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "pushdaemon: %s\n", e.what());
    return 2;
  }
  if (cl_.check_only) {
    std::puts("config ok");
    return 0;
  }
  if (config_.lease < 3 * config_.db_io_timeout) {
    // The writer renews the lease every third of it, between statements; one
    // that hangs for the whole io_timeout can let the lease lapse while this
    // daemon lives, and another daemon may then take the schedule over.
    logWarn("main", "daemon.lease_s (" + std::to_string(config_.lease.count()) +
                        ") is under 3 x database.io_timeout_s (" +
                        std::to_string(config_.db_io_timeout.count()) +
                        "): a hung statement can let a live daemon lose its lease");
  }
  auto heap_mode = diag::parseHeapMode(config_.heap_mode);
  if (heap_mode.ok() && *heap_mode == diag::HeapMode::kSampled && !cl_.migrate_only) {
    // tcmalloc reads its sampling period before main: re-exec once with it
    // set. argv holds no secret (passwords come from files).
    if (auto s = diag::ensureHeapSampling(argv, config_.heap_sample_bytes, false); !s.ok()) {
      std::fprintf(stderr, "pushdaemon: %s\n", s.error().message.c_str());
    }
  }
  Log::setLevel(config_.log_level);
  return std::nullopt;
}

// Signals for the main thread's sigwait; every thread started from here
// on inherits the mask (SIGUSR2 stays with leakscope's handler).
void Daemon::blockSignals() {
  sigemptyset(&wait_set_);
  sigaddset(&wait_set_, SIGTERM);
  sigaddset(&wait_set_, SIGINT);
  sigaddset(&wait_set_, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &wait_set_, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

bool Daemon::startLibraries() {
  evthread_use_pthreads();
  if (mysql_library_init(0, nullptr, nullptr) != 0) {
    std::fprintf(stderr, "pushdaemon: mysql_library_init failed\n");
    return false;
  }
  mysql_.initialized = true;
  return true;
}

// leakscope's runtime (the SIGUSR2 snapshot handler, interval snapshots)
// and the HTTP server, /healthz answering for the start-up until the
// scheduler exists; false when the HTTP address cannot be served.
bool Daemon::startDiagnostics() {
  push_metrics_ = std::make_shared<push::PushMetrics>();
  runtime_.emplace(diagConfig(config_));
  if (config_.http_address.empty()) return true;
  auto h = HttpServer::start(config_.http_address, httpLimits(config_),
                             {runtime_->collector(), push_metrics_, metrics_.registry()},
                             [this] { return health(); });
  if (!h.ok()) {
    logError("http", h.error().message);
    return false;
  }
  http_ = std::move(*h);
  return true;
}

// On the HTTP server's thread.
std::pair<int, std::string> Daemon::health() const {
  if (const Scheduler* s = health_source_.load()) return healthResponse(s->health());
  Scheduler::Health h;
  h.ok = false;
  h.db_ok = start_db_up_.load();
  h.reason = h.db_ok ? "starting: migrating the schema" : "starting: waiting for the database";
  return healthResponse(h);
}

// The exit code when the daemon ends here: 1 when the schema cannot be
// migrated, 0 when SIGTERM/SIGINT came first.
std::optional<int> Daemon::migrateSchema() {
  Db mdb(db_, &metrics_, config_.db_reconnect_min, config_.db_reconnect_max, "migrate");
  // At start the database may not be up yet: wait for it (SIGTERM still
  // ends the wait).
  std::atomic<bool> stop{false};
  bool waiting = false;
  for (;;) {
    DbConnection* c = mdb.get();
    start_db_up_ = c != nullptr;
    if (c != nullptr) {
      auto v = migrate(*c);
      if (v.ok()) {
        logInfo("migrate", "schema version " + std::to_string(*v));
        return std::nullopt;
      }
      if (v.error().code != diag::Errc::kUnavailable) {
        logError("migrate", v.error().message);
        return 1;
      }
      mdb.reset();
    } else if (mdb.lastErrorCode() == diag::Errc::kPermission) {
      // Wrong user or password, or TLS refused: waiting will not fix it.
      logError("migrate", mdb.lastError());
      return 1;
    }
    if (!std::exchange(waiting, true)) announceWait(mdb);
    timespec zero{0, 0};
    const int sig = sigtimedwait(&wait_set_, nullptr, &zero);
    if (sig == SIGTERM || sig == SIGINT) return 0;
    if (sig == SIGHUP) {
      logWarn("main", "SIGHUP while waiting for the database: the configuration is read at start");
    }
    mdb.backoff(&stop);
  }
}

// Once, when the first connection failed: a line on stdout, like the
// start line (tests and scripts read it), and a warning that says what
// still works meanwhile.
void Daemon::announceWait(const Db& db) {
  const std::string http = http_ ? http_->address() : std::string("off");
  std::printf("pushdaemon waiting for the database pid=%d http=%s\n", static_cast<int>(getpid()),
              http.c_str());
  std::fflush(stdout);
  std::string meanwhile;
  if (http_) meanwhile += "/healthz on " + http + " answers 503 until it is up; ";
  if (runtime_) meanwhile += "SIGUSR2 writes a snapshot; ";
  logWarn("main", "waiting for the database (" + db.lastError() + "); " + meanwhile +
                      "SIGTERM ends the wait");
}

// The event loop and the scheduler (not started yet), which /healthz
// reports from now on.
void Daemon::startScheduler() {
  loop_.emplace();
  scheduler_ = std::make_unique<Scheduler>(config_, db_, *loop_, push_metrics_, &metrics_);
  health_source_ = scheduler_.get();
}

// The start-up line on stdout (tests and the demo read it), the log lines,
// and the scheduler's thread.
void Daemon::announce() {
  std::printf("pushdaemon pid=%d http=%s owner=%s\n", static_cast<int>(getpid()),
              http_ ? http_->address().c_str() : "off", scheduler_->owner().c_str());
  std::fflush(stdout);
  logInfo("main", "started; database " + db_.label() + ", http " +
                      (http_ ? http_->address() : std::string("off")));
  if (config_.leak_drill) {
    logWarn("main",
            "LEAK DRILL ON (daemon.leak_drill): every schedule gets a new APNs client and the "
            "previous one is never shut down; its connections and memory grow until exit. "
            "Never run this in production.");
  }
  scheduler_->start();
}

// Until SIGTERM or SIGINT: SIGHUP re-reads the configuration file (with the
// command line's overrides) and hands it to the scheduler.
void Daemon::serve() {
  for (;;) {
    int sig = 0;
    if (sigwait(&wait_set_, &sig) != 0) continue;
    if (sig == SIGHUP) {
      try {
        Config next = loadConfig(cl_.config_path, cl_.overrides);
        scheduler_->requestReload(std::move(next));
        logInfo("main", "SIGHUP: configuration read; applying");
      } catch (const ConfigError& e) {
        metrics_.reload(false);
        logError("main", std::string("SIGHUP: keeping the running configuration: ") + e.what());
      }
      continue;
    }
    logInfo("main", std::string(strsignal(sig)) + ": draining");
    scheduler_->requestStop();
    return;
  }
}

void Daemon::stop() {
  scheduler_->join();
  // The HTTP server first: /healthz reads the scheduler, which goes next
  // (push clients are shut down inside it; then the loop goes).
  http_.reset();
  scheduler_.reset();
  logInfo("main", "stopped");
}

}  // namespace

int runDaemon(int argc, char** argv) {
  Daemon daemon;
  return daemon.run(argc, argv);
}

}  // namespace pushdaemon
