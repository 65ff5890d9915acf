// `leakscope run [OPTIONS] -- CMD ARGS...`: checks the options and the
// program, starts the watcher beside it (watcher_start.h), puts the preload
// agent into its environment (LD_PRELOAD and the LEAKSCOPE_* variables,
// core/agent_env.h) and execs it, so the pid the user signals is the
// program's own. docs/run-and-capture.md.
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <variant>
#include <vector>

#include "leakscope/core/agent_env.h"
#include "leakscope/core/cli11.h"
#include "leakscope/core/listen_address.h"
#include "leakscope/core/watch_protocol.h"
#include "process_commands.h"
#include "program_inspect.h"
#include "watcher_start.h"

extern char** environ;

namespace leakscope::cli {

extern const char kRunHelp[] = R"(Usage: leakscope run [OPTIONS] -- CMD [ARGS...]

Starts an unmodified program with the leakscope agent preloaded
(libleakscope-preload.so, tcmalloc first in LD_PRELOAD), so a daemon that
was never rebuilt writes snapshots like an instrumented one: its sampled
heap profile symbolized in-process, its kernel sockets, process and
allocator figures. leakscope execs CMD: the pid stays the program's, and
that is the pid to signal. Nothing runs in the program until asked but the
heap sampling: the clock jobs run in the watcher, a small process
`leakscope-watch` that run starts beside the program (not its child, in a
session of its own). Once a second it reads each of the program's processes'
/proc/PID/statm and sends the snapshot signal (sigqueue, with a value the
agent reads) when RSS crosses 80/90/95 % of the memory limit and every
--interval. The program gets no thread from leakscope until the first
snapshot is asked for. With --metrics there is no watcher: the agent keeps
a thread for the HTTP server and does those jobs itself. The watcher exits
once the program and all its children have.

Options:
  --snapshot-dir DIR     where snapshots go (default ./leakscope-snapshots),
                         named PROGRAM.PID.NNNNNN.lsnap
  --signal SIG           snapshot signal: USR2 (default), SIGUSR1, RTMIN+3 ...
  --interval DURATION    also every DURATION (30s, 5m, 1h; default 0: never)
  --metrics HOST:PORT    serve /metrics there (default: none; first process
                         only after a fork; no watcher then)
  --heap MODE            sampled (default), full (every allocation; slow) or
                         off (no tcmalloc is added; the allocator is left alone)
  --sample-period BYTES  tcmalloc sampling period (default 2097152, 2 MiB, as
                         Google's tcmalloc samples: each sample costs a stack
                         walk; lower it to see small leaks sooner)
  --keep N               keep the newest N snapshots per process (default all)
  --max-bytes BYTES      and at most this many bytes of them
  --follow-exec          programs CMD execs get the agent too (default: the
                         agent removes itself from their LD_PRELOAD)
  -h, --help             this help

A program that links tcmalloc keeps its own; one that links another
allocator (jemalloc, mimalloc, tcmalloc_minimal) runs on it without a heap
profile. A program that installs its own handler for the snapshot signal
keeps it (a message says so): pick another --signal. Every forked child gets
an agent of its own. A static executable cannot be preloaded (exit 2).
The same settings as LEAKSCOPE_* variables, for a systemd unit:
docs/run-and-capture.md.

Example:
  leakscope run --snapshot-dir /tmp/snaps -- nghttpd 8080 key.pem cert.pem &
  kill -USR2 $!; sleep 60; kill -USR2 $!; sleep 60; kill -USR2 $!
  leakscope trend /tmp/snaps

Exit status: CMD's own (leakscope is replaced by it); 2 when it cannot be
started (not found, not executable, static, a bad option).
)";

