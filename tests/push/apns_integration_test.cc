// Integration tests of the APNs client against build/bin/mock-push-server
// over real HTTP/2 + TLS on 127.0.0.1: delivery and headers, every status
// class, provider-token reuse and refresh (injected clocks on both sides),
// certificate auth, rejected server certificates, back-pressure, and the
// awaited shutdown that leaves no connection on either side.
#include <gtest/gtest.h>

#include <prometheus/text_serializer.h>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "leakscope/diag/runtime.h"
#include "leakscope/diag/sockets.h"
#include "leakscope/diag/tracked.h"
#include "leakscope/push/apns.h"
#include "push_test_support.h"

namespace push = leakscope::push;
namespace diag = leakscope::diag;
using namespace leakscope::testing;
using push::OutcomeKind;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

namespace {

// Outcomes delivered through send(), counted per notification to prove
// exactly-once delivery.
class Collector {
 public:
  push::OutcomeCallback callback(int i) {
    return [this, i](const push::Outcome& o) {
      const std::lock_guard lock(mu_);
      outcomes_[i].push_back(o);
    };
  }
  std::size_t done() const {
    const std::lock_guard lock(mu_);
    return outcomes_.size();
  }
  std::map<int, std::vector<push::Outcome>> outcomes() const {
    const std::lock_guard lock(mu_);
    return outcomes_;
  }

 private:
  mutable std::mutex mu_;
  std::map<int, std::vector<push::Outcome>> outcomes_;
};

// The mock push server, a loop and an APNs client, torn down in reverse.
using ApnsIntegration = ApnsClientTest;

}  // namespace

TEST_F(ApnsIntegration, DeliversWithAllHeadersAndOneReusedJwt) {
  auto* client = startClient();
  ASSERT_TRUE(client);

  std::vector<push::ApnsNotification> batch;
  for (int i = 0; i < 50; ++i) {
    auto n = notification(deviceToken(static_cast<std::uint64_t>(i)));
    n.priority = 5;
    n.expiration = 1700000000 + i;
    n.collapse_id = "c" + std::to_string(i);
    char id[37];
    std::snprintf(id, sizeof id, "123e4567-e89b-12d3-a456-%012d", i);
    n.apns_id = id;
    batch.push_back(n);
  }
  const auto outcomes = client->sendBatch(batch);
  ASSERT_EQ(outcomes.size(), 50u);
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    EXPECT_EQ(outcomes[i].kind, OutcomeKind::kSuccess) << i << " " << outcomes[i].reason;
    EXPECT_EQ(outcomes[i].status, 200);
    EXPECT_EQ(outcomes[i].id, batch[i].apns_id);  // APNs echoes apns-id
    EXPECT_EQ(outcomes[i].attempts, 1);
  }
  const auto received = mock().received();
  ASSERT_EQ(received.size(), 50u);
  const auto counts = receivedCounts(received, 200);
  for (const auto& n : batch) EXPECT_EQ(counts.count(n.device_token), 1u);
  const auto& r0 = received[0];
  EXPECT_EQ(r0["apns-topic"], kTopic);
  EXPECT_EQ(r0["apns-push-type"], "alert");
  EXPECT_EQ(r0["apns-priority"], "5");
  EXPECT_TRUE(r0.contains("apns-expiration"));
  EXPECT_TRUE(r0.contains("apns-collapse-id"));
  EXPECT_EQ(r0["auth"], "jwt");
  // One provider token for all 50 requests: never one per request.
  EXPECT_EQ(mock().stats()["distinct_jwts"], 1);
  const auto m = client->metrics();
  EXPECT_EQ(metric(*m, R"(pushdaemon_apns_jwt_refresh_total{reason="initial"})"), 1);
  EXPECT_EQ(
      metric(*m,
             R"(pushdaemon_apns_upstream_rq_total{outcome="success",reason="none",status="200"})"),
      50);
  EXPECT_EQ(metric(*m, R"(pushdaemon_apns_notifications_total{outcome="success"})"), 50);
  ASSERT_TRUE(client->shutdown());
}

