// mock-push-server: a real HTTP/2 + TLS server (nghttp2 server API, OpenSSL,
// libevent) speaking APNs, FCM HTTP v1 and the OAuth2 token endpoint, for
// the push transport's tests and benchmarks. Protocol logic: push_logic.h.
//
//   mock-push-server --cert server.pem --key server.key [options]
//
// Listens on 127.0.0.1 only, on --port (0: any free port) for HTTP/2 and on
// --control-port (0: any) for a plain HTTP/1.1 control endpoint, and prints
//   port=N
//   control_port=M
// on stdout once both listen. Control endpoint (JSON in and out):
//   GET  /control/stats      open/peak/accepted connections, requests, ...
//   GET  /control/received   what was received (APNs and FCM requests)
//   POST /control/faults     {"delay_ms":..,"fail":{..},"goaway_after_streams":..,
//                             "rst":{..},"close_after_requests":..,"refuse_connections":..,
//                             "stall":..,"oauth_fail":{..},"max_concurrent_streams":..}
//   POST /control/rules      [{"prefix":"dead","status":410,"reason":"Unregistered"},..]
//   POST /control/clock      {"offset_s": N}   (the mock's clock, for JWT ages)
//   POST /control/reset      clears records and counters; peak = open now
// Options: --client-ca FILE (verify client certificates: APNs certificate
// auth), --apns-key FILE --apns-key-id ID --apns-team-id ID, --topic T
// (repeatable), --fcm-key FILE --fcm-client-email E --fcm-project P,
// --token-lifetime S, --rule PREFIX=STATUS:REASON (repeatable),
// --max-concurrent-streams N, --alpn h2|none, --max-records N,
// --fault JSON (as POST /control/faults).
// SIGTERM/SIGINT: closes every connection and exits 0.
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "push_logic.h"

namespace {

struct EventFree {
  void operator()(event* e) const { event_free(e); }
};
using EventPtr = std::unique_ptr<event, EventFree>;
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};
struct SessionFree {
  void operator()(nghttp2_session* s) const { nghttp2_session_del(s); }
};

class Server;
class Conn;

struct Stream {
  Conn* conn = nullptr;
  std::int32_t id = 0;
  mock::Request request;
  mock::Reply reply;
  std::size_t body_offset = 0;
  bool dispatched = false;
  EventPtr delay_timer;
};

class Conn {
 public:
  Conn(Server& server, int fd, std::uint64_t id);
  ~Conn();
  void start();
  void onIo(short what);
  void respond(Stream& s);
  void pauseIo(bool paused);
  void submitSettings(std::uint32_t max_streams);
  void abort();  // TCP RST, now (or right after the current I/O)
  bool closed() const { return closed_; }
  std::uint64_t id() const { return id_; }

  // nghttp2 callbacks
  void onStreamStart(std::int32_t id);
  void onRequestComplete(std::int32_t id);
  void onStreamClosed(std::int32_t id);
  void onSettingsAck();
  static void onDelay(int, short, void* arg);
  Stream* stream(std::int32_t id) {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
  }

 private:
  void handshake();
  void readSome();
  void writeSome();
  void after();
  void closeNow();

  Server& server_;
  int fd_;
  std::uint64_t id_;
  std::unique_ptr<SSL, SslFree> ssl_;
  std::unique_ptr<nghttp2_session, SessionFree> session_;
  EventPtr read_ev_;
  EventPtr write_ev_;
  bool write_interest_ = false;
  bool handshaking_ = true;
  bool closed_ = false;
  bool abort_ = false;
  bool in_io_ = false;
  bool paused_ = false;
  int requests_ = 0;
  std::int32_t goaway_last_ = 0;  // 0: no GOAWAY sent
  std::map<std::int32_t, std::unique_ptr<Stream>> streams_;
  std::vector<std::uint8_t> wbuf_;
  std::size_t woff_ = 0;
  bool client_cert_ok_ = false;
};

class Server {
 public:
  Server(event_base* base, SSL_CTX* ctx, mock::Logic& logic, std::uint32_t max_streams)
      : base_(base), ctx_(ctx), logic_(logic), max_streams_(max_streams) {}

