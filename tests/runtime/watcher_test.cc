// `leakscope run`'s watcher (leakscope/diag/watcher.h) run in a forked
// process against forked targets: one that catches SIGUSR2 with SA_SIGINFO
// and reports each signal's (si_code, si_pid, sival_int) into a pipe, one
// that does not catch it. The test holds the registration pipe's only write
// end, as a program's agents do.
#include "leakscope/diag/watcher.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <string>
#include <thread>

#include "leakscope/core/watch_protocol.h"
#include "test_support.h"

namespace leakscope::diag {
namespace {

using namespace std::chrono_literals;
using core::UniqueFd;
using core::WatchKind;

struct Pipe {
  UniqueFd r, w;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) == 0) {
      r = UniqueFd(fds[0]);
      w = UniqueFd(fds[1]);
    }
  }
};

// In a forked child: every fd above stderr closed but `keep`, so that only
// the test holds the registration pipe's write end.
void closeAllBut(std::initializer_list<int> keep) {
  for (int fd = 3; fd < 1024; ++fd) {
    if (std::find(keep.begin(), keep.end(), fd) == keep.end()) ::close(fd);
  }
}

// Kills and reaps `pid` unless it already was.
void killAndReap(pid_t& pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  pid = -1;
}

// What a target's handler saw.
struct Delivery {
  int code = 0;
  pid_t sender = 0;
  int value = 0;
};

int g_report = -1;  // the target's end of its report pipe

extern "C" void onSnapshotSignal(int, siginfo_t* info, void*) {
  const Delivery d{info->si_code, info->si_pid, info->si_value.sival_int};
  [[maybe_unused]] const ssize_t n = ::write(g_report, &d, sizeof d);
}

// A forked process that waits; with `catches`, it reports every SIGUSR2 it
// catches. touch() makes it write to `bytes` of fresh memory (RSS grows).
class Target {
 public:
  explicit Target(bool catches) {
    pid_ = ::fork();
    if (pid_ == 0) serve(catches);
    report_.w.reset();
    control_.r.reset();
    // Ready (handler in place) once the first report arrives.
    ready_ = next(5000).has_value();
  }
  ~Target() { killAndReap(pid_); }

  pid_t pid() const { return pid_; }
  bool ready() const { return ready_; }
  bool alive() { return pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0; }
  void kill() { killAndReap(pid_); }
  void touch(std::size_t bytes) {
    [[maybe_unused]] const ssize_t n = ::write(control_.w.get(), &bytes, sizeof bytes);
  }
  // The next delivery within `timeout_ms`, or nullopt.
  std::optional<Delivery> next(int timeout_ms) {
    pollfd p{report_.r.get(), POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return std::nullopt;
    Delivery d;
    if (::read(report_.r.get(), &d, sizeof d) != static_cast<ssize_t>(sizeof d)) {
      return std::nullopt;
    }
    return d;
  }

 private:
  [[noreturn]] void serve(bool catches) {
    closeAllBut({report_.w.get(), control_.r.get()});
    g_report = report_.w.get();
    struct sigaction sa {};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sa.sa_sigaction = onSnapshotSignal;
    if (!catches) sa.sa_handler = SIG_DFL;
    ::sigaction(SIGUSR2, &sa, nullptr);
    const Delivery ready{};
    [[maybe_unused]] ssize_t n = ::write(g_report, &ready, sizeof ready);
    std::size_t bytes = 0;
    while (::read(control_.r.get(), &bytes, sizeof bytes) == static_cast<ssize_t>(sizeof bytes)) {
      auto* p = static_cast<char*>(std::malloc(bytes));
      std::memset(p, 'x', bytes);  // kept: RSS stays up
    }
    ::_exit(0);
  }

  pid_t pid_ = -1;
  bool ready_ = false;
  Pipe report_;   // target -> test
  Pipe control_;  // test -> target
};

// runWatcher in a forked process; its log lines go to a pipe the test reads.
class WatcherProcess {
 public:
  WatcherProcess(WatcherOptions options, UniqueFd registration_read_end) {
    pid_ = ::fork();
    if (pid_ == 0) {
      closeAllBut({registration_read_end.get(), log_.w.get()});
      const int log_fd = log_.w.get();
      options.log = [log_fd](std::string_view line) {
        const std::string text = std::string(line) + "\n";
        [[maybe_unused]] const ssize_t n = ::write(log_fd, text.data(), text.size());
      };
      ::_exit(runWatcher(options, std::move(registration_read_end)));
    }
    log_.w.reset();
    ::fcntl(log_.r.get(), F_SETFL, O_NONBLOCK);
  }
  ~WatcherProcess() { killAndReap(pid_); }

