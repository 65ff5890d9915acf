#include "leakscope/diag/watcher.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>

#include "leakscope/core/watch_protocol.h"

namespace leakscope::diag {

std::optional<std::uint64_t> parseCaughtSignals(std::string_view status) {
  constexpr std::string_view kKey = "SigCgt:";
  std::size_t at = status.starts_with(kKey) ? 0 : status.find("\nSigCgt:");
  if (at == std::string_view::npos) return std::nullopt;
  at += status[at] == '\n' ? kKey.size() + 1 : kKey.size();
  while (at < status.size() && (status[at] == ' ' || status[at] == '\t')) ++at;
  const std::size_t end = status.find('\n', at);
  const std::string_view hex = status.substr(at, end == std::string_view::npos ? end : end - at);
  std::uint64_t mask = 0;
  const auto [stop, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), mask, 16);
  if (ec != std::errc() || stop != hex.data() + hex.size()) return std::nullopt;
  return mask;
}

namespace {

using Clock = std::chrono::steady_clock;

// Raw system calls: the pidfd ones have no wrapper before glibc 2.36, and a
// pidfd (not the pid) makes sure a signal never reaches a process that
// reused the pid of one that exited.
int pidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0U)); }

int pidfdSendSignal(int pidfd, int signal, siginfo_t* info) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, signal, info, 0U));
}

// /proc/PID/status as text; "" when it cannot be read (the process is gone).
std::string readStatus(pid_t pid) {
  const std::string path = procDir(pid) + "/status";
  const core::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  std::string text;
  if (!fd.valid()) return text;
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
  return text;
}

// The next time a periodic job is due: one period on, or one period from
// now when the loop fell behind (a late watcher sends one request, not a
// burst of the missed ones).
Clock::time_point advance(Clock::time_point due, std::chrono::milliseconds period,
                          Clock::time_point now) {
  due += period;
  return due <= now ? now + period : due;
}

// One watched process. Member order: the pidfd closes last.
struct Watched {
  pid_t pid = 0;
  core::UniqueFd pidfd;
  std::unique_ptr<ProcessPressure> pressure;  // null: memory checks are off
  Clock::time_point next_check = Clock::time_point::max();
  Clock::time_point next_interval = Clock::time_point::max();
  bool failed = false;  // a signal could not be sent: forgotten after this round
};

class Watcher {
 public:
  Watcher(const WatcherOptions& options, core::UniqueFd registration)
      : options_(options), registration_(std::move(registration)) {
    // The watcher's end only: the agents' end keeps its own flags.
    const int flags = ::fcntl(registration_.get(), F_GETFL);
    if (flags >= 0) ::fcntl(registration_.get(), F_SETFL, flags | O_NONBLOCK);
    memory_checks_ =
        !options_.memory_pressure_fractions.empty() && options_.memory_check_interval.count() > 0;
    if (Status s = validateMemoryPressureFractions(options_.memory_pressure_fractions);
        memory_checks_ && !s.ok()) {
      log(s.error().message + "; memory-pressure requests are off");
      memory_checks_ = false;
    }
  }

  int run();

 private:
  bool finished() const { return !registration_.valid() && watched_.empty(); }
  std::vector<pollfd> pollSet() const;
  int pollTimeout(Clock::time_point now) const;
  void forgetExited(const std::vector<pollfd>& fds);
  void readRegistrations();
  void onRecord(std::int32_t record);
  void watch(pid_t pid);
  void forget(pid_t pid);
  void runDueJobs(Clock::time_point now);
  void checkMemory(Watched& w, Clock::time_point now);
  void send(Watched& w, core::WatchRequest request);
  void log(const std::string& line) const;

  const WatcherOptions& options_;
  bool memory_checks_ = false;
  core::UniqueFd registration_;  // invalid once every write end closed
  std::string partial_;          // bytes of a record not complete yet
  std::vector<Watched> watched_;
};

