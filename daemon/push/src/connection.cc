#include "connection.h"

#include <arpa/inet.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "timeval.h"

namespace leakscope::push::detail {

void EventFree::operator()(event* e) const { event_free(e); }

std::string_view failureReason(Failure f) {
  switch (f) {
    case Failure::kNone:
      return "";
    case Failure::kTimeout:
      return reason::kTimeout;
    case Failure::kConnectFailed:
      return reason::kConnectFailed;
    case Failure::kTlsVerifyFailed:
      return reason::kTlsVerifyFailed;
    case Failure::kAlpnRefused:
      return reason::kAlpnRefused;
    case Failure::kRefusedStream:
      return reason::kRefusedStream;
    case Failure::kStreamReset:
      return reason::kStreamReset;
    case Failure::kConnectionLost:
      return reason::kConnectionLost;
    case Failure::kShutdown:
      return reason::kShutdown;
  }
  return reason::kConnectionLost;
}

// ---- nghttp2 memory accounting ------------------------------------------

namespace {

// Each block carries its size in a header of max_align_t size, so frees and
// reallocs know what to subtract and alignment is what malloc gives.
constexpr std::size_t kHeader = alignof(std::max_align_t);

std::atomic<std::int64_t>& counter(void* ud) { return static_cast<CountingAllocator*>(ud)->bytes; }

void* countedMalloc(std::size_t size, void* ud) {
  if (size > SIZE_MAX - kHeader) return nullptr;
  auto* p = static_cast<unsigned char*>(std::malloc(size + kHeader));
  if (p == nullptr) return nullptr;
  std::memcpy(p, &size, sizeof size);
  counter(ud).fetch_add(static_cast<std::int64_t>(size), std::memory_order_relaxed);
  return p + kHeader;
}

void countedFree(void* ptr, void* ud) {
  if (ptr == nullptr) return;
  auto* p = static_cast<unsigned char*>(ptr) - kHeader;
  std::size_t size = 0;
  std::memcpy(&size, p, sizeof size);
  counter(ud).fetch_sub(static_cast<std::int64_t>(size), std::memory_order_relaxed);
  std::free(p);
}

void* countedCalloc(std::size_t n, std::size_t size, void* ud) {
  if (size != 0 && n > (SIZE_MAX - kHeader) / size) return nullptr;
  void* p = countedMalloc(n * size, ud);
  if (p != nullptr) std::memset(p, 0, n * size);
  return p;
}

void* countedRealloc(void* ptr, std::size_t size, void* ud) {
  if (ptr == nullptr) return countedMalloc(size, ud);
  if (size > SIZE_MAX - kHeader) return nullptr;
  auto* old = static_cast<unsigned char*>(ptr) - kHeader;
  std::size_t old_size = 0;
  std::memcpy(&old_size, old, sizeof old_size);
  auto* p = static_cast<unsigned char*>(std::realloc(old, size + kHeader));
  if (p == nullptr) return nullptr;
  std::memcpy(p, &size, sizeof size);
  counter(ud).fetch_add(static_cast<std::int64_t>(size) - static_cast<std::int64_t>(old_size),
                        std::memory_order_relaxed);
  return p + kHeader;
}

constexpr std::size_t kReadChunk = 16 * 1024;
// Stop filling the write buffer at this size and write it out first.
constexpr std::size_t kWriteThreshold = 64 * 1024;
// Reads per readiness event before giving other connections a turn.
constexpr int kMaxReadsPerEvent = 32;
// Bounds on what a server's answer may make us hold.
constexpr std::size_t kMaxResponseBody = 64 * 1024;
constexpr std::size_t kMaxResponseHeaders = 64;

// The answer headers anyone reads (Response::header); the rest are dropped
// instead of copied.
bool wanted(std::string_view name) {
  return name == "apns-id" || name == "apns-unique-id" || name == "retry-after" ||
         name == "content-type";
}

double secondsSince(SteadyTime t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::string_view view(const std::uint8_t* p, std::size_t n) {
  return {reinterpret_cast<const char*>(p), n};
}

nghttp2_nv nv(std::string_view name, std::string_view value) {
  // nghttp2 copies names and values (no NO_COPY flags), so views suffice.
  return nghttp2_nv{const_cast<std::uint8_t*>(reinterpret_cast<const std::uint8_t*>(name.data())),
                    const_cast<std::uint8_t*>(reinterpret_cast<const std::uint8_t*>(value.data())),
                    name.size(), value.size(), NGHTTP2_NV_FLAG_NONE};
}

}  // namespace

nghttp2_mem CountingAllocator::mem() {
  return nghttp2_mem{this, countedMalloc, countedFree, countedCalloc, countedRealloc};
}

// ---- nghttp2 callbacks ----------------------------------------------------

struct Callbacks {
  static Connection& conn(void* ud) { return *static_cast<Connection*>(ud); }

