#include "leakscope/diag/http_server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <prometheus/collectable.h>
#include <prometheus/text_serializer.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <list>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>

#include "http_request.h"
#include "leakscope/core/signals.h"
#include "leakscope/core/unique_fd.h"
#include "leakscope/diag/runtime.h"

namespace leakscope::diag {
namespace {

using Clock = std::chrono::steady_clock;

// Trouble is logged at most this often (per kind), with a count.
constexpr auto kLogEvery = std::chrono::seconds(10);
// How long accepting pauses when accept() fails (out of descriptors).
constexpr timeval kAcceptPause{0, 250000};
// Accepts per turn of the loop. The connections accepted in one turn are read
// in the next; with a small batch, a burst of new connections cannot push
// out (as "oldest") one whose request is already waiting to be read.
constexpr int kAcceptsPerTurn = 4;
constexpr timeval kNextTurn{0, 0};
constexpr auto kRecount = std::chrono::milliseconds(100);

struct EventBaseFree {
  void operator()(event_base* b) const { event_base_free(b); }
};
struct ListenerFree {
  void operator()(evconnlistener* l) const { evconnlistener_free(l); }
};
struct EventFree {
  void operator()(event* e) const { event_free(e); }
};
struct MallocFree {
  void operator()(char* p) const { std::free(p); }
};
using EventBasePtr = std::unique_ptr<event_base, EventBaseFree>;
using ListenerPtr = std::unique_ptr<evconnlistener, ListenerFree>;
using EventPtr = std::unique_ptr<event, EventFree>;
using Line = std::unique_ptr<char, MallocFree>;

// One line for the first occurrence, then at most one per kLogEvery saying
// how many were not logged: a flood of bad clients cannot become a flood of
// log lines.
class ThrottledLog {
 public:
  void note(const HttpServer::Log& log, const std::string& line) {
    const auto now = Clock::now();
    if (logged_ && now - last_ < kLogEvery) {
      ++unlogged_;
      return;
    }
    std::string out = line;
    if (unlogged_ > 0)
      out += " (and " + std::to_string(unlogged_) + " more since the last such line)";
    log(out);
    logged_ = true;
    last_ = now;
    unlogged_ = 0;
  }

 private:
  bool logged_ = false;
  Clock::time_point last_;
  std::uint64_t unlogged_ = 0;
};

// Descriptors open in this process (the directory's own not counted), or
// nullopt when /proc/self/fd cannot be read (e.g. no descriptor left for it).
std::optional<std::size_t> openFds() {
  const core::UniqueDir d(opendir("/proc/self/fd"));
  if (d == nullptr) return std::nullopt;
  std::size_t n = 0;
  while (const dirent* e = readdir(d.get())) {
    if (e->d_name[0] != '.') ++n;
  }
  return n > 0 ? n - 1 : 0;
}

const char* reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

std::string boundAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "";
  char ip[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
    return "[" + std::string(ip) + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
  inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
  return std::string(ip) + ":" + std::to_string(ntohs(a->sin_port));
}

}  // namespace

// One event loop on its own thread owns the listener and every connection.
// A connection: reading its request head -> answering (reading off) ->
// closed when the answer is written, when the peer goes, when its deadline
// passes, or when it is the oldest and room is needed. Closing frees its
// bufferevent (which closes the socket) and takes it out of conns_, so the
// number of open connections is always conns_.size().
class HttpServer::Impl {
 public:
  Impl(const HttpLimits& limits, Handler handler, Log log)
      : limits_(limits), handler_(std::move(handler)), log_(std::move(log)) {}
  ~Impl();

  Status bind(std::string_view address);
  Status run();
  const std::string& address() const { return address_; }
  // By number, not through the listener: libevent's lock may have been held
  // by the loop thread at the fork, and that thread is not in the child.
  void closeListenerInForkedChild() {
    if (listen_fd_ >= 0) ::close(listen_fd_);
    listen_fd_ = -1;
  }