TEST_F(ApnsIntegration, ShutdownLeavesZeroConnectionsOnBothSides) {
  // Enough concurrency to open every allowed connection.
  ASSERT_TRUE(startMock({"--max-concurrent-streams", "2"}));
  ASSERT_TRUE(mock().faults({{"delay_ms", 100}}));
  diag::Kind& conn_kind = diag::kind("apns.connection");
  diag::Kind& provider_kind = diag::kind("apns.provider");
  const auto conns_before = conn_kind.counts();
  auto config = clientConfig();
  config.pool.max_connections = 3;
  auto* client = connect(config);
  ASSERT_TRUE(client);
  EXPECT_EQ(provider_kind.counts().live, 1u);

  std::vector<push::ApnsNotification> batch;
  for (int i = 0; i < 30; ++i)
    batch.push_back(notification(deviceToken(static_cast<std::uint64_t>(i))));
  const auto outcomes = client->sendBatch(batch);
  for (const auto& o : outcomes) EXPECT_EQ(o.kind, OutcomeKind::kSuccess) << o.reason;

  // While open: three connections on each side, each a tracked object that
  // owns one of the sockets.
  EXPECT_EQ(client->stats().open_connections, 3u);
  EXPECT_EQ(conn_kind.counts().live - conns_before.live, 3u);
  EXPECT_EQ(socketsTo(mock().port()), 3);
  EXPECT_EQ(mock().stats()["open_connections"], 3);
  const auto m = client->metrics();
  EXPECT_EQ(metric(*m, "pushdaemon_apns_upstream_cx_active"), 3);

  ASSERT_TRUE(client->shutdown(seconds(5)));
  // Client side, at once: no socket, no tracked connection, no provider.
  EXPECT_EQ(client->stats().open_connections, 0u);
  EXPECT_EQ(socketsTo(mock().port()), 0);
  EXPECT_EQ(conn_kind.counts().live, conns_before.live);
  EXPECT_EQ(provider_kind.counts().live, 0u);
  const auto text = scrape(*m);
  EXPECT_EQ(metricValue(text, "pushdaemon_apns_upstream_cx_active"), 0);
  const double total = *metricValue(text, "pushdaemon_apns_upstream_cx_total");
  const double local =
      *metricValue(text, R"(pushdaemon_apns_upstream_cx_destroy_total{side="local"})");
  const double remote =
      *metricValue(text, R"(pushdaemon_apns_upstream_cx_destroy_total{side="remote"})");
  EXPECT_EQ(total, 3);
  EXPECT_EQ(local + remote, total);
  EXPECT_EQ(local, 3);  // we closed them (GOAWAY + close_notify)
  // Server side: the mock's own count of open connections drops to zero.
  EXPECT_TRUE(eventually([&] { return mock().stats()["open_connections"] == 0; }, 5000))
      << mock().stats().dump();
  EXPECT_EQ(mock().stats()["peak_open_connections"], 3);
  EXPECT_EQ(client->send(notification(deviceToken(1)), nullptr), push::Admission::kShutDown);
}

// The retainer chain as the daemon really holds it (issue #16): in a
// snapshot the runtime writes, each connection's owner is its client's
// provider, each socket's owner one of the connections, and the provider's
// owner whatever setOwner() named.
TEST_F(ApnsIntegration, SnapshotsShowEachConnectionOwnedByItsProviderAndEachSocketByItsConnection) {
  ASSERT_TRUE(startMock({"--max-concurrent-streams", "2"}));
  ASSERT_TRUE(mock().faults({{"delay_ms", 100}}));
  auto config = clientConfig();
  config.pool.max_connections = 3;
  auto* client = connect(config);
  ASSERT_TRUE(client);
  ASSERT_NE(client->trackedId(), diag::ObjectId{});
  diag::Tracked registry(diag::kind("test.registry"));
  client->setOwner(registry.id());
  std::vector<push::ApnsNotification> batch;
  for (int i = 0; i < 30; ++i) batch.push_back(notification(deviceToken(std::uint64_t(i))));
  for (const auto& o : client->sendBatch(batch)) EXPECT_EQ(o.kind, OutcomeKind::kSuccess);
  ASSERT_EQ(client->stats().open_connections, 3u);

  const nlohmann::json snap = snapshotOfThisProcess();
  ASSERT_TRUE(snap.is_object());
  const auto providers = objectsOf(snap, "apns.provider");
  ASSERT_EQ(providers.size(), 1u);
  EXPECT_EQ(providers[0]["id"], client->trackedId().value);
  EXPECT_EQ(providers[0]["owner"], registry.id().value);
  const auto conns = objectsOf(snap, "apns.connection");
  ASSERT_EQ(conns.size(), 3u);
  std::set<std::uint64_t> conn_ids;
  for (const auto& c : conns) {
    EXPECT_EQ(c["owner"], client->trackedId().value) << c.dump();
    conn_ids.insert(c["id"].get<std::uint64_t>());
  }
  const auto socks = socketsToPort(snap, mock().port());
  ASSERT_EQ(socks.size(), 3u);
  std::set<std::uint64_t> socket_owners;
  for (const auto& s : socks) {
    ASSERT_TRUE(s["owner"].is_number_unsigned()) << s.dump();
    socket_owners.insert(s["owner"].get<std::uint64_t>());
  }
  EXPECT_EQ(socket_owners, conn_ids);  // one socket per connection
  ASSERT_TRUE(client->shutdown(seconds(5)));
}