  static int onHeader(nghttp2_session* s, const nghttp2_frame* frame, const std::uint8_t* name,
                      std::size_t namelen, const std::uint8_t* value, std::size_t valuelen,
                      std::uint8_t, void*) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    auto* ex = static_cast<Exchange*>(nghttp2_session_get_stream_user_data(s, frame->hd.stream_id));
    if (ex == nullptr) return 0;
    const std::string_view n = view(name, namelen);
    const std::string_view v = view(value, valuelen);
    if (n == ":status") {
      int status = 0;
      for (char c : v) {
        if (c < '0' || c > '9' || status > 999) return 0;
        status = status * 10 + (c - '0');
      }
      // 1xx are interim answers; the final status comes later.
      if (status >= 200) ex->response.status = status;
    } else if (ex->response.headers.size() < kMaxResponseHeaders && wanted(n)) {
      ex->response.headers.push_back(Header{std::string(n), std::string(v)});
    }
    return 0;
  }

  static int onData(nghttp2_session* s, std::uint8_t, std::int32_t stream_id,
                    const std::uint8_t* data, std::size_t len, void*) {
    auto* ex = static_cast<Exchange*>(nghttp2_session_get_stream_user_data(s, stream_id));
    if (ex == nullptr) return 0;
    const std::size_t room =
        kMaxResponseBody - std::min(kMaxResponseBody, ex->response.body.size());
    ex->response.body.append(reinterpret_cast<const char*>(data), std::min(room, len));
    return 0;
  }

  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    conn(ud).onFrameRecv(frame);
    return 0;
  }

