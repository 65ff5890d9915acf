// One HTTP/2 request/response as the pool moves it around: queued in the
// pool, on a connection's stream, back to its owner. Ownership travels with
// a unique_ptr (pool queue → connection stream map → ExchangeHandler), so
// exactly one place holds an exchange at any time and it completes once.
// Loop thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace leakscope::push::detail {

struct Header {
  std::string name;  // lower case, as HTTP/2 requires
  std::string value;
};

struct Request {
  std::string method = "POST";
  std::string path;
  std::vector<Header> headers;  // besides the pseudo-headers
  // The authorization header's value, shared by every request made with the
  // same credential (a JWT is ~200 bytes: not copied per request). Also how
  // a rejected credential is recognised.
  std::shared_ptr<const std::string> authorization;
  std::string body;
};

struct Response {
  int status = 0;
  std::vector<Header> headers;
  std::string body;
  const std::string* header(std::string_view name) const {
    for (const auto& h : headers) {
      if (h.name == name) return &h.value;
    }
    return nullptr;
  }
};

// Why an exchange ended without a complete answer.
enum class Failure {
  kNone,
  kTimeout,
  kConnectFailed,
  kTlsVerifyFailed,
  kAlpnRefused,
  kRefusedStream,  // provably not processed by the server
  kStreamReset,
  kConnectionLost,
  kShutdown,
};
std::string_view failureReason(Failure f);  // the push::reason strings

using SteadyTime = std::chrono::steady_clock::time_point;

struct Exchange {
  virtual ~Exchange() = default;

  Request request;
  // Set by the pool on submit (now + request_timeout).
  SteadyTime deadline{};
  int unprocessed_retries = 0;

  // While on a connection.
  std::int32_t stream_id = -1;
  SteadyTime sent_at{};
  bool headers_sent = false;  // our HEADERS frame left nghttp2
  bool complete = false;      // the answer ended with END_STREAM
  std::size_t body_offset = 0;
  std::size_t accounted_bytes = 0;  // what the connection counts for it while open
  Response response;

  void resetAttempt() {
    stream_id = -1;
    headers_sent = false;
    complete = false;
    body_offset = 0;
    response = Response{};
  }
};

struct ExchangeResult {
  Failure failure = Failure::kNone;  // kNone: `response` is complete
  double seconds = -1;               // on the wire; -1: never sent
};

// Who gets finished exchanges back (the client). Called on the loop thread,
// never from inside nghttp2 or OpenSSL calls of a connection that is still
// in use — see Pool.
class ExchangeHandler {
 public:
  virtual ~ExchangeHandler() = default;
  virtual void onExchangeDone(std::unique_ptr<Exchange> exchange, ExchangeResult result) = 0;
};

}  // namespace leakscope::push::detail
