// HttpServer: the small HTTP/1.x server behind leakscope's diagnostic
// endpoints (`/metrics` of Runtime, and pushdaemon's `/metrics` + `/healthz`).
// GET and HEAD only, one request per connection (every answer says
// `Connection: close`), on one thread of its own running a libevent loop.
//
// It is built to stay up while clients misbehave, because a diagnostic
// endpoint matters most when something is already wrong:
//  - a request line + headers over `max_header_bytes` is answered 431 and
//    closed; nothing larger is ever buffered; a request body is never read;
//  - every connection gets `request_timeout` from accept to the end of its
//    answer, however it trickles bytes (idle and byte-a-second clients);
//  - at most `max_connections` are open: a new one closes the oldest, so a
//    flood of idle connections cannot lock a scraper out;
//  - it leaves `fd_reserve` descriptors free below RLIMIT_NOFILE for the rest
//    of the process (snapshots, database reconnects): near the limit it
//    closes its oldest connections instead of taking more, and when accept()
//    fails (EMFILE, ENFILE) it pauses accepting for 250 ms instead of
//    spinning;
//  - each kind of trouble is logged at most once per 10 s, with a count.
// Design note: docs/http-endpoint.md.
//
// Thread-safety: start and destroy from one thread; the handler and the log
// function run on the server's thread, one request at a time.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "leakscope/diag/result.h"

namespace prometheus {
class Collectable;
}

namespace leakscope::diag {

struct HttpLimits {
  std::size_t max_connections = 64;                 // open at once
  std::chrono::milliseconds request_timeout{5000};  // accept to end of answer
  std::size_t max_header_bytes = 8192;              // request line + headers
  std::size_t fd_reserve = 32;                      // left free below RLIMIT_NOFILE
};

// Checks the limits are usable: at least one connection, a head of at least
// 64 bytes, a timeout of 1 ms .. 1 h.
Status validateHttpLimits(const HttpLimits& limits);

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class HttpServer {
 public:
  // Gets the path without the query ("/metrics"); answers GET and HEAD.
  using Handler = std::function<HttpResponse(std::string_view path)>;
  using Log = std::function<void(std::string_view)>;

  // Binds `address` ("HOST:PORT", "[V6]:PORT"; port 0 picks a free one) and
  // starts serving. `log` gets the server's warnings (default: stderr); it
  // is called on the server's thread. Errors: kInvalidArgument (address,
  // limits, no handler), kIo (bind).
  static Result<std::unique_ptr<HttpServer>> start(std::string_view address,
                                                   const HttpLimits& limits, Handler handler,
                                                   Log log);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // "127.0.0.1:PORT" / "[::1]:PORT" as bound.
  const std::string& address() const;

  // In the child of a fork(): closes the child's copy of the listening
  // socket, so that a child outliving its parent does not keep the port
  // (the parent's copy stays open and serving). Nothing else is touched: the
  // server's thread is not in the child, and the object must then be
  // abandoned, never used or destroyed there (Runtime::abandonAfterFork).
  void closeListenerInForkedChild();

 private:
  class Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The Prometheus text exposition of every collectable still alive, as a
// `/metrics` answer.
HttpResponse metricsResponse(const std::vector<std::weak_ptr<prometheus::Collectable>>& from);

}  // namespace leakscope::diag
