// The daemon's HTTP endpoint (libevent evhttp, one thread): GET /metrics
// (Prometheus text: leakscope's, the transport's and pushdaemon's series)
// and GET /healthz (200 or 503 with a small JSON body). 127.0.0.1 by
// default; port 0 picks a free port (address() tells which).
// Thread-safety: construction and destruction from one thread; the
// collectables and the health function are called on the server thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "leakscope/diag/result.h"

namespace prometheus {
class Collectable;
}
struct event_base;
struct evhttp;
struct evhttp_request;

namespace pushdaemon {

class HttpServer {
 public:
  // status code and JSON body
  using HealthFn = std::function<std::pair<int, std::string>()>;

  static leakscope::diag::Result<std::unique_ptr<HttpServer>> start(
      const std::string& address, std::vector<std::weak_ptr<prometheus::Collectable>> collectables,
      HealthFn health);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  const std::string& address() const { return address_; }

 private:
  HttpServer() = default;
  static void onRequest(::evhttp_request* req, void* arg);

  event_base* base_ = nullptr;
  evhttp* http_ = nullptr;
  std::vector<std::weak_ptr<prometheus::Collectable>> collectables_;
  HealthFn health_;
  std::string address_;
  std::thread thread_;  // last
};

}  // namespace pushdaemon
