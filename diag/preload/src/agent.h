// The preload agent's state, shared by its start-up (agent.cc) and its
// watch on the program's signal calls (signal_watch.cc). One per process;
// built by the ELF constructor before main, rebuilt in a fork()ed child.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "leakscope/diag/runtime.h"

namespace leakscope::preload {

// Our end of `leakscope run`'s watcher socket (core/watch_protocol.h),
// and what it was when the agent started: a program may close the fd and
// reuse its number, and then nothing of ours may go into it.
struct WatcherLink {
  int fd = -1;
  dev_t dev = 0;
  ino_t ino = 0;
  // Async-signal-safe: one int32 record, only while the fd is still the socket.
  void send(std::int32_t record) const;
};

struct Agent {
  std::string program;  // the executable's file name: snapshots are PROGRAM.PID
  diag::Config config;  // as read from LEAKSCOPE_*; the name is set per process
  std::unique_ptr<diag::Runtime> runtime;
  WatcherLink watcher;  // fd -1: no watcher (the Runtime then runs its own jobs)
  // The program installed its own disposition for the snapshot signal: it
  // keeps it, here and in its children (no snapshots on that signal).
  std::atomic<bool> signal_taken{false};
};

// Null until the constructor has read the settings, and when they were bad.
// Never freed: it is what the exit-time teardown and fork handlers read.
Agent* agent();

// Calls of the agent's own (the Runtime installing or restoring its handler)
// pass the signal watch unnoticed while one of these lives on the thread.
class OwnSignalCalls {
 public:
  OwnSignalCalls();
  ~OwnSignalCalls();
  OwnSignalCalls(const OwnSignalCalls&) = delete;
  OwnSignalCalls& operator=(const OwnSignalCalls&) = delete;
  static bool active();
};

}  // namespace leakscope::preload
