// Integration tests: each fault the mock push server can inject, and what
// the caller gets — the right outcome, every notification answered exactly
// once, nothing lost, nothing the server processed sent twice.
#include <gtest/gtest.h>

#include <prometheus/text_serializer.h>
#include <map>
#include <mutex>
#include <thread>

#include "leakscope/push/apns.h"
#include "push_test_support.h"

namespace push = leakscope::push;
using namespace leakscope::testing;
using push::OutcomeKind;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

std::vector<push::ApnsNotification> batchOf(int n, std::uint64_t first = 0) {
  std::vector<push::ApnsNotification> out;
  for (int i = 0; i < n; ++i)
    out.push_back(notification(deviceToken(first + static_cast<std::uint64_t>(i))));
  return out;
}

std::map<OutcomeKind, int> kinds(const std::vector<push::Outcome>& outcomes) {
  std::map<OutcomeKind, int> k;
  for (const auto& o : outcomes) ++k[o.kind];
  return k;
}

// Every successful notification was processed by the server exactly once
// (status 200 in its record) and no record is a duplicate 200.
void expectDeliveredOnce(const MockPushServer& mock,
                         const std::vector<push::ApnsNotification>& batch,
                         const std::vector<push::Outcome>& outcomes) {
  const auto ok = receivedCounts(mock.received(), 200);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto it = ok.find(batch[i].device_token);
    const int n = it == ok.end() ? 0 : it->second;
    if (outcomes[i].kind == OutcomeKind::kSuccess) {
      EXPECT_EQ(n, 1) << "delivered " << n << " times: " << i;
    } else {
      EXPECT_EQ(n, 0) << "reported " << outcomes[i].reason << " but delivered: " << i;
    }
  }
}

// The mock push server, a loop and an APNs client, torn down in reverse.
using Faults = ApnsClientTest;

}  // namespace

TEST_F(Faults, DelayWithinTheTimeoutIsJustSlower) {
  auto* client = startClient({}, {{"delay_ms", 200}});
  ASSERT_TRUE(client);
  const auto batch = batchOf(10);
  const auto outcomes = client->sendBatch(batch);
  EXPECT_EQ(kinds(outcomes)[OutcomeKind::kSuccess], 10);
  expectDeliveredOnce(mock(), batch, outcomes);
  // The duration histogram saw the delay.
  EXPECT_EQ(metric(*client->metrics(),
                   R"(pushdaemon_apns_upstream_rq_duration_seconds_bucket{le="0.1"})"),
            0);
  // 10 × 200 ms, with slack for the mock's timer granularity.
  EXPECT_GE(metric(*client->metrics(), "pushdaemon_apns_upstream_rq_duration_seconds_sum"), 1.9);
  ASSERT_TRUE(client->shutdown());
}

TEST_F(Faults, DelayBeyondTheTimeoutTimesOutOnceAndTheLateAnswerIsIgnored) {
  ASSERT_TRUE(startMock());
  ASSERT_TRUE(mock().faults({{"delay_ms", 600}}));
  auto config = clientConfig();
  config.pool.request_timeout = milliseconds(200);
  auto* client = connect(config);
  ASSERT_TRUE(client);
  std::mutex mu;
  std::map<int, int> calls;
  for (int i = 0; i < 3; ++i) {
    client->send(notification(deviceToken(static_cast<std::uint64_t>(i))),
                 [&, i](const push::Outcome& o) {
                   const std::lock_guard lock(mu);
                   ++calls[i];
                   EXPECT_EQ(o.kind, OutcomeKind::kRetryable);
                   EXPECT_EQ(o.reason, "Timeout");
                 });
  }
  ASSERT_TRUE(eventually([&] {
    const std::lock_guard lock(mu);
    return calls.size() == 3;
  }));
  // The client reset the timed-out streams: the mock saw each one go before
  // its delayed answer left, so no late answer can come.
  ASSERT_TRUE(eventually([&] {
    int gone = 0;
    for (const auto& r : mock().received()) gone += r["action"] == "unanswered" ? 1 : 0;
    return gone == 3;
  })) << mock().received().dump();
  {
    const std::lock_guard lock(mu);
    for (const auto& [i, n] : calls) EXPECT_EQ(n, 1) << i;
  }
  EXPECT_EQ(metric(*client->metrics(), "pushdaemon_apns_upstream_rq_timeout_total"), 3);
  // Timed-out streams were reset, not left open.
  EXPECT_EQ(metric(*client->metrics(), "pushdaemon_apns_upstream_rq_active"), 0);
  ASSERT_TRUE(client->shutdown());
}