TEST_F(ApnsIntegration, EveryStatusClassMapsToItsOutcome) {
  ASSERT_TRUE(startMock());
  struct Case {
    std::string prefix;
    int status;
    std::string reason;
    OutcomeKind kind;
  };
  const std::vector<Case> cases = {
      {"d1", 410, "Unregistered", OutcomeKind::kInvalidToken},
      {"d2", 410, "ExpiredToken", OutcomeKind::kInvalidToken},
      {"d3", 400, "BadDeviceToken", OutcomeKind::kInvalidToken},
      {"d4", 400, "DeviceTokenNotForTopic", OutcomeKind::kInvalidToken},
      {"e1", 400, "TopicDisallowed", OutcomeKind::kPermanent},
      {"e2", 403, "Forbidden", OutcomeKind::kPermanent},
      {"e3", 413, "PayloadTooLarge", OutcomeKind::kPermanent},
      {"e4", 405, "MethodNotAllowed", OutcomeKind::kPermanent},
      {"f1", 429, "TooManyRequests", OutcomeKind::kRetryable},
      {"f2", 500, "InternalServerError", OutcomeKind::kRetryable},
      {"f3", 503, "ServiceUnavailable", OutcomeKind::kRetryable},
      {"f4", 503, "Shutdown", OutcomeKind::kRetryable},
      {"f5", 400, "IdleTimeout", OutcomeKind::kRetryable},
  };
  nlohmann::json rules = nlohmann::json::array();
  for (const auto& c : cases) {
    rules.push_back({{"prefix", c.prefix}, {"status", c.status}, {"reason", c.reason}});
  }
  ASSERT_TRUE(mock().rules(rules));
  auto config = clientConfig();
  config.retry.max_attempts = 1;  // the raw mapping, no retries
  auto* client = connect(config);
  ASSERT_TRUE(client);
  std::vector<push::ApnsNotification> batch;
  for (const auto& c : cases) batch.push_back(notification(deviceToken(7, c.prefix)));
  batch.push_back(notification(deviceToken(8, "aa")));  // no rule: delivered
  const auto outcomes = client->sendBatch(batch);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(outcomes[i].kind, cases[i].kind) << cases[i].reason;
    EXPECT_EQ(outcomes[i].status, cases[i].status) << cases[i].reason;
    EXPECT_EQ(outcomes[i].reason, cases[i].reason);
    EXPECT_EQ(outcomes[i].attempts, 1);
  }
  // 410 carries the time the token stopped being valid (the mock says a
  // day ago).
  ASSERT_TRUE(outcomes[0].invalid_since);
  const auto age = std::chrono::system_clock::now() - *outcomes[0].invalid_since;
  EXPECT_GT(age, std::chrono::hours(23));
  EXPECT_LT(age, std::chrono::hours(25));
  EXPECT_EQ(outcomes.back().kind, OutcomeKind::kSuccess);
  // Each notification reached the server exactly once.
  const auto counts = receivedCounts(mock().received());
  for (const auto& n : batch) EXPECT_EQ(counts.at(n.device_token), 1) << n.device_token;
  const auto m = client->metrics();
  EXPECT_EQ(
      metric(
          *m,
          R"(pushdaemon_apns_upstream_rq_total{outcome="invalid_token",reason="Unregistered",status="410"})"),
      1);
  EXPECT_EQ(metric(*m, R"(pushdaemon_apns_notifications_total{outcome="retryable"})"), 5);
  ASSERT_TRUE(client->shutdown());
}

TEST_F(ApnsIntegration, RetryableAnswersAreRetriedUntilTheyPass) {
  auto* client = startClient();  // max_attempts 3
  ASSERT_TRUE(client);
  ASSERT_TRUE(
      mock().faults({{"fail", {{"count", 2}, {"status", 503}, {"reason", "ServiceUnavailable"}}}}));
  const auto ok = client->sendBatch({notification(deviceToken(1))});
  EXPECT_EQ(ok[0].kind, OutcomeKind::kSuccess);
  EXPECT_EQ(ok[0].attempts, 3);
  ASSERT_TRUE(mock().faults(
      {{"fail", {{"count", 5}, {"status", 500}, {"reason", "InternalServerError"}}}}));
  const auto bad = client->sendBatch({notification(deviceToken(2))});
  EXPECT_EQ(bad[0].kind, OutcomeKind::kRetryable);
  EXPECT_EQ(bad[0].reason, "InternalServerError");
  EXPECT_EQ(bad[0].attempts, 3);
  const auto counts = receivedCounts(mock().received());
  EXPECT_EQ(counts.at(deviceToken(1)), 3);
  EXPECT_EQ(counts.at(deviceToken(2)), 3);
  EXPECT_EQ(metric(*client->metrics(), "pushdaemon_apns_upstream_rq_retry_total"), 4);
  ASSERT_TRUE(client->shutdown());
}

