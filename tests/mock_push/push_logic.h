// The mock push server's protocol logic, apart from its sockets: what APNs,
// FCM HTTP v1 and Google's OAuth2 token endpoint answer to a request, under
// per-token rules and injected faults, and the record of what arrived.
//
// It is an independent witness for the client's tests, so nothing here
// reuses leakscope::push code: JWTs are parsed and verified with OpenSSL
// directly.
//
// Single-threaded (the server's event loop).
#pragma once

#include <openssl/evp.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace mock {

struct Request {
  std::string method;
  std::string path;
  std::vector<std::pair<std::string, std::string>> headers;  // regular headers, in order
  std::string body;
  std::uint64_t connection = 0;
  std::int32_t stream = 0;
  int connection_requests = 0;  // requests seen on this connection, this one included
  bool client_cert_verified = false;

  const std::string* header(std::string_view name) const;
  int headerCount(std::string_view name) const;
};

struct Reply {
  enum class Action {
    kRespond,  // status + headers + body
    kReset,    // RST_STREAM(rst_code), no answer
    kClose,    // close the connection abruptly (TCP RST), no answer
  };
  Action action = Action::kRespond;
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::uint32_t rst_code = 0;
  int delay_ms = 0;
  bool goaway_after = false;  // send GOAWAY(last stream = this one) after answering
  // Where the request was recorded (GET /control/received), to mark it
  // unanswered if the stream goes before a delayed answer leaves.
  std::ptrdiff_t record = -1;
  std::uint64_t record_generation = 0;
};

struct Rule {
  std::string prefix;  // of the device / registration token
  int status = 0;
  std::string reason;    // APNs reason
  std::string fcm_code;  // FCM errorCode; default derived from status
  std::string retry_after;
};

// Faults, settable by flag (--fault name=value) or POST /control/faults.
struct Faults {
  int delay_ms = 0;
  // The next `count` APNs/FCM requests get this answer instead.
  int fail_count = 0;
  Rule fail;
  int goaway_after_streams = 0;  // per connection; 0: never
  int rst_count = 0;             // the next N requests are reset
  std::uint32_t rst_code = 7;    // REFUSED_STREAM
  int close_after_requests = 0;  // per connection; 0: never
  bool refuse_connections = false;
  bool stall = false;
  int oauth_fail_count = 0;  // the next N token requests fail
  int oauth_fail_status = 503;
};

struct Config {
  std::string apns_key_file;  // public (or private) key PEM for ES256
  std::string apns_key_id;
  std::string apns_team_id;
  std::vector<std::string> topics;  // allowed apns-topic values; empty: any
  std::string fcm_key_file;         // public (or private) key PEM for RS256
  std::string fcm_client_email;
  std::string fcm_project;
  int token_lifetime_s = 3599;
  std::vector<Rule> rules;
  Faults faults;
  // Requests kept for GET /control/received (the benchmark sets 0).
  std::size_t max_records = 200000;
};

class Logic {
 public:
  // Throws std::runtime_error for unreadable key files (start-up).
  explicit Logic(Config config);
  ~Logic();

  Reply handle(const Request& r);

  // A request the server will never answer (above a GOAWAY's last stream, or
  // the connection went away): counted, not recorded as received.
  // `reply`, when given, is the answer that never left: its record says so
  // ("action":"unanswered", status 0), so the record never claims a
  // delivery the client did not get.
  void unprocessed(const Reply* reply = nullptr);
  void connectionClosed(std::uint64_t id) { connection_iat_.erase(id); }

  Faults& faults() { return config_.faults; }
  // Applies a JSON object of fault fields; returns an error text or "".
  std::string setFaults(const nlohmann::json& j);
  std::string setRules(const nlohmann::json& j);
  void setClockOffset(std::chrono::seconds s) { clock_offset_ = s; }
  void reset();

  nlohmann::json stats() const;
  const nlohmann::json& received() const { return received_; }

 private:
  Reply apns(const Request& r, const std::string& token);
  Reply fcm(const Request& r);
  Reply oauth(const Request& r);
  // Faults that act on the stream or the connection (RST_STREAM, abrupt
  // close), for APNs and FCM alike; nullopt: answer normally.
  std::optional<Reply> transportFault(const Request& r);
  bool goawayAfter(const Request& r) const;  // send GOAWAY after this answer
  // "" when the provider token is acceptable, else Apple's reason.
  std::string checkProviderToken(const std::string& jwt, std::uint64_t connection,
                                 std::int64_t& iat, int& status);
  std::int64_t now() const;

  Config config_;
  struct PkeyFree {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
  };
  std::unique_ptr<EVP_PKEY, PkeyFree> apns_key_;
  std::unique_ptr<EVP_PKEY, PkeyFree> fcm_key_;
  std::chrono::seconds clock_offset_{0};

  // Verified provider tokens -> iat; per connection, the iat of the token
  // it uses (Apple refuses a connection's token updates within 20 minutes).
  std::map<std::string, std::int64_t> good_jwts_;
  std::map<std::uint64_t, std::int64_t> connection_iat_;
  std::string last_auth_;  // the last accepted authorization header, and where
  std::uint64_t last_auth_connection_ = 0;
  std::int64_t last_auth_iat_ = 0;
  // Access tokens we issued -> expiry (mock clock, Unix seconds).
  std::map<std::string, std::int64_t> access_tokens_;
  std::uint64_t next_access_token_ = 1;

  nlohmann::json received_ = nlohmann::json::array();
  std::uint64_t records_generation_ = 0;           // bumped by reset()
  std::map<std::string, std::uint64_t> requests_;  // by endpoint
  std::map<int, std::uint64_t> responses_;         // by status
  std::uint64_t resets_ = 0;
  std::uint64_t unprocessed_ = 0;
  std::uint64_t jwt_verifications_ = 0;
  std::set<std::string> distinct_jwts_;
  std::uint64_t oauth_tokens_issued_ = 0;
  std::uint64_t oauth_rejected_ = 0;
};

}  // namespace mock