int Watcher::run() {
  while (!finished()) {
    std::vector<pollfd> fds = pollSet();
    const int n = ::poll(fds.data(), fds.size(), pollTimeout(Clock::now()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      log(std::string("poll: ") + std::strerror(errno));
      return 1;
    }
    // Exits first: a pid reused after an exit may register in this round.
    forgetExited(fds);
    if (registration_.valid() && fds.front().revents != 0) readRegistrations();
    runDueJobs(Clock::now());
  }
  return 0;
}

// The registration socket (while open) first, then one pidfd per watched
// process, in watched_'s order.
std::vector<pollfd> Watcher::pollSet() const {
  std::vector<pollfd> fds;
  if (registration_.valid()) fds.push_back(pollfd{registration_.get(), POLLIN, 0});
  for (const Watched& w : watched_) fds.push_back(pollfd{w.pidfd.get(), POLLIN, 0});
  return fds;
}

int Watcher::pollTimeout(Clock::time_point now) const {
  Clock::time_point next = Clock::time_point::max();
  for (const Watched& w : watched_) next = std::min({next, w.next_check, w.next_interval});
  if (next == Clock::time_point::max()) return -1;  // nothing on the clock
  if (next <= now) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(next - now).count();
  return static_cast<int>(std::min<std::int64_t>(ms, INT_MAX));
}

void Watcher::forgetExited(const std::vector<pollfd>& fds) {
  const std::size_t first = registration_.valid() ? 1 : 0;
  std::vector<pid_t> exited;
  for (std::size_t i = 0; i < watched_.size(); ++i) {
    if (fds[first + i].revents != 0) exited.push_back(watched_[i].pid);
  }
  for (pid_t pid : exited) forget(pid);
}

void Watcher::readRegistrations() {
  char buf[512];
  const ssize_t n = ::read(registration_.get(), buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n < 0) log(std::string("registration socket: ") + std::strerror(errno));
  if (n <= 0) {
    // Every agent's end is closed and the socket is drained (read returns 0
    // only when it is empty).
    if (!partial_.empty()) log("registration socket closed inside a record: ignored");
    registration_.reset();
    return;
  }
  partial_.append(buf, static_cast<std::size_t>(n));
  std::size_t at = 0;
  for (; partial_.size() - at >= sizeof(std::int32_t); at += sizeof(std::int32_t)) {
    std::int32_t record = 0;
    std::memcpy(&record, partial_.data() + at, sizeof record);
    onRecord(record);
  }
  partial_.erase(0, at);
}

void Watcher::onRecord(std::int32_t record) {
  // 0 and INT32_MIN name no process (and -INT32_MIN overflows).
  if (record > 0) {
    watch(record);
  } else if (record < 0 && record != INT32_MIN) {
    forget(-record);
  }
}

void Watcher::watch(pid_t pid) {
  // Again from a process already watched: an exec with --follow-exec, whose
  // new agent registers the same process.
  if (std::any_of(watched_.begin(), watched_.end(),
                  [&](const Watched& w) { return w.pid == pid; })) {
    return;
  }
  Watched w;
  w.pid = pid;
  w.pidfd = core::UniqueFd(pidfdOpen(pid));
  if (!w.pidfd.valid()) {
    log("pid " + std::to_string(pid) + ": pidfd_open: " + std::strerror(errno) + "; not watched");
    return;
  }
  const Clock::time_point now = Clock::now();
  if (memory_checks_) {
    auto pressure = ProcessPressure::open(pid, options_.memory_pressure_fractions);
    if (!pressure.ok()) {
      log("pid " + std::to_string(pid) + ": " + pressure.error().message + "; not watched");
      return;
    }
    if (options_.memory_limit_bytes != 0) pressure->fixLimit(options_.memory_limit_bytes);
    w.pressure = std::make_unique<ProcessPressure>(std::move(*pressure));
    w.next_check = now + options_.memory_check_interval;
  }
  if (options_.interval.count() > 0) w.next_interval = now + options_.interval;
  watched_.push_back(std::move(w));
}

void Watcher::forget(pid_t pid) {
  std::erase_if(watched_, [&](const Watched& w) { return w.pid == pid; });
}

void Watcher::runDueJobs(Clock::time_point now) {
  for (Watched& w : watched_) {
    if (now >= w.next_check) checkMemory(w, now);
    if (now >= w.next_interval) {
      w.next_interval = advance(w.next_interval, options_.interval, now);
      send(w, core::WatchRequest{core::WatchKind::kInterval, 0});
    }
  }
  std::erase_if(watched_, [](const Watched& w) { return w.failed; });
}

void Watcher::checkMemory(Watched& w, Clock::time_point now) {
  w.next_check = advance(w.next_check, options_.memory_check_interval, now);
  auto crossed = w.pressure->check(now);
  // statm unreadable: the process is exiting, and its pidfd says so next.
  if (!crossed.ok() || !*crossed) return;
  const int permille = static_cast<int>(std::lround((*crossed)->fraction * 1000));
  send(w, core::WatchRequest{core::WatchKind::kMemoryPressure, permille});
}

void Watcher::send(Watched& w, core::WatchRequest request) {
  if (options_.signal < 1 || options_.signal > 64) return;  // no bit of SigCgt
  const auto caught = parseCaughtSignals(readStatus(w.pid));
  if (!caught || (*caught & (std::uint64_t{1} << (options_.signal - 1))) == 0) return;
  siginfo_t info;
  std::memset(&info, 0, sizeof info);
  info.si_signo = options_.signal;
  info.si_code = SI_QUEUE;
  info.si_pid = ::getpid();
  info.si_uid = ::getuid();
  info.si_value.sival_int = core::encodeWatchRequest(request);
  if (pidfdSendSignal(w.pidfd.get(), options_.signal, &info) == 0 || errno == ESRCH) return;
  log("pid " + std::to_string(w.pid) + ": pidfd_send_signal: " + std::strerror(errno) +
      "; no longer watched");
  w.failed = true;
}

void Watcher::log(const std::string& line) const {
  if (options_.log) {
    options_.log(line);
    return;
  }
  // One write per line: lines of the watcher and of the program beside it
  // on one stderr do not interleave mid-line.
  const std::string text = "leakscope watcher: " + line + "\n";
  [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, text.data(), text.size());
}

}  // namespace

int runWatcher(const WatcherOptions& options, core::UniqueFd registration_read_end) {
  Watcher watcher(options, std::move(registration_read_end));
  return watcher.run();
}

}  // namespace leakscope::diag