  bool listen(std::uint16_t port);
  std::uint16_t port() const { return port_; }
  event_base* base() const { return base_; }
  SSL_CTX* ctx() const { return ctx_; }
  mock::Logic& logic() { return logic_; }
  std::uint32_t maxStreams() const { return max_streams_; }
  bool stalled() const { return logic_.faults().stall; }

  // Applies faults (logic and server side); an error text or "".
  std::string setFaults(const nlohmann::json& j);
  void connClosed(Conn& c);
  void noteStreams(std::size_t open) { peak_streams_ = std::max(peak_streams_, open); }
  void settingsAcked() { ++settings_acks_; }
  void goawaySent() { ++goaways_; }
  nlohmann::json stats() const;
  void reset();
  void closeAll();

 private:
  static void onAccept(int fd, short, void* arg);
  static void onReap(int, short, void* arg);
  void stopListening();

  event_base* base_;
  SSL_CTX* ctx_;
  mock::Logic& logic_;
  std::uint32_t max_streams_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  EventPtr accept_ev_;
  EventPtr reap_ev_;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, std::unique_ptr<Conn>> conns_;
  std::size_t open_ = 0;
  std::size_t peak_open_ = 0;
  std::uint64_t accepted_ = 0;
  std::uint64_t closed_ = 0;
  std::size_t peak_streams_ = 0;
  std::uint64_t settings_acks_ = 0;
  std::uint64_t goaways_ = 0;
};

// ---- nghttp2 server callbacks --------------------------------------------

Conn& conn(void* ud) { return *static_cast<Conn*>(ud); }

int onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    conn(ud).onStreamStart(frame->hd.stream_id);
  }
  return 0;
}

int onHeader(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name,
             std::size_t namelen, const std::uint8_t* value, std::size_t valuelen, std::uint8_t,
             void* ud) {
  Stream* s = conn(ud).stream(frame->hd.stream_id);
  if (s == nullptr) return 0;
  const std::string n(reinterpret_cast<const char*>(name), namelen);
  std::string v(reinterpret_cast<const char*>(value), valuelen);
  if (n == ":method") {
    s->request.method = std::move(v);
  } else if (n == ":path") {
    s->request.path = std::move(v);
  } else if (!n.empty() && n[0] != ':') {
    s->request.headers.emplace_back(n, std::move(v));
  }
  return 0;
}

int onData(nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* data,
           std::size_t len, void* ud) {
  Stream* s = conn(ud).stream(id);
  if (s != nullptr && s->request.body.size() < 1 << 20) {
    s->request.body.append(reinterpret_cast<const char*>(data), len);
  }
  return 0;
}

int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
  if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
    conn(ud).onRequestComplete(frame->hd.stream_id);
  }
  if (frame->hd.type == NGHTTP2_SETTINGS && (frame->hd.flags & NGHTTP2_FLAG_ACK) != 0) {
    conn(ud).onSettingsAck();
  }
  return 0;
}

int onStreamClose(nghttp2_session*, std::int32_t id, std::uint32_t, void* ud) {
  conn(ud).onStreamClosed(id);
  return 0;
}