TEST_F(Faults, TooManyRequestsWithRetryAfterIsHonoured) {
  auto* client = startClient(
      {}, {{"fail",
            {{"count", 1}, {"status", 429}, {"reason", "TooManyRequests"}, {"retry_after", "1"}}}});
  ASSERT_TRUE(client);
  const auto start = std::chrono::steady_clock::now();
  const auto o = client->sendBatch({notification(deviceToken(1))})[0];
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(o.kind, OutcomeKind::kSuccess) << o.reason;
  EXPECT_EQ(o.attempts, 2);
  EXPECT_GE(took, milliseconds(1000));  // waited Retry-After, not the 20 ms back-off
  EXPECT_EQ(receivedCounts(mock().received()).at(deviceToken(1)), 2);
  ASSERT_TRUE(client->shutdown());
}

TEST_F(Faults, RetryAfterBeyondTheLimitIsReportedNotWaitedFor) {
  auto* client = startClient(
      {},
      {{"fail",
        {{"count", 1}, {"status", 429}, {"reason", "TooManyRequests"}, {"retry_after", "120"}}}});
  ASSERT_TRUE(client);
  const auto o = client->sendBatch({notification(deviceToken(1))})[0];
  EXPECT_EQ(o.kind, OutcomeKind::kRetryable);
  EXPECT_EQ(o.status, 429);
  EXPECT_EQ(o.retry_after, seconds(120));
  EXPECT_EQ(o.attempts, 1);
  ASSERT_TRUE(client->shutdown());
}

TEST_F(Faults, GoawayAfterNStreamsMovesTheRestToANewConnection) {
  ASSERT_TRUE(startMock({"--max-concurrent-streams", "20"}));
  ASSERT_TRUE(mock().faults({{"goaway_after_streams", 5}}));
  auto config = clientConfig();
  config.pool.max_connections = 1;
  config.pool.max_unprocessed_retries = 10;
  auto* client = connect(config);
  ASSERT_TRUE(client);
  const auto batch = batchOf(40);
  const auto outcomes = client->sendBatch(batch);
  EXPECT_EQ(kinds(outcomes)[OutcomeKind::kSuccess], 40);
  expectDeliveredOnce(mock(), batch, outcomes);
  const auto stats = mock().stats();
  EXPECT_GE(stats["goaways_sent"], 8);  // 5 per connection
  EXPECT_GT(stats["unprocessed"], 0);   // streams above the GOAWAY's last id were in flight
  // A draining connection does not hold back its replacement, but sockets
  // never exceed twice the maximum (PoolOptions::max_connections).
  EXPECT_LE(stats["peak_open_connections"], 2);
  const auto m = client->metrics();
  // The last GOAWAY may still be in flight when the last answer arrives.
  EXPECT_TRUE(eventually([&] {
    return metric(*m, "pushdaemon_apns_upstream_cx_goaway_received_total") ==
           stats["goaways_sent"].get<double>();
  }));
  EXPECT_GT(metric(*m, "pushdaemon_apns_upstream_rq_retry_total"), 0);
  EXPECT_GE(metric(*m, "pushdaemon_apns_upstream_cx_total"), 8);
  ASSERT_TRUE(client->shutdown());
}

TEST_F(Faults, RefusedStreamsAreSentAgainInvisibly) {
  auto* client = startClient({}, {{"rst", {{"count", 3}, {"error_code", 7}}}});  // REFUSED_STREAM
  ASSERT_TRUE(client);
  const auto batch = batchOf(10);
  const auto outcomes = client->sendBatch(batch);
  EXPECT_EQ(kinds(outcomes)[OutcomeKind::kSuccess], 10);
  expectDeliveredOnce(mock(), batch, outcomes);
  EXPECT_EQ(mock().stats()["resets"], 3);
  EXPECT_EQ(metric(*client->metrics(), "pushdaemon_apns_upstream_rq_retry_total"), 3);
  ASSERT_TRUE(client->shutdown());
}