  static int onFrameSend(nghttp2_session* s, const nghttp2_frame* frame, void*) {
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      auto* ex =
          static_cast<Exchange*>(nghttp2_session_get_stream_user_data(s, frame->hd.stream_id));
      if (ex != nullptr) ex->headers_sent = true;
    }
    return 0;
  }

  static int onStreamClose(nghttp2_session*, std::int32_t stream_id, std::uint32_t error_code,
                           void* ud) {
    conn(ud).onStreamClose(stream_id, error_code);
    return 0;
  }

  static ssize_t readBody(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length,
                          std::uint32_t* flags, nghttp2_data_source* source, void*) {
    auto* ex = static_cast<Exchange*>(source->ptr);
    const std::string& body = ex->request.body;
    const std::size_t n = std::min(length, body.size() - ex->body_offset);
    std::memcpy(buf, body.data() + ex->body_offset, n);
    ex->body_offset += n;
    if (ex->body_offset == body.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  static int onError(nghttp2_session*, int, const char* msg, std::size_t len, void* ud) {
    conn(ud).log("HTTP/2: " + std::string(msg, len));
    return 0;
  }

  static nghttp2_session_callbacks* get() {
    struct Free {
      void operator()(nghttp2_session_callbacks* c) const { nghttp2_session_callbacks_del(c); }
    };
    static const std::unique_ptr<nghttp2_session_callbacks, Free> cbs = [] {
      nghttp2_session_callbacks* c = nullptr;
      if (nghttp2_session_callbacks_new(&c) != 0) std::abort();  // out of memory at start-up
      nghttp2_session_callbacks_set_on_header_callback(c, onHeader);
      nghttp2_session_callbacks_set_on_data_chunk_recv_callback(c, onData);
      nghttp2_session_callbacks_set_on_frame_recv_callback(c, onFrameRecv);
      nghttp2_session_callbacks_set_on_frame_send_callback(c, onFrameSend);
      nghttp2_session_callbacks_set_on_stream_close_callback(c, onStreamClose);
      nghttp2_session_callbacks_set_error_callback2(c, onError);
      return std::unique_ptr<nghttp2_session_callbacks, Free>(c);
    }();
    return cbs.get();
  }
};

// ---- lifecycle -------------------------------------------------------------

struct Connection::DnsWaiter {
  Connection* conn = nullptr;  // null once the connection gave up waiting
  evdns_getaddrinfo_request* request = nullptr;
};

const char* Connection::stateName(State s) {
  switch (s) {
    case State::kConnecting:
      return "connecting";
    case State::kReady:
      return "ready";
    case State::kBusy:
      return "busy";
    case State::kDraining:
      return "draining";
    case State::kClosed:
      return "closed";
  }
  return "unknown";
}

Connection::Connection(EventLoop& loop, ConnectionSettings settings, ConnectionOwner& owner,
                       ConnId id)
    : loop_(loop), settings_(std::move(settings)), owner_(owner), id_(id) {
  if (diag::Kind* k = settings_.tracked_kind) {
    tracked_.emplace(*k, settings_.endpoint.host);
    tracked_->setOwner(settings_.tracked_owner);
    tracked_->setBytesCallback([this] { return retainedBytes(); });
  }
  if (UpstreamStats* s = settings_.stats) s->cxOpened();
}

Connection::~Connection() {
  // The pool closes connections before destroying them; this is the
  // backstop for a pool torn down without shutdown.
  if (state_ != State::kClosed) closeNow(CloseSide::kLocal, Failure::kShutdown);
}

std::uint64_t Connection::retainedBytes() const {
  const std::int64_t total =
      mem_.bytes.load(std::memory_order_relaxed) + buffer_bytes_.load(std::memory_order_relaxed);
  return total > 0 ? static_cast<std::uint64_t>(total) : 0;
}

void Connection::updateBytes() {
  // O(1): the streams' share is kept up to date as they come and go.
  const std::size_t bytes = wbuf_.capacity() + stream_bytes_;
  buffer_bytes_.store(static_cast<std::int64_t>(bytes), std::memory_order_relaxed);
}

std::unique_ptr<Exchange> Connection::takeStream(
    std::map<std::int32_t, std::unique_ptr<Exchange>>::iterator it) {
  std::unique_ptr<Exchange> ex = std::move(it->second);
  streams_.erase(it);
  stream_bytes_ -= std::min(stream_bytes_, ex->accounted_bytes);
  return ex;
}

void Connection::log(const std::string& line) const {
  owner_.log(settings_.component + " connection " + std::to_string(id_.value) + " to " +
             settings_.endpoint.host + ":" + std::to_string(settings_.endpoint.port) + ": " + line);
}

template <class F>
void Connection::io(F&& f) {
  const bool outer = !in_io_;
  in_io_ = true;
  f();
  if (outer) {
    in_io_ = false;
    afterIo();
  }
}

void Connection::start() {
  const auto& ep = settings_.endpoint;
  event_base* base = loop_.base();
  connect_timer_.reset(evtimer_new(base, &Connection::onConnectTimeout, this));
  if (!connect_timer_) {
    fail(CloseSide::kLocal, Failure::kConnectFailed, "cannot create timer");
    return;
  }
  const timeval tv = toTimeval(settings_.connect_timeout);
  evtimer_add(connect_timer_.get(), &tv);

  if (!ep.connect_address.empty()) {
    sockaddr_storage ss{};
    socklen_t len = 0;
    auto* in4 = reinterpret_cast<sockaddr_in*>(&ss);
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (inet_pton(AF_INET, ep.connect_address.c_str(), &in4->sin_addr) == 1) {
      in4->sin_family = AF_INET;
      in4->sin_port = htons(ep.port);
      len = sizeof(sockaddr_in);
    } else if (inet_pton(AF_INET6, ep.connect_address.c_str(), &in6->sin6_addr) == 1) {
      in6->sin6_family = AF_INET6;
      in6->sin6_port = htons(ep.port);
      len = sizeof(sockaddr_in6);
    } else {
      fail(CloseSide::kLocal, Failure::kConnectFailed,
           "connect_address " + ep.connect_address + " is not an IP address");
      return;
    }
    addrs_.push_back(ss);
    addr_lens_.push_back(len);
    connectNext();
    return;
  }

  evutil_addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
  auto waiter = std::make_unique<DnsWaiter>();
  waiter->conn = this;
  DnsWaiter* w = waiter.get();
  dns_ = w;
  const std::string port = std::to_string(ep.port);
  // The callback owns the waiter from here on; it may run before
  // evdns_getaddrinfo returns (numeric host, /etc/hosts), clearing dns_.
  evdns_getaddrinfo_request* req = evdns_getaddrinfo(
      loop_.dns(), ep.host.c_str(), port.c_str(), &hints,
      [](int err, evutil_addrinfo* res, void* arg) {
        std::unique_ptr<DnsWaiter> owned(static_cast<DnsWaiter*>(arg));
        if (owned->conn == nullptr) {
          if (res != nullptr) evutil_freeaddrinfo(res);
          return;
        }
        owned->conn->dns_ = nullptr;
        owned->conn->resolved(err, res);
      },
      waiter.release());
  if (dns_ == w) w->request = req;
}

void Connection::resolved(int err, addrinfo* res) {
  if (err != 0 || res == nullptr) {
    if (res != nullptr) evutil_freeaddrinfo(res);
    fail(CloseSide::kLocal, Failure::kConnectFailed,
         std::string("cannot resolve host: ") + evutil_gai_strerror(err));
    return;
  }
  for (evutil_addrinfo* a = res; a != nullptr; a = a->ai_next) {
    if (a->ai_addrlen > sizeof(sockaddr_storage)) continue;
    sockaddr_storage ss{};
    std::memcpy(&ss, a->ai_addr, a->ai_addrlen);
    addrs_.push_back(ss);
    addr_lens_.push_back(static_cast<socklen_t>(a->ai_addrlen));
  }
  evutil_freeaddrinfo(res);
  connectNext();
}

void Connection::connectNext() {
  int last_errno = 0;
  while (next_addr_ < addrs_.size()) {
    const sockaddr_storage& ss = addrs_[next_addr_];
    const socklen_t len = addr_lens_[next_addr_];
    ++next_addr_;
    const int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      last_errno = errno;
      continue;
    }
    const int one = 1;
    // Small frames (a notification is one HEADERS + one DATA) must not wait
    // for Nagle.
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
      last_errno = errno;
      ::close(fd);
      continue;
    }
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) {
      last_errno = errno;
      ::close(fd);
      continue;
    }
    event_base* base = loop_.base();
    read_ev_.reset(event_new(base, fd, EV_READ | EV_PERSIST, &Connection::onIo, this));
    write_ev_.reset(event_new(base, fd, EV_WRITE | EV_PERSIST, &Connection::onIo, this));
    if (!read_ev_ || !write_ev_) {
      read_ev_.reset();
      write_ev_.reset();
      ::close(fd);
      last_errno = ENOMEM;
      continue;
    }
    fd_ = fd;
    if (tracked_) tracked_->setFd(fd);
    tcp_connecting_ = true;
    event_add(read_ev_.get(), nullptr);
    setWriteInterest(true);  // writable = connected (or failed: SO_ERROR says)
    return;
  }
  fail(CloseSide::kRemote, Failure::kConnectFailed,
       std::string("cannot connect: ") +
           (last_errno != 0 ? std::strerror(last_errno) : "no address"));
}

