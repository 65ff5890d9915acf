// Loading apps, device tokens and schedules (pushdaemon-admin, the tests'
// harness and the demo use these). Input errors name the file and line
// ("tokens.txt:17: unknown platform 'blackberry' (expected apns or fcm)")
// and load nothing: a token file is checked completely before the first
// row is inserted, then inserted in one transaction.
// Not thread-safe (one connection).
#pragma once

#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <vector>

#include "db.h"
#include "model.h"

namespace pushdaemon {

diag::Result<std::uint64_t> addApp(DbConnection& db, const AppRow& app);

struct TokenLine {
  std::string platform;
  std::string token;
};
// Parses "PLATFORM TOKEN" lines (blank lines and '#' comments skipped).
// All errors, one per line, each "NAME:LINE: what".
diag::Result<std::vector<TokenLine>> parseTokenFile(std::istream& in, const std::string& name);

struct LoadCounts {
  std::uint64_t inserted = 0;
  std::uint64_t already_present = 0;
};
diag::Result<LoadCounts> loadTokens(DbConnection& db, std::uint64_t app_id,
                                    const std::vector<TokenLine>& tokens);

// COUNT tokens "<prefix><hex counter>" padded to 64 hex digits, made by the
// server (MariaDB's sequence engine): millions in seconds, for benchmarks
// and demos.
diag::Result<std::uint64_t> generateTokens(DbConnection& db, std::uint64_t app_id,
                                           const std::string& platform, std::uint64_t count,
                                           const std::string& prefix, std::uint64_t start = 1);

// Inserts a waiting schedule due in `delay_s` seconds (negative: already
// due). `validate` refuses a payload the daemon would fail.
diag::Result<std::uint64_t> addSchedule(DbConnection& db, std::uint64_t app_id,
                                        const std::string& payload, double delay_s,
                                        bool validate = true);

struct ScheduleStatus {
  std::string state;
  std::uint64_t success = 0, invalid_token = 0, permanent = 0, retryable = 0;
  std::uint64_t apns_cursor = 0, fcm_cursor = 0;
  std::uint32_t epoch = 0;
  std::string owner;
  std::string failure_reason;
};
diag::Result<std::optional<ScheduleStatus>> scheduleStatus(DbConnection& db, std::uint64_t id);

}  // namespace pushdaemon