TEST_F(Faults, RefusedBeyondTheRetryBudgetIsReportedRetryable) {
  ASSERT_TRUE(startMock());
  ASSERT_TRUE(mock().faults({{"rst", {{"count", 3}, {"error_code", 7}}}}));  // REFUSED_STREAM
  auto config = clientConfig();
  config.pool.max_unprocessed_retries = 2;  // 3 tries in all
  auto* client = connect(config);
  ASSERT_TRUE(client);
  const auto o = client->sendBatch({notification(deviceToken(1))})[0];
  EXPECT_EQ(o.kind, OutcomeKind::kRetryable);
  EXPECT_EQ(o.reason, "RefusedStream");
  EXPECT_EQ(o.status, 0);
  EXPECT_EQ(mock().stats()["resets"], 3);
  EXPECT_EQ(receivedCounts(mock().received(), 200).count(deviceToken(1)), 0u);  // never delivered
  // The next one goes through: the refusals were the server's, not the pool's.
  EXPECT_EQ(client->sendBatch({notification(deviceToken(2))})[0].kind, OutcomeKind::kSuccess);
  ASSERT_TRUE(client->shutdown());
}

TEST_F(Faults, OtherStreamResetsAreReportedOnceNotResent) {
  auto* client = startClient({}, {{"rst", {{"count", 1}, {"error_code", 2}}}});  // INTERNAL_ERROR
  ASSERT_TRUE(client);
  const auto batch = batchOf(5);
  const auto outcomes = client->sendBatch(batch);
  auto k = kinds(outcomes);
  EXPECT_EQ(k[OutcomeKind::kSuccess], 4);
  EXPECT_EQ(k[OutcomeKind::kRetryable], 1);
  for (const auto& o : outcomes) {
    if (o.kind == OutcomeKind::kRetryable) {
      EXPECT_EQ(o.reason, "StreamReset");
    }
  }
  // The reset one may have been processed: it is not sent again behind the
  // caller's back.
  const auto all = receivedCounts(mock().received());
  for (const auto& n : batch) EXPECT_EQ(all.at(n.device_token), 1);
  ASSERT_TRUE(client->shutdown());
}

TEST_F(Faults, AbruptCloseReportsConnectionLostOnceAndReconnects) {
  ASSERT_TRUE(startMock({"--max-concurrent-streams", "10"}));
  // The 4th request on a connection kills it (TCP RST) before any answer
  // left; answers are delayed so the first three are still in flight.
  ASSERT_TRUE(mock().faults({{"close_after_requests", 4}, {"delay_ms", 300}}));
  auto config = clientConfig();
  config.pool.max_connections = 1;
  auto* client = connect(config);
  ASSERT_TRUE(client);
  const auto batch = batchOf(4);
  const auto outcomes = client->sendBatch(batch);
  for (const auto& o : outcomes) {
    EXPECT_EQ(o.kind, OutcomeKind::kRetryable);
    EXPECT_EQ(o.reason, "ConnectionLost");
  }
  const auto m = client->metrics();
  EXPECT_EQ(metric(*m, R"(pushdaemon_apns_upstream_cx_destroy_total{side="remote"})"), 1);
  EXPECT_EQ(metric(*m, "pushdaemon_apns_upstream_cx_destroy_with_active_rq_total"), 1);
  // The pool comes back by itself.
  ASSERT_TRUE(mock().faults({{"close_after_requests", 0}, {"delay_ms", 0}}));
  const auto again = client->sendBatch(batchOf(3, 100));
  EXPECT_EQ(kinds(again)[OutcomeKind::kSuccess], 3);
  EXPECT_EQ(metric(*m, "pushdaemon_apns_upstream_cx_total"), 2);
  ASSERT_TRUE(client->shutdown());
}