void Connection::closeSocket() {
  if (write_ev_) event_del(write_ev_.get());
  if (read_ev_) event_del(read_ev_.get());
  write_interest_ = false;
  read_ev_.reset();
  write_ev_.reset();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (tracked_) tracked_->setFd(-1);
}

void Connection::finishTcpConnect() {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err == EINPROGRESS) return;
  if (err != 0) {
    // Try the next address of the host, if there is one.
    closeSocket();
    tcp_connecting_ = false;
    if (next_addr_ < addrs_.size()) {
      connectNext();
      return;
    }
    fail(CloseSide::kRemote, Failure::kConnectFailed,
         std::string("cannot connect: ") + std::strerror(err));
    return;
  }
  tcp_connecting_ = false;
  auto ssl = makeClientSsl(settings_.ssl_ctx, settings_.endpoint.host, fd_);
  if (!ssl) {
    fail(CloseSide::kLocal, Failure::kConnectFailed, ssl.error().message);
    return;
  }
  ssl_ = std::move(*ssl);
  handshaking_ = true;
  handshake();
}

void Connection::handshake() {
  ERR_clear_error();
  const int r = SSL_connect(ssl_.get());
  if (r == 1) {
    handshaking_ = false;
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(ssl_.get(), &alpn, &alpn_len);
    if (alpn == nullptr ||
        std::string_view(reinterpret_cast<const char*>(alpn), alpn_len) != "h2") {
      // Without h2 there is no HTTP/2: never fall back to HTTP/1.1.
      fail(CloseSide::kLocal, Failure::kAlpnRefused, "server did not select ALPN h2");
      return;
    }
    if (!startSession()) return;
    setWriteInterest(false);
    writeSome();
    return;
  }
  switch (SSL_get_error(ssl_.get(), r)) {
    case SSL_ERROR_WANT_READ:
      setWriteInterest(false);
      return;
    case SSL_ERROR_WANT_WRITE:
      setWriteInterest(true);
      return;
    default:
      break;
  }
  ssl_failed_ = true;
  const long verify = SSL_get_verify_result(ssl_.get());
  if (verify != X509_V_OK) {
    ERR_clear_error();
    fail(CloseSide::kLocal, Failure::kTlsVerifyFailed,
         std::string("server certificate rejected: ") + X509_verify_cert_error_string(verify));
    return;
  }
  fail(CloseSide::kRemote, Failure::kConnectFailed, "TLS handshake failed: " + sslErrorQueue());
}