namespace {

namespace fs = std::filesystem;

struct RunOptions {
  core::AgentSettings agent;
  std::string signal = "USR2";
  std::string interval = "0";
  // 2 MiB, the default of Google's tcmalloc: gperftools walks the stack with
  // libunwind at each sample, and at 512 KiB that cost nginx 8 % of its
  // requests/s (docs/benchmarks.md, preload). A leak that threatens a daemon
  // grows by far more than 2 MiB between snapshots.
  std::uint64_t sample_period = 2 * 1024 * 1024;
  std::vector<std::string> command;  // CMD ARGS...
};

// An option checked by one of core's parsers: the parser's own words.
template <class Parse>
CLI::Validator checkedBy(Parse parse, const char* what) {
  return CLI::Validator(
      [parse](std::string& v) {
        auto r = parse(v);
        return r.ok() ? std::string() : r.error().message;
      },
      what);
}

void addOptions(CLI::App& app, RunOptions& o) {
  app.add_option("--snapshot-dir", o.agent.snapshot_dir);
  app.add_option("--signal", o.signal)->check(checkedBy(core::parseSignal, "SIG"));
  app.add_option("--interval", o.interval)->check(checkedBy(core::parseDuration, "DURATION"));
  app.add_option("--metrics", o.agent.metrics)
      ->check(checkedBy(core::validateListenAddress, "HOST:PORT"));
  app.add_option("--heap", o.agent.heap)->check(CLI::IsMember({"sampled", "full", "off"}));
  app.add_option("--sample-period", o.sample_period)->check(CLI::Range(1, 1 << 30));
  app.add_option("--keep", o.agent.keep);
  app.add_option("--max-bytes", o.agent.max_bytes);
  app.add_flag("--follow-exec", o.agent.follow_exec);
  app.add_option("command", o.command)->required();
}

// The agent built beside this binary: <bin>/../lib in the build tree, the
// libdir relative to the bindir after `cmake --install`.
core::Result<std::string> findAgent(const std::string& file) {
  std::error_code ec;
  const fs::path bin = fs::read_symlink("/proc/self/exe", ec).parent_path();
  std::string looked;
  for (const fs::path& dir : {bin / "../lib", bin / LEAKSCOPE_BIN_TO_LIBDIR}) {
    const fs::path candidate = (dir / file).lexically_normal();
    if (access(candidate.c_str(), R_OK) == 0) return candidate.string();
    looked += (looked.empty() ? "" : ", ") + candidate.string();
  }
  return core::Error{core::Errc::kUnavailable, "the agent " + file + " is not installed beside " +
                                                   "this leakscope (looked for " + looked + ")"};
}

// What goes into the program's environment, and what `run` says about it.
struct Plan {
  std::vector<std::string> preload;  // LD_PRELOAD entries, first first
  std::vector<std::string> env;      // NAME=VALUE to set
  std::string allocator_note;        // one line for stderr, or ""
};

// tcmalloc first (a preload's own DT_NEEDED would come after libc), then
// the agent; none added to a program that has an allocator of its own.
core::Result<Plan> planFor(const RunOptions& o, const ProgramInfo& program) {
  Plan plan;
  const LinkedLibrary* alloc = linkedAllocator(program.libraries);
  const std::string name = fs::path(program.path).filename();
  bool heap = o.agent.heap != "off";
  if (alloc != nullptr && alloc->name == LEAKSCOPE_TCMALLOC_SONAME) {
    plan.allocator_note = name + " links tcmalloc (" + alloc->path + ") already: using it";
  } else if (alloc != nullptr) {
    plan.allocator_note = name + " links another allocator (" + alloc->name +
                          "): no tcmalloc added, no heap profile (sockets and process "
                          "figures still work)";
    heap = false;
  } else if (heap) {
    plan.preload.push_back(LEAKSCOPE_TCMALLOC_SONAME);
  }
  auto agent = findAgent(heap ? "libleakscope-preload.so" : "libleakscope-preload-noheap.so");
  if (!agent.ok()) return agent.error();
  plan.preload.push_back(*agent);
  plan.env = core::agentEnvironment(o.agent);
  if (heap && o.agent.heap == "sampled") {
    plan.env.push_back("TCMALLOC_SAMPLE_PARAMETER=" + std::to_string(o.sample_period));
  }
  return plan;
}

// environ with `plan` applied: our LD_PRELOAD entries before any the user had.
std::vector<std::string> environmentFor(const Plan& plan) {
  std::vector<std::string> out;
  std::string preload;
  for (const std::string& p : plan.preload) preload += (preload.empty() ? "" : ":") + p;
  auto replaced = [&](const std::string& entry) {
    const std::string key = entry.substr(0, entry.find('=') + 1);
    // An inherited address is another run's watcher: never this program's.
    if (key == std::string(core::kEnvWatcher) + "=") return true;
    if (key == "LD_PRELOAD=") {
      preload += ":" + entry.substr(key.size());
      return true;
    }
    for (const std::string& e : plan.env) {
      if (e.starts_with(key)) return true;
    }
    return false;
  };
  for (char** e = environ; *e != nullptr; ++e) {
    if (!replaced(*e)) out.emplace_back(*e);
  }
  out.insert(out.end(), plan.env.begin(), plan.env.end());
  out.push_back("LD_PRELOAD=" + preload);
  return out;
}

// One printable line (a command named with a newline stays one line).
int fail(const std::string& message) { return failLine("run", message); }

// Settles the options that need more than CLI11's checks; "" when fine.
std::string settle(RunOptions& o) {
  o.agent.signal = *core::parseSignal(o.signal);  // checked by addOptions
  o.agent.interval = *core::parseDuration(o.interval);
  if (o.agent.snapshot_dir.empty()) o.agent.snapshot_dir = "leakscope-snapshots";
  std::error_code ec;
  // Absolute: daemons chdir("/").
  const fs::path dir = fs::absolute(o.agent.snapshot_dir, ec);
  if (ec) return "--snapshot-dir " + o.agent.snapshot_dir + ": " + ec.message();
  o.agent.snapshot_dir = dir.lexically_normal().string();
  return "";
}

std::string announce(const RunOptions& o, const std::string& program) {
  const std::string sig = core::signalName(o.agent.signal);
  std::string line = "leakscope run: " + program + " (pid " + std::to_string(getpid()) +
                     ") with the agent: snapshots into " + o.agent.snapshot_dir + " on " + sig +
                     " (kill -" + sig.substr(3) + " " + std::to_string(getpid()) + ")";
  if (o.agent.interval.count() > 0) line += " and every " + o.interval;
  if (!o.agent.metrics.empty()) line += "; /metrics on " + o.agent.metrics;
  return line;
}

// Starts the watcher (not with --metrics: the agent then keeps a thread of
// its own for the server and runs the clock jobs on it) and adds its address
// to the program's environment. A watcher that cannot start leaves the
// program to run as before, its agent doing those jobs itself.
void addWatcher(const RunOptions& o, Plan& plan) {
  if (!o.agent.metrics.empty()) return;
  diag::WatcherOptions options;
  options.signal = o.agent.signal;
  options.interval = o.agent.interval;
  auto watcher = startWatcher(options);
  if (!watcher.ok()) {
    std::cerr << "leakscope run: " << watcher.error().message
              << "; the program runs without it (its agent does the interval and "
                 "memory-pressure jobs itself)"
              << std::endl;
    return;
  }
  plan.env.push_back(std::string(core::kEnvWatcher) + "=" + core::formatWatcherAddress(*watcher));
}

bool asksForHelp(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (a == "--") return false;  // the program's own --help
    if (a == "-h" || a == "--help") return true;
  }
  return false;
}