TEST_F(Faults, LoweredMaxConcurrentStreamsIsRespected) {
  ASSERT_TRUE(startMock({"--max-concurrent-streams", "3"}));
  ASSERT_TRUE(mock().faults({{"delay_ms", 50}}));
  auto config = clientConfig();
  config.pool.max_connections = 1;
  auto* client = connect(config);
  ASSERT_TRUE(client);
  const auto outcomes = client->sendBatch(batchOf(30));
  EXPECT_EQ(kinds(outcomes)[OutcomeKind::kSuccess], 30);
  EXPECT_EQ(mock().stats()["peak_streams_per_connection"], 3);
  ASSERT_TRUE(client->shutdown());
}

TEST_F(Faults, MaxConcurrentStreamsChangedMidConnectionIsFollowed) {
  ASSERT_TRUE(startMock({"--max-concurrent-streams", "50"}));
  ASSERT_TRUE(mock().faults({{"delay_ms", 50}}));
  auto config = clientConfig();
  config.pool.max_connections = 1;
  auto* client = connect(config);
  ASSERT_TRUE(client);
  EXPECT_EQ(kinds(client->sendBatch(batchOf(40)))[OutcomeKind::kSuccess], 40);
  EXPECT_GT(mock().stats()["peak_streams_per_connection"], 2);
  // Lower it on the open connection; wait until the client acknowledged it.
  ASSERT_TRUE(mock().control("reset", nlohmann::json::object()));
  ASSERT_TRUE(mock().faults({{"max_concurrent_streams", 2}}));
  ASSERT_TRUE(eventually([&] { return mock().stats()["settings_acks"].get<int>() >= 1; }));
  EXPECT_EQ(kinds(client->sendBatch(batchOf(20, 100)))[OutcomeKind::kSuccess], 20);
  const auto stats = mock().stats();
  EXPECT_EQ(stats["peak_streams_per_connection"], 2);
  EXPECT_EQ(stats["accepted_connections"], 0);  // same connection throughout
  // And raised again.
  ASSERT_TRUE(mock().control("reset", nlohmann::json::object()));
  ASSERT_TRUE(mock().faults({{"max_concurrent_streams", 10}}));
  ASSERT_TRUE(eventually([&] { return mock().stats()["settings_acks"].get<int>() >= 1; }));
  EXPECT_EQ(kinds(client->sendBatch(batchOf(30, 200)))[OutcomeKind::kSuccess], 30);
  EXPECT_GT(mock().stats()["peak_streams_per_connection"], 2);
  ASSERT_TRUE(client->shutdown());
}

TEST_F(Faults, RefusedConnectionsFailTheQueueThenThePoolRecovers) {
  ASSERT_TRUE(startMock());
  ASSERT_TRUE(mock().faults({{"refuse_connections", true}}));
  auto config = clientConfig();
  config.pool.connect_failures_before_failing_queue = 3;
  auto* client = connect(config);
  ASSERT_TRUE(client);
  const auto outcomes = client->sendBatch(batchOf(5));
  for (const auto& o : outcomes) {
    EXPECT_EQ(o.kind, OutcomeKind::kRetryable);
    EXPECT_EQ(o.reason, "ConnectFailed");
  }
  const auto m = client->metrics();
  EXPECT_EQ(metric(*m, "pushdaemon_apns_upstream_cx_connect_fail_total"), 3);
  EXPECT_EQ(metric(*m, "pushdaemon_apns_upstream_cx_active"), 0);
  ASSERT_TRUE(mock().faults({{"refuse_connections", false}}));
  const auto again = client->sendBatch(batchOf(5, 10));
  EXPECT_EQ(kinds(again)[OutcomeKind::kSuccess], 5);
  ASSERT_TRUE(client->shutdown());
}

