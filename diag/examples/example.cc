// leakscope-example: a small daemon instrumented with leakscope::diag the way
// a user would do it. A local TCP server, and a worker that opens tracked
// "connections" to it in rounds; with --leak-every K every K-th connection is
// kept open forever, which is the bug leakscope exists to find.
//
//   snaps=$(mktemp -d)     # a directory only you can write
//   leakscope-example --snapshot-dir "$snaps" --leak-every 3 &
//   kill -USR2 $!          # writes $snaps/leakscope-example.000001.lsnap
//   curl -s "$(metrics address printed on start)/metrics" | grep tracked
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "leakscope/core/cli11.h"
#include "leakscope/core/unique_fd.h"
#include "leakscope/diag/heap_profile.h"
#include "leakscope/diag/runtime.h"
#include "leakscope/diag/tracked.h"

namespace example {

namespace diag = leakscope::diag;

// Kinds are interned once and cached; the hot path never looks names up.
diag::Kind& kClientConnection = diag::kind("example.connection");
diag::Kind& kServerSession = diag::kind("example.session");

std::atomic<bool> g_stop{false};
extern "C" void onStop(int) { g_stop.store(true); }

using leakscope::core::UniqueFd;

// Kept out of line so heap profiles name it as the allocation site.
[[gnu::noinline]] std::vector<char> allocateReceiveBuffer(std::size_t bytes) {
  std::vector<char> buf(bytes);
  std::memset(buf.data(), 0x5a, buf.size());  // touch it: make it resident
  return buf;
}

// A client connection to the server. The Tracked member registers it under
// "example.connection" for exactly as long as the object lives.
class Connection {
 public:
  static std::unique_ptr<Connection> open(const sockaddr_in& server, std::size_t buffer_bytes) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) return nullptr;
    // A reply that never comes must not hang the worker (or its shutdown).
    timeval timeout{2, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&server), sizeof server) != 0) {
      return nullptr;
    }
    return std::unique_ptr<Connection>(new Connection(std::move(fd), buffer_bytes));
  }

  // One request/response exchange.
  bool ping() {
    static const char kMsg[] = "ping\n";
    if (::send(fd_.get(), kMsg, sizeof kMsg - 1, MSG_NOSIGNAL) != sizeof kMsg - 1) return false;
    std::size_t got = 0;
    while (got < sizeof kMsg - 1) {
      const ssize_t n = ::recv(fd_.get(), buffer_.data() + got, buffer_.size() - got, 0);
      if (n <= 0) return false;
      got += static_cast<std::size_t>(n);
    }
    return true;
  }

 private:
  Connection(UniqueFd fd, std::size_t buffer_bytes)
      : fd_(std::move(fd)),
        buffer_(allocateReceiveBuffer(buffer_bytes)),
        tracked_(kClientConnection, "example-server", buffer_.size()) {
    tracked_.setFd(fd_.get());  // lets snapshots join this object to its socket
  }

  UniqueFd fd_;
  std::vector<char> buffer_;
  diag::Tracked tracked_;  // last: deregisters first, before the fd closes
};

// The server: accepts, echoes, closes on EOF. Each accepted socket is a
// tracked "example.session".
class Server {
 public:
  bool listen() {
    listener_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (listener_.get() < 0) return false;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return false;
    if (::listen(listener_.get(), 128) != 0) return false;
    socklen_t len = sizeof address_;
    return ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&address_), &len) == 0;
  }
  const sockaddr_in& address() const { return address_; }
  int port() const { return ntohs(address_.sin_port); }

  void run() {
    std::vector<pollfd> fds;
    while (!g_stop.load()) {
      fds.clear();
      fds.push_back({listener_.get(), POLLIN, 0});
      for (const auto& s : sessions_) fds.push_back({s->fd.get(), POLLIN, 0});
      if (::poll(fds.data(), fds.size(), 50) <= 0) continue;
      if (fds[0].revents & POLLIN) accept();
      // Walk backwards so erasing does not shift the indexes still to visit.
      for (std::size_t i = fds.size() - 1; i >= 1; --i) {
        if (fds[i].revents == 0) continue;
        char buf[512];
        const ssize_t n = ::recv(fds[i].fd, buf, sizeof buf, 0);
        if (n > 0) {
          [[maybe_unused]] auto sent =
              ::send(fds[i].fd, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL);
        } else {
          sessions_.erase(sessions_.begin() + static_cast<std::ptrdiff_t>(i - 1));
        }
      }
    }
  }

 private:
  struct Session {
    explicit Session(UniqueFd f)
        : fd(std::move(f)), tracked(kServerSession, "example-client", 512) {
      tracked.setFd(fd.get());
    }
    UniqueFd fd;
    diag::Tracked tracked;
  };
  void accept() {
    UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (fd.get() >= 0) sessions_.push_back(std::make_unique<Session>(std::move(fd)));
  }

  UniqueFd listener_;
  sockaddr_in address_{};
  std::vector<std::unique_ptr<Session>> sessions_;
};

