// A schedule's payload column: one JSON object with a member per platform.
//
//   {"apns": {"aps": {"alert": "hi"}},             the APNs payload, as sent
//    "apns_headers": {"push_type": "alert", "priority": 10,
//                     "collapse_id": "x", "expiration": 0},   optional
//    "fcm": {"notification": {"title": "hi"}}}     the FCM v1 message, no token
//
// validateSchedulePayload() is run when a schedule is claimed; an error
// marks the schedule failed with the message as its failure_reason (so it
// names what is wrong: the platform, the size and the limit). Pure;
// thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "leakscope/diag/result.h"

namespace pushdaemon {

struct SchedulePayload {
  std::optional<std::string> apns;  // serialized APNs payload
  std::string apns_push_type = "alert";
  std::optional<int> apns_priority;
  std::optional<std::int64_t> apns_expiration;
  std::string apns_collapse_id;
  std::optional<std::string> fcm;  // serialized FCM message (without "token")
};

leakscope::diag::Result<SchedulePayload> validateSchedulePayload(std::string_view text,
                                                                 std::size_t max_bytes);

}  // namespace pushdaemon