// The checked options, or the exit code when there is nothing to run.
std::variant<RunOptions, int> parseRun(const std::vector<std::string>& args) {
  if (asksForHelp(args)) {
    std::cout << kRunHelp;
    return 0;
  }
  RunOptions o;
  CLI::App app("leakscope run", "leakscope run");
  app.set_help_flag();
  addOptions(app, o);
  try {
    std::vector<std::string> reversed(args.rbegin(), args.rend());
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return fail(std::string(e.what()) + "; see leakscope run --help");
  }
  if (std::string bad = settle(o); !bad.empty()) return fail(bad);
  return o;
}

// Replaces this process with the program; returns only when exec failed.
int execWith(const std::string& path, const std::vector<std::string>& command,
             const std::vector<std::string>& env) {
  std::vector<char*> argv;
  std::vector<char*> envp;
  for (const std::string& a : command) argv.push_back(const_cast<char*>(a.c_str()));
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  argv.push_back(nullptr);
  envp.push_back(nullptr);
  execve(path.c_str(), argv.data(), envp.data());
  return fail("exec " + path + ": " + std::strerror(errno));
}

}  // namespace

int runCommand(const std::vector<std::string>& args) {
  auto parsed = parseRun(args);
  if (const int* code = std::get_if<int>(&parsed)) return *code;
  const RunOptions& o = std::get<RunOptions>(parsed);
  auto path = resolveCommand(o.command[0]);
  if (!path.ok()) return fail(path.error().message);
  auto program = inspectProgram(*path);
  if (!program.ok()) return fail(program.error().message);
  auto plan = planFor(o, *program);
  if (!plan.ok()) return fail(plan.error().message);
  if (!plan->allocator_note.empty()) std::cerr << "leakscope run: " << plan->allocator_note << "\n";
  addWatcher(o, *plan);
  std::cerr << announce(o, o.command[0]) << std::endl;
  return execWith(*path, o.command, environmentFor(*plan));
}

}  // namespace leakscope::cli