ssize_t readReply(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length,
                  std::uint32_t* flags, nghttp2_data_source* source, void*) {
  auto* s = static_cast<Stream*>(source->ptr);
  const std::string& body = s->reply.body;
  const std::size_t n = std::min(length, body.size() - s->body_offset);
  std::memcpy(buf, body.data() + s->body_offset, n);
  s->body_offset += n;
  if (s->body_offset == body.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

nghttp2_session_callbacks* callbacks() {
  static nghttp2_session_callbacks* cbs = [] {
    nghttp2_session_callbacks* c = nullptr;
    nghttp2_session_callbacks_new(&c);
    nghttp2_session_callbacks_set_on_begin_headers_callback(c, onBeginHeaders);
    nghttp2_session_callbacks_set_on_header_callback(c, onHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(c, onData);
    nghttp2_session_callbacks_set_on_frame_recv_callback(c, onFrameRecv);
    nghttp2_session_callbacks_set_on_stream_close_callback(c, onStreamClose);
    return c;
  }();
  return cbs;
}

nghttp2_nv nv(const std::string& name, const std::string& value) {
  return nghttp2_nv{const_cast<std::uint8_t*>(reinterpret_cast<const std::uint8_t*>(name.data())),
                    const_cast<std::uint8_t*>(reinterpret_cast<const std::uint8_t*>(value.data())),
                    name.size(), value.size(), NGHTTP2_NV_FLAG_NONE};
}

// ---- Conn ------------------------------------------------------------------

Conn::Conn(Server& server, int fd, std::uint64_t id) : server_(server), fd_(fd), id_(id) {}

Conn::~Conn() {
  if (!closed_) closeNow();
}

void Conn::start() {
  ssl_.reset(SSL_new(server_.ctx()));
  SSL_set_fd(ssl_.get(), fd_);
  SSL_set_accept_state(ssl_.get());
  read_ev_.reset(event_new(
      server_.base(), fd_, EV_READ | EV_PERSIST,
      [](int, short w, void* a) { static_cast<Conn*>(a)->onIo(w); }, this));
  write_ev_.reset(event_new(
      server_.base(), fd_, EV_WRITE | EV_PERSIST,
      [](int, short w, void* a) { static_cast<Conn*>(a)->onIo(w); }, this));
  if (server_.stalled()) {
    paused_ = true;  // accepted, but nothing happens until the stall ends
    return;
  }
  event_add(read_ev_.get(), nullptr);
}

void Conn::pauseIo(bool paused) {
  if (closed_ || paused == paused_) return;
  paused_ = paused;
  if (paused) {
    event_del(read_ev_.get());
    event_del(write_ev_.get());
    write_interest_ = false;
    return;
  }
  event_add(read_ev_.get(), nullptr);
  in_io_ = true;
  if (handshaking_) {
    handshake();
  } else {
    readSome();
    writeSome();
  }
  in_io_ = false;
  after();
}

void Conn::onIo(short what) {
  if (closed_ || paused_) return;
  in_io_ = true;
  if (handshaking_) {
    handshake();
  } else {
    if ((what & EV_READ) != 0) readSome();
    writeSome();
  }
  in_io_ = false;
  after();
}

void Conn::handshake() {
  ERR_clear_error();
  const int r = SSL_do_handshake(ssl_.get());
  if (r != 1) {
    const int err = SSL_get_error(ssl_.get(), r);
    if (err == SSL_ERROR_WANT_READ) return;
    if (err == SSL_ERROR_WANT_WRITE) {
      if (!write_interest_) event_add(write_ev_.get(), nullptr);
      write_interest_ = true;
      return;
    }
    ERR_clear_error();
    abort_ = true;  // failed handshake (e.g. the client rejected our certificate)
    return;
  }
  handshaking_ = false;
  X509* peer = SSL_get1_peer_certificate(ssl_.get());
  client_cert_ok_ = peer != nullptr && SSL_get_verify_result(ssl_.get()) == X509_V_OK;
  X509_free(peer);
  nghttp2_session* s = nullptr;
  nghttp2_session_server_new(&s, callbacks(), this);
  session_.reset(s);
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, server_.maxStreams()}};
  nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, settings, 1);
  readSome();
  writeSome();
}

void Conn::readSome() {
  std::uint8_t buf[16384];
  for (;;) {
    if (abort_ || closed_) return;
    ERR_clear_error();
    const int n = SSL_read(ssl_.get(), buf, sizeof buf);
    if (n > 0) {
      if (nghttp2_session_mem_recv(session_.get(), buf, static_cast<std::size_t>(n)) < 0) {
        abort_ = true;
        return;
      }
      continue;
    }
    const int err = SSL_get_error(ssl_.get(), n);
    if (err == SSL_ERROR_WANT_READ) return;
    if (err == SSL_ERROR_WANT_WRITE) {
      if (!write_interest_) event_add(write_ev_.get(), nullptr);
      write_interest_ = true;
      return;
    }
    ERR_clear_error();
    abort_ = true;  // EOF or error: the client went away
    return;
  }
}

