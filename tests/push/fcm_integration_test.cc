// Integration tests of the FCM HTTP v1 client against the mock: the OAuth2
// access token (fetched once, cached, refreshed near expiry under an
// injected clock, replaced after a 401), FCM's error codes, Retry-After,
// and shutdown of both pools.
#include <gtest/gtest.h>

#include <prometheus/text_serializer.h>

#include <atomic>
#include <fstream>
#include <map>

#include "leakscope/diag/tracked.h"
#include "leakscope/push/fcm.h"
#include "push_test_support.h"

namespace push = leakscope::push;
namespace diag = leakscope::diag;
using namespace leakscope::testing;
using push::OutcomeKind;
using std::chrono::minutes;
using std::chrono::seconds;

namespace {

push::FcmNotification message(const std::string& token) {
  return {token, R"({"notification":{"title":"leakscope","body":"test"}})"};
}

// The mock push server, a loop and an FCM client whose service account
// lives in the fixture's temp dir, torn down in reverse.
using FcmIntegration = FcmClientTest;

}  // namespace

TEST_F(FcmIntegration, OneAccessTokenServesManyMessages) {
  auto* client = startClient();
  ASSERT_TRUE(client);
  std::vector<push::FcmNotification> batch;
  for (int i = 0; i < 30; ++i) batch.push_back(message("reg-" + std::to_string(i)));
  const auto outcomes = client->sendBatch(batch);
  for (const auto& o : outcomes) {
    EXPECT_EQ(o.kind, OutcomeKind::kSuccess) << o.reason;
    EXPECT_EQ(o.id.rfind("projects/leakscope-test/messages/", 0), 0u) << o.id;
  }
  const auto stats = mock().stats();
  EXPECT_EQ(stats["oauth_tokens_issued"], 1);
  EXPECT_EQ(stats["requests"]["fcm"], 30);
  const auto received = mock().received();
  ASSERT_EQ(received.size(), 30u);
  EXPECT_EQ(received[0]["token"], "reg-0");
  const auto m = client->metrics();
  EXPECT_EQ(metric(*m, R"(pushdaemon_fcm_access_token_fetch_total{result="ok"})"), 1);
  EXPECT_EQ(metric(*m, R"(pushdaemon_fcm_jwt_refresh_total{reason="initial"})"), 1);
  ASSERT_TRUE(client->shutdown());
}

TEST_F(FcmIntegration, ErrorCodesMapAndRetryAfterIsHonoured) {
  ASSERT_TRUE(startMock());
  ASSERT_TRUE(
      mock().rules({{{"prefix", "gone"}, {"status", 404}, {"fcm_code", "UNREGISTERED"}},
                    {{"prefix", "bad"}, {"status", 400}, {"fcm_code", "INVALID_ARGUMENT"}},
                    {{"prefix", "other"}, {"status", 403}, {"fcm_code", "SENDER_ID_MISMATCH"}},
                    {{"prefix", "busy"}, {"status", 503}, {"fcm_code", "UNAVAILABLE"}},
                    {{"prefix", "oops"}, {"status", 500}, {"fcm_code", "INTERNAL"}}}));
  auto* client = connect();
  ASSERT_TRUE(client);
  const auto outcomes = client->sendBatch({message("gone-1"), message("bad-1"), message("other-1"),
                                           message("busy-1"), message("oops-1")});
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kInvalidToken);
  EXPECT_EQ(outcomes[0].reason, "UNREGISTERED");
  EXPECT_EQ(outcomes[1].kind, OutcomeKind::kPermanent);
  EXPECT_EQ(outcomes[1].reason, "INVALID_ARGUMENT");
  EXPECT_EQ(outcomes[2].kind, OutcomeKind::kInvalidToken);
  EXPECT_EQ(outcomes[3].kind, OutcomeKind::kRetryable);
  EXPECT_EQ(outcomes[3].reason, "UNAVAILABLE");
  EXPECT_EQ(outcomes[3].attempts, 3);  // retried with back-off, then reported
  EXPECT_EQ(outcomes[4].reason, "INTERNAL");
  EXPECT_EQ(outcomes[4].attempts, 3);
  EXPECT_EQ(outcomes[0].attempts, 1);
  EXPECT_EQ(outcomes[1].attempts, 1);

  // QUOTA_EXCEEDED with Retry-After: waited for, then delivered.
  ASSERT_TRUE(mock().faults(
      {{"fail",
        {{"count", 1}, {"status", 429}, {"fcm_code", "QUOTA_EXCEEDED"}, {"retry_after", "1"}}}}));
  const auto start = std::chrono::steady_clock::now();
  const auto o = client->sendBatch({message("ok-1")})[0];
  EXPECT_EQ(o.kind, OutcomeKind::kSuccess) << o.reason;
  EXPECT_EQ(o.attempts, 2);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1000));
  ASSERT_TRUE(client->shutdown());
}