TEST_F(Faults, FailedAttemptsAtAnExtraConnectionLeaveTheQueueToTheWorkingOne) {
  // Two streams per connection and slow answers: the pool wants three
  // connections, but after the first one the server refuses new ones.
  ASSERT_TRUE(startMock({"--max-concurrent-streams", "2"}));
  ASSERT_TRUE(mock().faults({{"delay_ms", 100}}));
  auto config = clientConfig();
  config.pool.max_connections = 3;
  config.pool.connect_failures_before_failing_queue = 2;
  config.pool.reconnect = {milliseconds(20), milliseconds(40), 2.0};
  config.pool.request_timeout = seconds(20);
  auto* client = connect(config);
  ASSERT_TRUE(client);
  ASSERT_EQ(kinds(client->sendBatch(batchOf(1)))[OutcomeKind::kSuccess], 1);  // one is up
  ASSERT_TRUE(mock().faults({{"refuse_connections", true}}));
  const auto batch = batchOf(20, 100);
  const auto outcomes = client->sendBatch(batch);
  // Every one went through the working connection, none failed with
  // ConnectFailed although more attempts failed than the queue's limit.
  EXPECT_EQ(kinds(outcomes)[OutcomeKind::kSuccess], 20);
  EXPECT_GT(metric(*client->metrics(), "pushdaemon_apns_upstream_cx_connect_fail_total"),
            config.pool.connect_failures_before_failing_queue);
  expectDeliveredOnce(mock(), batch, outcomes);
  ASSERT_TRUE(mock().faults({{"refuse_connections", false}}));
  ASSERT_TRUE(client->shutdown());
}

TEST_F(Faults, StallTimesOutAndThePingHealthCheckClosesTheConnection) {
  ASSERT_TRUE(startMock());
  auto config = clientConfig();
  config.pool.max_connections = 1;
  config.pool.request_timeout = milliseconds(300);
  config.pool.ping_interval = milliseconds(200);
  config.pool.ping_timeout = milliseconds(300);
  auto* client = connect(config);
  ASSERT_TRUE(client);
  EXPECT_EQ(client->sendBatch(batchOf(1))[0].kind, OutcomeKind::kSuccess);
  ASSERT_TRUE(mock().faults({{"stall", true}}));
  const auto stalled = client->sendBatch(batchOf(3, 10));
  for (const auto& o : stalled) {
    EXPECT_EQ(o.kind, OutcomeKind::kRetryable);
    EXPECT_EQ(o.reason, "Timeout");
  }
  const auto m = client->metrics();
  // The unanswered PING closes the stalled connection from our side.
  EXPECT_TRUE(eventually(
      [&] { return metric(*m, "pushdaemon_apns_upstream_cx_ping_timeout_total") == 1; }, 3000));
  EXPECT_TRUE(eventually([&] { return client->stats().open_connections == 0; }, 3000));
  EXPECT_EQ(metric(*m, R"(pushdaemon_apns_upstream_cx_destroy_total{side="local"})"), 1);
  ASSERT_TRUE(mock().faults({{"stall", false}}));
  EXPECT_EQ(kinds(client->sendBatch(batchOf(3, 20)))[OutcomeKind::kSuccess], 3);
  // The timed-out requests sat in the stalled server's socket buffer; once
  // it woke up it may have processed them (which is why a timeout is not
  // resent behind the caller's back): at most once each.
  const auto all = receivedCounts(mock().received());
  for (int i = 10; i < 13; ++i) {
    const auto it = all.find(deviceToken(static_cast<std::uint64_t>(i)));
    EXPECT_LE(it == all.end() ? 0 : it->second, 1);
  }
  ASSERT_TRUE(client->shutdown());
}

TEST_F(Faults, IdleConnectionsAreClosed) {
  ASSERT_TRUE(startMock());
  auto config = clientConfig();
  config.pool.idle_timeout = milliseconds(200);
  auto* client = connect(config);
  ASSERT_TRUE(client);
  EXPECT_EQ(client->sendBatch(batchOf(2))[0].kind, OutcomeKind::kSuccess);
  EXPECT_EQ(client->stats().open_connections, 1u);
  EXPECT_TRUE(eventually([&] { return client->stats().open_connections == 0; }, 3000));
  EXPECT_TRUE(eventually([&] { return mock().stats()["open_connections"] == 0; }, 3000));
  const auto m = client->metrics();
  EXPECT_EQ(metric(*m, "pushdaemon_apns_upstream_cx_idle_timeout_total"), 1);
  EXPECT_EQ(metric(*m, R"(pushdaemon_apns_upstream_cx_destroy_total{side="local"})"), 1);
  // Needed again: a new connection.
  EXPECT_EQ(client->sendBatch(batchOf(1, 5))[0].kind, OutcomeKind::kSuccess);
  EXPECT_EQ(metric(*m, "pushdaemon_apns_upstream_cx_total"), 2);
  ASSERT_TRUE(client->shutdown());
}
