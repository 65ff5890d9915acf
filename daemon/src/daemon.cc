#include "daemon.h"

#include <event2/thread.h>
#include <mysql.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>

// GCC 12 sees a "potential null pointer dereference" in std::vector's
// reallocation as inlined from CLI11's string splitting: a false positive
// in code that is not ours.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <CLI/CLI.hpp>
#pragma GCC diagnostic pop

#include "config.h"
#include "http_server.h"
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

}  // namespace

int runDaemon(int argc, char** argv) {
  CommandLine cl;
  if (const auto done = parseCommandLine(argc, argv, cl)) return *done;
  const std::string& config_path = cl.config_path;
  const std::vector<std::string>& overrides = cl.overrides;
  const bool check_only = cl.check_only;
  const bool migrate_only = cl.migrate_only;

  Config config;
  std::string password;
  try {
    config = loadConfig(config_path, overrides);
    if (!config.allow_core_dumps && !disableCoreDumps()) return 1;
    password = readPasswordFile(config.db_password_file);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "pushdaemon: %s\n", e.what());
    return 2;
  }
  if (check_only) {
    std::puts("config ok");
    return 0;
  }
  if (config.lease < 3 * config.db_io_timeout) {
    // The writer renews the lease every third of it, between statements; one
    // that hangs for the whole io_timeout can let the lease lapse while this
    // daemon lives, and another daemon may then take the schedule over.
    logWarn("main", "daemon.lease_s (" + std::to_string(config.lease.count()) +
                        ") is under 3 x database.io_timeout_s (" +
                        std::to_string(config.db_io_timeout.count()) +
                        "): a hung statement can let a live daemon lose its lease");
  }
  auto heap_mode = diag::parseHeapMode(config.heap_mode);
  if (heap_mode.ok() && *heap_mode == diag::HeapMode::kSampled && !migrate_only) {
    // tcmalloc reads its sampling period before main: re-exec once with it
    // set. argv holds no secret (passwords come from files).
    if (auto s = diag::ensureHeapSampling(argv, config.heap_sample_bytes, false); !s.ok()) {
      std::fprintf(stderr, "pushdaemon: %s\n", s.error().message.c_str());
    }
  }
  Log::setLevel(config.log_level);

  // Signals for the main thread's sigwait; every thread started from here
  // on inherits the mask (SIGUSR2 stays with leakscope's handler).
  sigset_t wait_set;
  sigemptyset(&wait_set);
  sigaddset(&wait_set, SIGTERM);
  sigaddset(&wait_set, SIGINT);
  sigaddset(&wait_set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &wait_set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  evthread_use_pthreads();
  if (mysql_library_init(0, nullptr, nullptr) != 0) {
    std::fprintf(stderr, "pushdaemon: mysql_library_init failed\n");
    return 1;
  }
  struct LibraryEnd {
    ~LibraryEnd() { mysql_library_end(); }
  } library_end;

  const DbParams db = dbParams(config, password);
  password.assign(password.size(), '\0');
  DaemonMetrics metrics;

  if (migrate_only || config.db_migrate) {
    Db mdb(db, &metrics, config.db_reconnect_min, config.db_reconnect_max, "migrate");
    // At start the database may not be up yet: wait for it (SIGTERM still
    // ends the wait).
    std::atomic<bool> stop{false};
    for (;;) {
      DbConnection* c = mdb.get();
      if (c != nullptr) {
        auto v = migrate(*c);
        if (v.ok()) {
          logInfo("migrate", "schema version " + std::to_string(*v));
          break;
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
      timespec zero{0, 0};
      const int sig = sigtimedwait(&wait_set, nullptr, &zero);
      if (sig == SIGTERM || sig == SIGINT) return 0;
      if (sig == SIGHUP) {
        logWarn("main",
                "SIGHUP while waiting for the database: the configuration is read at start");
      }
      mdb.backoff(&stop);
    }
    if (migrate_only) return 0;
  }

  diag::Config dc;
  dc.snapshot_dir = config.snapshot_dir;
  dc.snapshot_name = config.snapshot_name;
  dc.snapshot_keep = config.snapshot_keep;
  dc.snapshot_max_bytes = config.snapshot_max_bytes;
  dc.snapshot_interval = config.snapshot_interval;
  dc.heap_mode = heap_mode.ok() ? *heap_mode : diag::HeapMode::kSampled;
  dc.metrics_address = "";  // served below, together with /healthz
  dc.log = [](std::string_view line) { logWarn("leakscope", line); };
  auto push_metrics = std::make_shared<push::PushMetrics>();
  diag::Runtime runtime(dc);

  push::EventLoop loop;
  auto scheduler = std::make_unique<Scheduler>(config, db, loop, push_metrics, &metrics);

  std::unique_ptr<HttpServer> http;
  if (!config.http_address.empty()) {
    Scheduler* sched = scheduler.get();
    diag::HttpLimits limits;
    limits.max_connections = config.http_max_connections;
    limits.request_timeout = config.http_request_timeout;
    limits.max_header_bytes = config.http_max_header_bytes;
    limits.fd_reserve = config.http_fd_reserve;
    auto h = HttpServer::start(config.http_address, limits,
                               {runtime.collector(), push_metrics, metrics.registry()}, [sched] {
                                 const auto s = sched->health();
                                 const std::string body =
                                     std::string("{\"status\":\"") + (s.ok ? "ok" : "unhealthy") +
                                     "\",\"reason\":\"" + jsonEscape(s.reason) + "\",\"db\":\"" +
                                     (s.db_ok ? "up" : "down") +
                                     "\",\"draining\":" + (s.draining ? "true" : "false") +
                                     ",\"schedule\":" + std::to_string(s.schedule_id) + "}\n";
                                 return std::make_pair(s.ok ? 200 : 503, body);
                               });
    if (!h.ok()) {
      logError("http", h.error().message);
      return 1;
    }
    http = std::move(*h);
  }
  std::printf("pushdaemon pid=%d http=%s owner=%s\n", static_cast<int>(getpid()),
              http ? http->address().c_str() : "off", scheduler->owner().c_str());
  std::fflush(stdout);
  logInfo("main", "started; database " + db.label() + ", http " +
                      (http ? http->address() : std::string("off")));
  if (config.leak_drill) {
    logWarn("main",
            "LEAK DRILL ON (daemon.leak_drill): every schedule gets a new APNs client and the "
            "previous one is never shut down; its connections and memory grow until exit. "
            "Never run this in production.");
  }
  scheduler->start();

  for (;;) {
    int sig = 0;
    if (sigwait(&wait_set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      try {
        Config next = loadConfig(config_path, overrides);
        scheduler->requestReload(std::move(next));
        logInfo("main", "SIGHUP: configuration read; applying");
      } catch (const ConfigError& e) {
        metrics.reload(false);
        logError("main", std::string("SIGHUP: keeping the running configuration: ") + e.what());
      }
      continue;
    }
    logInfo("main", std::string(strsignal(sig)) + ": draining");
    scheduler->requestStop();
    break;
  }
  scheduler->join();
  // The HTTP server first: /healthz reads the scheduler, which goes next
  // (push clients are shut down inside it; then the loop goes).
  http.reset();
  scheduler.reset();
  logInfo("main", "stopped");
  return 0;
}

}  // namespace pushdaemon
