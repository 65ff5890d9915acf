#include "watcher_start.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "leakscope/core/unique_fd.h"

namespace leakscope::cli {
namespace {

core::Error failed(const char* call) {
  return core::Error{core::Errc::kIo, std::string("cannot start the watcher: ") + call + ": " +
                                          std::strerror(errno)};
}

// Ends both above stdin/stdout/stderr: with one of those closed when `run`
// starts, the kernel would hand out its number, and the program's stdout
// would then be the watcher's registration socket.
core::Result<std::pair<core::UniqueFd, core::UniqueFd>> aboveStdio(int fds[2]) {
  core::UniqueFd ends[2] = {core::UniqueFd(fds[0]), core::UniqueFd(fds[1])};
  for (core::UniqueFd& end : ends) {
    if (end.get() > STDERR_FILENO) continue;
    core::UniqueFd moved(::fcntl(end.get(), F_DUPFD_CLOEXEC, STDERR_FILENO + 1));
    if (!moved.valid()) return failed("fcntl");
    end = std::move(moved);
  }
  return std::pair(std::move(ends[0]), std::move(ends[1]));
}

core::Result<std::pair<core::UniqueFd, core::UniqueFd>> pipeAboveStdio() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return failed("pipe2");
  return aboveStdio(fds);
}

// The registration channel is a socket, not a pipe: the agents send with
// MSG_NOSIGNAL, so a watcher that is gone never SIGPIPEs the program.
// SEQPACKET keeps each record whole and reads 0 once every agent's copy of
// the other end is closed.
core::Result<std::pair<core::UniqueFd, core::UniqueFd>> socketPairAboveStdio() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    return failed("socketpair");
  }
  return aboveStdio(fds);
}

// Default dispositions and an empty mask, as a fresh daemon would have:
// `run`'s own are whatever its shell gave it.
void resetSignals() {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int s = 1; s < NSIG; ++s) ::sigaction(s, &dfl, nullptr);  // KILL, STOP refuse: fine
  // Ignored on purpose: stderr may be a pipe whose reader went away, and a
  // write to it must not end the watcher.
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

// The watcher's process, before its loop: out of the program's session and
// terminal, holding only stdio and the registration pipe's read end (`keep`,
// above stderr), so it never keeps another fd of `run`'s — above all the
// pipe's write end, whose closing it waits for.
void detach(int keep) {
  ::setsid();
  // Not the directory `run` started in: a watcher must not keep a mount busy.
  [[maybe_unused]] const int cd = ::chdir("/");
  const int null = ::open("/dev/null", O_RDWR);
  if (null >= 0) {
    ::dup2(null, STDIN_FILENO);
    ::dup2(null, STDOUT_FILENO);
    if (null > STDERR_FILENO) ::close(null);
  }
  if (keep > STDERR_FILENO + 1)
    ::close_range(STDERR_FILENO + 1, static_cast<unsigned>(keep) - 1, 0);
  ::close_range(static_cast<unsigned>(keep) + 1, ~0U, 0);
  resetSignals();
  ::prctl(PR_SET_NAME, "leakscope-watch", 0, 0, 0);
}

// What the middle process tells `run`: the watcher's pid, or fork's errno.
struct Started {
  pid_t pid = -1;
  int error = 0;
};

// The middle process: forks the watcher and exits at once, so the watcher
// is reparented to init (or the nearest subreaper) and never becomes a child
// of the program `run` turns into.
[[noreturn]] void forkWatcher(const diag::WatcherOptions& options, core::UniqueFd read_end,
                              int report) {
  const pid_t watcher = ::fork();
  if (watcher == 0) {
    detach(read_end.get());
    ::_exit(diag::runWatcher(options, std::move(read_end)));
  }
  const Started started{watcher, watcher < 0 ? errno : 0};
  [[maybe_unused]] const ssize_t n = ::write(report, &started, sizeof started);
  ::_exit(0);
}

// Waits for the middle process and reads what it reported.
core::Result<pid_t> awaitStarted(pid_t middle, const core::UniqueFd& report) {
  int status = 0;
  while (::waitpid(middle, &status, 0) < 0) {
    if (errno != EINTR) return failed("waitpid");
  }
  Started started;
  ssize_t n = 0;
  do {
    n = ::read(report.get(), &started, sizeof started);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof started)) {
    return core::Error{core::Errc::kIo, "cannot start the watcher: its parent process failed"};
  }
  if (started.pid < 0) {
    errno = started.error;
    return failed("fork");
  }
  return started.pid;
}

}  // namespace

core::Result<core::WatcherAddress> startWatcher(const diag::WatcherOptions& options) {
  auto registration = socketPairAboveStdio();
  if (!registration.ok()) return registration.error();
  auto report = pipeAboveStdio();
  if (!report.ok()) return report.error();
  auto& [read_end, write_end] = *registration;
  const pid_t middle = ::fork();
  if (middle < 0) return failed("fork");
  if (middle == 0) forkWatcher(options, std::move(read_end), report->second.get());
  report->second.reset();  // EOF for awaitStarted if the middle dies first
  auto watcher = awaitStarted(middle, report->first);
  if (!watcher.ok()) return watcher.error();
  // The program inherits the write end; the read end closes here (UniqueFd).
  if (::fcntl(write_end.get(), F_SETFD, 0) != 0) return failed("fcntl");
  return core::WatcherAddress{*watcher, write_end.release()};
}

}  // namespace leakscope::cli