bool Connection::startSession() {
  nghttp2_session* s = nullptr;
  nghttp2_mem mem = mem_.mem();
  // Accounting off: nghttp2 uses malloc directly (what the benchmark's
  // "instrumentation off" measures).
  const int rv =
      nghttp2_session_client_new3(&s, Callbacks::get(), this, nullptr, tracked_ ? &mem : nullptr);
  if (rv != 0) {
    fail(CloseSide::kLocal, Failure::kConnectFailed,
         std::string("nghttp2_session_client_new3: ") + nghttp2_strerror(rv));
    return false;
  }
  session_.reset(s);
  const nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
  if (nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, settings, 1) != 0) {
    fail(CloseSide::kLocal, Failure::kConnectFailed, "cannot queue SETTINGS");
    return false;
  }
  return true;
}

// ---- I/O -----------------------------------------------------------------

void Connection::onIo(int, short what, void* arg) {
  auto* c = static_cast<Connection*>(arg);
  c->io([c, what] {
    if ((what & EV_WRITE) != 0 && c->state_ != State::kClosed) {
      if (c->tcp_connecting_) {
        c->finishTcpConnect();
      } else if (c->handshaking_) {
        c->handshake();
      } else if (c->session_) {
        c->writeSome();
      }
    }
    if ((what & EV_READ) != 0 && c->state_ != State::kClosed && !c->close_requested_ &&
        !c->tcp_connecting_) {
      if (c->handshaking_) {
        c->handshake();
      } else if (c->session_) {
        c->readSome();
      }
    }
  });
}

void Connection::readSome() {
  static thread_local std::array<std::uint8_t, kReadChunk> buf;
  for (int i = 0; i < kMaxReadsPerEvent && !close_requested_; ++i) {
    ERR_clear_error();
    const int n = SSL_read(ssl_.get(), buf.data(), static_cast<int>(buf.size()));
    if (n > 0) {
      const ssize_t rv =
          nghttp2_session_mem_recv(session_.get(), buf.data(), static_cast<std::size_t>(n));
      if (rv < 0) {
        fail(CloseSide::kLocal, Failure::kConnectionLost,
             std::string("HTTP/2 protocol error: ") + nghttp2_strerror(static_cast<int>(rv)));
        return;
      }
      continue;
    }
    const int err = SSL_get_error(ssl_.get(), n);
    if (err == SSL_ERROR_WANT_READ) break;
    if (err == SSL_ERROR_WANT_WRITE) {
      setWriteInterest(true);
      break;
    }
    if (err == SSL_ERROR_ZERO_RETURN) {
      fail(CloseSide::kRemote, Failure::kConnectionLost, "server closed the TLS session");
      return;
    }
    ssl_failed_ = true;
    if (err == SSL_ERROR_SYSCALL) {
      const int e = errno;
      fail(CloseSide::kRemote, Failure::kConnectionLost,
           e == 0 ? std::string("server closed the connection")
                  : std::string("read failed: ") + std::strerror(e));
    } else {
      fail(CloseSide::kRemote, Failure::kConnectionLost, "TLS error: " + sslErrorQueue());
    }
    return;
  }
  writeSome();
}

void Connection::writeSome() {
  for (;;) {
    if (close_requested_ || state_ == State::kClosed) return;
    if (wbuf_.size() - woff_ < kWriteThreshold) {
      if (woff_ == wbuf_.size()) {
        wbuf_.clear();
        woff_ = 0;
      } else if (woff_ > kWriteThreshold) {
        wbuf_.erase(wbuf_.begin(), wbuf_.begin() + static_cast<std::ptrdiff_t>(woff_));
        woff_ = 0;
      }
      for (;;) {
        const std::uint8_t* data = nullptr;
        const ssize_t n = nghttp2_session_mem_send(session_.get(), &data);
        if (n < 0) {
          fail(CloseSide::kLocal, Failure::kConnectionLost,
               std::string("HTTP/2 send error: ") + nghttp2_strerror(static_cast<int>(n)));
          return;
        }
        if (n == 0) break;
        wbuf_.insert(wbuf_.end(), data, data + n);
        if (wbuf_.size() - woff_ >= kWriteThreshold) break;
      }
    }
    if (woff_ == wbuf_.size()) {
      setWriteInterest(false);
      return;
    }
    ERR_clear_error();
    const std::size_t left = std::min<std::size_t>(wbuf_.size() - woff_, INT_MAX);
    const int n = SSL_write(ssl_.get(), wbuf_.data() + woff_, static_cast<int>(left));
    if (n > 0) {
      woff_ += static_cast<std::size_t>(n);
      continue;
    }
    const int err = SSL_get_error(ssl_.get(), n);
    if (err == SSL_ERROR_WANT_WRITE) {
      setWriteInterest(true);
      return;
    }
    if (err == SSL_ERROR_WANT_READ) return;  // the read event is always on
    ssl_failed_ = true;
    // The loop thread blocks SIGPIPE: a peer that went away shows as EPIPE.
    const int e = errno;
    fail(CloseSide::kRemote, Failure::kConnectionLost,
         err == SSL_ERROR_SYSCALL ? std::string("write failed: ") + std::strerror(e)
                                  : "TLS error: " + sslErrorQueue());
    return;
  }
}