void Conn::writeSome() {
  if (!session_) return;
  for (;;) {
    if (abort_ || closed_) return;
    if (woff_ == wbuf_.size()) {
      wbuf_.clear();
      woff_ = 0;
      for (;;) {
        const std::uint8_t* data = nullptr;
        const ssize_t n = nghttp2_session_mem_send(session_.get(), &data);
        if (n < 0) {
          abort_ = true;
          return;
        }
        if (n == 0) break;
        wbuf_.insert(wbuf_.end(), data, data + n);
        if (wbuf_.size() > 65536) break;
      }
      if (wbuf_.empty()) break;
    }
    ERR_clear_error();
    const int n = SSL_write(ssl_.get(), wbuf_.data() + woff_,
                            static_cast<int>(std::min<std::size_t>(wbuf_.size() - woff_, INT_MAX)));
    if (n > 0) {
      woff_ += static_cast<std::size_t>(n);
      continue;
    }
    const int err = SSL_get_error(ssl_.get(), n);
    if (err == SSL_ERROR_WANT_WRITE) {
      if (!write_interest_) event_add(write_ev_.get(), nullptr);
      write_interest_ = true;
      return;
    }
    if (err == SSL_ERROR_WANT_READ) return;
    ERR_clear_error();
    abort_ = true;
    return;
  }
  if (write_interest_) event_del(write_ev_.get());
  write_interest_ = false;
}

void Conn::after() {
  if (closed_ || in_io_) return;
  if (abort_) {
    closeNow();
    return;
  }
  if (session_ && nghttp2_session_want_read(session_.get()) == 0 &&
      nghttp2_session_want_write(session_.get()) == 0 && woff_ == wbuf_.size()) {
    closeNow();
  }
}

void Conn::abort() {
  // SO_LINGER 0: close() sends RST, like a server that crashed.
  const linger l{1, 0};
  setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  abort_ = true;
  after();
}

void Conn::closeNow() {
  if (closed_) return;
  closed_ = true;
  for (auto& [id, s] : streams_) {
    const bool waiting = s->delay_timer && evtimer_pending(s->delay_timer.get(), nullptr) != 0;
    if (!s->dispatched) server_.logic().unprocessed();
    if (waiting) server_.logic().unprocessed(&s->reply);
  }
  streams_.clear();
  read_ev_.reset();
  write_ev_.reset();
  if (ssl_ && !abort_) SSL_shutdown(ssl_.get());
  ERR_clear_error();
  session_.reset();
  ssl_.reset();
  ::close(fd_);
  fd_ = -1;
  server_.logic().connectionClosed(id_);
  server_.connClosed(*this);
}

void Conn::onStreamStart(std::int32_t id) {
  auto s = std::make_unique<Stream>();
  s->conn = this;
  s->id = id;
  s->request.connection = id_;
  s->request.stream = id;
  s->request.client_cert_verified = client_cert_ok_;
  streams_[id] = std::move(s);
  server_.noteStreams(streams_.size());
}

void Conn::onRequestComplete(std::int32_t id) {
  Stream* s = stream(id);
  if (s == nullptr || s->dispatched) return;
  s->dispatched = true;
  if (abort_ || (goaway_last_ != 0 && id > goaway_last_)) {
    server_.logic().unprocessed();  // above our GOAWAY: never processed
    return;
  }
  s->request.connection_requests = ++requests_;
  s->reply = server_.logic().handle(s->request);
  switch (s->reply.action) {
    case mock::Reply::Action::kClose:
      abort();
      return;
    case mock::Reply::Action::kReset:
      nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, id, s->reply.rst_code);
      return;
    case mock::Reply::Action::kRespond:
      break;
  }
  if (s->reply.goaway_after) goaway_last_ = id;
  if (s->reply.delay_ms > 0) {
    s->delay_timer.reset(evtimer_new(server_.base(), &Conn::onDelay, s));
    const timeval tv{s->reply.delay_ms / 1000, (s->reply.delay_ms % 1000) * 1000};
    evtimer_add(s->delay_timer.get(), &tv);
    return;
  }
  respond(*s);
}