 private:
  struct Conn {
    Impl* server = nullptr;
    bufferevent* bev = nullptr;  // owned: freed by closeConn
    Clock::time_point deadline;
    std::size_t head_bytes = 0;  // request line and headers read so far
    std::string method;          // empty until the request line came
    std::string path;
    std::list<Conn>::iterator self;
  };

  static void onAccept(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg);
  static void onAcceptError(evconnlistener*, void* arg);
  static void onRead(bufferevent* bev, void* arg);
  static void onWritten(bufferevent* bev, void* arg);
  static void onEvent(bufferevent* bev, short what, void* arg);
  static void onDeadline(evutil_socket_t, short, void* arg);
  static void onResume(evutil_socket_t, short, void* arg);
  static void onStop(evutil_socket_t, short, void* arg);

  void accept(evutil_socket_t fd);
  void acceptError(int err);
  void readHead(Conn& c);
  void answer(Conn& c, HttpResponse r);
  void closeConn(Conn& c);
  void closeOldest(std::size_t n);
  void expire();
  void armDeadline();
  void pauseAccepting();
  std::size_t fdsOverBudget();

  const HttpLimits limits_;
  const Handler handler_;
  const Log log_;
  std::string address_;
  int listen_fd_ = -1;  // the listener's socket, owned by listener_
  ThrottledLog full_log_, fd_log_, accept_log_, timeout_log_, head_log_;
  core::UniqueFd stop_read_, stop_write_;
  // Teardown order (reverse of declaration) matters: the connections'
  // bufferevents, the listener and the events are freed before the base.
  EventBasePtr base_;
  ListenerPtr listener_;
  EventPtr deadline_timer_, resume_timer_, stop_event_;
  int accepted_this_turn_ = 0;
  // Descriptors of the rest of the process (all open ones minus our
  // connections), counted in /proc/self/fd when near the limit, else at most
  // every kRecount.
  std::size_t others_ = 0;
  Clock::time_point others_counted_;
  // In accept order: the oldest first, and with it the earliest deadline
  // (every connection gets the same timeout).
  std::list<Conn> conns_;
  std::thread thread_;  // last: started once everything above exists
};

Status validateHttpLimits(const HttpLimits& l) {
  if (l.max_connections == 0) {
    return Error{Errc::kInvalidArgument, "HTTP limits: max_connections must be >= 1"};
  }
  if (l.max_header_bytes < 64) {
    return Error{Errc::kInvalidArgument, "HTTP limits: max_header_bytes must be >= 64"};
  }
  if (l.request_timeout.count() < 1 || l.request_timeout > std::chrono::hours(1)) {
    return Error{Errc::kInvalidArgument, "HTTP limits: request_timeout must be 1 ms .. 1 h"};
  }
  return Ok{};
}

Status HttpServer::Impl::bind(std::string_view address) {
  if (auto s = validateListenAddress(address); !s.ok()) return s;
  const std::string a(address);
  const std::size_t colon = a.rfind(':');
  std::string host = a.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  const std::string port = a.substr(colon + 1);

  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    return Error{Errc::kIo, std::string("pipe: ") + std::strerror(errno)};
  }
  stop_read_ = core::UniqueFd(fds[0]);
  stop_write_ = core::UniqueFd(fds[1]);
  base_.reset(event_base_new());
  if (base_ == nullptr) return Error{Errc::kIo, "event_base_new failed"};

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (const int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return Error{Errc::kInvalidArgument, "cannot listen on " + a + ": " + gai_strerror(rc)};
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owned(found, &freeaddrinfo);
  listener_.reset(evconnlistener_new_bind(
      base_.get(), &Impl::onAccept, this,
      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE | LEV_OPT_DISABLED, -1,
      found->ai_addr, static_cast<int>(found->ai_addrlen)));
  if (listener_ == nullptr) {
    return Error{Errc::kIo, "cannot listen on " + a + ": " + std::strerror(errno)};
  }
  evconnlistener_set_error_cb(listener_.get(), &Impl::onAcceptError);
  listen_fd_ = evconnlistener_get_fd(listener_.get());
  address_ = boundAddress(listen_fd_);
  return Ok{};
}

Status HttpServer::Impl::run() {
  deadline_timer_.reset(evtimer_new(base_.get(), &Impl::onDeadline, this));
  resume_timer_.reset(evtimer_new(base_.get(), &Impl::onResume, this));
  stop_event_.reset(event_new(base_.get(), stop_read_.get(), EV_READ, &Impl::onStop, this));
  if (!deadline_timer_ || !resume_timer_ || !stop_event_ ||
      event_add(stop_event_.get(), nullptr) != 0 || evconnlistener_enable(listener_.get()) != 0) {
    return Error{Errc::kIo, "libevent: cannot create the HTTP server's events"};
  }
  try {
    const core::SignalsBlocked blocked =
        core::blockAllSignals();  // the loop thread inherits the mask
    thread_ = std::thread([this] { event_base_loop(base_.get(), EVLOOP_NO_EXIT_ON_EMPTY); });
  } catch (const std::system_error& e) {
    return Error{Errc::kIo, std::string("HTTP server thread: ") + e.what()};
  }
  return Ok{};
}

HttpServer::Impl::~Impl() {
  if (thread_.joinable()) {
    const char b = 'q';
    while (::write(stop_write_.get(), &b, 1) < 0 && errno == EINTR) {
    }
    thread_.join();
  }
  while (!conns_.empty()) closeConn(conns_.front());
  // The members' destructors free the events, the listener, then the base.
}

void HttpServer::Impl::onAccept(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg) {
  static_cast<Impl*>(arg)->accept(fd);
}

void HttpServer::Impl::accept(evutil_socket_t fd) {
  core::UniqueFd owned(fd);  // closed here unless a bufferevent takes it over
  if (const std::size_t over = fdsOverBudget(); over > 0) {
    // Keep serving (the endpoint is how an operator sees the trouble), but
    // give back what keeps fewer than fd_reserve free, oldest first.
    closeOldest(over);
    fd_log_.note(log_, "HTTP " + address_ + ": fewer than " + std::to_string(limits_.fd_reserve) +
                           " file descriptors left below RLIMIT_NOFILE: closed the oldest " +
                           "connection(s)");
  }
  if (conns_.size() >= limits_.max_connections) {
    // The oldest is the likeliest idle or slow one: a scraper's connection
    // lives for milliseconds.
    closeOldest(conns_.size() - limits_.max_connections + 1);
    full_log_.note(log_, "HTTP " + address_ + ": " + std::to_string(limits_.max_connections) +
                             " connections open (the limit): closed the oldest");
  }
  bufferevent* bev = bufferevent_socket_new(base_.get(), owned.get(), BEV_OPT_CLOSE_ON_FREE);
  if (bev == nullptr) return;
  owned.release();  // BEV_OPT_CLOSE_ON_FREE: the bufferevent closes it
  auto it = conns_.insert(conns_.end(), Conn{});
  it->server = this;
  it->bev = bev;
  it->deadline = Clock::now() + limits_.request_timeout;
  it->self = it;
  bufferevent_setcb(bev, &Impl::onRead, nullptr, &Impl::onEvent, &*it);
  bufferevent_enable(bev, EV_READ);
  armDeadline();
  // The count is not reset by a turn with fewer accepts: at worst one extra
  // short pause.
  if (++accepted_this_turn_ >= kAcceptsPerTurn) {
    evconnlistener_disable(listener_.get());
    if (!evtimer_pending(resume_timer_.get(), nullptr))
      evtimer_add(resume_timer_.get(), &kNextTurn);
  }
}

// How many of our connections (the one just accepted included) must go so
// that fd_reserve descriptors stay free below RLIMIT_NOFILE. The count of the
// rest of the process is refreshed when close to the limit (it is exact
// then) and otherwise every kRecount, so a flood far from the limit costs no
// directory scans. The lowest-free-number rule cannot stand in for a count:
// closing old connections leaves gaps that new ones fill.
std::size_t HttpServer::Impl::fdsOverBudget() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 0;
  const std::size_t limit = rl.rlim_cur;
  const std::size_t ours = conns_.size() + 1;  // the new fd is open, not yet listed
  constexpr std::size_t kSlack = 16;
  const auto now = Clock::now();
  if (now - others_counted_ >= kRecount || others_ + ours + limits_.fd_reserve + kSlack >= limit) {
    const auto all = openFds();
    if (!all) return std::min(ours, limits_.fd_reserve);  // no fd to read /proc with
    others_ = *all > ours ? *all - ours : 0;
    others_counted_ = now;
  }
  const std::size_t used = others_ + ours;
  if (used + limits_.fd_reserve <= limit) return 0;
  return std::min(conns_.size(), used + limits_.fd_reserve - limit);
}

