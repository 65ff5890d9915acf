// Unit tests of daemon/push/src/outcome.cc: every APNs reason and FCM error
// code maps to the outcome class Apple's and Google's documentation implies,
// and Retry-After parses in both of its forms.
#include "leakscope/push/outcome.h"

#include <gtest/gtest.h>

#include <tuple>
#include <vector>

namespace push = leakscope::push;
using push::OutcomeKind;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(ApnsMapping, EveryDocumentedReasonHasItsOutcome) {
  const std::vector<std::tuple<int, const char*, OutcomeKind>> table = {
      {400, "BadCollapseId", OutcomeKind::kPermanent},
      {400, "BadDeviceToken", OutcomeKind::kInvalidToken},
      {400, "BadExpirationDate", OutcomeKind::kPermanent},
      {400, "BadMessageId", OutcomeKind::kPermanent},
      {400, "BadPriority", OutcomeKind::kPermanent},
      {400, "BadTopic", OutcomeKind::kPermanent},
      {400, "DeviceTokenNotForTopic", OutcomeKind::kInvalidToken},
      {400, "DuplicateHeaders", OutcomeKind::kPermanent},
      {400, "IdleTimeout", OutcomeKind::kRetryable},
      {400, "InvalidPushType", OutcomeKind::kPermanent},
      {400, "MissingDeviceToken", OutcomeKind::kPermanent},
      {400, "MissingTopic", OutcomeKind::kPermanent},
      {400, "PayloadEmpty", OutcomeKind::kPermanent},
      {400, "TopicDisallowed", OutcomeKind::kPermanent},
      {403, "BadCertificate", OutcomeKind::kPermanent},
      {403, "BadCertificateEnvironment", OutcomeKind::kPermanent},
      {403, "ExpiredProviderToken", OutcomeKind::kRetryable},
      {403, "Forbidden", OutcomeKind::kPermanent},
      {403, "InvalidProviderToken", OutcomeKind::kPermanent},
      {403, "MissingProviderToken", OutcomeKind::kPermanent},
      {404, "BadPath", OutcomeKind::kPermanent},
      {405, "MethodNotAllowed", OutcomeKind::kPermanent},
      {410, "ExpiredToken", OutcomeKind::kInvalidToken},
      {410, "Unregistered", OutcomeKind::kInvalidToken},
      {413, "PayloadTooLarge", OutcomeKind::kPermanent},
      {429, "TooManyProviderTokenUpdates", OutcomeKind::kRetryable},
      {429, "TooManyRequests", OutcomeKind::kRetryable},
      {500, "InternalServerError", OutcomeKind::kRetryable},
      {503, "ServiceUnavailable", OutcomeKind::kRetryable},
      {503, "Shutdown", OutcomeKind::kRetryable},
  };
  for (const auto& [status, why, kind] : table) {
    const auto o = push::mapApnsResponse(status, why);
    EXPECT_EQ(o.kind, kind) << status << " " << why;
    EXPECT_EQ(o.status, status);
    EXPECT_EQ(o.reason, why);
    EXPECT_EQ(push::reasonLabel(why), why);  // known reasons are their own label
  }
  EXPECT_EQ(push::mapApnsResponse(200, "").kind, OutcomeKind::kSuccess);
}

TEST(ApnsMapping, UnregisteredCarriesTheTimestamp) {
  const auto o = push::mapApnsResponse(410, "Unregistered", 1700000000123);
  EXPECT_EQ(o.kind, OutcomeKind::kInvalidToken);
  ASSERT_TRUE(o.invalid_since);
  EXPECT_EQ(o.invalid_since->time_since_epoch(), milliseconds(1700000000123));
  // A timestamp on a non-token answer means nothing and is not reported.
  EXPECT_FALSE(push::mapApnsResponse(500, "InternalServerError", 1).invalid_since);
}

