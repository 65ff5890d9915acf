// The result of one notification, as the push transport reports it to its
// caller, and the pure functions that turn what APNs or FCM answered (or what
// went wrong on the way) into it.
//
// Every notification handed to a client gets exactly one Outcome, delivered
// once. The four kinds are what a caller acts on:
//   success       delivered to the push service;
//   retryable     not delivered this time (throttled, server trouble, timeout,
//                 connection lost, shut down); send again later, not before
//                 `retry_after` when it is set;
//   permanent     the notification itself is wrong (payload, headers, topic,
//                 credentials); sending it again gives the same answer;
//   invalid_token the device token is no longer valid: deactivate it
//                 (`invalid_since` carries APNs' timestamp when it sent one).
// Plain value types; thread-safe as values are.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace leakscope::push {

enum class OutcomeKind { kSuccess, kRetryable, kPermanent, kInvalidToken };

// "success", "retryable", "permanent", "invalid_token" (also metric labels).
const char* outcomeKindName(OutcomeKind kind);

// Reasons the transport itself reports, when there is no answer from the
// server to quote (status 0). Stable strings: they appear in metrics.
namespace reason {
inline constexpr std::string_view kTimeout = "Timeout";                  // no answer in time
inline constexpr std::string_view kConnectFailed = "ConnectFailed";      // TCP/TLS set-up failed
inline constexpr std::string_view kTlsVerifyFailed = "TlsVerifyFailed";  // certificate rejected
inline constexpr std::string_view kAlpnRefused = "AlpnRefused";          // server did not pick h2
inline constexpr std::string_view kRefusedStream =
    "RefusedStream";  // RST_STREAM REFUSED / GOAWAY, unprocessed
inline constexpr std::string_view kStreamReset =
    "StreamReset";  // other RST_STREAM: maybe processed
inline constexpr std::string_view kConnectionLost =
    "ConnectionLost";  // socket died mid-stream: maybe processed
inline constexpr std::string_view kShutdown = "Shutdown";  // client shut down first
inline constexpr std::string_view kAuthFailed =
    "AuthFailed";  // no usable credential (FCM token fetch)
inline constexpr std::string_view kBadResponse = "BadResponse";  // unparseable answer
}  // namespace reason

struct Outcome {
  OutcomeKind kind = OutcomeKind::kRetryable;
  int status = 0;      // HTTP status of the last attempt; 0 when none came
  std::string reason;  // APNs reason, FCM errorCode, or one of push::reason
  // APNs 410: the last time the token was known valid (from `timestamp`).
  std::optional<std::chrono::system_clock::time_point> invalid_since;
  // Wait at least this long before sending again (Retry-After); 0 = no hint.
  std::chrono::milliseconds retry_after{0};
  std::string id;    // apns-id of the notification, or FCM's message name
  int attempts = 0;  // requests put on the wire (0: refused before sending)
};

// An outcome decided without an answer from the server (checks before
// sending, transport failures, shutdown).
Outcome outcomeOf(OutcomeKind kind, std::string_view reason);

// APNs: status + the `reason` of the JSON body (empty on 200) + the
// `timestamp` (ms since the epoch, APNs sends it with 410) → outcome.
// Covers every reason in Apple's "Handling notification responses from APNs";
// unknown reasons fall back on the status class (5xx retryable, 4xx permanent).
Outcome mapApnsResponse(int status, std::string_view reason,
                        std::optional<std::int64_t> timestamp_ms = std::nullopt);

// APNs reasons after which the provider token must be replaced
// (ExpiredProviderToken) before the notification is sent again.
bool apnsNeedsNewProviderToken(std::string_view reason);

// FCM HTTP v1: status + the FcmError `errorCode` from error.details (or, when
// absent, error.status such as "UNAVAILABLE") → outcome.
Outcome mapFcmResponse(int status, std::string_view error_code);

// FCM answers 401 when the OAuth2 access token is not (or no longer) valid.
bool fcmNeedsNewAccessToken(int status, std::string_view error_code);

// Retry-After: delta-seconds or an HTTP-date (RFC 9110 §10.2.3). nullopt when
// absent or malformed; negative or past values give 0.
std::optional<std::chrono::milliseconds> parseRetryAfter(std::string_view value,
                                                         std::chrono::system_clock::time_point now);

// Label values for metrics: `reason` when it is one we know (Apple's, FCM's or
// the transport's), "other" otherwise, so a server cannot grow our series.
std::string_view reasonLabel(std::string_view reason);

}  // namespace leakscope::push