struct Options {
  std::string snapshot_dir;
  std::string metrics_address = "127.0.0.1:0";
  std::uint64_t leak_every = 0;
  std::uint64_t connections = 4;
  std::uint64_t interval_ms = 100;
  std::uint64_t rounds = 0;
  std::uint64_t buffer_bytes = 64 * 1024;
  std::uint64_t snapshot_keep = 0;
  std::uint64_t snapshot_max_bytes = 0;
  std::uint64_t snapshot_interval_ms = 0;
  std::vector<double> memory_pressure = {0.8, 0.9, 0.95};
  std::uint64_t memory_check_interval_ms = 1000;
  std::int64_t sample_period = 512 * 1024;
  bool sample_period_given = false;  // an explicit flag beats the environment
  diag::HeapMode heap_mode = diag::HeapMode::kSampled;
  bool verbose = false;
};

constexpr const char* kUsage = R"(usage: leakscope-example [options]

A small daemon instrumented with leakscope. A TCP server on 127.0.0.1 and a
worker that opens tracked connections to it in rounds, closing them again;
with --leak-every K every K-th connection is kept open forever.

Send SIGUSR2 for a snapshot; SIGTERM or SIGINT to stop.

options:
  --snapshot-dir DIR          write snapshots here (default: off). DIR must be a
                              directory of this user that group and others cannot
                              write, not a symlink; a missing one is created 0700
  --metrics-address H:P       serve /metrics here (default 127.0.0.1:0 = any free port;
                              the bound address is printed on start; "" = off)
  --leak-every K              keep every K-th connection open forever (default 0 = never)
  --connections N             connections opened per round (default 4)
  --interval-ms MS            pause between rounds (default 100)
  --rounds N                  stop opening connections after N rounds and idle (default 0 = never stop)
  --buffer-bytes B            receive buffer per connection (default 65536)
  --heap-mode M               sampled | full | off (default sampled)
  --sample-period BYTES       tcmalloc sampling period for 'sampled' (default: the
                              TCMALLOC_SAMPLE_PARAMETER it was started with, else 524288)
  --snapshot-keep N           keep the newest N snapshots (default 0 = all)
  --snapshot-max-bytes B      keep at most B bytes of snapshots (default 0 = no limit)
  --snapshot-interval-ms MS   also snapshot every MS milliseconds (default 0 = off)
  --memory-pressure F,F,...   snapshot when RSS first reaches each fraction of the
                              memory limit (cgroup, else MemTotal), in (0, 1]
                              (default 0.8,0.9,0.95)
  --memory-check-interval-ms MS
                              compare RSS with the limit every MS milliseconds
                              (default 1000; 0 = no memory-pressure snapshots)
  --verbose                   print one line per round
  -h, --help                  this text

example:
  snaps=$(mktemp -d)
  leakscope-example --snapshot-dir "$snaps" --leak-every 3 &
  sleep 2; kill -USR2 $!; ls "$snaps"
)";

// A CLI11 check: a whole number >= min. Its message, after CLI11's "--flag: ",
// is the one this program has always printed.
CLI::Validator atLeast(std::uint64_t min) {
  return CLI::Validator(
      [min](std::string& v) -> std::string {
        std::uint64_t n = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (!v.empty() && ec == std::errc() && p == v.data() + v.size() && n >= min) return {};
        return "'" + v + "' is not a valid value";
      },
      "");
}

// Returns 0 to continue, or the exit code (-1: done, exit 0).
int parseOptions(int argc, char** argv, Options& o) {
  CLI::App app("leakscope-example", "leakscope-example");
  std::string heap_mode = "sampled";
  app.add_option("--snapshot-dir", o.snapshot_dir);
  app.add_option("--metrics-address", o.metrics_address);
  app.add_option("--leak-every", o.leak_every)->check(atLeast(0));
  app.add_option("--connections", o.connections)->check(atLeast(1));
  app.add_option("--interval-ms", o.interval_ms)->check(atLeast(0));
  app.add_option("--rounds", o.rounds)->check(atLeast(0));
  app.add_option("--buffer-bytes", o.buffer_bytes)->check(atLeast(16));
  app.add_option("--snapshot-keep", o.snapshot_keep)->check(atLeast(0));
  app.add_option("--snapshot-max-bytes", o.snapshot_max_bytes)->check(atLeast(0));
  app.add_option("--snapshot-interval-ms", o.snapshot_interval_ms)->check(atLeast(0));
  app.add_option("--memory-pressure", o.memory_pressure)->delimiter(',');
  app.add_option("--memory-check-interval-ms", o.memory_check_interval_ms)->check(atLeast(0));
  CLI::Option* period = app.add_option("--sample-period", o.sample_period)->check(atLeast(1));
  app.add_option("--heap-mode", heap_mode);
  app.add_flag("--verbose", o.verbose);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(kUsage, stdout);
    return -1;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "leakscope-example: %s (see --help)\n", e.what());
    return 2;
  }
  o.sample_period_given = period->count() > 0;
  if (auto s = diag::validateMemoryPressureFractions(o.memory_pressure); !s.ok()) {
    std::fprintf(stderr, "leakscope-example: --memory-pressure: %s\n", s.error().message.c_str());
    return 2;
  }
  auto m = diag::parseHeapMode(heap_mode);
  if (!m.ok()) {
    std::fprintf(stderr, "leakscope-example: %s\n", m.error().message.c_str());
    return 2;
  }
  o.heap_mode = *m;
  return 0;
}

