// Soak: 1,000 consecutive batches through one APNs pool. The seed's leak
// was a pool per batch that was never shut down; here one long-lived pool
// must carry them all, never holding more connections than configured —
// read from the client's metrics after every batch and from the mock
// server's own count (current and peak) — with memory that does not grow.
#include <gtest/gtest.h>

#include <prometheus/text_serializer.h>

#include "leakscope/diag/tracked.h"
#include "leakscope/push/apns.h"
#include "push_test_support.h"

namespace push = leakscope::push;
namespace diag = leakscope::diag;
using namespace leakscope::testing;

TEST(Soak, ThousandBatchesThroughOnePoolStayWithinMaxConnections) {
  constexpr int kBatches = 1000;
  constexpr int kBatchSize = 20;
  constexpr std::size_t kMaxConnections = 2;
  // 8 streams per connection: a batch of 20 needs both connections.
  MockPushServer mock({"--max-concurrent-streams", "8", "--max-records", "0"});
  ASSERT_TRUE(mock.ok());
  ASSERT_TRUE(mock.rules({{{"prefix", "dead"}, {"status", 410}, {"reason", "Unregistered"}}}));
  push::EventLoop loop;
  auto config = apnsConfig(mock);
  config.pool.max_connections = kMaxConnections;
  auto created = push::ApnsClient::create(loop, config);
  ASSERT_TRUE(created);
  auto& client = *created;
  diag::Kind& conns = diag::kind("apns.connection");
  const auto live_before = conns.counts().live;
  prometheus::TextSerializer text;

  std::uint64_t next = 0;
  int success = 0;
  int invalid = 0;
  std::uint64_t bytes_at_100 = 0;
  for (int b = 0; b < kBatches; ++b) {
    std::vector<push::ApnsNotification> batch;
    for (int i = 0; i < kBatchSize; ++i) {
      batch.push_back(notification(deviceToken(next++, i == 0 ? "dead" : "")));
    }
    for (const auto& o : client->sendBatch(std::move(batch))) {
      success += o.kind == push::OutcomeKind::kSuccess ? 1 : 0;
      invalid += o.kind == push::OutcomeKind::kInvalidToken ? 1 : 0;
    }
    const auto scrape = text.Serialize(client->metrics()->Collect());
    const double active = *metricValue(scrape, "pushdaemon_apns_upstream_cx_active");
    ASSERT_LE(active, kMaxConnections) << "batch " << b;
    ASSERT_LE(client->stats().open_connections, kMaxConnections) << "batch " << b;
    ASSERT_LE(conns.counts().live - live_before, kMaxConnections) << "batch " << b;
    if (b % 100 == 99) {
      const auto stats = mock.stats();
      ASSERT_LE(stats["open_connections"].get<std::size_t>(), kMaxConnections) << "batch " << b;
      ASSERT_LE(stats["peak_open_connections"].get<std::size_t>(), kMaxConnections)
          << "batch " << b;
    }
    if (b == 99) bytes_at_100 = conns.liveBytes();
  }
  EXPECT_EQ(success, kBatches * (kBatchSize - 1));
  EXPECT_EQ(invalid, kBatches);
  const auto stats = mock.stats();
  EXPECT_EQ(stats["requests"]["apns"], kBatches * kBatchSize);
  EXPECT_EQ(stats["peak_open_connections"], kMaxConnections);
  EXPECT_EQ(stats["accepted_connections"], kMaxConnections);  // long-lived: no churn
  EXPECT_EQ(client->stats().peak_connections, kMaxConnections);
  EXPECT_EQ(stats["distinct_jwts"], 1);
  // What the connections retain (nghttp2 session memory + buffers) stays
  // flat from batch 100 to batch 1000.
  const std::uint64_t bytes_at_end = conns.liveBytes();
  EXPECT_GT(bytes_at_100, 0u);
  EXPECT_LT(bytes_at_end, bytes_at_100 * 2) << bytes_at_100 << " -> " << bytes_at_end;

  ASSERT_TRUE(client->shutdown());
  EXPECT_EQ(conns.counts().live, live_before);
  EXPECT_EQ(client->stats().open_connections, 0u);
  EXPECT_TRUE(eventually([&] { return mock.stats()["open_connections"] == 0; }, 5000));
}