void Conn::onDelay(int, short, void* a) {
  auto* st = static_cast<Stream*>(a);
  Conn* c = st->conn;
  if (c->server_.stalled()) {  // hold answers while stalled
    const timeval tv{0, 50000};
    evtimer_add(st->delay_timer.get(), &tv);
    return;
  }
  c->respond(*st);
  c->in_io_ = true;
  c->writeSome();
  c->in_io_ = false;
  c->after();
}

void Conn::respond(Stream& s) {
  const std::string status = std::to_string(s.reply.status);
  std::vector<nghttp2_nv> nva;
  const std::string status_name = ":status";
  nva.push_back(nv(status_name, status));
  for (const auto& [n, v] : s.reply.headers) nva.push_back(nv(n, v));
  nghttp2_data_provider prd{};
  prd.source.ptr = &s;
  prd.read_callback = readReply;
  const std::int32_t id = s.id;
  const bool goaway = s.reply.goaway_after;
  nghttp2_submit_response(session_.get(), id, nva.data(), nva.size(),
                          s.reply.body.empty() ? nullptr : &prd);
  if (goaway) {
    // Streams above `id` are refused; nghttp2 closes them once it is sent.
    nghttp2_submit_goaway(session_.get(), NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR, nullptr, 0);
    server_.goawaySent();
  }
}

void Conn::onStreamClosed(std::int32_t id) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  // Closed before we answered (client reset it, or above our GOAWAY).
  if (it->second->dispatched && it->second->delay_timer &&
      evtimer_pending(it->second->delay_timer.get(), nullptr) != 0) {
    server_.logic().unprocessed(&it->second->reply);
  }
  streams_.erase(it);
}

void Conn::onSettingsAck() { server_.settingsAcked(); }

void Conn::submitSettings(std::uint32_t max_streams) {
  if (closed_ || !session_) return;
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_streams}};
  nghttp2_submit_settings(session_.get(), NGHTTP2_FLAG_NONE, settings, 1);
  if (paused_) return;
  in_io_ = true;
  writeSome();
  in_io_ = false;
  after();
}

// ---- Server ------------------------------------------------------------------

bool Server::listen(std::uint16_t port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listen_fd_, 512) != 0) {
    std::perror("mock-push-server: bind/listen");
    ::close(listen_fd_);
    listen_fd_ = -1;
    return false;
  }
  socklen_t len = sizeof a;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  accept_ev_.reset(event_new(base_, listen_fd_, EV_READ | EV_PERSIST, &Server::onAccept, this));
  event_add(accept_ev_.get(), nullptr);
  if (!reap_ev_) reap_ev_.reset(event_new(base_, -1, 0, &Server::onReap, this));
  return true;
}

void Server::stopListening() {
  accept_ev_.reset();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
}

void Server::onAccept(int fd, short, void* arg) {
  auto* self = static_cast<Server*>(arg);
  for (;;) {
    const int c = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) return;
    const int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const std::uint64_t id = self->next_id_++;
    ++self->accepted_;
    ++self->open_;
    self->peak_open_ = std::max(self->peak_open_, self->open_);
    auto conn = std::make_unique<Conn>(*self, c, id);
    Conn* raw = conn.get();
    self->conns_[id] = std::move(conn);
    raw->start();
  }
}

void Server::connClosed(Conn&) {
  --open_;
  ++closed_;
  event_active(reap_ev_.get(), 0, 0);
}

void Server::onReap(int, short, void* arg) {
  auto* self = static_cast<Server*>(arg);
  for (auto it = self->conns_.begin(); it != self->conns_.end();) {
    it = it->second->closed() ? self->conns_.erase(it) : std::next(it);
  }
}

std::string Server::setFaults(const nlohmann::json& j) {
  const bool was_stalled = stalled();
  const bool was_refusing = logic_.faults().refuse_connections;
  const std::string err = logic_.setFaults(j);
  if (!err.empty()) return err;
  if (j.contains("max_concurrent_streams")) {
    max_streams_ = j["max_concurrent_streams"].get<std::uint32_t>();
    for (auto& [id, c] : conns_) c->submitSettings(max_streams_);
  }
  const bool stall = stalled();
  if (stall != was_stalled) {
    std::vector<Conn*> all;
    for (auto& [id, c] : conns_) all.push_back(c.get());
    for (Conn* c : all) c->pauseIo(stall);
  }
  const bool refuse = logic_.faults().refuse_connections;
  if (refuse && !was_refusing) stopListening();
  if (!refuse && was_refusing) listen(port_);
  return "";
}

