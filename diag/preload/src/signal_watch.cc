// The program's own handler for the snapshot signal: sigaction() and
// signal() are interposed (the agent is first in the lookup order, being
// preloaded) and forwarded to the next definition (libc's) unchanged. When
// the program sets a disposition for the snapshot signal, the agent says so
// once on stderr and lets the call through: the program's handler wins and
// snapshots on that signal are off in this process. Other signals, queries
// (no new action) and the agent's own calls pass without a look.
// sigaction() is async-signal-safe and may be called from a handler: this
// path only loads atomics, formats into a stack buffer and write(2)s.
#include <dlfcn.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "agent.h"
#include "leakscope/core/agent_env.h"

namespace leakscope::preload {
namespace {

thread_local int t_own_calls = 0;

using SigactionFn = int (*)(int, const struct sigaction*, struct sigaction*);
using SignalFn = sighandler_t (*)(int, sighandler_t);

template <class Fn>
Fn next(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

void noteProgramDisposition(int sig) {
  Agent* a = agent();
  if (a == nullptr || OwnSignalCalls::active() || sig != a->config.snapshot_signal ||
      !a->config.snapshot_on_sigusr2) {
    return;
  }
  if (a->signal_taken.exchange(true)) return;             // said once
  a->watcher.send(-static_cast<std::int32_t>(getpid()));  // no more signals from it
  const std::string name = core::signalName(sig);
  char line[512];
  const int n =
      std::snprintf(line, sizeof line,
                    "leakscope: %s (pid %d) installs its own %s handler: leaving its "
                    "handler alone, no snapshots on %s; pick another --signal\n",
                    a->program.c_str(), static_cast<int>(getpid()), name.c_str(), name.c_str());
  if (n > 0) {
    [[maybe_unused]] const ssize_t w = ::write(
        STDERR_FILENO, line, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof line - 1));
  }
}

}  // namespace

OwnSignalCalls::OwnSignalCalls() { ++t_own_calls; }
OwnSignalCalls::~OwnSignalCalls() { --t_own_calls; }
bool OwnSignalCalls::active() { return t_own_calls > 0; }

}  // namespace leakscope::preload

// The interposers: C linkage, exported by the version script (exports.map).
extern "C" int sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
  static const auto real = leakscope::preload::next<leakscope::preload::SigactionFn>("sigaction");
  if (act != nullptr) leakscope::preload::noteProgramDisposition(sig);
  return real(sig, act, old);
}

extern "C" sighandler_t signal(int sig, sighandler_t handler) {
  static const auto real = leakscope::preload::next<leakscope::preload::SignalFn>("signal");
  leakscope::preload::noteProgramDisposition(sig);
  return real(sig, handler);
}