void HttpServer::Impl::onAcceptError(evconnlistener*, void* arg) {
  static_cast<Impl*>(arg)->acceptError(errno);
}

// EMFILE/ENFILE: the process or the system is out of descriptors. Retrying
// at once would spin (the pending connection stays pending) and log without
// end; give descriptors back to the rest of the process and wait a moment.
void HttpServer::Impl::acceptError(int err) {
  if (err == EMFILE || err == ENFILE) closeOldest(limits_.fd_reserve);
  pauseAccepting();
  accept_log_.note(log_, "HTTP " + address_ + ": accept: " + std::strerror(err) +
                             "; closed old connections, pausing accept");
}

void HttpServer::Impl::pauseAccepting() {
  evconnlistener_disable(listener_.get());
  evtimer_add(resume_timer_.get(), &kAcceptPause);  // replaces a next-turn resume
}

void HttpServer::Impl::onResume(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Impl*>(arg);
  self->accepted_this_turn_ = 0;
  evconnlistener_enable(self->listener_.get());
}

void HttpServer::Impl::onRead(bufferevent*, void* arg) {
  auto* c = static_cast<Conn*>(arg);
  c->server->readHead(*c);
}

// Reads the request line and headers (whose content is not needed) up to the
// blank line; nothing beyond max_header_bytes is ever kept.
void HttpServer::Impl::readHead(Conn& c) {
  evbuffer* in = bufferevent_get_input(c.bev);
  for (;;) {
    std::size_t len = 0;
    Line line(evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF));
    if (line == nullptr) break;
    c.head_bytes += len + 2;
    if (c.head_bytes > limits_.max_header_bytes) break;
    if (c.method.empty()) {
      if (!parseRequestLine(std::string_view(line.get(), len), &c.method, &c.path)) {
        return answer(c, HttpResponse{400, "text/plain; charset=utf-8", "bad request line\n"});
      }
      continue;
    }
    if (len > 0) continue;  // a header line
    if (c.method != "GET" && c.method != "HEAD") {
      return answer(c, HttpResponse{405, "text/plain; charset=utf-8", "GET or HEAD only\n"});
    }
    HttpResponse r;
    try {
      r = handler_(c.path);
    } catch (const std::exception& e) {
      r = HttpResponse{500, "text/plain; charset=utf-8", std::string("error: ") + e.what() + "\n"};
    }
    return answer(c, std::move(r));
  }
  if (c.head_bytes + evbuffer_get_length(in) > limits_.max_header_bytes) {
    head_log_.note(log_, "HTTP " + address_ + ": refused a request head over " +
                             std::to_string(limits_.max_header_bytes) + " bytes");
    answer(c, HttpResponse{431, "text/plain; charset=utf-8", "request head too large\n"});
  }
}

