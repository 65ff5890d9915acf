// A schedule's payload column: what is accepted, and the reasons a schedule
// is failed with (they name the platform, the size and the limit).
#include "payload.h"

#include "gtest/gtest.h"

namespace pushdaemon {
namespace {

std::string errorOf(const std::string& text) {
  auto r = validateSchedulePayload(text, 4096);
  return r.ok() ? "" : r.error().message;
}

TEST(SchedulePayload, BothPlatformsAndHeaders) {
  auto r = validateSchedulePayload(
      R"({"apns":{"aps":{"alert":"hi"}},"apns_headers":{"push_type":"background","priority":5,)"
      R"("collapse_id":"c","expiration":10},"fcm":{"notification":{"title":"t"}}})",
      4096);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r->apns, R"({"aps":{"alert":"hi"}})");
  EXPECT_EQ(*r->fcm, R"({"notification":{"title":"t"}})");
  EXPECT_EQ(r->apns_push_type, "background");
  EXPECT_EQ(r->apns_priority, 5);
  EXPECT_EQ(r->apns_collapse_id, "c");
  EXPECT_EQ(r->apns_expiration, 10);
}

TEST(SchedulePayload, OnePlatformOnly) {
  auto r = validateSchedulePayload(R"({"fcm":{}})", 4096);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->apns.has_value());
  EXPECT_EQ(*r->fcm, "{}");
}

TEST(SchedulePayload, OversizedNamesPlatformSizeAndLimit) {
  const std::string alert(4100, 'x');
  const std::string e = errorOf(R"({"apns":{"aps":{"alert":")" + alert + R"("}}})");
  EXPECT_EQ(e, "apns payload is 4120 bytes, over the 4096-byte limit");
  EXPECT_EQ(errorOf(R"({"fcm":{"data":{"k":")" + alert + R"("}}})"),
            "fcm message is 4117 bytes, over the 4096-byte limit");
  // A huge column is refused before it is parsed.
  EXPECT_NE(errorOf(std::string(20000, ' ')).find("payload column is 20000 bytes"),
            std::string::npos);
}

TEST(SchedulePayload, InvalidInputsSayWhat) {
  EXPECT_EQ(errorOf("{\"apns\": "), "payload is not valid JSON");
  EXPECT_EQ(errorOf("[1]"), "payload must be a JSON object with an apns and/or fcm member");
  EXPECT_EQ(errorOf(R"({"webpush":{}})"), "unknown platform 'webpush' (expected apns or fcm)");
  EXPECT_EQ(errorOf("{}"), "payload names no platform (expected apns and/or fcm)");
  EXPECT_EQ(errorOf(R"({"apns":"hi"})"), "apns payload must be a JSON object");
  EXPECT_EQ(errorOf(R"({"fcm":{"token":"x"}})"), "fcm message must not contain 'token'");
  EXPECT_EQ(errorOf(R"({"apns":{},"apns_headers":{"priority":"high"}})"),
            "apns_headers.priority: unknown header or wrong type");
}

}  // namespace
}  // namespace pushdaemon
