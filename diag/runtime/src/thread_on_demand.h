// Starting the snapshot thread when the first snapshot is asked for, from
// the snapshot signal's handler (Config::snapshot_thread_on_demand: the
// preload agent). Until then the process has no thread of ours: a second
// thread makes glibc wrap every cancellable syscall in async-cancel toggles
// and the kernel refcount every fd lookup, which cost nginx about 1 % of its
// requests per CPU-second (docs/benchmarks.md, preload).
//
// pthread_create is not async-signal-safe: it allocates (the TLS vector, with
// the program's malloc) and takes the dynamic loader's TLS lock and glibc's
// stack-cache lock. It is safe in a handler exactly when the interrupted code
// holds none of those and is not inside the allocator. SafePoints decides that
// from the interrupted context (x86-64):
//   - the instruction pointer is outside the C library, the dynamic loader,
//     the allocator (whichever file defines malloc, tcmalloc, libunwind and
//     libgcc_s, which it calls while sampling) and this library: program code
//     or another library, which never runs while those locks are held (no
//     allocator or loader calls back into it with a lock held; an ELF
//     constructor runs under the loader's load lock, which pthread_create
//     does not take); or
//   - it is in the C library, parked in a blocking system call that the
//     signal interrupted (the syscall returned EINTR, or the kernel rewound it
//     to restart: futex, read, accept, recv, wait...): the idle state of an
//     event loop, a sleeping thread, a join. Not inside libc's generic
//     syscall(), through which an allocator may wait on its own lock.
// Anywhere else (inside malloc, mid-syscall from the allocator's mmap) the
// handler does not start the thread; a one-shot timer raises the signal
// again shortly (backing off from 1 ms to 250 ms) and the request waits in
// the pipe. A busy nginx worker spends about a third of its time in its own
// code and OpenSSL, so the thread starts within a few tries.
//
// Known limit: a handler of the program's own that interrupted malloc and
// was in turn interrupted by ours looks like program code. Other
// architectures are not supported: the Runtime starts the thread at once.
#pragma once

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace leakscope::diag {

class SafePoints {
 public:
  // In a normal context (the Runtime's constructor): the loaded objects'
  // code ranges, classified. Objects loaded later count as program code.
  static SafePoints load();
  // Whether this platform has a rule at all (x86-64 Linux).
  bool supported() const { return supported_; }
  // Async-signal-safe: the handler's third argument.
  bool safe(const void* ucontext) const;

 private:
  struct Range {
    std::uintptr_t begin = 0;
    std::uintptr_t end = 0;
    bool libc = false;
  };
  static constexpr std::size_t kMaxRanges = 64;

  void add(std::uintptr_t begin, std::uintptr_t end, bool libc);
  const Range* find(std::uintptr_t ip) const;
  bool parkedInSyscall(const Range& libc, std::uintptr_t ip, long long ax) const;

  std::array<Range, kMaxRanges> ranges_{};
  std::size_t count_ = 0;
  std::uintptr_t syscall_fn_begin_ = 0;  // libc's syscall(): excluded
  std::uintptr_t syscall_fn_end_ = 0;
  bool supported_ = false;
  bool full_ = false;  // more unsafe ranges than fit: nothing is safe
};

// The start itself: once, from whichever handler finds a safe point first.
class ThreadOnDemand {
 public:
  using Body = void* (*)(void*);
  // Normal context. `signal` is raised again by the retry timer with
  // kRetryValue (si_code SI_TIMER).
  ThreadOnDemand(int signal, Body body, void* arg);
  ~ThreadOnDemand();
  ThreadOnDemand(const ThreadOnDemand&) = delete;
  ThreadOnDemand& operator=(const ThreadOnDemand&) = delete;

  static constexpr int kRetryValue = 0x7e;  // no watcher request looks like it

  // False when this process cannot start on demand (no rule for the
  // platform, no timer): the caller starts the thread at once instead.
  bool usable() const { return points_.supported() && have_timer_; }
  // Async-signal-safe. Starts the thread if the interrupted context allows,
  // else arms the retry.
  void request(const void* ucontext);
  bool started() const { return started_.load(); }
  // Normal context, once started: the thread to join.
  pthread_t thread() const { return thread_; }

 private:
  void armRetry();

  SafePoints points_;
  Body body_;
  void* arg_;
  timer_t timer_{};
  bool have_timer_ = false;
  std::atomic<bool> starting_{false};
  std::atomic<bool> started_{false};
  std::atomic<int> retries_{0};
  pthread_t thread_{};
};

}  // namespace leakscope::diag
