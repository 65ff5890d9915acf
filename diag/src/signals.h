// Starting threads that never run a signal handler. The runtime's threads
// (the snapshot thread, the /metrics loop) start with every signal blocked,
// so each signal goes to one of the application's own threads and reaches
// ours only as a byte on a pipe (STYLE.md rule 9). A new thread inherits the
// mask of the thread that creates it: block everything around the creation.
// A mask belongs to one thread; a SignalsBlocked is used only by the thread
// that made it.
#pragma once

#include <pthread.h>
#include <signal.h>

namespace leakscope::diag {

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

}  // namespace leakscope::diag
