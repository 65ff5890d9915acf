// diag::HttpServer on its own: what it answers, and how its limits act
// (connection limit, head size, request timeout, throttled log). The abuse
// tests with real attack sizes are integration tests (http_abuse_test,
// pushdaemon_http_abuse_test).
#include "leakscope/diag/http_server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <mutex>

#include "http_abuse.h"
#include "test_support.h"

namespace leakscope::diag {
namespace {

using namespace std::chrono_literals;
using testing::eventually;

// Lines the server logged (it logs from its own thread).
class Lines {
 public:
  HttpServer::Log sink() {
    return [this](std::string_view l) {
      std::lock_guard<std::mutex> lock(mu_);
      lines_.emplace_back(l);
    };
  }
  std::size_t count(const std::string& part) const {
    std::lock_guard<std::mutex> lock(mu_);
    std::size_t n = 0;
    for (const auto& l : lines_) n += l.find(part) != std::string::npos ? 1u : 0u;
    return n;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

std::unique_ptr<HttpServer> serve(const HttpLimits& limits, Lines* lines = nullptr) {
  auto s = HttpServer::start(
      "127.0.0.1:0", limits,
      [](std::string_view path) {
        return HttpResponse{path == "/missing" ? 404 : 200, "text/plain",
                            "path=" + std::string(path)};
      },
      lines != nullptr ? lines->sink() : HttpServer::Log{});
  EXPECT_TRUE(s.ok()) << s.error().message;
  return s.ok() ? std::move(*s) : nullptr;
}

// Sends `request` as is; the whole answer (the server closes after it).
std::string roundTrip(const std::string& address, const std::string& request) {
  auto c = testing::openIdle(address, 1);
  if (c.empty()) return "";
  ::send(c[0].get(), request.data(), request.size(), MSG_NOSIGNAL);
  std::string out;
  eventually(
      [&] {
        char buf[4096];
        const ssize_t n = ::recv(c[0].get(), buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) out.append(buf, static_cast<std::size_t>(n));
        return n == 0;
      },
      5000);
  return out;
}

TEST(HttpServer, AnswersGetAndHeadAndRefusesTheRest) {
  auto s = serve({});
  ASSERT_NE(s, nullptr);
  auto get = testing::timedGet(s->address(), "/metrics?x=1", 5s);
  ASSERT_TRUE(get.answer);
  EXPECT_EQ(get.answer->status, 200);
  EXPECT_EQ(get.answer->body, "path=/metrics");  // the query is not part of the path
  EXPECT_EQ(testing::timedGet(s->address(), "/missing", 5s).answer->status, 404);

  const std::string head = roundTrip(s->address(), "HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("Content-Length: 7\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("Connection: close\r\n"), std::string::npos) << head;
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n") << "HEAD has no body";

  const std::string post = roundTrip(s->address(), "POST /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(post.rfind("HTTP/1.1 405 ", 0), 0u) << post;
  EXPECT_NE(post.find("Allow: GET, HEAD\r\n"), std::string::npos) << post;
  EXPECT_EQ(roundTrip(s->address(), "GARBAGE\r\n\r\n").rfind("HTTP/1.1 400 ", 0), 0u);
  EXPECT_EQ(roundTrip(s->address(), "GET /a SPDY/3\r\n\r\n").rfind("HTTP/1.1 400 ", 0), 0u);
}

TEST(HttpServer, HeadOverTheLimitIsAnswered431) {
  HttpLimits limits;
  limits.max_header_bytes = 1024;
  Lines lines;
  auto s = serve(limits, &lines);
  ASSERT_NE(s, nullptr);
  const std::string fits = "GET /a HTTP/1.1\r\nX: " + std::string(900, 'a') + "\r\n\r\n";
  EXPECT_EQ(roundTrip(s->address(), fits).rfind("HTTP/1.1 200 ", 0), 0u);
  // Over the limit, with or without a line end in it.
  const std::string header = "GET /a HTTP/1.1\r\nX: " + std::string(1100, 'a') + "\r\n\r\n";
  EXPECT_EQ(roundTrip(s->address(), header).rfind("HTTP/1.1 431 ", 0), 0u);
  const std::string line = "GET /" + std::string(1100, 'a');
  EXPECT_EQ(roundTrip(s->address(), line).rfind("HTTP/1.1 431 ", 0), 0u);
  EXPECT_EQ(lines.count("request head over 1024 bytes"), 1u) << "logged once per 10 s";
}

TEST(HttpServer, ANewConnectionBeyondTheLimitClosesTheOldest) {
  HttpLimits limits;
  limits.max_connections = 2;
  limits.request_timeout = 60s;
  Lines lines;
  auto s = serve(limits, &lines);
  ASSERT_NE(s, nullptr);
  const auto first = testing::openIdle(s->address(), 1);
  const auto second = testing::openIdle(s->address(), 1);
  // Accepted in order: when this one comes, the first is the oldest of two.
  const auto third = testing::timedGet(s->address(), "/a", 5s);
  ASSERT_TRUE(third.answer);
  EXPECT_EQ(third.answer->status, 200);
  EXPECT_TRUE(eventually([&] { return testing::closedByServer(first) == 1; }));
  EXPECT_EQ(testing::closedByServer(second), 0u);
  EXPECT_EQ(lines.count("2 connections open (the limit)"), 1u);
}

TEST(HttpServer, RequestTimeoutClosesIdleAndTricklingConnections) {
  HttpLimits limits;
  limits.request_timeout = 200ms;
  auto s = serve(limits);
  ASSERT_NE(s, nullptr);
  const auto idle = testing::openIdle(s->address(), 3);
  testing::SlowClients slow(s->address(), 3, 50ms);  // faster than the timeout
  EXPECT_TRUE(eventually([&] { return testing::closedByServer(idle) == 3; }));
  EXPECT_TRUE(eventually([&] { return slow.closedByServer() == 3; }));
  auto get = testing::timedGet(s->address(), "/a", 5s);
  ASSERT_TRUE(get.answer);
  EXPECT_EQ(get.answer->status, 200);
}

TEST(HttpServer, RefusesBadAddressesLimitsAndNoHandler) {
  auto handler = [](std::string_view) { return HttpResponse{}; };
  auto bad_address = HttpServer::start("nowhere", {}, handler, {});
  ASSERT_FALSE(bad_address.ok());
  EXPECT_EQ(bad_address.error().code, Errc::kInvalidArgument);
  HttpLimits zero;
  zero.max_connections = 0;
  auto bad_limits = HttpServer::start("127.0.0.1:0", zero, handler, {});
  ASSERT_FALSE(bad_limits.ok());
  EXPECT_NE(bad_limits.error().message.find("max_connections"), std::string::npos);
  HttpLimits tiny;
  tiny.max_header_bytes = 10;
  EXPECT_FALSE(validateHttpLimits(tiny).ok());
  HttpLimits forever;
  forever.request_timeout = std::chrono::hours(2);
  EXPECT_FALSE(validateHttpLimits(forever).ok());
  EXPECT_FALSE(HttpServer::start("127.0.0.1:0", {}, nullptr, {}).ok());
  // A port in use.
  auto first = HttpServer::start("127.0.0.1:0", {}, handler, {});
  ASSERT_TRUE(first.ok());
  auto second = HttpServer::start((*first)->address(), {}, handler, {});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, Errc::kIo);
  EXPECT_NE(second.error().message.find("cannot listen"), std::string::npos);
}

}  // namespace
}  // namespace leakscope::diag