void Connection::afterIo() {
  for (;;) {
    if (state_ == State::kClosed) return;
    if (close_requested_) {
      closeNow(close_side_, pending_close_reason_);
      return;
    }
    if (!session_) return;  // still connecting
    if (state_ == State::kDraining && streams_.empty() && !terminated_) {
      // Our GOAWAY (NO_ERROR); nghttp2 stops wanting to read once it is out.
      terminated_ = true;
      nghttp2_session_terminate_session(session_.get(), NGHTTP2_NO_ERROR);
      in_io_ = true;
      writeSome();
      in_io_ = false;
      continue;
    }
    if (nghttp2_session_want_read(session_.get()) == 0 &&
        nghttp2_session_want_write(session_.get()) == 0 && woff_ == wbuf_.size()) {
      closeNow(drain_side_, Failure::kConnectionLost);
      return;
    }
    updateBytes();
    return;
  }
}

void Connection::setWriteInterest(bool on) {
  if (on == write_interest_ || !write_ev_) return;
  write_interest_ = on;
  if (on) {
    event_add(write_ev_.get(), nullptr);
  } else {
    event_del(write_ev_.get());
  }
}

void Connection::flush() {
  if (state_ == State::kClosed || !session_) return;
  io([this] { writeSome(); });
}

// ---- streams -------------------------------------------------------------

std::uint32_t Connection::streamLimit() const {
  return std::min(remote_max_streams_, settings_.max_streams);
}

std::uint32_t Connection::freeStreams() const {
  if (state_ != State::kReady && state_ != State::kBusy) return 0;
  const std::uint32_t limit = streamLimit();
  return streams_.size() >= limit ? 0 : limit - static_cast<std::uint32_t>(streams_.size());
}

void Connection::updateState() {
  if (state_ == State::kReady || state_ == State::kBusy) {
    state_ = streams_.size() >= streamLimit() ? State::kBusy : State::kReady;
  }
  if (!idle_timer_) return;
  if (streams_.empty() && (state_ == State::kReady)) {
    if (evtimer_pending(idle_timer_.get(), nullptr) == 0) {
      const timeval tv = toTimeval(settings_.idle_timeout);
      evtimer_add(idle_timer_.get(), &tv);
    }
  } else {
    evtimer_del(idle_timer_.get());
  }
}

void Connection::submit(std::unique_ptr<Exchange> ex) {
  if (authority_.empty()) {
    const Endpoint& ep = settings_.endpoint;
    authority_ = ep.port == 443 ? ep.host : ep.host + ":" + std::to_string(ep.port);
  }
  std::vector<nghttp2_nv>& nva = nva_;  // reused: no allocation per request
  nva.clear();
  nva.push_back(nv(":method", ex->request.method));
  nva.push_back(nv(":scheme", "https"));
  nva.push_back(nv(":authority", authority_));
  nva.push_back(nv(":path", ex->request.path));
  for (const auto& h : ex->request.headers) nva.push_back(nv(h.name, h.value));
  if (ex->request.authorization) nva.push_back(nv("authorization", *ex->request.authorization));
  nghttp2_data_provider body{};
  body.source.ptr = ex.get();
  body.read_callback = &Callbacks::readBody;
  ex->resetAttempt();
  const std::int32_t id =
      nghttp2_submit_request(session_.get(), nullptr, nva.data(), nva.size(),
                             ex->request.body.empty() ? nullptr : &body, ex.get());
  if (id < 0) {
    // Stream ids used up, or the session is going away: this connection
    // takes no more, the request goes to another one untouched.
    log(std::string("cannot open a stream: ") + nghttp2_strerror(id));
    owner_.onExchangeDone(std::move(ex), {Failure::kRefusedStream, -1});
    drain(CloseSide::kLocal);
    return;
  }
  ex->stream_id = id;
  ex->sent_at = std::chrono::steady_clock::now();
  ex->accounted_bytes =
      sizeof(Exchange) + ex->request.path.capacity() + ex->request.body.capacity();
  stream_bytes_ += ex->accounted_bytes;
  streams_.emplace(id, std::move(ex));
  if (UpstreamStats* s = settings_.stats) s->rqStarted();
  updateState();
}