TEST_F(FcmIntegration, InvalidMessageJsonIsRefusedBeforeSending) {
  auto* client = startClient();
  ASSERT_TRUE(client);
  const auto o = client->sendBatch({{"reg-1", "not json"}})[0];
  EXPECT_EQ(o.kind, OutcomeKind::kPermanent);
  EXPECT_EQ(o.reason, "INVALID_ARGUMENT");
  EXPECT_EQ(o.attempts, 0);
  EXPECT_EQ(mock().stats()["requests"].value("fcm", 0), 0);
  ASSERT_TRUE(client->shutdown());
}

TEST_F(FcmIntegration, AccessTokenIsRefreshedBeforeItExpires) {
  ASSERT_TRUE(startMock());
  auto config = clientConfig();
  config.clock = clock_.fn();
  auto* client = connect(config);
  ASSERT_TRUE(client);
  EXPECT_EQ(client->sendBatch({message("reg-1")})[0].kind, OutcomeKind::kSuccess);
  clock_.advance(minutes(50));  // 59:59 lifetime, 5 min margin: still cached
  ASSERT_TRUE(mock().clockOffset(minutes(50)));
  EXPECT_EQ(client->sendBatch({message("reg-2")})[0].kind, OutcomeKind::kSuccess);
  EXPECT_EQ(mock().stats()["oauth_tokens_issued"], 1);
  clock_.advance(minutes(5));  // within the margin: a new one first
  ASSERT_TRUE(mock().clockOffset(minutes(55)));
  EXPECT_EQ(client->sendBatch({message("reg-3")})[0].kind, OutcomeKind::kSuccess);
  EXPECT_EQ(mock().stats()["oauth_tokens_issued"], 2);
  EXPECT_EQ(mock().stats()["responses"].value("401", 0), 0);  // never sent a stale token
  const auto received = mock().received();
  EXPECT_NE(received[1]["access_token"], received[2]["access_token"]);
  ASSERT_TRUE(client->shutdown());
}

TEST_F(FcmIntegration, UnauthenticatedMakesANewAccessTokenAndResendsOnce) {
  auto* client = startClient({"--token-lifetime", "60"});
  ASSERT_TRUE(client);
  EXPECT_EQ(client->sendBatch({message("reg-1")})[0].kind, OutcomeKind::kSuccess);
  // The server's clock runs two minutes ahead: it considers our cached
  // token (60 s lifetime, refreshed by us after 30 s) expired.
  ASSERT_TRUE(mock().clockOffset(minutes(2)));
  const auto o = client->sendBatch({message("reg-2")})[0];
  EXPECT_EQ(o.kind, OutcomeKind::kSuccess) << o.reason;
  EXPECT_EQ(o.attempts, 2);
  const auto stats = mock().stats();
  EXPECT_EQ(stats["responses"]["401"], 1);
  EXPECT_EQ(stats["oauth_tokens_issued"], 2);
  ASSERT_TRUE(client->shutdown());
}