TEST_F(ApnsIntegration, PayloadLimitsAreCheckedBeforeSending) {
  auto* client = startClient();
  ASSERT_TRUE(client);
  auto big = notification(deviceToken(1));
  big.payload = R"({"aps":{"alert":")" + std::string(4096, 'x') + R"("}})";
  auto voip = notification(deviceToken(2));
  voip.push_type = "voip";
  voip.topic = std::string(kTopic) + ".voip";
  voip.payload = R"({"aps":{},"p":")" + std::string(5000, 'v') + R"("})";  // 5016 bytes
  auto voip_big = voip;
  voip_big.device_token = deviceToken(3);
  voip_big.payload = R"({"aps":{},"p":")" + std::string(5200, 'v') + R"("})";
  const auto outcomes = client->sendBatch({big, voip, voip_big});
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kPermanent);
  EXPECT_EQ(outcomes[0].reason, "PayloadTooLarge");
  EXPECT_EQ(outcomes[0].attempts, 0);
  EXPECT_EQ(outcomes[1].kind, OutcomeKind::kSuccess);  // the mock enforces 5120 too
  EXPECT_EQ(outcomes[2].reason, "PayloadTooLarge");
  EXPECT_EQ(outcomes[2].attempts, 0);
  // Only the VoIP notification within its limit went out.
  const auto received = mock().received();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0]["token"], deviceToken(2));
  ASSERT_TRUE(client->shutdown());
}

TEST_F(ApnsIntegration, ProviderTokenIsRefreshedOnlyAfterItsInterval) {
  ASSERT_TRUE(startMock());
  auto config = clientConfig();
  config.clock = clock_.fn();
  auto* client = connect(config);
  ASSERT_TRUE(client);
  std::int64_t moved = 0;
  auto moveTo = [&](std::int64_t minute) {
    clock_.advance(seconds((minute - moved) * 60));
    ASSERT_TRUE(mock().clockOffset(seconds(minute * 60)));  // both clocks agree
    moved = minute;
  };
  for (std::int64_t minute : {0, 1, 19, 20, 49}) {
    moveTo(minute);
    const auto o =
        client->sendBatch({notification(deviceToken(static_cast<std::uint64_t>(minute)))})[0];
    EXPECT_EQ(o.kind, OutcomeKind::kSuccess) << minute << " " << o.reason;
  }
  EXPECT_EQ(mock().stats()["distinct_jwts"], 1);  // reused for 49 minutes
  moveTo(50);
  const auto o = client->sendBatch({notification(deviceToken(50))})[0];
  EXPECT_EQ(o.kind, OutcomeKind::kSuccess) << o.reason;  // not TooManyProviderTokenUpdates
  EXPECT_EQ(mock().stats()["distinct_jwts"], 2);
  const auto received = mock().received();
  const std::int64_t first_iat = received[0]["jwt_iat"];
  const std::int64_t last_iat = received.back()["jwt_iat"];
  EXPECT_EQ(last_iat - first_iat, 50 * 60);
  const auto m = client->metrics();
  EXPECT_EQ(metric(*m, R"(pushdaemon_apns_jwt_refresh_total{reason="initial"})"), 1);
  EXPECT_EQ(metric(*m, R"(pushdaemon_apns_jwt_refresh_total{reason="age"})"), 1);
  ASSERT_TRUE(client->shutdown());
}

TEST_F(ApnsIntegration, ExpiredProviderTokenGetsANewTokenAndOneResend) {
  ASSERT_TRUE(startMock());
  auto config = clientConfig();
  config.clock = clock_.fn();
  config.token_auth->refresh_after = minutes(59);
  config.retry.max_attempts = 1;  // the resend after a new token is not a retry
  auto* client = connect(config);
  ASSERT_TRUE(client);
  ASSERT_EQ(client->sendBatch({notification(deviceToken(1))})[0].kind, OutcomeKind::kSuccess);
  // 58 minutes on our clock (token still "fresh" for us), 61 on Apple's:
  // the server says ExpiredProviderToken.
  clock_.advance(minutes(58));
  ASSERT_TRUE(mock().clockOffset(minutes(61)));
  const auto o = client->sendBatch({notification(deviceToken(2))})[0];
  EXPECT_EQ(o.kind, OutcomeKind::kSuccess) << o.reason;
  EXPECT_EQ(o.attempts, 2);
  const auto stats = mock().stats();
  EXPECT_EQ(stats["responses"]["403"], 1);
  EXPECT_EQ(stats["distinct_jwts"], 2);
  const auto m = client->metrics();
  EXPECT_EQ(metric(*m, R"(pushdaemon_apns_jwt_refresh_total{reason="rejected"})"), 1);
  EXPECT_EQ(
      metric(
          *m,
          R"(pushdaemon_apns_upstream_rq_total{outcome="retryable",reason="ExpiredProviderToken",status="403"})"),
      1);
  ASSERT_TRUE(client->shutdown());
}