nlohmann::json Server::stats() const {
  nlohmann::json j = logic_.stats();
  j["open_connections"] = open_;
  j["peak_open_connections"] = peak_open_;
  j["accepted_connections"] = accepted_;
  j["closed_connections"] = closed_;
  j["peak_streams_per_connection"] = peak_streams_;
  j["settings_acks"] = settings_acks_;
  j["goaways_sent"] = goaways_;
  j["max_concurrent_streams"] = max_streams_;
  return j;
}

void Server::reset() {
  logic_.reset();
  peak_open_ = open_;
  accepted_ = 0;
  closed_ = 0;
  peak_streams_ = 0;
  settings_acks_ = 0;
  goaways_ = 0;
}

void Server::closeAll() {
  stopListening();
  for (auto& [id, c] : conns_) c->abort();
  conns_.clear();
  reap_ev_.reset();  // before the base goes
}

// ---- control endpoint --------------------------------------------------------

struct Control {
  Server* server;
  mock::Logic* logic;
};

void reply(evhttp_request* req, int code, const std::string& body) {
  evbuffer* out = evbuffer_new();
  evbuffer_add(out, body.data(), body.size());
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
  evhttp_send_reply(req, code, code == 200 ? "OK" : "Bad Request", out);
  evbuffer_free(out);
}

void onControl(evhttp_request* req, void* arg) {
  auto* c = static_cast<Control*>(arg);
  const std::string path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
  const auto method = evhttp_request_get_command(req);
  evbuffer* in = evhttp_request_get_input_buffer(req);
  std::string body(evbuffer_get_length(in), '\0');
  evbuffer_copyout(in, body.data(), body.size());
  const auto json =
      body.empty() ? nlohmann::json::object() : nlohmann::json::parse(body, nullptr, false);
  if (method == EVHTTP_REQ_GET && path == "/control/stats") {
    reply(req, 200, c->server->stats().dump());
  } else if (method == EVHTTP_REQ_GET && path == "/control/received") {
    reply(req, 200, c->logic->received().dump());
  } else if (method == EVHTTP_REQ_POST && path == "/control/faults") {
    const std::string err = c->server->setFaults(json);
    reply(req, err.empty() ? 200 : 400, nlohmann::json{{"error", err}}.dump());
  } else if (method == EVHTTP_REQ_POST && path == "/control/rules") {
    const std::string err = c->logic->setRules(json);
    reply(req, err.empty() ? 200 : 400, nlohmann::json{{"error", err}}.dump());
  } else if (method == EVHTTP_REQ_POST && path == "/control/clock" && json.is_object()) {
    c->logic->setClockOffset(std::chrono::seconds(json.value("offset_s", 0)));
    reply(req, 200, "{}");
  } else if (method == EVHTTP_REQ_POST && path == "/control/reset") {
    c->server->reset();
    reply(req, 200, "{}");
  } else {
    reply(req, 404, R"({"error":"unknown control request"})");
  }
}