// Writes the whole answer and closes once it is out (one request per
// connection: a kept-alive connection would be an idle one).
void HttpServer::Impl::answer(Conn& c, HttpResponse r) {
  bufferevent_disable(c.bev, EV_READ);
  evbuffer_drain(bufferevent_get_input(c.bev), evbuffer_get_length(bufferevent_get_input(c.bev)));
  evbuffer* out = bufferevent_get_output(c.bev);
  evbuffer_add_printf(out,
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n%s\r\n",
                      r.status, reason(r.status), r.content_type.c_str(), r.body.size(),
                      r.status == 405 ? "Allow: GET, HEAD\r\n" : "");
  if (c.method != "HEAD") evbuffer_add(out, r.body.data(), r.body.size());
  bufferevent_setcb(c.bev, nullptr, &Impl::onWritten, &Impl::onEvent, &c);
  bufferevent_enable(c.bev, EV_WRITE);
}

void HttpServer::Impl::onWritten(bufferevent*, void* arg) {
  auto* c = static_cast<Conn*>(arg);
  c->server->closeConn(*c);
}

void HttpServer::Impl::onEvent(bufferevent*, short, void* arg) {
  auto* c = static_cast<Conn*>(arg);  // EOF, error: the peer is gone
  c->server->closeConn(*c);
}