TEST_F(ApnsIntegration, CertificateAuthUsesTheClientCertificate) {
  ASSERT_TRUE(startMock({"--client-ca", TestPki::get().ca}));
  auto config = clientConfig();
  config.token_auth.reset();
  config.tls.client_cert_file = TestPki::get().client_cert;
  config.tls.client_key_file = TestPki::get().client_key;
  auto* client = connect(config);
  ASSERT_TRUE(client);
  const auto o = client->sendBatch({notification(deviceToken(1))})[0];
  EXPECT_EQ(o.kind, OutcomeKind::kSuccess) << o.reason;
  const auto received = mock().received();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0]["auth"], "cert");
  EXPECT_EQ(mock().stats()["distinct_jwts"], 0);  // no JWT was sent
  ASSERT_TRUE(client->shutdown());
}

TEST_F(ApnsIntegration, ClientCertificateTheServerDoesNotTrustSendsNothing) {
  // The mock trusts only the unrelated CA; our certificate is from the test CA.
  ASSERT_TRUE(startMock({"--client-ca", TestPki::get().other_ca}));
  auto config = clientConfig(&log_);
  config.token_auth.reset();
  config.tls.client_cert_file = TestPki::get().client_cert;
  config.tls.client_key_file = TestPki::get().client_key;
  config.pool.connect_failures_before_failing_queue = 2;
  config.pool.reconnect = {milliseconds(10), milliseconds(20), 2.0};
  auto* client = connect(config);
  ASSERT_TRUE(client);
  const auto outcomes =
      client->sendBatch({notification(deviceToken(1)), notification(deviceToken(2))});
  for (const auto& o : outcomes) {
    EXPECT_EQ(o.kind, OutcomeKind::kRetryable);
    EXPECT_EQ(o.reason, "ConnectFailed");
    EXPECT_EQ(o.status, 0);
  }
  EXPECT_GE(metric(*client->metrics(), "pushdaemon_apns_upstream_cx_connect_fail_total"), 2);
  EXPECT_EQ(mock().received().size(), 0u);  // not one request got through
  ASSERT_TRUE(client->shutdown());
  EXPECT_EQ(socketsTo(mock().port()), 0);
}

TEST_F(ApnsIntegration, WithoutCredentialsTheServerRefusesAndCreateRefusesToo) {
  ASSERT_TRUE(startMock());  // asks for no client certificate
  auto config = clientConfig();
  config.token_auth.reset();
  EXPECT_FALSE(push::ApnsClient::create(loop(), config));  // neither token nor certificate
  config.tls.client_cert_file = TestPki::get().client_cert;
  config.tls.client_key_file = TestPki::get().client_key;
  auto* client = connect(config);
  ASSERT_TRUE(client);
  // The mock never asked for the certificate: APNs answers MissingProviderToken.
  const auto o = client->sendBatch({notification(deviceToken(1))})[0];
  EXPECT_EQ(o.kind, OutcomeKind::kPermanent);
  EXPECT_EQ(o.status, 403);
  EXPECT_EQ(o.reason, "MissingProviderToken");
  ASSERT_TRUE(client->shutdown());
}

TEST_F(ApnsIntegration, UntrustedServerCertificateIsRejectedWithoutFallback) {
  ASSERT_TRUE(startMock());
  auto config = clientConfig(&log_);
  config.tls.ca_file = TestPki::get().other_ca;  // does not sign the server's certificate
  auto* client = connect(config);
  ASSERT_TRUE(client);
  const auto outcomes =
      client->sendBatch({notification(deviceToken(1)), notification(deviceToken(2))});
  for (const auto& o : outcomes) {
    EXPECT_EQ(o.kind, OutcomeKind::kRetryable);
    EXPECT_EQ(o.reason, "TlsVerifyFailed");
    EXPECT_EQ(o.status, 0);
  }
  // Nothing reached the server: no request, and every connection the mock
  // accepted was one that failed verification (no unverified retry). The
  // queue fails at the first rejection; a notification arriving after that
  // makes one more (equally rejected) attempt after the back-off.
  const auto stats = mock().stats();
  EXPECT_EQ(stats["requests"].value("apns", 0), 0);
  const double fails = metric(*client->metrics(), "pushdaemon_apns_upstream_cx_connect_fail_total");
  EXPECT_GE(fails, 1);
  EXPECT_LE(fails, 2);
  EXPECT_EQ(stats["accepted_connections"].get<double>(), fails);
  EXPECT_NE(log_.text().find("certificate rejected"), std::string::npos) << log_.text();
  ASSERT_TRUE(client->shutdown());
  EXPECT_EQ(client->stats().open_connections, 0u);
}

TEST_F(ApnsIntegration, CertificateForAnotherHostIsRejected) {
  ASSERT_TRUE(startMock());
  auto config = clientConfig();
  // The certificate names localhost and 127.0.0.1, not this host.
  config.endpoint.host = "api.push.example.invalid";
  auto* client = connect(config);
  ASSERT_TRUE(client);
  const auto o = client->sendBatch({notification(deviceToken(1))})[0];
  EXPECT_EQ(o.kind, OutcomeKind::kRetryable);
  EXPECT_EQ(o.reason, "TlsVerifyFailed");
  EXPECT_EQ(mock().stats()["requests"].value("apns", 0), 0);
  ASSERT_TRUE(client->shutdown());
}

