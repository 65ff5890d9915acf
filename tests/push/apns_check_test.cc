// Unit tests of checkApnsNotification (daemon/push/src/apns.cc): what APNs
// would refuse is refused before anything is sent, with Apple's reason.
#include <gtest/gtest.h>

#include "leakscope/push/apns.h"

namespace push = leakscope::push;

namespace {

push::ApnsNotification valid() {
  push::ApnsNotification n;
  n.device_token = std::string(64, 'a');
  n.topic = "com.example.app";
  n.payload = R"({"aps":{"alert":"hi"}})";
  return n;
}

std::string reasonOf(const push::ApnsNotification& n, bool token_auth = true) {
  const auto o = push::checkApnsNotification(n, token_auth);
  return o ? o->reason : "ok";
}

}  // namespace

TEST(ApnsCheck, PayloadLimitIs4096AndForVoip5120) {
  auto n = valid();
  n.payload = std::string(4096, 'x');
  EXPECT_EQ(reasonOf(n), "ok");
  n.payload += 'x';
  EXPECT_EQ(reasonOf(n), "PayloadTooLarge");
  const auto o = push::checkApnsNotification(n, true);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->kind, push::OutcomeKind::kPermanent);
  EXPECT_EQ(o->attempts, 0);
  EXPECT_EQ(o->status, 0);

  n.push_type = "voip";
  n.topic = "com.example.app.voip";
  n.payload = std::string(5120, 'x');
  EXPECT_EQ(reasonOf(n), "ok");
  n.payload += 'x';
  EXPECT_EQ(reasonOf(n), "PayloadTooLarge");
}

TEST(ApnsCheck, EmptyPayloadAndTokenProblems) {
  auto n = valid();
  n.payload.clear();
  EXPECT_EQ(reasonOf(n), "PayloadEmpty");
  n = valid();
  n.device_token.clear();
  EXPECT_EQ(reasonOf(n), "MissingDeviceToken");
  n.device_token = "not-hex!";
  EXPECT_EQ(reasonOf(n), "BadDeviceToken");
  EXPECT_EQ(push::checkApnsNotification(n, true)->kind, push::OutcomeKind::kInvalidToken);
}

TEST(ApnsCheck, TopicIsRequiredForTokenAuthOnly) {
  auto n = valid();
  n.topic.clear();
  EXPECT_EQ(reasonOf(n, true), "MissingTopic");
  EXPECT_EQ(reasonOf(n, false), "ok");  // certificate auth: the certificate's topic
}

TEST(ApnsCheck, HeaderValuesAreChecked) {
  auto n = valid();
  n.push_type = "shout";
  EXPECT_EQ(reasonOf(n), "InvalidPushType");
  n = valid();
  for (int p : {1, 5, 10}) {
    n.priority = p;
    EXPECT_EQ(reasonOf(n), "ok") << p;
  }
  n.priority = 7;
  EXPECT_EQ(reasonOf(n), "BadPriority");
  n = valid();
  n.collapse_id = std::string(64, 'c');
  EXPECT_EQ(reasonOf(n), "ok");
  n.collapse_id += 'c';
  EXPECT_EQ(reasonOf(n), "BadCollapseId");
  n = valid();
  n.apns_id = "123e4567-e89b-12d3-a456-4266554400a0";
  EXPECT_EQ(reasonOf(n), "ok");
  n.apns_id = "123e4567e89b12d3a4564266554400a0";
  EXPECT_EQ(reasonOf(n), "BadMessageId");
  n = valid();
  n.expiration = 0;
  EXPECT_EQ(reasonOf(n), "ok");
  n.expiration = -5;
  EXPECT_EQ(reasonOf(n), "BadExpirationDate");
}
