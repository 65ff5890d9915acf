#include "payload.h"

#include <nlohmann/json.hpp>

namespace pushdaemon {

namespace diag = leakscope::diag;

namespace {

diag::Error bad(std::string why) {
  return diag::Error{diag::Errc::kInvalidArgument, std::move(why)};
}

}  // namespace

diag::Result<SchedulePayload> validateSchedulePayload(std::string_view text,
                                                      std::size_t max_bytes) {
  // Whole column first: a huge value is refused before it is parsed.
  const std::size_t column_limit = 4 * max_bytes + 1024;
  if (text.size() > column_limit) {
    return bad("payload column is " + std::to_string(text.size()) + " bytes, over the " +
               std::to_string(column_limit) + "-byte limit");
  }
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return bad("payload is not valid JSON");
  if (!j.is_object()) return bad("payload must be a JSON object with an apns and/or fcm member");
  SchedulePayload p;
  for (const auto& [key, value] : j.items()) {
    if (key == "apns") {
      if (!value.is_object()) return bad("apns payload must be a JSON object");
      std::string s = value.dump();
      if (s.size() > max_bytes) {
        return bad("apns payload is " + std::to_string(s.size()) + " bytes, over the " +
                   std::to_string(max_bytes) + "-byte limit");
      }
      p.apns = std::move(s);
    } else if (key == "fcm") {
      if (!value.is_object()) return bad("fcm message must be a JSON object");
      if (value.contains("token")) return bad("fcm message must not contain 'token'");
      std::string s = value.dump();
      if (s.size() > max_bytes) {
        return bad("fcm message is " + std::to_string(s.size()) + " bytes, over the " +
                   std::to_string(max_bytes) + "-byte limit");
      }
      p.fcm = std::move(s);
    } else if (key == "apns_headers") {
      if (!value.is_object()) return bad("apns_headers must be a JSON object");
      for (const auto& [h, v] : value.items()) {
        if (h == "push_type" && v.is_string()) {
          p.apns_push_type = v.get<std::string>();
        } else if (h == "priority" && v.is_number_integer()) {
          p.apns_priority = v.get<int>();
        } else if (h == "expiration" && v.is_number_integer()) {
          p.apns_expiration = v.get<std::int64_t>();
        } else if (h == "collapse_id" && v.is_string()) {
          p.apns_collapse_id = v.get<std::string>();
        } else {
          return bad("apns_headers." + h + ": unknown header or wrong type");
        }
      }
    } else {
      return bad("unknown platform '" + key + "' (expected apns or fcm)");
    }
  }
  if (!p.apns && !p.fcm) return bad("payload names no platform (expected apns and/or fcm)");
  return p;
}

}  // namespace pushdaemon