TEST_F(ApnsIntegration, ServerWithoutH2IsRefused) {
  auto* client = startClient({"--alpn", "none"});
  ASSERT_TRUE(client);
  const auto o = client->sendBatch({notification(deviceToken(1))})[0];
  EXPECT_EQ(o.kind, OutcomeKind::kRetryable);
  EXPECT_EQ(o.reason, "AlpnRefused");
  EXPECT_EQ(mock().stats()["requests"].value("apns", 0), 0);
  ASSERT_TRUE(client->shutdown());
}

TEST_F(ApnsIntegration, ShutdownLetsInFlightFinishWithinGrace) {
  auto* client = startClient({}, {{"delay_ms", 300}});
  ASSERT_TRUE(client);
  Collector got;
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(
        client->send(notification(deviceToken(static_cast<std::uint64_t>(i))), got.callback(i)),
        push::Admission::kAccepted);
  }
  ASSERT_TRUE(client->shutdown(seconds(5)));
  const auto outcomes = got.outcomes();
  ASSERT_EQ(outcomes.size(), 10u);
  for (const auto& [i, list] : outcomes) {
    ASSERT_EQ(list.size(), 1u) << i;  // exactly once
    EXPECT_EQ(list[0].kind, OutcomeKind::kSuccess) << list[0].reason;
  }
}

TEST_F(ApnsIntegration, ShutdownFailsWhatOutlivesTheGraceExactlyOnce) {
  auto* client = startClient({}, {{"delay_ms", 3000}});
  ASSERT_TRUE(client);
  Collector got;
  for (int i = 0; i < 5; ++i) {
    client->send(notification(deviceToken(static_cast<std::uint64_t>(i))), got.callback(i));
  }
  ASSERT_TRUE(eventually([&] { return mock().stats()["requests"].value("apns", 0) == 5; }));
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(client->shutdown(milliseconds(200)));
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(2));  // did not wait for the server
  // shutdown() is awaited: every outcome was delivered before it returned.
  const auto outcomes = got.outcomes();
  ASSERT_EQ(outcomes.size(), 5u);
  for (const auto& [i, list] : outcomes) {
    ASSERT_EQ(list.size(), 1u) << i;
    EXPECT_EQ(list[0].kind, OutcomeKind::kRetryable);
    EXPECT_EQ(list[0].reason, "Shutdown");
  }
  EXPECT_EQ(client->stats().open_connections, 0u);
  EXPECT_TRUE(eventually([&] { return mock().stats()["open_connections"] == 0; }, 5000));
}

TEST_F(ApnsIntegration, BackPressureWhenFull) {
  ASSERT_TRUE(startMock());
  ASSERT_TRUE(mock().faults({{"delay_ms", 300}}));
  auto config = clientConfig();
  config.max_outstanding = 4;
  auto* client = connect(config);
  ASSERT_TRUE(client);
  Collector got;
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(
        client->send(notification(deviceToken(static_cast<std::uint64_t>(i))), got.callback(i)),
        push::Admission::kAccepted);
  }
  EXPECT_EQ(client->send(notification(deviceToken(9)), got.callback(9)),
            push::Admission::kQueueFull);
  EXPECT_EQ(client->stats().outstanding, 4u);
  EXPECT_EQ(metric(*client->metrics(), "pushdaemon_apns_upstream_rq_pending_overflow_total"), 1);
  // sendBatch waits for room instead of failing: 10 through a window of 4.
  std::vector<push::ApnsNotification> batch;
  for (int i = 10; i < 20; ++i)
    batch.push_back(notification(deviceToken(static_cast<std::uint64_t>(i))));
  const auto outcomes = client->sendBatch(batch);
  for (const auto& o : outcomes) EXPECT_EQ(o.kind, OutcomeKind::kSuccess) << o.reason;
  EXPECT_TRUE(eventually([&] { return got.done() == 4; }));
  EXPECT_EQ(got.outcomes().count(9), 0u);  // refused means no outcome later
  ASSERT_TRUE(client->shutdown());
}

TEST_F(ApnsIntegration, LogsNameNoSecrets) {
  ASSERT_TRUE(startMock());
  auto config = clientConfig(&log_);
  config.pool.idle_timeout = milliseconds(100);
  auto* client = connect(config);
  ASSERT_TRUE(client);
  const std::string token = deviceToken(424242, "f00d");
  ASSERT_TRUE(mock().faults({{"goaway_after_streams", 1}}));
  client->sendBatch({notification(token), notification(deviceToken(1))});
  ASSERT_TRUE(mock().faults({{"goaway_after_streams", 0}, {"refuse_connections", true}}));
  client->sendBatch({notification(deviceToken(2))});
  ASSERT_TRUE(client->shutdown());
  const std::string text = log_.text();
  EXPECT_NE(text.find("GOAWAY"), std::string::npos) << text;  // something was logged
  EXPECT_EQ(text.find(token), std::string::npos);
  EXPECT_EQ(text.find("eyJ"), std::string::npos);  // base64 of '{"': a JWT
  EXPECT_EQ(text.find("PRIVATE KEY"), std::string::npos);
  EXPECT_EQ(text.find("bearer"), std::string::npos);
}

