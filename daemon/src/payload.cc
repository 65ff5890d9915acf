#include "payload.h"

#include <nlohmann/json.hpp>

namespace pushdaemon {

namespace diag = leakscope::diag;

namespace {

diag::Error bad(std::string why) {
  return diag::Error{diag::Errc::kInvalidArgument, std::move(why)};
}

using Json = nlohmann::json;

// A platform's message as it will be sent, within max_bytes; `what` names
// it in the error ("apns payload", "fcm message").
diag::Result<std::string> serialized(const std::string& what, const Json& value,
                                     std::size_t max_bytes) {
  if (!value.is_object()) return bad(what + " must be a JSON object");
  std::string s = value.dump();
  if (s.size() > max_bytes) {
    return bad(what + " is " + std::to_string(s.size()) + " bytes, over the " +
               std::to_string(max_bytes) + "-byte limit");
  }
  return s;
}

diag::Status apnsHeaders(const Json& value, SchedulePayload& p) {
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
  return diag::Ok{};
}

// One member of the payload object into `p`.
diag::Status member(const std::string& key, const Json& value, std::size_t max_bytes,
                    SchedulePayload& p) {
  if (key == "apns") {
    auto s = serialized("apns payload", value, max_bytes);
    if (!s.ok()) return s.error();
    p.apns = std::move(*s);
  } else if (key == "fcm") {
    // The token is added per device: the stored message must not bring one.
    if (value.is_object() && value.contains("token")) {
      return bad("fcm message must not contain 'token'");
    }
    auto s = serialized("fcm message", value, max_bytes);
    if (!s.ok()) return s.error();
    p.fcm = std::move(*s);
  } else if (key == "apns_headers") {
    return apnsHeaders(value, p);
  } else {
    return bad("unknown platform '" + key + "' (expected apns or fcm)");
  }
  return diag::Ok{};
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
    if (auto s = member(key, value, max_bytes, p); !s.ok()) return s.error();
  }
  if (!p.apns && !p.fcm) return bad("payload names no platform (expected apns and/or fcm)");
  return p;
}

}  // namespace pushdaemon