TEST_F(FcmIntegration, TokenEndpointFailuresAreReportedAsAuthFailed) {
  ASSERT_TRUE(startMock());
  auto* client = connect(clientConfig(&log_));
  ASSERT_TRUE(client);
  ASSERT_TRUE(mock().faults({{"oauth_fail", {{"count", 1}, {"status", 503}}}}));
  // One message per phase: a second one arriving after the failure would
  // (rightly) trigger a fresh token request.
  const auto o = client->sendBatch({message("reg-1")})[0];
  EXPECT_EQ(o.kind, OutcomeKind::kRetryable);
  EXPECT_EQ(o.reason, "AuthFailed");
  EXPECT_EQ(o.attempts, 0);
  ASSERT_TRUE(mock().faults({{"oauth_fail", {{"count", 1}, {"status", 400}}}}));
  EXPECT_EQ(client->sendBatch({message("reg-3")})[0].kind, OutcomeKind::kPermanent);
  EXPECT_EQ(mock().stats()["requests"].value("fcm", 0), 0);  // nothing went out unauthorised
  // The endpoint works again: so does the client.
  EXPECT_EQ(client->sendBatch({message("reg-4")})[0].kind, OutcomeKind::kSuccess);
  EXPECT_EQ(
      metric(*client->metrics(), R"(pushdaemon_fcm_access_token_fetch_total{result="error"})"), 2);
  ASSERT_TRUE(client->shutdown());
}

TEST_F(FcmIntegration, ShutdownClosesBothPoolsOnBothSides) {
  ASSERT_TRUE(startMock());
  const auto fcm_before = diag::kind("fcm.connection").counts().live;
  const auto oauth_before = diag::kind("oauth.connection").counts().live;
  auto* client = connect();
  ASSERT_TRUE(client);
  EXPECT_EQ(client->sendBatch({message("reg-1")})[0].kind, OutcomeKind::kSuccess);
  EXPECT_EQ(client->stats().open_connections, 2u);  // FCM + token endpoint
  EXPECT_EQ(mock().stats()["open_connections"], 2);
  ASSERT_TRUE(client->shutdown());
  EXPECT_EQ(client->stats().open_connections, 0u);
  EXPECT_EQ(diag::kind("fcm.connection").counts().live, fcm_before);
  EXPECT_EQ(diag::kind("oauth.connection").counts().live, oauth_before);
  EXPECT_EQ(diag::kind("fcm.provider").counts().live, 0u);
  const auto m = client->metrics();
  EXPECT_EQ(metric(*m, "pushdaemon_fcm_upstream_cx_active"), 0);
  EXPECT_EQ(metric(*m, "pushdaemon_oauth_upstream_cx_active"), 0);
  EXPECT_TRUE(eventually([&] { return mock().stats()["open_connections"] == 0; }, 5000));
}

// Both pools' connections name the FCM provider as their owner (issue #16).
TEST_F(FcmIntegration, BothPoolsConnectionsAreOwnedByTheProvider) {
  ASSERT_TRUE(startMock());
  auto* client = connect();
  ASSERT_TRUE(client);
  EXPECT_EQ(client->sendBatch({message("reg-1")})[0].kind, OutcomeKind::kSuccess);
  const nlohmann::json snap = snapshotOfThisProcess();
  ASSERT_TRUE(snap.is_object());
  const auto providers = objectsOf(snap, "fcm.provider");
  ASSERT_EQ(providers.size(), 1u);
  EXPECT_EQ(providers[0]["id"], client->trackedId().value);
  EXPECT_TRUE(providers[0]["owner"].is_null());
  for (const char* kind : {"fcm.connection", "oauth.connection"}) {
    const auto conns = objectsOf(snap, kind);
    ASSERT_EQ(conns.size(), 1u) << kind;
    EXPECT_EQ(conns[0]["owner"], client->trackedId().value) << kind;
  }
  ASSERT_TRUE(client->shutdown());
}

TEST_F(FcmIntegration, ServiceAccountProblemsAreReportedAtCreate) {
  ASSERT_TRUE(startMock());
  auto config = clientConfig();
  auto missing = push::FcmServiceAccount::fromFile(dir_.path() + "/missing.json");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("missing.json"), std::string::npos);
  // A key that does not parse: the error names the file, never the key text.
  std::ofstream(dir_.path() + "/bad.json")
      << R"({"type":"service_account","project_id":"p","private_key_id":"k1",)"
      << R"("client_email":"x@p.iam.gserviceaccount.com","token_uri":"https://localhost/token",)"
      << R"("private_key":"-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n)"
      << R"(-----END PRIVATE KEY-----\n"})";
  auto bad = push::FcmServiceAccount::fromFile(dir_.path() + "/bad.json");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("bad.json"), std::string::npos) << bad.error().message;
  EXPECT_EQ(bad.error().message.find("c2VjcmV0"), std::string::npos) << bad.error().message;
  EXPECT_EQ(bad.error().message.find("BEGIN PRIVATE KEY"), std::string::npos);
  // A client without an account is refused at create().
  config.service_account.reset();
  auto none = push::FcmClient::create(loop(), config);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("service account"), std::string::npos);
}

