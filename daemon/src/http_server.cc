#include "http_server.h"

#include "log.h"

namespace pushdaemon {

namespace diag = leakscope::diag;

diag::Result<std::unique_ptr<HttpServer>> HttpServer::start(
    const std::string& address, const diag::HttpLimits& limits,
    std::vector<std::weak_ptr<prometheus::Collectable>> collectables, HealthFn health) {
  std::unique_ptr<HttpServer> s(new HttpServer());
  s->collectables_ = std::move(collectables);
  s->health_ = std::move(health);
  const HttpServer* self = s.get();
  auto server = diag::HttpServer::start(
      address, limits, [self](std::string_view path) { return self->answer(path); },
      [](std::string_view line) { logWarn("http", line); });
  if (!server.ok()) {
    return diag::Error{server.error().code, "daemon.http_address: " + server.error().message};
  }
  s->server_ = std::move(*server);
  return s;
}

diag::HttpResponse HttpServer::answer(std::string_view path) const {
  if (path == "/metrics") return diag::metricsResponse(collectables_);
  if (path == "/healthz") {
    auto [status, body] = health_();
    return diag::HttpResponse{status, "application/json", std::move(body)};
  }
  return diag::HttpResponse{404, "text/plain; charset=utf-8",
                            "not found; try /metrics or /healthz\n"};
}

}  // namespace pushdaemon
