#include "http_server.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <prometheus/collectable.h>
#include <prometheus/text_serializer.h>
#include <signal.h>

#include <cstring>

#include "leakscope/diag/runtime.h"

namespace pushdaemon {

namespace diag = leakscope::diag;

diag::Result<std::unique_ptr<HttpServer>> HttpServer::start(
    const std::string& address, std::vector<std::weak_ptr<prometheus::Collectable>> collectables,
    HealthFn health) {
  if (auto s = diag::validateListenAddress(address); !s.ok()) {
    return diag::Error{diag::Errc::kInvalidArgument, "daemon.http_address: " + s.error().message};
  }
  const std::size_t colon = address.rfind(':');
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  const int port = std::stoi(address.substr(colon + 1));
  std::unique_ptr<HttpServer> s(new HttpServer());
  s->collectables_ = std::move(collectables);
  s->health_ = std::move(health);
  s->base_ = event_base_new();
  if (s->base_ == nullptr) return diag::Error{diag::Errc::kIo, "event_base_new failed"};
  s->http_ = evhttp_new(s->base_);
  evhttp_bound_socket* bound =
      evhttp_bind_socket_with_handle(s->http_, host.c_str(), static_cast<std::uint16_t>(port));
  if (bound == nullptr) {
    return diag::Error{diag::Errc::kIo, "daemon.http_address " + address +
                                            ": cannot listen: " + std::strerror(errno)};
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(evhttp_bound_socket_get_fd(bound), reinterpret_cast<sockaddr*>(&ss), &len);
  char ip[INET6_ADDRSTRLEN] = {0};
  int bound_port = 0;
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
    bound_port = ntohs(a->sin6_port);
    s->address_ = "[" + std::string(ip) + "]:" + std::to_string(bound_port);
  } else {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
    bound_port = ntohs(a->sin_port);
    s->address_ = std::string(ip) + ":" + std::to_string(bound_port);
  }
  evhttp_set_allowed_methods(s->http_, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
  evhttp_set_gencb(s->http_, &HttpServer::onRequest, s.get());
  HttpServer* raw = s.get();
  s->thread_ = std::thread([raw] {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    event_base_loop(raw->base_, EVLOOP_NO_EXIT_ON_EMPTY);
  });
  return s;
}

HttpServer::~HttpServer() {
  if (base_ != nullptr) event_base_loopbreak(base_);  // evthread_use_pthreads() in main
  if (thread_.joinable()) thread_.join();
  if (http_ != nullptr) evhttp_free(http_);
  if (base_ != nullptr) event_base_free(base_);
}

void HttpServer::onRequest(evhttp_request* req, void* arg) {
  auto* self = static_cast<HttpServer*>(arg);
  const char* uri = evhttp_request_get_uri(req);
  std::string path = uri != nullptr ? uri : "/";
  if (const auto q = path.find('?'); q != std::string::npos) path.resize(q);
  evbuffer* out = evbuffer_new();
  int code = 200;
  const char* reason = "OK";
  if (path == "/metrics") {
    std::vector<prometheus::MetricFamily> families;
    for (const auto& w : self->collectables_) {
      if (auto c = w.lock()) {
        auto f = c->Collect();
        families.insert(families.end(), std::make_move_iterator(f.begin()),
                        std::make_move_iterator(f.end()));
      }
    }
    const std::string text = prometheus::TextSerializer().Serialize(families);
    evbuffer_add(out, text.data(), text.size());
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
  } else if (path == "/healthz") {
    const auto [status, body] = self->health_();
    code = status;
    reason = status == 200 ? "OK" : "Service Unavailable";
    evbuffer_add(out, body.data(), body.size());
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
  } else {
    code = 404;
    reason = "Not Found";
    evbuffer_add_printf(out, "not found; try /metrics or /healthz\n");
  }
  evhttp_send_reply(req, code, reason, out);
  evbuffer_free(out);
}

}  // namespace pushdaemon
