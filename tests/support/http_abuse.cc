#include "http_abuse.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace leakscope::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::optional<sockaddr_in> loopback(const std::string& host_port) {
  const std::size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(std::stoi(host_port.substr(colon + 1))));
  if (inet_pton(AF_INET, host_port.substr(0, colon).c_str(), &a.sin_addr) != 1) {
    return std::nullopt;
  }
  return a;
}

// A non-blocking connect under way (or done).
Socket startConnect(const sockaddr_in& a) {
  Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (s.get() < 0) return s;
  if (::connect(s.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 &&
      errno != EINPROGRESS) {
    return Socket();
  }
  return s;
}

// True once the peer closed or reset the connection (not for one still
// connecting, nor for one with data waiting).
bool peerClosed(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  char b;
  const ssize_t n = ::recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

}  // namespace

Socket::~Socket() {
  if (fd_ >= 0) ::close(fd_);
}
Socket::Socket(Socket&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
Socket& Socket::operator=(Socket&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

std::vector<Socket> openIdle(const std::string& host_port, std::size_t n) {
  std::vector<Socket> out;
  const auto a = loopback(host_port);
  if (!a) return out;
  // In waves smaller than a listen backlog, each given up to a second to be
  // established: connects beyond a full backlog would sit in SYN retries
  // (1 s, 3 s, 7 s ...) and never reach the server within a test.
  constexpr std::size_t kWave = 64;
  while (out.size() < n) {
    const std::size_t first = out.size();
    for (std::size_t i = 0; i < kWave && out.size() < n; ++i) {
      Socket s = startConnect(*a);
      if (s.get() < 0) return out;
      out.push_back(std::move(s));
    }
    const auto end = Clock::now() + std::chrono::seconds(1);
    for (std::size_t i = first; i < out.size() && Clock::now() < end; ++i) {
      pollfd p{out[i].get(), POLLOUT, 0};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
      ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(0, left.count())));
    }
  }
  return out;
}

std::size_t closedByServer(const std::vector<Socket>& sockets) {
  std::size_t closed = 0;
  for (const auto& s : sockets) {
    if (peerClosed(s.get())) ++closed;
  }
  return closed;
}

TimedAnswer timedGet(const std::string& host_port, const std::string& path,
                     std::chrono::milliseconds timeout) {
  TimedAnswer r;
  const auto start = Clock::now();
  const auto end = start + timeout;
  const auto left = [&] {
    return static_cast<int>(std::max<std::int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count()));
  };
  const auto a = loopback(host_port);
  if (!a) return r;
  Socket s = startConnect(*a);
  if (s.get() < 0) return r;
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + host_port + "\r\n\r\n";
  std::size_t sent = 0;
  std::string resp;
  while (left() > 0) {
    pollfd p{s.get(), static_cast<short>(sent < req.size() ? POLLOUT : POLLIN), 0};
    if (::poll(&p, 1, left()) <= 0) continue;
    if (sent < req.size()) {
      const ssize_t n = ::send(s.get(), req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN) break;
      if (n > 0) sent += static_cast<std::size_t>(n);
      continue;
    }
    char buf[16384];
    const ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
    if (n < 0 && errno == EAGAIN) continue;
    if (n > 0) resp.append(buf, static_cast<std::size_t>(n));
    // Complete at EOF, or (kept alive, as a scraper asks) at Content-Length.
    const std::size_t body = resp.find("\r\n\r\n");
    const bool headed = resp.rfind("HTTP/1.", 0) == 0 && body != std::string::npos;
    std::size_t want = std::string::npos;
    if (headed) {
      const std::string head = resp.substr(0, body);
      for (const char* name : {"\r\nContent-Length:", "\r\ncontent-length:"}) {
        if (const std::size_t at = head.find(name); at != std::string::npos) {
          want = std::strtoull(head.c_str() + at + std::strlen(name), nullptr, 10);
        }
      }
    }
    const std::size_t got = headed ? resp.size() - body - 4 : 0;
    const bool complete = headed && (want == std::string::npos ? n <= 0 : got >= want);
    if (complete) {
      r.answer = HttpAnswer{std::atoi(resp.c_str() + 9), resp.substr(body + 4)};
      break;
    }
    if (n <= 0) break;
  }
  r.took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  return r;
}