void Connection::onStreamClose(std::int32_t stream_id, std::uint32_t error_code) {
  const auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;  // already handed back (timed out, aborted)
  std::unique_ptr<Exchange> ex = takeStream(it);
  nghttp2_session_set_stream_user_data(session_.get(), stream_id, nullptr);
  if (UpstreamStats* s = settings_.stats) s->rqFinished();
  Failure f = Failure::kNone;
  if (ex->complete && ex->response.status != 0) {
    f = Failure::kNone;
  } else if (error_code == NGHTTP2_REFUSED_STREAM && ex->response.status == 0) {
    // RST_STREAM(REFUSED_STREAM), or above the last stream id of a GOAWAY:
    // the server guarantees it did not process the request.
    f = Failure::kRefusedStream;
  } else if (close_requested_) {
    f = Failure::kConnectionLost;
  } else {
    f = Failure::kStreamReset;
  }
  const double secs = secondsSince(ex->sent_at);
  owner_.onExchangeDone(std::move(ex), {f, secs});
  updateState();
  owner_.onCapacity();
}

void Connection::onFrameRecv(const nghttp2_frame* frame) {
  received_since_tick_ = true;
  switch (frame->hd.type) {
    case NGHTTP2_SETTINGS: {
      if ((frame->hd.flags & NGHTTP2_FLAG_ACK) != 0) return;
      remote_max_streams_ = nghttp2_session_get_remote_settings(
          session_.get(), NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
      if (!settings_received_) {
        settings_received_ = true;
        if (state_ != State::kConnecting) return;
        state_ = State::kReady;
        ever_ready_ = true;
        evtimer_del(connect_timer_.get());
        event_base* base = loop_.base();
        if (settings_.idle_timeout.count() > 0) {
          idle_timer_.reset(evtimer_new(base, &Connection::onIdle, this));
        }
        if (settings_.ping_interval.count() > 0) {
          ping_timer_.reset(event_new(base, -1, EV_PERSIST, &Connection::onPingTick, this));
          ping_timeout_timer_.reset(evtimer_new(base, &Connection::onPingTimeout, this));
          const timeval tv = toTimeval(settings_.ping_interval);
          if (ping_timer_) event_add(ping_timer_.get(), &tv);
        }
        updateState();
        owner_.onReady(*this);
      } else {
        // SETTINGS_MAX_CONCURRENT_STREAMS may go up or down mid-connection.
        updateState();
        owner_.onCapacity();
      }
      return;
    }
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA:
      if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
        auto* ex = static_cast<Exchange*>(
            nghttp2_session_get_stream_user_data(session_.get(), frame->hd.stream_id));
        if (ex != nullptr) ex->complete = true;
      }
      return;
    case NGHTTP2_PING:
      if ((frame->hd.flags & NGHTTP2_FLAG_ACK) != 0) {
        ping_outstanding_ = false;
        if (ping_timeout_timer_) evtimer_del(ping_timeout_timer_.get());
      }
      return;
    case NGHTTP2_GOAWAY:
      if (UpstreamStats* s = settings_.stats) s->goawayReceived();
      log("GOAWAY received (error " + std::to_string(frame->goaway.error_code) + ", last stream " +
          std::to_string(frame->goaway.last_stream_id) + "); draining");
      drain(CloseSide::kRemote);
      return;
    default:
      return;
  }
}

int Connection::expire(SteadyTime now) {
  if (state_ == State::kClosed || streams_.empty()) return 0;
  std::vector<std::unique_ptr<Exchange>> expired;
  for (auto it = streams_.begin(); it != streams_.end();) {
    if (it->second->deadline > now) {
      ++it;
      continue;
    }
    nghttp2_session_set_stream_user_data(session_.get(), it->first, nullptr);
    nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, it->first, NGHTTP2_CANCEL);
    const auto next = std::next(it);
    expired.push_back(takeStream(it));
    it = next;
  }
  if (expired.empty()) return 0;
  for (auto& ex : expired) {
    if (UpstreamStats* s = settings_.stats) s->rqFinished();
    const double secs = secondsSince(ex->sent_at);
    owner_.onExchangeDone(std::move(ex), {Failure::kTimeout, secs});
  }
  // A request that got no answer may mean a dead peer: check now rather
  // than at the next ping tick.
  checkHealth();
  updateState();
  owner_.onCapacity();
  flush();
  return static_cast<int>(expired.size());
}

void Connection::abortStreams(Failure why) {
  if (state_ == State::kClosed || streams_.empty()) return;
  auto streams = std::move(streams_);
  streams_.clear();
  stream_bytes_ = 0;
  for (auto& [id, ex] : streams) {
    nghttp2_session_set_stream_user_data(session_.get(), id, nullptr);
    nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    if (UpstreamStats* s = settings_.stats) s->rqFinished();
    const double secs = secondsSince(ex->sent_at);
    owner_.onExchangeDone(std::move(ex), {why, secs});
  }
  updateState();
  flush();
}

