// FcmClient: Firebase Cloud Messaging HTTP v1 over HTTP/2 + TLS
// (POST /v1/projects/<project>/messages:send), authorised with an OAuth2
// access token obtained from a service account: an RS256 JWT assertion is
// exchanged at the account's token_uri (RFC 7523) and the access token is
// cached until five minutes before it expires. One bounded pool for FCM and
// a small one for the token endpoint.
//
// Error mapping: UNREGISTERED (and SENDER_ID_MISMATCH) → invalid token;
// QUOTA_EXCEEDED, UNAVAILABLE, INTERNAL → retried with back-off, honouring
// Retry-After; INVALID_ARGUMENT → permanent; 401 → a new access token and
// one more try. A message over kFcmMaxMessageBytes is refused before sending
// (permanent, PayloadTooLarge), as FCM would refuse it.
//
// Tracked as "fcm.provider"; connections as "fcm.connection" and
// "oauth.connection". Thread-safety as ApnsClient.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "leakscope/diag/result.h"
#include "leakscope/diag/tracked.h"
#include "leakscope/push/client.h"
#include "leakscope/push/event_loop.h"
#include "leakscope/push/jwt.h"
#include "leakscope/push/metrics.h"
#include "leakscope/push/options.h"
#include "leakscope/push/outcome.h"

namespace leakscope::push {

struct FcmNotification {
  std::string token;  // the registration token
  // The rest of the v1 `message` object as JSON text (notification, data,
  // android, apns, webpush, ...), without "token". "{}" is valid.
  std::string message = "{}";
};

// FCM's limit on a message (it answers INVALID_ARGUMENT above it). The
// client measures the whole `message` object with the token: a safe bound.
inline constexpr std::size_t kFcmMaxMessageBytes = 4096;

inline constexpr std::string_view kFcmScope = "https://www.googleapis.com/auth/firebase.messaging";

// A Google service account's JSON key (type, project_id, private_key_id,
// private_key, client_email, token_uri), parsed: the RSA key as a SigningKey
// (an EVP_PKEY, shared by copies) and the fields the token exchange needs.
// Parse it once and give it to every client of that account.
struct FcmServiceAccount {
  SigningKey key;
  std::string project_id;
  std::string private_key_id;
  std::string client_email;
  std::string token_uri;  // default https://oauth2.googleapis.com/token

  // Parses the JSON text. `text` is wiped (every byte zeroed) before this
  // returns, whatever the outcome, and so is every buffer the JSON parser
  // held key text in. `what` names the source in errors (never contents).
  static diag::Result<FcmServiceAccount> fromJson(std::span<char> text, std::string_view what);
  // Reads and parses a file (no permission check: see SigningKey::fromPemFile).
  static diag::Result<FcmServiceAccount> fromFile(const std::string& path);
};

struct FcmConfig {
  Endpoint endpoint{"fcm.googleapis.com", 443, ""};
  // Required: the account whose key signs the OAuth2 assertions.
  std::optional<FcmServiceAccount> service_account;
  std::string project_id;  // default: the service account's project_id
  // The token endpoint comes from the key's token_uri; this IP, when set,
  // is connected to instead of resolving its host (tests).
  std::string oauth_connect_address;
  TlsOptions tls;  // trust for both endpoints (no client certificate)
  PoolOptions pool;
  PoolOptions oauth_pool{};  // create() lowers idle_timeout to 60 s unless set lower
  RetryOptions retry;
  std::size_t max_outstanding = 10000;
  SystemClock clock;  // assertion iat and token expiry; default system_clock
  std::shared_ptr<PushMetrics> metrics;
};

class FcmClient {
 public:
  static diag::Result<std::unique_ptr<FcmClient>> create(EventLoop& loop, FcmConfig config);
  ~FcmClient();
  FcmClient(const FcmClient&) = delete;
  FcmClient& operator=(const FcmClient&) = delete;

  Admission send(FcmNotification n, OutcomeCallback done);
  // The fast way to feed the client: the whole batch with one lock and one
  // wake-up of the loop. All or nothing: kQueueFull unless every notification
  // fits under max_outstanding (so batches larger than that never fit: use
  // sendBatch()). `done(i, outcome)` runs once per notification, on the loop
  // thread.
  Admission sendMany(std::vector<FcmNotification> batch, BatchCallback done);
  std::vector<Outcome> sendBatch(std::vector<FcmNotification> batch);
  diag::Status shutdown(std::chrono::milliseconds grace = std::chrono::seconds(5));
  ClientStats stats() const;
  std::shared_ptr<PushMetrics> metrics() const;

  // The provider's tracked id (ObjectId{} with PoolOptions::instrument
  // off): its connections name it as their owner. setOwner() names the
  // tracked object that holds this client (a registry), so that snapshots
  // show the chain connection → provider → registry. Any thread.
  diag::ObjectId trackedId() const;
  void setOwner(diag::ObjectId owner);

  class Impl;
  // Use create(); Impl is private to the library.
  explicit FcmClient(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace leakscope::push
