// libleakscope-preload.so: what `leakscope run` preloads into a program that
// was never built with leakscope. An ELF constructor reads the LEAKSCOPE_*
// variables (core/agent_env.h) into a diag::Config and starts a
// diag::Runtime before the program's main; a fork()ed child gets a Runtime
// of its own; the exit-time destructor stops it. docs/run-and-capture.md
// has the rules (fork, exec, signal, allocator).
//
// Two builds of this file: with tcmalloc (LEAKSCOPE_WITH_TCMALLOC, preloaded
// after libtcmalloc.so.4 or into a program that links it) and without, for a
// program on another allocator — a second allocator in one process is never
// an option, so that agent writes snapshots without a heap profile.
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "agent.h"
#include "leakscope/core/agent_env.h"
#include "leakscope/core/watch_protocol.h"
#include "leakscope/diag/heap_profile.h"
#include "leakscope/diag/snapshot_writer.h"

namespace leakscope::preload {
namespace {

Agent* g_agent = nullptr;

std::string baseName(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The file that defines `symbol` for the whole process (the first in the
// lookup order), e.g. the library whose malloc everyone calls.
std::string definingFile(const char* symbol) {
  Dl_info info{};
  void* addr = dlsym(RTLD_DEFAULT, symbol);
  if (addr == nullptr || dladdr(addr, &info) == 0 || info.dli_fname == nullptr) return "?";
  return *info.dli_fname != '\0' ? info.dli_fname : "the executable";
}

// Why this process has no heap profile, or "" when it has one: malloc must
// be tcmalloc's, and the tcmalloc this agent was built against.
std::string heapUnavailableReason() {
  const std::string malloc_file = definingFile("malloc");
#ifdef LEAKSCOPE_WITH_TCMALLOC
  if (baseName(malloc_file).starts_with("libtcmalloc.")) return "";
  return "malloc in this process is " + malloc_file +
         "'s, not tcmalloc's: libtcmalloc.so.4 must come before the agent in LD_PRELOAD "
         "(leakscope run puts it there)";
#else
  return "the program allocates with " + malloc_file +
         ", not tcmalloc: leakscope run profiles tcmalloc heaps only (no second allocator is "
         "loaded); sockets, process and allocator figures are still written";
#endif
}

// Removes the agent (and the tcmalloc `leakscope run` put before it) from
// LD_PRELOAD, so programs this one execs run without them.
void dropFromPreload() {
  const char* preload = std::getenv("LD_PRELOAD");
  if (preload == nullptr) return;
  Dl_info self{};
  dladdr(reinterpret_cast<void*>(&dropFromPreload), &self);
  const std::string own = self.dli_fname != nullptr ? baseName(self.dli_fname) : "";
  std::string kept;
  std::string entry;
  // ld.so separates entries by spaces or colons.
  std::string text(preload);
  for (char& c : text) c = c == ' ' ? ':' : c;
  std::istringstream entries(text);
  while (std::getline(entries, entry, ':')) {
    const std::string base = baseName(entry);
    if (entry.empty() || base == own) continue;
#ifdef LEAKSCOPE_WITH_TCMALLOC
    if (base == LEAKSCOPE_TCMALLOC_SONAME) continue;
#endif
    kept += (kept.empty() ? "" : ":") + entry;
  }
  if (kept.empty()) {
    unsetenv("LD_PRELOAD");
  } else {
    setenv("LD_PRELOAD", kept.c_str(), 1);
  }
}

void log(const std::string& line) {
  std::fprintf(stderr, "leakscope: %s (pid %d): %s\n", g_agent->program.c_str(),
               static_cast<int>(getpid()), line.c_str());
}

// The settings as a Config for this program; the name is set per process.
diag::Result<diag::Config> configFrom(const core::AgentSettings& s) {
  if (s.snapshot_dir.empty()) {
    return diag::Error{diag::Errc::kInvalidArgument,
                       std::string(core::kEnvSnapshotDir) + " is not set"};
  }
  auto mode = diag::parseHeapMode(s.heap);
  if (!mode.ok()) {
    return diag::Error{mode.error().code,
                       std::string(core::kEnvHeap) + ": " + mode.error().message};
  }
  diag::Config c;
  c.snapshot_dir = s.snapshot_dir;
  c.snapshot_signal = s.signal;
  c.snapshot_interval = s.interval;
  c.snapshot_keep = s.keep;
  c.snapshot_max_bytes = s.max_bytes;
  c.metrics_address = s.metrics;  // "" unless asked: nothing listens by default
  c.heap_mode = *mode;
  // The Runtime starts its thread at the first request unless something
  // needs it sooner (interval or memory-pressure jobs of its own, /metrics).
  c.snapshot_thread_on_demand = true;
  if (c.heap_mode != diag::HeapMode::kOff) c.heap_unavailable_reason = heapUnavailableReason();
  c.log = [](std::string_view line) { log(std::string(line)); };
  return c;
}

// `leakscope run`'s watcher (core/watch_protocol.h), when there is one: it
// runs the jobs on a clock (interval, memory pressure), so the Runtime has
// none and can start its thread on demand. /metrics needs the thread anyway:
// then the Runtime runs them itself and the watcher is not told of us.
void linkWatcher(const core::AgentSettings& s) {
  const char* text = std::getenv(core::kEnvWatcher);
  if (text == nullptr || *text == '\0') return;
  auto address = core::parseWatcherAddress(text);
  struct stat st {};
  if (!address.ok() || fstat(address->fd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
    log((address.ok() ? std::string(core::kEnvWatcher) + ": fd " + std::to_string(address->fd) +
                            " is not the watcher's socket"
                      : address.error().message) +
        "; interval and memory-pressure snapshots come from this process");
    return;
  }
  if (!s.follow_exec) fcntl(address->fd, F_SETFD, FD_CLOEXEC);
  if (!s.metrics.empty()) return;
  g_agent->watcher = WatcherLink{address->fd, st.st_dev, st.st_ino};
  g_agent->config.watcher_pid = address->pid;
  g_agent->config.snapshot_interval = std::chrono::milliseconds(0);
  g_agent->config.memory_pressure_fractions.clear();
}

// A Runtime for this process, named by its pid so that the processes of one
// program (a pre-forking server) never write into each other's series.
void startRuntime() {
  g_agent->config.snapshot_name = g_agent->program + "." + std::to_string(getpid());
  const OwnSignalCalls own;
  try {
    g_agent->runtime = std::make_unique<diag::Runtime>(g_agent->config);
  } catch (const std::exception& e) {
    log(std::string("not started: ") + e.what());
    return;
  }
  if (!g_agent->signal_taken.load()) g_agent->watcher.send(static_cast<std::int32_t>(getpid()));
}

// The child of a fork() has one thread, the one that forked: the parent's
// Runtime (whose thread is not here) is abandoned, never destroyed, and a new
// one starts. /metrics stays with the first process: its port is taken.
void afterForkInChild() {
  if (g_agent == nullptr) return;
  diag::Runtime::abandonAfterFork(std::move(g_agent->runtime));
  g_agent->config.metrics_address.clear();
  // The program's own handler came along: it keeps it here too.
  if (g_agent->signal_taken.load()) g_agent->config.snapshot_on_sigusr2 = false;
  startRuntime();
}

__attribute__((constructor)) void agentStart() {
  auto settings = core::readAgentSettings([](const char* n) { return std::getenv(n); });
  if (settings.ok() && !settings->follow_exec) dropFromPreload();
  g_agent = new Agent;  // never freed: see agent.h
  g_agent->program = diag::defaultSnapshotName();
  // One line, naming the variable; the program runs as if we were not here.
  auto config = settings.ok() ? configFrom(*settings) : settings.error();
  if (!config.ok()) {
    log(config.error().message + "; the agent stays off");
    return;
  }
  g_agent->config = std::move(*config);
  linkWatcher(*settings);
  // This thread (the program's main) allocated before tcmalloc read the
  // sampling period; see primeHeapSampler.
  if (g_agent->config.heap_unavailable_reason.empty()) diag::primeHeapSampler();
  startRuntime();
  if (pthread_atfork(nullptr, nullptr, afterForkInChild) != 0) {
    log("pthread_atfork failed: forked children get no agent");
  }
}

// After the program's own exit-time destructors: stops the snapshot thread
// (a snapshot in progress ends) before the libraries it uses go away.
__attribute__((destructor)) void agentStop() {
  if (g_agent == nullptr) return;
  const OwnSignalCalls own;
  g_agent->runtime.reset();
}

}  // namespace

void WatcherLink::send(std::int32_t record) const {
  if (fd < 0) return;
  struct stat st {};
  if (fstat(fd, &st) != 0 || st.st_dev != dev || st.st_ino != ino) return;
  // A socket, not a pipe: MSG_NOSIGNAL, so a watcher that is gone can never
  // SIGPIPE the program.
  [[maybe_unused]] const ssize_t n =
      ::send(fd, &record, sizeof record, MSG_NOSIGNAL | MSG_DONTWAIT);
}

Agent* agent() {
  // Only a fully set-up agent is visible to the signal watch.
  return g_agent != nullptr && g_agent->runtime != nullptr ? g_agent : nullptr;
}

}  // namespace leakscope::preload
