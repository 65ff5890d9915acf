// Misbehaving HTTP clients and process probes for the endpoint abuse tests
// (tests/integration/http_abuse_test.cc for leakscope's /metrics,
// tests/daemon/http_abuse_test.cc for pushdaemon's). Loopback only; every
// socket is closed by its owner's destructor, also when an assertion ends a
// test early; every loop is bounded in time.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "test_support.h"

namespace leakscope::testing {

// Owns one socket.
class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket();
  Socket(Socket&& o) noexcept;
  Socket& operator=(Socket&& o) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

// `n` connections to 127.0.0.1:PORT that send nothing, opened in waves of
// 64, each wave waited for (at most 1 s) until established; a server that
// stops accepting leaves the rest in its backlog or in SYN retries.
std::vector<Socket> openIdle(const std::string& host_port, std::size_t n);

// How many of `sockets` the server has closed (EOF or reset seen).
std::size_t closedByServer(const std::vector<Socket>& sockets);

// A GET that gives up after `timeout`: the answer (nullopt if none came in
// time) and how long it took.
struct TimedAnswer {
  std::optional<HttpAnswer> answer;
  std::chrono::milliseconds took{0};
};
TimedAnswer timedGet(const std::string& host_port, const std::string& path,
                     std::chrono::milliseconds timeout);

// Sends a request line and one header of `bytes` filler that never ends,
// until the server stops taking it (reset, closed, or no progress for 2 s).
// Returns how many bytes it took.
std::size_t sendHugeHeader(const std::string& host_port, std::size_t bytes);

// `n` clients each sending one byte of a never-ending request head every
// `interval`, from a thread of their own, until stop() or destruction.
class SlowClients {
 public:
  SlowClients(const std::string& host_port, std::size_t n, std::chrono::milliseconds interval);
  ~SlowClients();
  SlowClients(const SlowClients&) = delete;
  SlowClients& operator=(const SlowClients&) = delete;
  void stop();
  std::size_t opened() const { return opened_.load(); }
  // Connections the server closed (EOF, reset, or a failed send).
  std::size_t closedByServer() const { return closed_.load(); }

 private:
  void run(std::vector<Socket> sockets, std::chrono::milliseconds interval);
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> opened_{0};
  std::atomic<std::size_t> closed_{0};
  std::thread thread_;
};

// Keeps `n` idle connections open from a thread of its own, replacing every
// 100 ms those the server closed, until destruction (at most 2 minutes).
class IdleFlood {
 public:
  IdleFlood(const std::string& host_port, std::size_t n);
  ~IdleFlood();
  IdleFlood(const IdleFlood&) = delete;
  IdleFlood& operator=(const IdleFlood&) = delete;
  // Connections opened so far, the first n included.
  std::size_t opened() const { return opened_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> opened_{0};
  std::thread thread_;
};

// Process probes (Linux /proc).
std::uint64_t rssBytes(pid_t pid);
std::size_t openFds(pid_t pid);
// User + system CPU time so far.
std::chrono::milliseconds cpuTime(pid_t pid);
// Size of the file the process's stderr goes to (0 if not a file).
std::uintmax_t stderrBytes(pid_t pid);
// Sets another process's RLIMIT_NOFILE (soft and hard) with prlimit(2).
bool setFdLimit(pid_t pid, std::uint64_t limit);
// Number of snapshot files (*.lsnap) in `dir` (0 if it does not exist).
std::size_t snapshotsIn(const std::string& dir);
// Raises this process's soft RLIMIT_NOFILE to its hard limit (the abuse
// tests hold many sockets); returns the soft limit now in force.
std::uint64_t raiseOwnFdLimit();

// Normal scrapes during an attack: each must answer 200 within `within`
// with `marker` (a series name the server exposes) in its body. Keeps every
// latency for the test's record (latencies(): "7 12 9").
class ScrapeProbe {
 public:
  ScrapeProbe(std::string marker, std::chrono::milliseconds within)
      : marker_(std::move(marker)), within_(within) {}
  ::testing::AssertionResult scrape(const std::string& host_port);
  std::string latencies() const;

 private:
  std::string marker_;
  std::chrono::milliseconds within_;
  std::vector<std::chrono::milliseconds> latencies_;
};

}  // namespace leakscope::testing