void HttpServer::Impl::closeConn(Conn& c) {
  bufferevent_free(c.bev);  // closes the socket (BEV_OPT_CLOSE_ON_FREE)
  conns_.erase(c.self);
}

void HttpServer::Impl::closeOldest(std::size_t n) {
  while (n-- > 0 && !conns_.empty()) closeConn(conns_.front());
}

void HttpServer::Impl::onDeadline(evutil_socket_t, short, void* arg) {
  static_cast<Impl*>(arg)->expire();
}

// A connection gets request_timeout from accept to the end of its answer,
// however it trickles its bytes (a read timeout alone would let a client
// sending one byte a second stay forever).
void HttpServer::Impl::expire() {
  const auto now = Clock::now();
  std::size_t expired = 0;
  while (!conns_.empty() && conns_.front().deadline <= now) {
    closeConn(conns_.front());
    ++expired;
  }
  if (expired > 0) {
    timeout_log_.note(log_, "HTTP " + address_ + ": closed " + std::to_string(expired) +
                                " connection(s) not done within " +
                                std::to_string(limits_.request_timeout.count()) + " ms");
  }
  armDeadline();
}

void HttpServer::Impl::armDeadline() {
  if (conns_.empty() || evtimer_pending(deadline_timer_.get(), nullptr)) return;
  const auto left = std::max(Clock::duration::zero(), conns_.front().deadline - Clock::now());
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(left).count();
  const timeval tv{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
  evtimer_add(deadline_timer_.get(), &tv);
}

void HttpServer::Impl::onStop(evutil_socket_t, short, void* arg) {
  event_base_loopbreak(static_cast<Impl*>(arg)->base_.get());
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() = default;

const std::string& HttpServer::address() const { return impl_->address(); }

void HttpServer::closeListenerInForkedChild() { impl_->closeListenerInForkedChild(); }

Result<std::unique_ptr<HttpServer>> HttpServer::start(std::string_view address,
                                                      const HttpLimits& limits, Handler handler,
                                                      Log log) {
  if (auto s = validateHttpLimits(limits); !s.ok()) return s.error();
  if (!handler) return Error{Errc::kInvalidArgument, "HttpServer: no handler"};
  if (!log) {
    log = [](std::string_view line) {
      std::fprintf(stderr, "leakscope: %.*s\n", static_cast<int>(line.size()), line.data());
    };
  }
  auto impl = std::make_unique<Impl>(limits, std::move(handler), std::move(log));
  if (auto s = impl->bind(address); !s.ok()) return s.error();
  if (auto s = impl->run(); !s.ok()) return s.error();
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpResponse metricsResponse(const std::vector<std::weak_ptr<prometheus::Collectable>>& from) {
  std::vector<prometheus::MetricFamily> families;
  for (const auto& w : from) {
    if (auto c = w.lock()) {
      auto f = c->Collect();
      families.insert(families.end(), std::make_move_iterator(f.begin()),
                      std::make_move_iterator(f.end()));
    }
  }
  return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8",
                      prometheus::TextSerializer().Serialize(families)};
}

}  // namespace leakscope::diag
