// Helpers shared by leakscope's tests: a minimal HTTP GET over a real socket,
// Prometheus text look-ups, and a child process with captured stdout/stderr.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace leakscope::testing {

// The whole content of a file (empty if it cannot be read), and a file
// replaced by `text`: the tests' own fixtures, never the code under test.
std::string readFile(const std::string& path);
void writeFile(const std::string& path, const std::string& text);
// The `*.lsnap` files of a snapshot directory, sorted by name (none when it
// does not exist yet).
std::vector<std::string> lsnapFiles(const std::string& dir);

// A loopback TCP port free a moment ago (0 on failure), for servers that
// cannot bind port 0 and report theirs (MariaDB, Prometheus). Racy by
// nature: another process may take it before the server binds it.
int freePort();

// GET http://HOST:PORT/PATH (HTTP/1.0). Returns the body, or nullopt on any
// failure (connect, timeout, non-200).
std::optional<std::string> httpGet(const std::string& host_port, const std::string& path);
// Any status (e.g. a 503 from /healthz); nullopt only when no HTTP answer
// came at all.
struct HttpAnswer {
  int status = 0;
  std::string body;
};
std::optional<HttpAnswer> httpAsk(const std::string& host_port, const std::string& path);
// POST with a JSON body; the same answer rules as httpGet.
std::optional<std::string> httpPost(const std::string& host_port, const std::string& path,
                                    const std::string& body);

// The value of the sample whose series is exactly `series`
// (e.g. `leakscope_tracked_objects{kind="x"}`) in Prometheus text, or nullopt.
std::optional<double> metricValue(const std::string& text, const std::string& series);

// A child process. Stdout and stderr go to files in a temp dir; the child is
// killed (SIGKILL) and reaped on destruction, whatever happened in the test.
class Child {
 public:
  explicit Child(std::vector<std::string> argv, std::vector<std::string> env = {});
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  int pid() const { return pid_; }
  bool alive() const;
  // Waits until stdout has a line starting with `prefix`; returns it.
  std::optional<std::string> waitForLine(const std::string& prefix, int timeout_ms = 10000) const;
  std::string out() const;
  std::string err() const;
  // SIGTERM, then wait; returns the exit status (or -1).
  int terminate(int timeout_ms = 10000);
  // Waits for the child to exit by itself; returns its exit status (or -1 on
  // timeout). Either way the pid is not signalled again afterwards.
  int wait(int timeout_ms = 10000);

 private:
  int pid_ = -1;
  std::string dir_;
};

// A real TCP connection on 127.0.0.1: a listener on a free port, a client
// connected to it and the accepted server end. All three fds are closed by the
// destructor, also when an assertion ends the test early. `ok()` is false if
// any step failed.
class LoopbackConnection {
 public:
  LoopbackConnection();
  ~LoopbackConnection();
  LoopbackConnection(const LoopbackConnection&) = delete;
  LoopbackConnection& operator=(const LoopbackConnection&) = delete;

  bool ok() const { return listener >= 0 && client >= 0 && server >= 0; }
  // "127.0.0.1:PORT" of the listener.
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }

  int listener = -1;
  int client = -1;
  int server = -1;
  int port = 0;
};

// A forked copy of the test process that only waits (or, with
// exit_at_once, exits at once and stays a zombie until the destructor),
// holding every fd the test had open when it was made: a process whose
// sockets and files are known, for the readers of another process's /proc.
// Killed (SIGKILL) and reaped by the destructor.
class ForkedChild {
 public:
  explicit ForkedChild(bool exit_at_once = false);
  ~ForkedChild();
  ForkedChild(const ForkedChild&) = delete;
  ForkedChild& operator=(const ForkedChild&) = delete;
  int pid() const { return pid_; }
  // Dead but not reaped: what a parent that has not called wait() sees.
  bool zombie() const;

 private:
  int pid_;
};

// A fresh temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Polls `pred` every 20 ms until true or timeout; returns the last result.
template <class Pred>
bool eventually(Pred pred, int timeout_ms = 10000);

}  // namespace leakscope::testing

#include <chrono>
#include <thread>

template <class Pred>
bool leakscope::testing::eventually(Pred pred, int timeout_ms) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}