void Connection::checkHealth() {
  if (ping_outstanding_ || !session_ || !ping_timeout_timer_ || state_ == State::kClosed) return;
  if (nghttp2_submit_ping(session_.get(), NGHTTP2_FLAG_NONE, nullptr) != 0) return;
  ping_outstanding_ = true;
  const timeval tv = toTimeval(settings_.ping_timeout);
  evtimer_add(ping_timeout_timer_.get(), &tv);
  flush();
}

void Connection::drain(CloseSide side) {
  if (state_ == State::kClosed || state_ == State::kDraining) return;
  if (state_ == State::kConnecting) {
    close(side, Failure::kShutdown);
    return;
  }
  state_ = State::kDraining;
  drain_side_ = side;
  if (idle_timer_) evtimer_del(idle_timer_.get());
  // afterIo() sends our GOAWAY and closes once the streams are done.
  io([] {});
}

void Connection::fail(CloseSide side, Failure why, const std::string& detail) {
  if (state_ == State::kClosed || close_requested_) return;
  log(detail);
  close(side, why);
}

void Connection::close(CloseSide side, Failure why) {
  if (state_ == State::kClosed) return;
  if (in_io_) {
    if (!close_requested_) {
      close_requested_ = true;
      close_side_ = side;
      pending_close_reason_ = why;
    }
    return;
  }
  closeNow(side, why);
}

void Connection::closeNow(CloseSide side, Failure why) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  close_reason_ = why;
  if (dns_ != nullptr) {
    // The resolver callback still owns the waiter; it will find no one home.
    dns_->conn = nullptr;
    if (dns_->request != nullptr) evdns_getaddrinfo_cancel(dns_->request);
    dns_ = nullptr;
  }
  const bool had_streams = !streams_.empty();
  // Hand back what was in flight. A request whose HEADERS never left
  // nghttp2 was not seen by the server: safe to send elsewhere.
  auto streams = std::move(streams_);
  streams_.clear();
  stream_bytes_ = 0;
  std::vector<std::pair<std::unique_ptr<Exchange>, ExchangeResult>> back;
  for (auto& [id, ex] : streams) {
    if (session_) nghttp2_session_set_stream_user_data(session_.get(), id, nullptr);
    if (UpstreamStats* s = settings_.stats) s->rqFinished();
    const Failure f = !ex->headers_sent       ? Failure::kRefusedStream
                      : why == Failure::kNone ? Failure::kConnectionLost
                                              : why;
    const double secs = secondsSince(ex->sent_at);
    back.emplace_back(std::move(ex), ExchangeResult{f, secs});
  }
  if (ssl_ && session_ && !ssl_failed_) {
    // close_notify, best effort: the socket is non-blocking and we do not wait
    // for the server's.
    ERR_clear_error();
    SSL_shutdown(ssl_.get());
    ERR_clear_error();
  }
  ping_timeout_timer_.reset();
  ping_timer_.reset();
  idle_timer_.reset();
  connect_timer_.reset();
  session_.reset();
  ssl_.reset();
  closeSocket();
  wbuf_.clear();
  wbuf_.shrink_to_fit();
  woff_ = 0;
  if (tracked_) tracked_->release();
  if (UpstreamStats* s = settings_.stats) s->cxDestroyed(side, had_streams);
  for (auto& [ex, result] : back) owner_.onExchangeDone(std::move(ex), result);
  owner_.onClosed(*this);
}

// ---- timers ----------------------------------------------------------------

void Connection::onConnectTimeout(int, short, void* arg) {
  auto* c = static_cast<Connection*>(arg);
  c->fail(CloseSide::kLocal, Failure::kConnectFailed, "connect timed out");
}

void Connection::onIdle(int, short, void* arg) {
  auto* c = static_cast<Connection*>(arg);
  if (!c->streams_.empty() || c->state_ != State::kReady) return;
  if (UpstreamStats* s = c->settings_.stats) s->cxIdleTimeout();
  c->drain(CloseSide::kLocal);
}

void Connection::onPingTick(int, short, void* arg) {
  auto* c = static_cast<Connection*>(arg);
  // Only a quiet connection is pinged: frames arriving prove it alive.
  if (!c->received_since_tick_) c->checkHealth();
  c->received_since_tick_ = false;
}

void Connection::onPingTimeout(int, short, void* arg) {
  auto* c = static_cast<Connection*>(arg);
  if (UpstreamStats* s = c->settings_.stats) s->cxPingTimeout();
  c->fail(CloseSide::kLocal, Failure::kConnectionLost, "PING not answered in time; closing");
}

}  // namespace leakscope::push::detail