std::size_t sendHugeHeader(const std::string& host_port, std::size_t bytes) {
  const auto a = loopback(host_port);
  if (!a) return 0;
  Socket s = startConnect(*a);
  if (s.get() < 0) return 0;
  const std::string head = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Filler: ";
  const std::string chunk(65536, 'a');
  std::size_t sent = 0;
  auto last_progress = Clock::now();
  while (sent < bytes && Clock::now() - last_progress < std::chrono::seconds(2)) {
    pollfd p{s.get(), POLLOUT, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const std::string& what = sent == 0 ? head : chunk;
    const ssize_t n = ::send(s.get(), what.data(), what.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EAGAIN) continue;
    if (n <= 0) break;  // reset or closed: the server refused it
    sent += static_cast<std::size_t>(n);
    last_progress = Clock::now();
  }
  return sent;
}

SlowClients::SlowClients(const std::string& host_port, std::size_t n,
                         std::chrono::milliseconds interval) {
  std::vector<Socket> sockets = openIdle(host_port, n);
  opened_.store(sockets.size());
  thread_ = std::thread(
      [this, s = std::move(sockets), interval]() mutable { run(std::move(s), interval); });
}

SlowClients::~SlowClients() { stop(); }

void SlowClients::stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void SlowClients::run(std::vector<Socket> sockets, std::chrono::milliseconds interval) {
  static const std::string kHead = "GET /metrics HTTP/1.1\r\nX-Slow: ";
  std::vector<std::size_t> sent(sockets.size(), 0);
  std::vector<bool> closed(sockets.size(), false);
  // Bounded even if nobody calls stop(): at most 2 minutes.
  const auto end = Clock::now() + std::chrono::minutes(2);
  while (!stop_.load() && Clock::now() < end) {
    for (std::size_t i = 0; i < sockets.size(); ++i) {
      if (closed[i]) continue;
      const char b = sent[i] < kHead.size() ? kHead[sent[i]] : 'a';
      const ssize_t n = ::send(sockets[i].get(), &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n == 1) ++sent[i];
      if ((n < 0 && errno != EAGAIN && errno != ENOTCONN) || peerClosed(sockets[i].get())) {
        closed[i] = true;
        closed_.fetch_add(1);
      }
    }
    const auto wake = Clock::now() + interval;
    while (!stop_.load() && Clock::now() < wake) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
}

IdleFlood::IdleFlood(const std::string& host_port, std::size_t n) {
  std::vector<Socket> first = openIdle(host_port, n);
  opened_.store(first.size());
  thread_ = std::thread([this, host_port, s = std::move(first)]() mutable {
    const auto a = loopback(host_port);
    const auto end = Clock::now() + std::chrono::minutes(2);
    while (a && !stop_.load() && Clock::now() < end) {
      for (auto& sock : s) {
        if (!peerClosed(sock.get())) continue;
        sock = startConnect(*a);
        opened_.fetch_add(1);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
}

IdleFlood::~IdleFlood() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

std::uint64_t rssBytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

std::size_t openFds(pid_t pid) {
  std::error_code ec;
  std::size_t n = 0;
  for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end;
       !ec && it != end; it.increment(ec)) {
    ++n;
  }
  return n;
}

std::chrono::milliseconds cpuTime(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string all;
  std::getline(in, all);
  // Fields after the command (which may hold spaces) start after the last ')'.
  const std::size_t close = all.rfind(')');
  if (close == std::string::npos) return std::chrono::milliseconds(0);
  std::istringstream fields(all.substr(close + 2));
  std::string f;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::stoull(f);
    if (i == 15) stime = std::stoull(f);
  }
  const long hz = sysconf(_SC_CLK_TCK);
  return std::chrono::milliseconds((utime + stime) * 1000 / static_cast<unsigned long long>(hz));
}

std::uintmax_t stderrBytes(pid_t pid) {
  std::error_code ec;
  const auto target = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/fd/2", ec);
  if (ec) return 0;
  const auto size = std::filesystem::file_size(target, ec);
  return ec ? 0 : size;
}

bool setFdLimit(pid_t pid, std::uint64_t limit) {
  const rlimit rl{limit, limit};
  return prlimit(pid, RLIMIT_NOFILE, &rl, nullptr) == 0;
}

std::size_t snapshotsIn(const std::string& dir) {
  std::error_code ec;
  std::size_t n = 0;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".lsnap") ++n;
  }
  return n;
}

std::uint64_t raiseOwnFdLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  getrlimit(RLIMIT_NOFILE, &rl);
  return rl.rlim_cur;
}

::testing::AssertionResult ScrapeProbe::scrape(const std::string& host_port) {
  const auto r = timedGet(host_port, "/metrics", within_);
  if (!r.answer)
    return ::testing::AssertionFailure() << "no answer within " << within_.count() << " ms";
  if (r.answer->status != 200)
    return ::testing::AssertionFailure() << "status " << r.answer->status;
  if (r.answer->body.find(marker_) == std::string::npos) {
    return ::testing::AssertionFailure() << "no " << marker_ << " in the answer";
  }
  latencies_.push_back(r.took);
  return ::testing::AssertionSuccess() << r.took.count() << " ms";
}

std::string ScrapeProbe::latencies() const {
  std::string l;
  for (auto t : latencies_) l += (l.empty() ? "" : " ") + std::to_string(t.count());
  return l;
}

}  // namespace leakscope::testing