// SIGTERM and SIGINT only set g_stop; the server and the worker poll it.
void installStopHandlers() {
  struct sigaction sa {};
  sa.sa_handler = onStop;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
}

diag::Config runtimeConfig(const Options& o, const std::string& server_address) {
  diag::Config config;
  config.snapshot_dir = o.snapshot_dir;
  config.snapshot_keep = o.snapshot_keep;
  config.snapshot_max_bytes = o.snapshot_max_bytes;
  config.snapshot_interval = std::chrono::milliseconds(o.snapshot_interval_ms);
  config.heap_mode = o.heap_mode;
  config.memory_pressure_fractions = o.memory_pressure;
  config.memory_check_interval = std::chrono::milliseconds(o.memory_check_interval_ms);
  config.metrics_address = o.metrics_address;
  config.peer_names.add(server_address, "example-server");
  return config;
}

// Opens `connections` connections to the server per round and closes them
// again, except every leak_every-th one, which it keeps for good: the bug, on
// purpose. After `rounds` rounds (if set) it idles until told to stop.
class Worker {
 public:
  Worker(const Options& o, const Server& server) : o_(o), server_(server) {}

  void run() {
    for (std::uint64_t round = 1; !g_stop.load(); ++round) {
      if (o_.rounds != 0 && round > o_.rounds) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      openRound();
      report(round);
      for (std::uint64_t slept = 0; slept < o_.interval_ms && !g_stop.load(); slept += 10) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  }

 private:
  void openRound() {
    std::vector<std::unique_ptr<Connection>> batch;
    for (std::uint64_t i = 0; i < o_.connections && !g_stop.load(); ++i) {
      auto c = Connection::open(server_.address(), o_.buffer_bytes);
      if (c == nullptr || !c->ping()) {
        ++failed_;
        continue;
      }
      batch.push_back(std::move(c));
    }
    for (auto& c : batch) {
      ++opened_;
      if (o_.leak_every != 0 && opened_ % o_.leak_every == 0) leaked_.push_back(std::move(c));
    }
    batch.clear();  // the rest close here
  }

  void report(std::uint64_t round) const {
    if (o_.verbose) {
      std::printf("round %llu: opened=%llu leaked=%zu failed=%llu\n",
                  static_cast<unsigned long long>(round), static_cast<unsigned long long>(opened_),
                  leaked_.size(), static_cast<unsigned long long>(failed_));
      std::fflush(stdout);
    }
    if (o_.rounds != 0 && round == o_.rounds) {
      std::printf("rounds done: opened=%llu leaked=%zu failed=%llu\n",
                  static_cast<unsigned long long>(opened_), leaked_.size(),
                  static_cast<unsigned long long>(failed_));
      std::fflush(stdout);
    }
  }

  const Options& o_;
  const Server& server_;
  std::vector<std::unique_ptr<Connection>> leaked_;
  std::uint64_t opened_ = 0;
  std::uint64_t failed_ = 0;
};

int run(int argc, char** argv) {
  Options o;
  if (const int rc = parseOptions(argc, argv, o); rc != 0) return rc < 0 ? 0 : rc;

  // tcmalloc reads its sampling period before main: re-exec with it set.
  if (o.heap_mode == diag::HeapMode::kSampled) {
    if (auto s = diag::ensureHeapSampling(argv, o.sample_period, o.sample_period_given); !s.ok()) {
      std::fprintf(stderr, "leakscope-example: %s\n", s.error().message.c_str());
    }
  }
  installStopHandlers();

  Server server;
  if (!server.listen()) {
    std::fprintf(stderr, "leakscope-example: cannot listen on 127.0.0.1: %s\n",
                 std::strerror(errno));
    return 1;
  }
  const std::string server_address = "127.0.0.1:" + std::to_string(server.port());
  diag::Runtime runtime(runtimeConfig(o, server_address));

  std::printf("leakscope-example pid=%d listen=%s metrics=%s snapshots=%s leak_every=%llu\n",
              static_cast<int>(getpid()), server_address.c_str(),
              runtime.metricsAddress().empty() ? "off" : runtime.metricsAddress().c_str(),
              o.snapshot_dir.empty() ? "off" : o.snapshot_dir.c_str(),
              static_cast<unsigned long long>(o.leak_every));
  std::fflush(stdout);

  std::thread server_thread([&server] { server.run(); });
  Worker worker(o, server);  // after the thread: its leaked connections close after the join
  worker.run();
  server_thread.join();
  return 0;
}

}  // namespace example

int main(int argc, char** argv) { return example::run(argc, argv); }