TEST_F(ApnsIntegration, SendManyIsAllOrNothingAndAnswersEachIndexOnce) {
  ASSERT_TRUE(startMock());
  ASSERT_TRUE(mock().rules({{{"prefix", "dead"}, {"status", 410}, {"reason", "Unregistered"}}}));
  auto config = clientConfig();
  config.max_outstanding = 10;
  auto* client = connect(config);
  ASSERT_TRUE(client);
  std::mutex mu;
  std::map<std::size_t, std::vector<push::Outcome>> got;
  auto done = [&](std::size_t i, const push::Outcome& o) {
    const std::lock_guard lock(mu);
    got[i].push_back(o);
  };
  std::vector<push::ApnsNotification> eleven;
  for (int i = 0; i < 11; ++i)
    eleven.push_back(notification(deviceToken(static_cast<std::uint64_t>(i))));
  // More than max_outstanding: refused as a whole, nothing sent.
  EXPECT_EQ(client->sendMany(eleven, done), push::Admission::kQueueFull);
  std::vector<push::ApnsNotification> ten(eleven.begin(), eleven.end() - 1);
  ten[3] = notification(deviceToken(3, "dead"));
  ASSERT_EQ(client->sendMany(ten, done), push::Admission::kAccepted);
  ASSERT_TRUE(eventually([&] {
    const std::lock_guard lock(mu);
    return got.size() == 10;
  }));
  const std::lock_guard lock(mu);
  for (std::size_t i = 0; i < 10; ++i) {
    ASSERT_EQ(got[i].size(), 1u) << i;
    EXPECT_EQ(got[i][0].kind, i == 3 ? OutcomeKind::kInvalidToken : OutcomeKind::kSuccess) << i;
  }
  EXPECT_EQ(mock().received().size(), 10u);
  ASSERT_TRUE(client->shutdown());
}

TEST_F(ApnsIntegration, MetricsOnTheDiagEndpointPassPromtool) {
  ASSERT_TRUE(startMock());
  ASSERT_TRUE(mock().rules({{{"prefix", "dead"}, {"status", 410}, {"reason", "Unregistered"}}}));
  TempDir tmp;
  diag::Config dc;
  dc.metrics_address = "127.0.0.1:0";
  diag::Runtime runtime(dc);
  ASSERT_TRUE(runtime.metricsStatus());
  auto metrics = std::make_shared<push::PushMetrics>();
  runtime.registerCollectable(metrics);
  auto config = clientConfig();
  config.metrics = metrics;
  config.retry.max_attempts = 1;
  auto* client = connect(config);
  ASSERT_TRUE(client);
  client->sendBatch({notification(deviceToken(1)), notification(deviceToken(2, "dead"))});
  const auto body = httpGet(runtime.metricsAddress(), "/metrics");
  ASSERT_TRUE(body);
  // The push series sit beside diag's own: the connection the pool holds is
  // the tracked object diag reports.
  EXPECT_EQ(metricValue(*body, "pushdaemon_apns_upstream_cx_active"), 1);
  EXPECT_EQ(metricValue(*body, R"(leakscope_tracked_objects{kind="apns.connection"})"), 1);
  EXPECT_EQ(
      metricValue(
          *body,
          R"(pushdaemon_apns_upstream_rq_total{outcome="invalid_token",reason="Unregistered",status="410"})"),
      1);
  const std::string file = tmp.path() + "/scrape.txt";
  std::ofstream(file) << *body;
  const std::string out_file = tmp.path() + "/promtool.out";
  const std::string cmd = "promtool check metrics < " + file + " > " + out_file + " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream in(out_file);
  std::stringstream ss;
  ss << in.rdbuf();
  ASSERT_TRUE(WIFEXITED(rc)) << cmd;
  ASSERT_NE(WEXITSTATUS(rc), 127) << "promtool not installed (scripts/setup.sh installs it)";
  EXPECT_EQ(WEXITSTATUS(rc), 0) << ss.str();
  EXPECT_EQ(ss.str(), "") << "promtool lint findings:\n" << ss.str();
  ASSERT_TRUE(client->shutdown());
  const auto after = httpGet(runtime.metricsAddress(), "/metrics");
  ASSERT_TRUE(after);
  EXPECT_EQ(metricValue(*after, "pushdaemon_apns_upstream_cx_active"), 0);
  EXPECT_EQ(metricValue(*after, R"(leakscope_tracked_objects{kind="apns.connection"})"), 0);
}