int alpnSelect(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void* arg) {
  if (static_cast<const std::string*>(arg)->empty()) return SSL_TLSEXT_ERR_NOACK;
  for (unsigned int i = 0; i < inlen;) {
    const unsigned int len = in[i];
    if (i + 1 + len > inlen) break;
    if (std::string_view(reinterpret_cast<const char*>(in + i + 1), len) == "h2") {
      *out = in + i + 1;
      *outlen = static_cast<unsigned char>(len);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "mock-push-server: " << why << "\n(see the comment at the top of "
            << "tests/mock_push/mock_push_server.cc)\n";
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a client that went away shows as EPIPE
  mock::Config config;
  std::string cert, key, client_ca, alpn = "h2";
  std::uint16_t port = 0, control_port = 0;
  std::uint32_t max_streams = 100;
  std::vector<std::string> fault_flags;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--port") {
      port = static_cast<std::uint16_t>(std::stoi(next()));
    } else if (a == "--control-port") {
      control_port = static_cast<std::uint16_t>(std::stoi(next()));
    } else if (a == "--cert") {
      cert = next();
    } else if (a == "--key") {
      key = next();
    } else if (a == "--client-ca") {
      client_ca = next();
    } else if (a == "--apns-key") {
      config.apns_key_file = next();
    } else if (a == "--apns-key-id") {
      config.apns_key_id = next();
    } else if (a == "--apns-team-id") {
      config.apns_team_id = next();
    } else if (a == "--topic") {
      config.topics.push_back(next());
    } else if (a == "--fcm-key") {
      config.fcm_key_file = next();
    } else if (a == "--fcm-client-email") {
      config.fcm_client_email = next();
    } else if (a == "--fcm-project") {
      config.fcm_project = next();
    } else if (a == "--token-lifetime") {
      config.token_lifetime_s = std::stoi(next());
    } else if (a == "--max-concurrent-streams") {
      max_streams = static_cast<std::uint32_t>(std::stoul(next()));
    } else if (a == "--max-records") {
      config.max_records = std::stoul(next());
    } else if (a == "--alpn") {
      alpn = next();
      if (alpn == "none") alpn.clear();
    } else if (a == "--rule") {
      const std::string r = next();
      const std::size_t eq = r.find('=');
      const std::size_t colon = r.find(':', eq == std::string::npos ? 0 : eq);
      if (eq == std::string::npos || colon == std::string::npos)
        usage("--rule PREFIX=STATUS:REASON");
      mock::Rule rule;
      rule.prefix = r.substr(0, eq);
      rule.status = std::stoi(r.substr(eq + 1, colon - eq - 1));
      rule.reason = r.substr(colon + 1);
      config.rules.push_back(rule);
    } else if (a == "--fault") {
      fault_flags.push_back(next());
    } else {
      usage("unknown option " + a);
    }
  }
  if (cert.empty() || key.empty()) usage("--cert and --key are required");

  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    usage("cannot load " + cert + " / " + key);
  }
  SSL_CTX_set_alpn_select_cb(ctx, alpnSelect, &alpn);
  if (!client_ca.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, client_ca.c_str(), nullptr) != 1) {
      usage("cannot load " + client_ca);
    }
    // Ask for a certificate, accept clients without one (token auth); a
    // certificate that is presented must verify.
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_client_CA_list(ctx, SSL_load_client_CA_file(client_ca.c_str()));
  }

  event_base* base = event_base_new();
  std::unique_ptr<mock::Logic> logic;
  try {
    logic = std::make_unique<mock::Logic>(config);
  } catch (const std::exception& e) {
    usage(e.what());
  }
  Server server(base, ctx, *logic, max_streams);
  if (!server.listen(port)) return 1;
  for (const auto& f : fault_flags) {
    const std::string err = server.setFaults(nlohmann::json::parse(f, nullptr, false));
    if (!err.empty()) usage("--fault: " + err);
  }

  evhttp* http = evhttp_new(base);
  Control control{&server, logic.get()};
  evhttp_set_gencb(http, onControl, &control);
  evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
  evhttp_bound_socket* bound = evhttp_bind_socket_with_handle(http, "127.0.0.1", control_port);
  if (bound == nullptr) {
    std::perror("mock-push-server: control bind");
    return 1;
  }
  sockaddr_in a{};
  socklen_t len = sizeof a;
  getsockname(evhttp_bound_socket_get_fd(bound), reinterpret_cast<sockaddr*>(&a), &len);

  auto stop = [](int, short, void* b) { event_base_loopbreak(static_cast<event_base*>(b)); };
  event* term = evsignal_new(base, SIGTERM, stop, base);
  event* intr = evsignal_new(base, SIGINT, stop, base);
  event_add(term, nullptr);
  event_add(intr, nullptr);

  std::printf("port=%u\ncontrol_port=%u\n", server.port(), ntohs(a.sin_port));
  std::fflush(stdout);
  event_base_dispatch(base);

  server.closeAll();
  evhttp_free(http);
  event_free(term);
  event_free(intr);
  event_base_free(base);
  SSL_CTX_free(ctx);
  return 0;
}
