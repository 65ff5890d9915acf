// ApnsClient: Apple Push Notification service over HTTP/2 + TLS
// (POST /3/device/<token>), token-based (JWT ES256 from a .p8 key) or
// certificate-based auth, one bounded pool of long-lived connections.
//
//   push::EventLoop loop;
//   auto apns = push::ApnsClient::create(loop, config);   // Result<>
//   (*apns)->send(notification, [](const push::Outcome& o) { ... });
//   ...
//   (*apns)->shutdown();   // awaited: no socket, no tracked connection left
//
// This object *is* the provider of the seed story: create one per
// credential for the life of the daemon, never one per batch, and shut it
// down when done. Tracked as "apns.provider"; its connections as
// "apns.connection" (label: the host name).
//
// Thread-safety: send(), sendBatch(), stats() and shutdown() may be called
// from any thread except the loop's own (send() is fine there too);
// outcomes are delivered on the loop thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
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

inline constexpr std::size_t kApnsMaxPayloadBytes = 4096;
inline constexpr std::size_t kApnsMaxVoipPayloadBytes = 5120;

struct ApnsNotification {
  std::string device_token;         // hex, as the device reported it
  std::string topic;                // apns-topic: the bundle id (".voip" etc. suffixes included)
  std::string push_type = "alert";  // apns-push-type
  std::optional<int> priority;      // apns-priority: 10, 5 or 1; unset: APNs' default (10)
  // apns-expiration: Unix seconds until which APNs keeps retrying; 0: once.
  std::optional<std::int64_t> expiration;
  std::string collapse_id;  // apns-collapse-id, at most 64 bytes
  std::string apns_id;      // apns-id (canonical UUID); empty: APNs assigns one
  std::string payload;      // the JSON payload
};

// Checks what APNs would refuse, before anything is sent: the payload limit
// (4096 bytes, 5120 for VoIP), empty payload, token syntax, header values.
// nullopt when fine; otherwise the permanent outcome (Apple's reason name,
// status 0, attempts 0).
std::optional<Outcome> checkApnsNotification(const ApnsNotification& n, bool token_auth);

struct ApnsTokenAuth {
  // The .p8 key (PKCS#8 EC P-256), parsed: SigningKey::fromPemFile(path,
  // kES256), or shared with other clients of the same key.
  SigningKey key;
  std::string key_id;                      // 10 characters
  std::string team_id;                     // 10 characters
  std::chrono::minutes refresh_after{50};  // 20..59
};

struct ApnsConfig {
  // api.push.apple.com (production) or api.sandbox.push.apple.com.
  Endpoint endpoint{"api.push.apple.com", 443, ""};
  TlsOptions tls;  // certificate auth: set client_cert_file/client_key_file
  // Token auth when set; otherwise certificate auth (then tls must carry a
  // client certificate).
  std::optional<ApnsTokenAuth> token_auth;
  PoolOptions pool;
  RetryOptions retry;
  // Accepted notifications without an outcome yet; beyond: kQueueFull.
  std::size_t max_outstanding = 10000;
  SystemClock clock;  // JWT iat; default system_clock (tests inject one)
  // Where the metrics go (shared by clients); null: a private PushMetrics.
  std::shared_ptr<PushMetrics> metrics;
};

class ApnsClient {
 public:
  // Sets up TLS (reading the CA and certificate files) and the token cache;
  // no connection is opened until the first notification. Errors name the
  // file or setting.
  static diag::Result<std::unique_ptr<ApnsClient>> create(EventLoop& loop, ApnsConfig config);
  // Shuts down (5 s grace) if shutdown() was not called.
  ~ApnsClient();
  ApnsClient(const ApnsClient&) = delete;
  ApnsClient& operator=(const ApnsClient&) = delete;

  Admission send(ApnsNotification n, OutcomeCallback done);
  // The fast way to feed the client: the whole batch with one lock and one
  // wake-up of the loop. All or nothing: kQueueFull unless every notification
  // fits under max_outstanding (so batches larger than that never fit: use
  // sendBatch()). `done(i, outcome)` runs once per notification, on the loop
  // thread.
  Admission sendMany(std::vector<ApnsNotification> batch, BatchCallback done);
  // Sends all and waits for every outcome (in input order), waiting for room
  // whenever the client is full. Not from the loop thread.
  std::vector<Outcome> sendBatch(std::vector<ApnsNotification> batch);

  // Stops accepting, lets accepted notifications finish within `grace`
  // (then fails what is left with reason Shutdown), closes every connection
  // and returns once none is left. Not from the loop thread (error).
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
  explicit ApnsClient(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace leakscope::push