TEST_F(ApnsIntegration, DestroyingWithoutShutdownStillFinishesInFlightAndClosesEverything) {
  ASSERT_TRUE(startMock());
  ASSERT_TRUE(mock().faults({{"delay_ms", 200}}));
  diag::Kind& conn_kind = diag::kind("apns.connection");
  const auto conns_before = conn_kind.counts().live;
  auto* client = connect();
  ASSERT_TRUE(client);
  Collector got;
  for (int i = 0; i < 5; ++i) {
    client->send(notification(deviceToken(static_cast<std::uint64_t>(i))), got.callback(i));
  }
  ASSERT_TRUE(eventually([&] { return mock().stats()["requests"].value("apns", 0) == 5; }));
  client_.reset();  // the destructor runs the awaited shutdown
  const auto outcomes = got.outcomes();
  ASSERT_EQ(outcomes.size(), 5u);
  for (const auto& [i, list] : outcomes) {
    ASSERT_EQ(list.size(), 1u) << i;
    EXPECT_EQ(list[0].kind, OutcomeKind::kSuccess) << list[0].reason;
  }
  EXPECT_EQ(socketsTo(mock().port()), 0);
  EXPECT_EQ(conn_kind.counts().live, conns_before);
  EXPECT_TRUE(eventually([&] { return mock().stats()["open_connections"] == 0; }, 5000));
}

TEST_F(ApnsIntegration, SendsRacingShutdownGetExactlyOneAnswerEach) {
  ASSERT_TRUE(startMock());
  auto config = clientConfig();
  config.max_outstanding = 64;
  auto* client = connect(config);
  ASSERT_TRUE(client);
  std::atomic<int> accepted{0}, answered{0}, succeeded{0};
  std::atomic<bool> refused{false};
  auto sender = [&](std::uint64_t first) {
    for (std::uint64_t i = first;; ++i) {
      const auto a = client->send(notification(deviceToken(i)), [&](const push::Outcome& o) {
        ++answered;
        if (o.kind == OutcomeKind::kSuccess) ++succeeded;
      });
      if (a == push::Admission::kAccepted) ++accepted;
      if (a == push::Admission::kShutDown) {
        refused = true;
        return;
      }
      if (a == push::Admission::kQueueFull) std::this_thread::yield();
    }
  };
  std::thread a(sender, 0), b(sender, 1'000'000);
  ASSERT_TRUE(eventually([&] { return answered.load() >= 300; }));
  ASSERT_TRUE(client->shutdown(seconds(5)));
  a.join();
  b.join();
  EXPECT_TRUE(refused.load());
  // Everything accepted before the inbox closed was answered, once, before
  // shutdown() returned; the server's 200s are exactly our successes.
  EXPECT_EQ(answered.load(), accepted.load());
  int ok = 0;
  for (const auto& [token, n] : receivedCounts(mock().received(), 200)) {
    EXPECT_EQ(n, 1) << "delivered twice";
    ok += n;
  }
  EXPECT_EQ(ok, succeeded.load());
  EXPECT_EQ(socketsTo(mock().port()), 0);
}

TEST_F(ApnsIntegration, OutcomeCallbacksMaySendAgain) {
  auto* client = startClient();
  ASSERT_TRUE(client);
  constexpr int kChain = 100;
  std::atomic<int> ok{0};
  std::function<void(int)> next = [&](int i) {
    client->send(notification(deviceToken(static_cast<std::uint64_t>(i))),
                 [&, i](const push::Outcome& o) {
                   if (o.kind == OutcomeKind::kSuccess) ++ok;
                   if (i + 1 < kChain) next(i + 1);  // from inside the callback
                 });
  };
  next(0);
  ASSERT_TRUE(eventually([&] { return ok.load() == kChain; })) << ok.load();
  EXPECT_EQ(receivedCounts(mock().received(), 200).size(), static_cast<std::size_t>(kChain));
  ASSERT_TRUE(client->shutdown());
}

TEST(ApnsIntegrationDeathTest, DestroyingTheClientFromItsOwnCallbackAbortsWithAMessage) {
  const TestPki& pki = TestPki::get();  // made here, not in the forked child
  const push::SigningKey key = testApnsKey();
  auto run = [&] {
    push::EventLoop loop;
    push::ApnsConfig config;
    // Never connected: an empty token is refused before sending, and its
    // outcome still arrives on the loop thread.
    config.endpoint = {"localhost", 9, "127.0.0.1"};
    config.tls.ca_file = pki.ca;
    config.token_auth = push::ApnsTokenAuth{key, kKeyId, kTeamId};
    auto created = push::ApnsClient::create(loop, config);
    if (!created) std::exit(3);
    std::unique_ptr<push::ApnsClient> client = std::move(*created);
    client->send(notification(""), [&](const push::Outcome&) { client.reset(); });
    std::this_thread::sleep_for(seconds(10));
    std::exit(4);  // not reached when it aborts
  };
  EXPECT_DEATH(run(), "destroyed on its own event-loop thread");
}
