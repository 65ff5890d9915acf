// Every SQL statement pushdaemon runs, as functions over one connection
// (schema: daemon/schema/*.sql, docs/schema.md). Each returns a Result;
// kUnavailable means "connection lost or transaction rolled back: run it
// again" (see Db::run). Transactions are opened and closed inside one
// function, so a retried function starts from a clean connection.
// Thread-safety: as the connection (one thread at a time).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "db.h"
#include "model.h"

namespace pushdaemon {

// Applies the migrations in daemon/schema/ that are not recorded in
// schema_version, under a named lock so that daemons starting together
// migrate once. Returns the schema version now in place.
diag::Result<int> migrate(DbConnection& db);
// The newest version this build knows (the highest migration number).
int latestSchemaVersion();

struct ClaimedSchedule {
  std::uint64_t id = 0;
  std::uint64_t app_id = 0;
  std::string payload;
  std::uint32_t epoch = 0;
  std::uint64_t cursor[2] = {0, 0};  // by Platform
  bool takeover = false;             // was running under another owner
};

// Claims the nearest due schedule: waiting with send_at <= now, or running
// with an expired lease (a dead daemon's), or running under `owner` (a
// claim whose answer we lost). SELECT ... FOR UPDATE SKIP LOCKED + UPDATE
// in one transaction, so concurrent daemons never get the same one.
diag::Result<std::optional<ClaimedSchedule>> claimSchedule(DbConnection& db,
                                                           const std::string& owner,
                                                           std::chrono::seconds lease);

// Seconds until the next waiting schedule is due (nullopt: none waiting).
diag::Result<std::optional<double>> secondsUntilNextDue(DbConnection& db);

diag::Result<std::optional<AppRow>> loadApp(DbConnection& db, std::uint64_t app_id);

struct TokenRow {
  std::uint64_t id = 0;
  std::string token;
};
// Keyset pagination: active tokens of `app` for `p` with id > after, by id.
diag::Result<std::vector<TokenRow>> readTokens(DbConnection& db, std::uint64_t app_id, Platform p,
                                               std::uint64_t after, std::size_t limit);

struct ResultRow {
  std::uint64_t token_id = 0;
  push::OutcomeKind outcome = push::OutcomeKind::kRetryable;
  int status = 0;
  std::string reason;
  int attempts = 0;
};

struct Lease {
  std::uint64_t schedule_id = 0;
  std::string owner;
  std::uint32_t epoch = 0;
  std::chrono::seconds length{30};
};

enum class WriteOutcome { kWritten, kAlreadyWritten, kLeaseLost };

// One page's results in one transaction: the result rows, the deactivated
// tokens, the schedule's counters and its cursor for `p` (= last_id), and
// a lease renewal. Checks the claim first (owner and epoch, under FOR
// UPDATE): kLeaseLost writes nothing. A page whose cursor is already at or
// past last_id was committed by an earlier attempt whose answer was lost:
// kAlreadyWritten writes nothing.
diag::Result<WriteOutcome> writePage(DbConnection& db, const Lease& lease, Platform p,
                                     std::uint64_t last_id, const std::vector<ResultRow>& rows);

// Lease renewal; false when the claim is no longer ours.
diag::Result<bool> renewLease(DbConnection& db, const Lease& lease);

// running -> done / failed (with reason) / waiting (released on drain).
// false when the claim is no longer ours.
diag::Result<bool> finishSchedule(DbConnection& db, const Lease& lease);
diag::Result<bool> failSchedule(DbConnection& db, const Lease& lease, const std::string& reason);
diag::Result<bool> releaseSchedule(DbConnection& db, const Lease& lease);

// Schedules by state, for the gauge.
diag::Result<std::vector<std::pair<std::string, double>>> countSchedules(DbConnection& db);

}  // namespace pushdaemon