TEST_F(FcmIntegration, TransportFaultsAreReportedAsForApns) {
  auto* client = startClient();
  ASSERT_TRUE(client);
  ASSERT_EQ(client->sendBatch({message("warm-up")})[0].kind, OutcomeKind::kSuccess);
  // RST_STREAM(REFUSED_STREAM): not processed, sent again invisibly.
  ASSERT_TRUE(mock().faults({{"rst", {{"count", 1}, {"error_code", 7}}}}));
  auto o = client->sendBatch({message("refused-once")})[0];
  EXPECT_EQ(o.kind, OutcomeKind::kSuccess) << o.reason;
  // RST_STREAM(INTERNAL_ERROR): maybe processed, reported once, not resent.
  ASSERT_TRUE(mock().faults({{"rst", {{"count", 1}, {"error_code", 2}}}}));
  o = client->sendBatch({message("reset")})[0];
  EXPECT_EQ(o.kind, OutcomeKind::kRetryable);
  EXPECT_EQ(o.reason, "StreamReset");
  // Abrupt close mid-request: ConnectionLost once, then a new connection works.
  ASSERT_TRUE(mock().faults({{"close_after_requests", 1}}));
  o = client->sendBatch({message("lost")})[0];
  EXPECT_EQ(o.kind, OutcomeKind::kRetryable);
  EXPECT_EQ(o.reason, "ConnectionLost");
  ASSERT_TRUE(mock().faults({{"close_after_requests", 0}}));
  EXPECT_EQ(client->sendBatch({message("after")})[0].kind, OutcomeKind::kSuccess);
  std::map<std::string, std::vector<std::string>> actions;
  for (const auto& r : mock().received()) {
    if (r.contains("token")) actions[r["token"]].push_back(r["action"]);
  }
  EXPECT_EQ(actions["refused-once"], (std::vector<std::string>{"reset", "respond"}));
  EXPECT_EQ(actions["reset"], (std::vector<std::string>{"reset"}));
  EXPECT_EQ(actions["lost"], (std::vector<std::string>{"close"}));
  ASSERT_TRUE(client->shutdown());
}

TEST_F(FcmIntegration, OversizedMessagesAreRefusedBeforeSending) {
  auto* client = startClient();
  ASSERT_TRUE(client);
  const std::string big(push::kFcmMaxMessageBytes, 'x');
  const auto o = client->sendBatch({{"tok", R"({"data":{"blob":")" + big + R"("}})"}})[0];
  EXPECT_EQ(o.kind, OutcomeKind::kPermanent);
  EXPECT_EQ(o.reason, "PayloadTooLarge");
  EXPECT_EQ(o.attempts, 0);
  EXPECT_EQ(mock().received().size(), 0u);
  ASSERT_TRUE(client->shutdown());
}

TEST_F(FcmIntegration, ShutdownStillSendsWhatWaitsForAnAccessTokenInFlight) {
  auto* client = startClient({}, {{"delay_ms", 300}});  // the token request takes a while
  ASSERT_TRUE(client);
  std::atomic<int> ok{0}, answered{0};
  for (int i = 0; i < 3; ++i) {
    client->send(message("t" + std::to_string(i)), [&](const push::Outcome& o) {
      ++answered;
      if (o.kind == OutcomeKind::kSuccess) ++ok;
    });
  }
  ASSERT_TRUE(eventually([&] { return mock().stats()["requests"].value("oauth", 0) == 1; }));
  ASSERT_TRUE(client->shutdown(seconds(5)));  // within the grace: the token comes, they go
  EXPECT_EQ(answered.load(), 3);
  EXPECT_EQ(ok.load(), 3);
}
