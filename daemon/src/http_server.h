// The daemon's HTTP endpoint: GET /metrics (Prometheus text: leakscope's,
// the transport's and pushdaemon's series) and GET /healthz (200 or 503 with
// a small JSON body), served by leakscope's diag::HttpServer, whose limits
// (connections, header bytes, time per request, descriptors kept free) come
// from the daemon.http_* options. 127.0.0.1 by default; port 0 picks a free
// port (address() tells which).
// Thread-safety: construction and destruction from one thread; the
// collectables and the health function are called on the server's thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "leakscope/diag/http_server.h"
#include "leakscope/diag/result.h"

namespace prometheus {
class Collectable;
}

namespace pushdaemon {

class HttpServer {
 public:
  // status code and JSON body
  using HealthFn = std::function<std::pair<int, std::string>()>;

  static leakscope::diag::Result<std::unique_ptr<HttpServer>> start(
      const std::string& address, const leakscope::diag::HttpLimits& limits,
      std::vector<std::weak_ptr<prometheus::Collectable>> collectables, HealthFn health);
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  const std::string& address() const { return server_->address(); }

 private:
  HttpServer() = default;
  leakscope::diag::HttpResponse answer(std::string_view path) const;

  std::vector<std::weak_ptr<prometheus::Collectable>> collectables_;
  HealthFn health_;
  std::unique_ptr<leakscope::diag::HttpServer> server_;  // last: calls answer()
};

}  // namespace pushdaemon
