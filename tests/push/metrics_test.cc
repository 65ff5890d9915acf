// Unit tests of daemon/push/src/metrics.cc: names in Envoy's vocabulary,
// sorted families, bounded labels, and active == total - destroyed.
#include "leakscope/push/metrics.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <algorithm>

#include "test_support.h"

namespace push = leakscope::push;
using leakscope::testing::metricValue;

namespace {

std::string scrape(const push::PushMetrics& m) {
  return prometheus::TextSerializer().Serialize(m.Collect());
}

}  // namespace

TEST(PushMetrics, ActiveIsTotalMinusDestroyedAndSidesAreSplit) {
  push::PushMetrics m;
  auto s = m.upstream("apns");
  EXPECT_EQ(m.upstream("apns").get(), s.get());  // one per component
  for (int i = 0; i < 5; ++i) s->cxOpened();
  s->cxDestroyed(push::CloseSide::kLocal, false);
  s->cxDestroyed(push::CloseSide::kRemote, true);
  s->cxDestroyed(push::CloseSide::kRemote, false);
  s->rqStarted();
  s->rqStarted();
  s->rqFinished();
  const auto text = scrape(m);
  EXPECT_EQ(metricValue(text, "pushdaemon_apns_upstream_cx_total"), 5);
  EXPECT_EQ(metricValue(text, "pushdaemon_apns_upstream_cx_active"), 2);
  EXPECT_EQ(metricValue(text, R"(pushdaemon_apns_upstream_cx_destroy_total{side="local"})"), 1);
  EXPECT_EQ(metricValue(text, R"(pushdaemon_apns_upstream_cx_destroy_total{side="remote"})"), 2);
  EXPECT_EQ(metricValue(text, "pushdaemon_apns_upstream_cx_destroy_with_active_rq_total"), 1);
  EXPECT_EQ(metricValue(text, "pushdaemon_apns_upstream_rq_active"), 1);
  const auto c = s->counts();
  EXPECT_EQ(c.cx_active, c.cx_total - c.cx_destroy_local - c.cx_destroy_remote);
}

TEST(PushMetrics, RequestsByStatusReasonOutcomeWithBoundedLabels) {
  push::PushMetrics m;
  auto s = m.upstream("apns");
  s->rqCompleted(200, "", push::OutcomeKind::kSuccess, 0.003);
  s->rqCompleted(410, "Unregistered", push::OutcomeKind::kInvalidToken, 0.02);
  s->rqCompleted(410, "Unregistered", push::OutcomeKind::kInvalidToken, 0.02);
  s->rqCompleted(400, "A-Reason-A-Server-Made-Up", push::OutcomeKind::kPermanent, 0.5);
  s->rqCompleted(0, "Timeout", push::OutcomeKind::kRetryable, -1);
  const auto text = scrape(m);
  EXPECT_EQ(
      metricValue(
          text,
          R"(pushdaemon_apns_upstream_rq_total{outcome="success",reason="none",status="200"})"),
      1);
  EXPECT_EQ(
      metricValue(
          text,
          R"(pushdaemon_apns_upstream_rq_total{outcome="invalid_token",reason="Unregistered",status="410"})"),
      2);
  EXPECT_EQ(
      metricValue(
          text,
          R"(pushdaemon_apns_upstream_rq_total{outcome="permanent",reason="other",status="400"})"),
      1);
  EXPECT_EQ(
      metricValue(
          text,
          R"(pushdaemon_apns_upstream_rq_total{outcome="retryable",reason="Timeout",status="none"})"),
      1);
  EXPECT_EQ(text.find("A-Reason"), std::string::npos);
  // Four timed answers; unmeasured ones (-1) are not in the histogram.
  EXPECT_EQ(metricValue(text, "pushdaemon_apns_upstream_rq_duration_seconds_count"), 4);
  EXPECT_EQ(metricValue(text, R"(pushdaemon_apns_upstream_rq_duration_seconds_bucket{le="0.005"})"),
            1);
  EXPECT_EQ(metricValue(text, R"(pushdaemon_apns_upstream_rq_duration_seconds_bucket{le="0.025"})"),
            3);
  EXPECT_EQ(metricValue(text, R"(pushdaemon_apns_upstream_rq_duration_seconds_bucket{le="+Inf"})"),
            4);
}

TEST(PushMetrics, CredentialCountersAndSortedFamilies) {
  push::PushMetrics m;
  auto apns = m.upstream("apns");
  auto fcm = m.upstream("fcm");
  apns->jwtRefreshed(push::TokenRefresh::kInitial);
  apns->jwtRefreshed(push::TokenRefresh::kAge);
  apns->jwtRefreshed(push::TokenRefresh::kRejected);
  fcm->accessTokenFetched(true);
  fcm->accessTokenFetched(false);
  apns->goawayReceived();
  apns->notificationDone(push::OutcomeKind::kSuccess);
  const auto text = scrape(m);
  EXPECT_EQ(metricValue(text, R"(pushdaemon_apns_jwt_refresh_total{reason="age"})"), 1);
  EXPECT_EQ(metricValue(text, R"(pushdaemon_apns_jwt_refresh_total{reason="rejected"})"), 1);
  EXPECT_EQ(metricValue(text, R"(pushdaemon_fcm_access_token_fetch_total{result="ok"})"), 1);
  EXPECT_EQ(metricValue(text, R"(pushdaemon_fcm_access_token_fetch_total{result="error"})"), 1);
  EXPECT_EQ(metricValue(text, "pushdaemon_apns_upstream_cx_goaway_received_total"), 1);
  EXPECT_EQ(metricValue(text, R"(pushdaemon_apns_notifications_total{outcome="success"})"), 1);
  const auto families = m.Collect();
  std::vector<std::string> names;
  for (const auto& f : families) names.push_back(f.name);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  for (const auto& f : families) {
    if (f.type == prometheus::MetricType::Counter) {
      EXPECT_TRUE(f.name.size() > 6 && f.name.substr(f.name.size() - 6) == "_total") << f.name;
    }
  }
}