TEST(ApnsMapping, UnknownReasonsFallBackOnTheStatusClass) {
  EXPECT_EQ(push::mapApnsResponse(502, "SomethingNew").kind, OutcomeKind::kRetryable);
  EXPECT_EQ(push::mapApnsResponse(429, "").kind, OutcomeKind::kRetryable);
  EXPECT_EQ(push::mapApnsResponse(400, "SomethingNew").kind, OutcomeKind::kPermanent);
  EXPECT_EQ(push::mapApnsResponse(410, "SomethingNew").kind, OutcomeKind::kInvalidToken);
  EXPECT_EQ(push::mapApnsResponse(204, "").kind, OutcomeKind::kPermanent);
  EXPECT_EQ(push::reasonLabel("SomethingNew"), "other");  // bounded metric labels
}

TEST(ApnsMapping, OnlyExpiredProviderTokenAsksForANewToken) {
  EXPECT_TRUE(push::apnsNeedsNewProviderToken("ExpiredProviderToken"));
  EXPECT_FALSE(push::apnsNeedsNewProviderToken("InvalidProviderToken"));
  EXPECT_FALSE(push::apnsNeedsNewProviderToken("TooManyProviderTokenUpdates"));
}

TEST(FcmMapping, ErrorCodesMapAsDocumented) {
  const std::vector<std::tuple<int, const char*, OutcomeKind>> table = {
      {404, "UNREGISTERED", OutcomeKind::kInvalidToken},
      {403, "SENDER_ID_MISMATCH", OutcomeKind::kInvalidToken},
      {400, "INVALID_ARGUMENT", OutcomeKind::kPermanent},
      {429, "QUOTA_EXCEEDED", OutcomeKind::kRetryable},
      {503, "UNAVAILABLE", OutcomeKind::kRetryable},
      {500, "INTERNAL", OutcomeKind::kRetryable},
      {401, "THIRD_PARTY_AUTH_ERROR", OutcomeKind::kPermanent},
      {500, "UNSPECIFIED_ERROR", OutcomeKind::kRetryable},
      {401, "UNAUTHENTICATED", OutcomeKind::kRetryable},
  };
  for (const auto& [status, code, kind] : table) {
    EXPECT_EQ(push::mapFcmResponse(status, code).kind, kind) << code;
  }
  EXPECT_EQ(push::mapFcmResponse(200, "").kind, OutcomeKind::kSuccess);
  EXPECT_EQ(push::mapFcmResponse(503, "").kind, OutcomeKind::kRetryable);
  EXPECT_EQ(push::mapFcmResponse(400, "").kind, OutcomeKind::kPermanent);
  EXPECT_TRUE(push::fcmNeedsNewAccessToken(401, ""));
  EXPECT_FALSE(push::fcmNeedsNewAccessToken(403, "SENDER_ID_MISMATCH"));
}

TEST(RetryAfter, DeltaSecondsAndHttpDate) {
  const auto now =
      std::chrono::system_clock::from_time_t(784111777);  // Sun, 06 Nov 1994 08:49:37 GMT
  EXPECT_EQ(push::parseRetryAfter("120", now), milliseconds(120000));
  EXPECT_EQ(push::parseRetryAfter(" 5 ", now), milliseconds(5000));
  EXPECT_EQ(push::parseRetryAfter("0", now), milliseconds(0));
  EXPECT_EQ(push::parseRetryAfter("Sun, 06 Nov 1994 08:50:07 GMT", now), milliseconds(30000));
  EXPECT_EQ(push::parseRetryAfter("Sun, 06 Nov 1994 08:00:00 GMT", now), milliseconds(0));
  EXPECT_FALSE(push::parseRetryAfter("", now));
  EXPECT_FALSE(push::parseRetryAfter("-1", now));
  EXPECT_FALSE(push::parseRetryAfter("soon", now));
  EXPECT_FALSE(push::parseRetryAfter("Sun, 06 Nov 1994 08:50:07", now));
  // A server cannot make us wait (or overflow) beyond a day.
  EXPECT_EQ(push::parseRetryAfter("99999999999999999", now), seconds(24 * 3600));
}
