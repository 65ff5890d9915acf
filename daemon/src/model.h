// pushdaemon's vocabulary: the platforms, an app row, a token's outcome
// and the database operations. Shared by the SQL layer (store.h, admin.h,
// db.h), the push-client registry, the scheduler and the metrics, so that
// none of them has to include another for a name: the SQL layer needs
// neither the push clients nor prometheus.
// Plain values and pure functions; thread-safe as values are.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "leakscope/push/outcome.h"

namespace pushdaemon {

namespace push = leakscope::push;

enum class Platform { kApns = 0, kFcm = 1 };
inline constexpr std::array<Platform, 2> kPlatforms = {Platform::kApns, Platform::kFcm};
inline const char* platformName(Platform p) { return p == Platform::kApns ? "apns" : "fcm"; }

// A token's final outcome is the transport's push::OutcomeKind, recorded
// under push::outcomeKindName() ("success", "invalid_token", "permanent",
// "retryable"): in push_result.outcome and as the `outcome` label of
// pushdaemon_tokens_total.
inline constexpr std::array<push::OutcomeKind, 4> kOutcomeKinds = {
    push::OutcomeKind::kSuccess, push::OutcomeKind::kInvalidToken, push::OutcomeKind::kPermanent,
    push::OutcomeKind::kRetryable};

// An app row: credentials are file paths beneath push.credentials_dir
// (absolute, or relative to it), read when a client is made.
struct AppRow {
  std::uint64_t id = 0;
  std::string name;
  std::string apns_topic;
  std::string apns_key_file;
  std::string apns_key_id;
  std::string apns_team_id;
  std::string fcm_service_account_file;
};

// What a database statement was for: the `op` label of
// pushdaemon_db_errors_total (Db::run counts its failures under it).
enum class DbOp { kConnect, kPoll, kClaim, kRead, kWrite, kLease, kFinish, kMigrate, kApp };
inline constexpr int kDbOps = 9;

}  // namespace pushdaemon
