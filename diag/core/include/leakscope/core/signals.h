// Threads that never run a signal handler. leakscope's own threads (the
// runtime's snapshot thread and /metrics loop, the daemon's scheduler, writer
// and event loops) run with every signal blocked, so a signal goes to a thread
// that expects it and reaches ours only as a byte on a pipe (the style guide's
// rule: a handler only notifies). A new thread inherits the mask of the thread
// that creates it: block everything around the creation, or first thing in
// the thread.
// A mask belongs to one thread; a SignalsBlocked is used only by the thread
// that made it.
#pragma once

#include <pthread.h>
#include <signal.h>

namespace leakscope::core {

// Every signal blocked in the calling thread while it lives; the mask it
// found is put back when it goes.
class [[nodiscard]] SignalsBlocked {
 public:
  SignalsBlocked() {
    sigset_t all;
    sigfillset(&all);
    // Fails only for an invalid `how`: SIG_SETMASK is valid.
    pthread_sigmask(SIG_SETMASK, &all, &old_);
  }
  ~SignalsBlocked() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  SignalsBlocked(const SignalsBlocked&) = delete;
  SignalsBlocked& operator=(const SignalsBlocked&) = delete;

 private:
  sigset_t old_{};
};

// Usage: `{ const SignalsBlocked blocked = blockAllSignals(); start the thread }`.
inline SignalsBlocked blockAllSignals() { return {}; }

}  // namespace leakscope::core