  pid_t pid() const { return pid_; }
  // Its exit status within `timeout_ms`; -1 if it is still running.
  int exitStatus(int timeout_ms) {
    int status = -1;
    const bool exited =
        testing::eventually([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, timeout_ms);
    if (!exited) return -1;
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  // Everything it logged so far.
  std::string log() {
    char buf[4096];
    ssize_t n = 0;
    while ((n = ::read(log_.r.get(), buf, sizeof buf)) > 0)
      logged_.append(buf, static_cast<std::size_t>(n));
    return logged_;
  }

 private:
  pid_t pid_ = -1;
  Pipe log_;
  std::string logged_;
};

void registerRecord(const UniqueFd& w, std::int32_t record) {
  ASSERT_EQ(::write(w.get(), &record, sizeof record), static_cast<ssize_t>(sizeof record));
}

WatcherOptions intervalOnly(std::chrono::milliseconds interval) {
  WatcherOptions o;
  o.interval = interval;
  o.memory_pressure_fractions.clear();
  return o;
}

// An interval request as the agent must see it: sigqueue'd by the watcher.
void expectIntervalFrom(const std::optional<Delivery>& d, pid_t watcher) {
  ASSERT_TRUE(d.has_value()) << "no interval request";
  EXPECT_EQ(d->code, SI_QUEUE);
  EXPECT_EQ(d->sender, watcher);
  const auto request = core::decodeWatchRequest(d->value);
  ASSERT_TRUE(request.has_value()) << d->value;
  EXPECT_EQ(request->kind, WatchKind::kInterval);
}

TEST(Watcher, SendsIntervalRequestsFromItsPidBySigqueue) {
  Pipe reg;
  WatcherProcess watcher(intervalOnly(200ms), std::move(reg.r));
  Target target(true);
  ASSERT_TRUE(target.ready());
  registerRecord(reg.w, target.pid());
  expectIntervalFrom(target.next(3000), watcher.pid());
  expectIntervalFrom(target.next(3000), watcher.pid());
  EXPECT_EQ(watcher.log(), "");
}

TEST(Watcher, MinusPidStopsTheRequests) {
  Pipe reg;
  WatcherProcess watcher(intervalOnly(100ms), std::move(reg.r));
  Target target(true);
  ASSERT_TRUE(target.ready());
  registerRecord(reg.w, target.pid());
  expectIntervalFrom(target.next(3000), watcher.pid());
  registerRecord(reg.w, -target.pid());
  std::this_thread::sleep_for(150ms);  // one request may have been on its way
  while (target.next(0)) {
  }
  EXPECT_FALSE(target.next(700).has_value());
}

TEST(Watcher, NeverSignalsAProcessThatDoesNotCatchTheSignal) {
  Pipe reg;
  WatcherProcess watcher(intervalOnly(100ms), std::move(reg.r));
  Target ignorant(false);
  Target catcher(true);  // proves requests were being sent
  ASSERT_TRUE(ignorant.ready() && catcher.ready());
  registerRecord(reg.w, ignorant.pid());
  registerRecord(reg.w, catcher.pid());
  for (int i = 0; i < 4; ++i) expectIntervalFrom(catcher.next(3000), watcher.pid());
  EXPECT_TRUE(ignorant.alive()) << "SIGUSR2's default action ended it";
}

TEST(Watcher, ExitsZeroOnceTheWriteEndsCloseAndTheWatchedProcessesExit) {
  Pipe reg;
  WatcherProcess watcher(intervalOnly(0ms), std::move(reg.r));
  Target target(true);
  ASSERT_TRUE(target.ready());
  registerRecord(reg.w, target.pid());
  reg.w.reset();
  EXPECT_EQ(watcher.exitStatus(300), -1) << "exited while a process was still watched";
  target.kill();
  EXPECT_EQ(watcher.exitStatus(5000), 0);
}

TEST(Watcher, ExitsZeroAtOnceWhenNothingWasEverRegistered) {
  Pipe reg;
  WatcherProcess watcher(WatcherOptions{}, std::move(reg.r));
  reg.w.reset();
  EXPECT_EQ(watcher.exitStatus(5000), 0);
}

TEST(Watcher, BadRecordsAreIgnoredAndASplitRecordIsPutTogether) {
  Pipe reg;
  WatcherProcess watcher(intervalOnly(100ms), std::move(reg.r));
  Target target(true);
  ASSERT_TRUE(target.ready());
  registerRecord(reg.w, 0);
  registerRecord(reg.w, INT32_MIN);
  registerRecord(reg.w, INT32_MAX);  // above any pid_max: no such process
  const std::int32_t pid = target.pid();
  char bytes[sizeof pid];
  std::memcpy(bytes, &pid, sizeof pid);
  ASSERT_EQ(::write(reg.w.get(), bytes, 3), 3);
  std::this_thread::sleep_for(100ms);
  ASSERT_EQ(::write(reg.w.get(), bytes + 3, 1), 1);
  expectIntervalFrom(target.next(3000), watcher.pid());
  ASSERT_EQ(::write(reg.w.get(), bytes, 2), 2);  // half a record, then the end
  reg.w.reset();
  target.kill();
  EXPECT_EQ(watcher.exitStatus(5000), 0);
  EXPECT_EQ(watcher.log(),
            "pid 2147483647: pidfd_open: No such process; not watched\n"
            "registration socket closed inside a record: ignored\n");
}

TEST(Watcher, InvalidFractionsAreLoggedAndIntervalRequestsGoOn) {
  Pipe reg;
  WatcherOptions options = intervalOnly(100ms);
  options.memory_pressure_fractions = {0.8, 1.5};
  WatcherProcess watcher(options, std::move(reg.r));
  Target target(true);
  ASSERT_TRUE(target.ready());
  registerRecord(reg.w, target.pid());
  expectIntervalFrom(target.next(3000), watcher.pid());
  EXPECT_EQ(watcher.log(),
            "memory-pressure fraction 1.5: expected a fraction of the limit in (0, 1]; "
            "memory-pressure requests are off\n");
}

// RSS of `pid` from its statm, in bytes.
std::uint64_t rssOf(pid_t pid) {
  const auto pages =
      parseStatmResidentPages(testing::readFile("/proc/" + std::to_string(pid) + "/statm"));
  return pages.value_or(0) * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

TEST(Watcher, SendsAMemoryPressureRequestWithTheFractionCrossed) {
  Target target(true);
  ASSERT_TRUE(target.ready());
  // The limit that 20 MiB more put at 85 %: above 0.8 and below 0.9 whatever
  // the forked test process's own RSS is (a few MiB, shared with the test).
  constexpr std::uint64_t kTouched = 20ull << 20;
  const std::uint64_t baseline = rssOf(target.pid());
  ASSERT_GT(baseline, 0u);
  Pipe reg;
  WatcherOptions options;
  options.memory_check_interval = 100ms;
  options.memory_limit_bytes =
      static_cast<std::uint64_t>(static_cast<double>(baseline + kTouched) / 0.85);
  WatcherProcess watcher(options, std::move(reg.r));
  registerRecord(reg.w, target.pid());
  EXPECT_FALSE(target.next(500).has_value()) << "a request before RSS grew";
  target.touch(kTouched);
  const auto d = target.next(5000);
  ASSERT_TRUE(d.has_value()) << "no memory-pressure request; RSS " << rssOf(target.pid()) << " of "
                             << options.memory_limit_bytes;
  EXPECT_EQ(d->code, SI_QUEUE);
  EXPECT_EQ(d->sender, watcher.pid());
  const auto request = core::decodeWatchRequest(d->value);
  ASSERT_TRUE(request.has_value()) << d->value;
  EXPECT_EQ(request->kind, WatchKind::kMemoryPressure);
  EXPECT_EQ(request->permille, 800);
  EXPECT_FALSE(target.next(500).has_value()) << "the fraction fired twice";
}

TEST(ParseCaughtSignals, ReadsTheHexMaskOfSigCgt) {
  const std::string status =
      "Name:\tnginx\nSigIgn:\t0000000000001000\nSigCgt:\t0000000180000a02\nCapInh:\t0\n";
  EXPECT_EQ(parseCaughtSignals(status), 0x180000a02u);
  EXPECT_EQ(parseCaughtSignals("SigCgt:\t0000000000000800"), 0x800u);  // SIGUSR2 (12) alone
  EXPECT_EQ(parseCaughtSignals("Name:\tx\nSigIgn:\t0\n"), std::nullopt);
  EXPECT_EQ(parseCaughtSignals("SigCgt:\tzz\n"), std::nullopt);
  EXPECT_EQ(parseCaughtSignals("SigCgt:\t\n"), std::nullopt);
  EXPECT_EQ(parseCaughtSignals(""), std::nullopt);
}

}  // namespace
}  // namespace leakscope::diag
