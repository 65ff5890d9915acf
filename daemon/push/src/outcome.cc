#include "leakscope/push/outcome.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <ctime>

namespace leakscope::push {

const char* outcomeKindName(OutcomeKind kind) {
  switch (kind) {
    case OutcomeKind::kSuccess:
      return "success";
    case OutcomeKind::kRetryable:
      return "retryable";
    case OutcomeKind::kPermanent:
      return "permanent";
    case OutcomeKind::kInvalidToken:
      return "invalid_token";
  }
  return "unknown";
}

namespace {

struct ApnsReason {
  std::string_view name;
  OutcomeKind kind;
};

// Apple, "Handling notification responses from APNs", table of reasons.
// Sorted by status, then as Apple lists them.
constexpr std::array kApnsReasons = {
    // 400
    ApnsReason{"BadCollapseId", OutcomeKind::kPermanent},
    ApnsReason{"BadDeviceToken", OutcomeKind::kInvalidToken},
    ApnsReason{"BadExpirationDate", OutcomeKind::kPermanent},
    ApnsReason{"BadMessageId", OutcomeKind::kPermanent},
    ApnsReason{"BadPriority", OutcomeKind::kPermanent},
    ApnsReason{"BadTopic", OutcomeKind::kPermanent},
    ApnsReason{"DeviceTokenNotForTopic", OutcomeKind::kInvalidToken},
    ApnsReason{"DuplicateHeaders", OutcomeKind::kPermanent},
    // The connection sat idle too long on Apple's side: nothing wrong with the
    // notification, send it again.
    ApnsReason{"IdleTimeout", OutcomeKind::kRetryable},
    ApnsReason{"InvalidPushType", OutcomeKind::kPermanent},
    ApnsReason{"MissingDeviceToken", OutcomeKind::kPermanent},
    ApnsReason{"MissingTopic", OutcomeKind::kPermanent},
    ApnsReason{"PayloadEmpty", OutcomeKind::kPermanent},
    ApnsReason{"TopicDisallowed", OutcomeKind::kPermanent},
    // 403
    ApnsReason{"BadCertificate", OutcomeKind::kPermanent},
    ApnsReason{"BadCertificateEnvironment", OutcomeKind::kPermanent},
    // Retryable once a new provider token is made (the client does that).
    ApnsReason{"ExpiredProviderToken", OutcomeKind::kRetryable},
    ApnsReason{"Forbidden", OutcomeKind::kPermanent},
    ApnsReason{"InvalidProviderToken", OutcomeKind::kPermanent},
    ApnsReason{"MissingProviderToken", OutcomeKind::kPermanent},
    ApnsReason{"UnrelatedKeyIdInToken", OutcomeKind::kPermanent},
    ApnsReason{"BadEnvironmentKeyInToken", OutcomeKind::kPermanent},
    // 404, 405
    ApnsReason{"BadPath", OutcomeKind::kPermanent},
    ApnsReason{"MethodNotAllowed", OutcomeKind::kPermanent},
    // 410
    ApnsReason{"ExpiredToken", OutcomeKind::kInvalidToken},
    ApnsReason{"Unregistered", OutcomeKind::kInvalidToken},
    // 413
    ApnsReason{"PayloadTooLarge", OutcomeKind::kPermanent},
    // 429
    ApnsReason{"TooManyProviderTokenUpdates", OutcomeKind::kRetryable},
    ApnsReason{"TooManyRequests", OutcomeKind::kRetryable},
    // 500, 503
    ApnsReason{"InternalServerError", OutcomeKind::kRetryable},
    ApnsReason{"ServiceUnavailable", OutcomeKind::kRetryable},
    ApnsReason{"Shutdown", OutcomeKind::kRetryable},
};

struct FcmCode {
  std::string_view name;
  OutcomeKind kind;
};

// FCM HTTP v1 ErrorCode (google.firebase.fcm.v1.FcmError), then the
// google.rpc codes FCM uses in error.status when no FcmError detail is sent.
constexpr std::array kFcmCodes = {
    FcmCode{"UNSPECIFIED_ERROR", OutcomeKind::kRetryable},
    FcmCode{"INVALID_ARGUMENT", OutcomeKind::kPermanent},
    FcmCode{"UNREGISTERED", OutcomeKind::kInvalidToken},
    // The token belongs to another sender: it will never work for us.
    FcmCode{"SENDER_ID_MISMATCH", OutcomeKind::kInvalidToken},
    FcmCode{"QUOTA_EXCEEDED", OutcomeKind::kRetryable},
    FcmCode{"UNAVAILABLE", OutcomeKind::kRetryable},
    FcmCode{"INTERNAL", OutcomeKind::kRetryable},
    FcmCode{"THIRD_PARTY_AUTH_ERROR", OutcomeKind::kPermanent},
    FcmCode{"NOT_FOUND", OutcomeKind::kInvalidToken},
    FcmCode{"PERMISSION_DENIED", OutcomeKind::kPermanent},
    FcmCode{"UNAUTHENTICATED", OutcomeKind::kRetryable},
    FcmCode{"RESOURCE_EXHAUSTED", OutcomeKind::kRetryable},
};

constexpr std::array kTransportReasons = {
    reason::kTimeout,       reason::kConnectFailed, reason::kTlsVerifyFailed, reason::kAlpnRefused,
    reason::kRefusedStream, reason::kStreamReset,   reason::kConnectionLost,  reason::kShutdown,
    reason::kAuthFailed,    reason::kBadResponse,
};

OutcomeKind byStatusClass(int status) {
  if (status >= 200 && status < 300) return OutcomeKind::kSuccess;
  if (status == 429 || status >= 500) return OutcomeKind::kRetryable;
  return OutcomeKind::kPermanent;
}

}  // namespace

Outcome mapApnsResponse(int status, std::string_view why,
                        std::optional<std::int64_t> timestamp_ms) {
  Outcome o;
  o.status = status;
  o.reason = std::string(why);
  if (status == 200) {
    o.kind = OutcomeKind::kSuccess;
    return o;
  }
  const auto it = std::find_if(kApnsReasons.begin(), kApnsReasons.end(),
                               [&](const ApnsReason& r) { return r.name == why; });
  o.kind = it != kApnsReasons.end() ? it->kind : byStatusClass(status);
  // A 410 is about the token whatever the reason text says.
  if (status == 410) o.kind = OutcomeKind::kInvalidToken;
  if (o.kind == OutcomeKind::kSuccess) o.kind = OutcomeKind::kPermanent;  // 2xx that is not 200
  if (timestamp_ms && o.kind == OutcomeKind::kInvalidToken) {
    o.invalid_since =
        std::chrono::system_clock::time_point(std::chrono::milliseconds(*timestamp_ms));
  }
  return o;
}

bool apnsNeedsNewProviderToken(std::string_view why) { return why == "ExpiredProviderToken"; }

Outcome mapFcmResponse(int status, std::string_view code) {
  Outcome o;
  o.status = status;
  o.reason = std::string(code);
  if (status == 200) {
    o.kind = OutcomeKind::kSuccess;
    return o;
  }
  const auto it = std::find_if(kFcmCodes.begin(), kFcmCodes.end(),
                               [&](const FcmCode& c) { return c.name == code; });
  o.kind = it != kFcmCodes.end() ? it->kind : byStatusClass(status);
  if (o.kind == OutcomeKind::kSuccess) o.kind = OutcomeKind::kPermanent;
  return o;
}

bool fcmNeedsNewAccessToken(int status, std::string_view code) {
  return status == 401 || code == "UNAUTHENTICATED";
}

std::optional<std::chrono::milliseconds> parseRetryAfter(
    std::string_view v, std::chrono::system_clock::time_point now) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (v.empty()) return std::nullopt;
  if (std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    std::int64_t secs = 0;
    const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), secs);
    if (ec != std::errc() || p != v.data() + v.size()) return std::nullopt;
    // Cap before multiplying: a server cannot make us overflow.
    secs = std::min<std::int64_t>(secs, 24 * 3600);
    return std::chrono::seconds(secs);
  }
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
  std::tm tm{};
  const std::string s(v);
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  const std::time_t t = timegm(&tm);
  if (t == static_cast<std::time_t>(-1)) return std::nullopt;
  const auto at = std::chrono::system_clock::from_time_t(t);
  if (at <= now) return std::chrono::milliseconds(0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(at - now);
}

Outcome outcomeOf(OutcomeKind kind, std::string_view why) {
  Outcome o;
  o.kind = kind;
  o.reason = std::string(why);
  return o;
}

std::string_view reasonLabel(std::string_view why) {
  if (why.empty()) return "";
  for (const auto& r : kApnsReasons) {
    if (r.name == why) return r.name;
  }
  for (const auto& c : kFcmCodes) {
    if (c.name == why) return c.name;
  }
  for (const auto& t : kTransportReasons) {
    if (t == why) return t;
  }
  return "other";
}

}  // namespace leakscope::push
