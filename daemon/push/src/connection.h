// Connection: one TCP + TLS + HTTP/2 client session to one push server,
// owned by its Pool. Loop thread only. It is told everything it needs at
// construction (ConnectionSettings) and reports back to its owner only
// through ConnectionOwner; it never reads its pool's state.
//
// States (docs/architecture.md, "Push connection state machine"):
//   kConnecting  resolving, TCP connect, TLS handshake, waiting for the
//                server's first SETTINGS (capacity unknown until then)
//   kReady       open streams < limit; takes new streams
//   kBusy        open streams == limit (min of our cap and the server's
//                SETTINGS_MAX_CONCURRENT_STREAMS, which may change any time)
//   kDraining    takes no new streams (GOAWAY received, idle, shutdown);
//                closes once its streams are done
//   kClosed      socket closed, session and SSL freed, tracked object
//                released; the pool destroys the object later
//
// I/O follows h2load: SSL_read until it wants more, each chunk fed to
// nghttp2_session_mem_recv; nghttp2_session_mem_send output is buffered and
// written with SSL_write, with write interest only while bytes are waiting.
// The connection closes when nghttp2 wants neither read nor write and the
// buffer is empty, or at once on an error.
//
// The connection never calls back into its owner synchronously from inside
// nghttp2 or OpenSSL in a way that re-enters itself: finished exchanges are
// handed to the owner (which only queues work), and closing from inside a
// callback is deferred to the end of the I/O call.
#pragma once

#include <nghttp2/nghttp2.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "exchange.h"
#include "leakscope/diag/tracked.h"
#include "leakscope/push/event_loop.h"
#include "leakscope/push/metrics.h"
#include "leakscope/push/options.h"
#include "tls.h"

struct event;
struct addrinfo;  // evutil_addrinfo is addrinfo on POSIX
struct evdns_getaddrinfo_request;

namespace leakscope::push::detail {

class Connection;

struct EventFree {
  void operator()(event* e) const;
};
using EventPtr = std::unique_ptr<event, EventFree>;

struct ConnId {
  std::uint64_t value = 0;
};

// nghttp2's allocations of one session, counted (nghttp2_mem hooks), so the
// connection's tracked object reports the memory its session holds.
struct CountingAllocator {
  std::atomic<std::int64_t> bytes{0};
  nghttp2_mem mem();  // hooks with mem_user_data = this
};

// What a connection is told at construction. Its pool builds this once from
// its endpoint and PoolOptions; each connection keeps a copy.
struct ConnectionSettings {
  std::string component;  // "apns", "fcm", "oauth": names the connection in log lines
  Endpoint endpoint;
  // Owned by the pool, which outlives its connections. `stats` and
  // `tracked_kind` are null when instrumentation is off.
  SSL_CTX* ssl_ctx = nullptr;
  UpstreamStats* stats = nullptr;
  diag::Kind* tracked_kind = nullptr;
  // The tracked object that holds the connection (its client's provider):
  // the next link of the retainer chain socket → connection → provider.
  diag::ObjectId tracked_owner;
  // PoolOptions::max_streams_per_connection (at least 1), connect_timeout,
  // idle_timeout (0: never) and ping_interval (0: no pings) / ping_timeout.
  std::uint32_t max_streams = 1;
  std::chrono::milliseconds connect_timeout{};
  std::chrono::milliseconds idle_timeout{};
  std::chrono::milliseconds ping_interval{};
  std::chrono::milliseconds ping_timeout{};
};

// The only calls a connection makes to its owner (the pool). They come on
// the loop thread, also from inside the connection's nghttp2 and OpenSSL
// callbacks, so an owner only queues work and never calls back into the
// connection from within them.
class ConnectionOwner {
 public:
  virtual ~ConnectionOwner() = default;
  // The server's first SETTINGS arrived: `c` takes streams now.
  virtual void onReady(Connection& c) = 0;
  // A connection can take more streams (one ended, or the server raised
  // its limit).
  virtual void onCapacity() = 0;
  // An exchange is back: answered, or failed with `result.failure`
  // (kRefusedStream: the server provably did not process it).
  virtual void onExchangeDone(std::unique_ptr<Exchange> ex, ExchangeResult result) = 0;
  // `c` is closed (why: c.closeReason()); the owner destroys it later, never
  // from inside this call.
  virtual void onClosed(Connection& c) = 0;
  // One line for the owner's log; the connection has already said who it is.
  virtual void log(const std::string& line) const = 0;
};

class Connection {
 public:
  enum class State { kConnecting, kReady, kBusy, kDraining, kClosed };
  static const char* stateName(State s);

  Connection(EventLoop& loop, ConnectionSettings settings, ConnectionOwner& owner, ConnId id);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Resolves (or uses the endpoint's connect_address), connects, handshakes.
  void start();

  State state() const { return state_; }
  ConnId id() const { return id_; }
  // Streams it can take now (0 unless ready).
  std::uint32_t freeStreams() const;
  std::size_t activeStreams() const { return streams_.size(); }
  bool everReady() const { return ever_ready_; }

  // Opens a stream for `ex`. Precondition: freeStreams() > 0. On failure the
  // exchange goes back to the pool as unprocessed.
  void submit(std::unique_ptr<Exchange> ex);
  // Writes what nghttp2 has queued (after a batch of submits).
  void flush();

  // Resets streams whose deadline passed (RST_STREAM CANCEL); they go back
  // to the pool as timed out. Returns how many.
  int expire(SteadyTime now);
  // Resets every stream and hands it back with `why` (shutdown deadline).
  void abortStreams(Failure why);
  // Sends a PING now unless one is outstanding (health check after a timeout).
  void checkHealth();

  // No new streams; closes when the open ones are done. `side` is recorded
  // as who ended the connection.
  void drain(CloseSide side);
  // Closes now. Open streams go back to the pool: unprocessed ones (HEADERS
  // never sent) as kRefusedStream, the rest as `why`.
  void close(CloseSide side, Failure why);

  // Why it closed (for connect-failure handling): valid in kClosed.
  Failure closeReason() const { return close_reason_; }
  // Bytes it retains: nghttp2's session memory plus its buffers.
  std::uint64_t retainedBytes() const;

 private:
  // min(our settings_.max_streams, the server's SETTINGS_MAX_CONCURRENT_STREAMS).
  std::uint32_t streamLimit() const;
  friend struct Callbacks;
  static void onIo(int fd, short what, void* arg);
  static void onConnectTimeout(int fd, short what, void* arg);
  static void onIdle(int fd, short what, void* arg);
  static void onPingTick(int fd, short what, void* arg);
  static void onPingTimeout(int fd, short what, void* arg);

  void resolved(int err, addrinfo* res);
  void connectNext();
  void finishTcpConnect();
  void handshake();
  bool startSession();
  void readSome();
  void writeSome();
  void afterIo();
  void setWriteInterest(bool on);
  void updateState();
  void fail(CloseSide side, Failure why, const std::string& detail);
  void log(const std::string& line) const;
  void updateBytes();
  // Removes a stream from streams_ and from the byte count; returns it.
  std::unique_ptr<Exchange> takeStream(
      std::map<std::int32_t, std::unique_ptr<Exchange>>::iterator it);

  // nghttp2 callbacks, forwarded from static trampolines.
  void onStreamClose(std::int32_t stream_id, std::uint32_t error_code);
  void onFrameRecv(const nghttp2_frame* frame);

  EventLoop& loop_;
  const ConnectionSettings settings_;
  ConnectionOwner& owner_;
  ConnId id_;
  State state_ = State::kConnecting;
  bool ever_ready_ = false;
  bool settings_received_ = false;
  bool tcp_connecting_ = false;
  bool handshaking_ = false;
  bool ssl_failed_ = false;       // no SSL_shutdown after a fatal SSL error
  bool in_io_ = false;            // inside readSome/writeSome: close is deferred
  bool close_requested_ = false;  // set when close was asked for inside I/O
  CloseSide close_side_ = CloseSide::kLocal;
  CloseSide drain_side_ = CloseSide::kLocal;
  Failure close_reason_ = Failure::kNone;
  Failure pending_close_reason_ = Failure::kNone;
  bool terminated_ = false;  // GOAWAY queued by us
  bool write_interest_ = false;
  bool ping_outstanding_ = false;
  bool received_since_tick_ = false;
  std::uint32_t remote_max_streams_ = 0;

  std::vector<sockaddr_storage> addrs_;
  std::vector<socklen_t> addr_lens_;
  std::size_t next_addr_ = 0;
  struct DnsWaiter;
  DnsWaiter* dns_ = nullptr;  // owned by the resolver callback; we only cancel it

  // Streams by id; each holds its exchange. Declared before the session so
  // the session (which points at them as stream user data) is freed first.
  std::map<std::int32_t, std::unique_ptr<Exchange>> streams_;
  std::vector<std::uint8_t> wbuf_;
  std::size_t woff_ = 0;
  std::string authority_;        // ":authority", built once
  std::vector<nghttp2_nv> nva_;  // header list of the request being submitted

  // Teardown order (reverse of declaration): tracked object released first
  // (its bytes callback reads the counters below), then timers and I/O
  // events, the nghttp2 session (it may still reference stream data), the
  // SSL, and the fd last — closed by hand in closeNow() so the order holds
  // also when the object outlives the socket.
  int fd_ = -1;
  SslPtr ssl_;
  CountingAllocator mem_;
  std::atomic<std::int64_t> buffer_bytes_{0};
  std::size_t stream_bytes_ = 0;  // sum of accounted_bytes of streams_ (loop thread)
  struct SessionFree {
    void operator()(nghttp2_session* s) const { nghttp2_session_del(s); }
  };
  std::unique_ptr<nghttp2_session, SessionFree> session_;
  EventPtr read_ev_;   // EV_READ|EV_PERSIST, always on while the socket is open
  EventPtr write_ev_;  // EV_WRITE|EV_PERSIST, added only while bytes wait (write_interest_)
  EventPtr connect_timer_;
  EventPtr idle_timer_;
  EventPtr ping_timer_;
  EventPtr ping_timeout_timer_;
  std::optional<diag::Tracked> tracked_;

  void closeNow(CloseSide side, Failure why);
  void closeSocket();
  template <class F>
  void io(F&& f);
};

}  // namespace leakscope::push::detail
