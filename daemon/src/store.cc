#include "store.h"

#include <algorithm>
#include <array>
#include <map>

#include "schema_sql.h"
#include "utf8.h"

namespace pushdaemon {

namespace {

const char* cursorColumn(Platform p) { return p == Platform::kApns ? "apns_cursor" : "fcm_cursor"; }

std::uint64_t u64(const std::optional<std::string>& v) {
  return v ? std::stoull(*v) : 0;  // numeric columns from our own schema
}

// Runs `body` inside START TRANSACTION .. COMMIT; any error rolls back.
template <class T, class Body>
diag::Result<T> transaction(DbConnection& db, Body body) {
  if (auto s = db.exec("START TRANSACTION"); !s.ok()) return s.error();
  diag::Result<T> r = body();
  if (!r.ok()) {
    (void)db.exec("ROLLBACK");  // best effort: a lost connection rolls back by itself
    return r;
  }
  if (auto s = db.exec("COMMIT"); !s.ok()) return s.error();
  return r;
}

// Splits a migration file into statements: comment lines dropped,
// statements end with ';' at the end of a line.
std::vector<std::string> statements(const std::string& sql) {
  std::vector<std::string> out;
  std::string cur;
  std::size_t pos = 0;
  while (pos < sql.size()) {
    std::size_t end = sql.find('\n', pos);
    if (end == std::string::npos) end = sql.size();
    std::string line = sql.substr(pos, end - pos);
    pos = end + 1;
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line.compare(first, 2, "--") == 0) continue;
    cur += line;
    cur += '\n';
    if (line.back() == ';') {
      cur.pop_back();
      cur.pop_back();
      out.push_back(cur);
      cur.clear();
    }
  }
  return out;
}

}  // namespace

int latestSchemaVersion() {
  int v = 0;
  for (const auto& m : schemaMigrations()) v = std::max(v, m.version);
  return v;
}

diag::Result<int> migrate(DbConnection& db) {
  auto lock = db.query("SELECT GET_LOCK('pushdaemon.migrate', 60)");
  if (!lock) return lock.error();
  if (lock->empty() || !(*lock)[0][0] || *(*lock)[0][0] != "1") {
    return diag::Error{diag::Errc::kIo, "migrate: another process holds pushdaemon.migrate"};
  }
  struct Unlock {
    DbConnection& db;
    ~Unlock() { (void)db.query("SELECT RELEASE_LOCK('pushdaemon.migrate')"); }
  } unlock{db};
  if (auto s =
          db.exec("CREATE TABLE IF NOT EXISTS schema_version (version INT NOT NULL PRIMARY KEY, "
                  "name VARCHAR(255) NOT NULL, applied_at DATETIME(6) NOT NULL DEFAULT "
                  "CURRENT_TIMESTAMP(6)) ENGINE=InnoDB");
      !s.ok()) {
    return s.error();
  }
  auto rows = db.query("SELECT COALESCE(MAX(version), 0) FROM schema_version");
  if (!rows) return rows.error();
  int current = static_cast<int>(u64((*rows)[0][0]));
  if (current > latestSchemaVersion()) {
    return diag::Error{diag::Errc::kInvalidArgument,
                       "database schema version " + std::to_string(current) +
                           " is newer than this pushdaemon's " +
                           std::to_string(latestSchemaVersion()) + "; upgrade pushdaemon"};
  }
  for (const auto& m : schemaMigrations()) {
    if (m.version <= current) continue;
    for (const std::string& st : statements(m.sql)) {
      if (auto s = db.exec(st); !s.ok()) {
        return diag::Error{s.error().code, "migration " + m.name + ": " + s.error().message};
      }
    }
    if (auto s = db.exec("INSERT INTO schema_version (version, name) VALUES (" +
                         std::to_string(m.version) + ", " + db.quote(m.name) + ")");
        !s.ok()) {
      return s.error();
    }
    current = m.version;
  }
  return current;
}

diag::Result<std::optional<ClaimedSchedule>> claimSchedule(DbConnection& db,
                                                           const std::string& owner,
                                                           std::chrono::seconds lease) {
  return transaction<std::optional<ClaimedSchedule>>(
      db, [&]() -> diag::Result<std::optional<ClaimedSchedule>> {
        const std::string q_owner = db.quote(owner);
        auto rows = db.query(
            "SELECT id, state FROM schedule WHERE state IN ('waiting', 'running') AND send_at <= "
            "NOW(6) AND (state = 'waiting' OR lease_until IS NULL OR lease_until < NOW(6) OR "
            "claim_owner = " +
            q_owner + ") ORDER BY send_at, id LIMIT 1 FOR UPDATE SKIP LOCKED");
        if (!rows) return rows.error();
        if (rows->empty()) return std::optional<ClaimedSchedule>();
        const std::uint64_t id = u64((*rows)[0][0]);
        const bool takeover = (*rows)[0][1] && *(*rows)[0][1] == "running";
        if (auto s = db.exec("UPDATE schedule SET state = 'running', claim_owner = " + q_owner +
                             ", claim_epoch = claim_epoch + 1, lease_until = NOW(6) + INTERVAL " +
                             std::to_string(lease.count()) +
                             " SECOND, started_at = COALESCE(started_at, NOW(6)) WHERE id = " +
                             std::to_string(id));
            !s.ok()) {
          return s.error();
        }
        auto got = db.query(
            "SELECT id, app_id, payload, claim_epoch, apns_cursor, fcm_cursor FROM schedule "
            "WHERE id = " +
            std::to_string(id));
        if (!got) return got.error();
        if (got->empty()) return std::optional<ClaimedSchedule>();
        const Row& r = (*got)[0];
        ClaimedSchedule c;
        c.id = u64(r[0]);
        c.app_id = u64(r[1]);
        c.payload = r[2].value_or("");
        c.epoch = static_cast<std::uint32_t>(u64(r[3]));
        c.cursor[0] = u64(r[4]);
        c.cursor[1] = u64(r[5]);
        c.takeover = takeover;
        return std::optional<ClaimedSchedule>(std::move(c));
      });
}

diag::Result<std::optional<double>> secondsUntilNextDue(DbConnection& db) {
  auto rows = db.query(
      "SELECT TIMESTAMPDIFF(MICROSECOND, NOW(6), MIN(send_at)) FROM schedule WHERE state = "
      "'waiting'");
  if (!rows) return rows.error();
  if (rows->empty() || !(*rows)[0][0]) return std::optional<double>();
  return std::optional<double>(std::stod(*(*rows)[0][0]) / 1e6);
}

diag::Result<std::optional<AppRow>> loadApp(DbConnection& db, std::uint64_t app_id) {
  auto rows = db.query(
      "SELECT id, name, apns_topic, apns_key_file, apns_key_id, apns_team_id, "
      "fcm_service_account_file FROM app WHERE id = " +
      std::to_string(app_id));
  if (!rows) return rows.error();
  if (rows->empty()) return std::optional<AppRow>();
  const Row& r = (*rows)[0];
  AppRow a;
  a.id = u64(r[0]);
  a.name = r[1].value_or("");
  a.apns_topic = r[2].value_or("");
  a.apns_key_file = r[3].value_or("");
  a.apns_key_id = r[4].value_or("");
  a.apns_team_id = r[5].value_or("");
  a.fcm_service_account_file = r[6].value_or("");
  return std::optional<AppRow>(std::move(a));
}

diag::Result<std::vector<TokenRow>> readTokens(DbConnection& db, std::uint64_t app_id, Platform p,
                                               std::uint64_t after, std::size_t limit) {
  // FORCE INDEX: without it MariaDB 10.11 picks a `ref` on (app_id,
  // platform, active) and filters id > cursor row by row, so every page
  // costs O(cursor) (quadratic over a schedule); forced, it is a range scan
  // that starts at the cursor.
  auto rows =
      db.query("SELECT id, token FROM device_token FORCE INDEX (ix_stream) WHERE app_id = " +
               std::to_string(app_id) + " AND platform = '" + platformName(p) +
               "' AND active = 1 AND id > " + std::to_string(after) + " ORDER BY id LIMIT " +
               std::to_string(limit));
  if (!rows) return rows.error();
  std::vector<TokenRow> out;
  out.reserve(rows->size());
  for (Row& r : *rows) out.push_back(TokenRow{u64(r[0]), std::move(r[1]).value_or("")});
  return out;
}

namespace {

// Locks the schedule row and checks the claim is still ours.
diag::Result<std::optional<std::uint64_t>> lockOwned(DbConnection& db, const Lease& lease,
                                                     Platform p) {
  auto rows = db.query(std::string("SELECT ") + cursorColumn(p) +
                       ", claim_owner, claim_epoch, state FROM schedule WHERE id = " +
                       std::to_string(lease.schedule_id) + " FOR UPDATE");
  if (!rows) return rows.error();
  if (rows->empty()) return std::optional<std::uint64_t>();
  const Row& r = (*rows)[0];
  if (!r[1] || *r[1] != lease.owner || u64(r[2]) != lease.epoch || !r[3] || *r[3] != "running") {
    return std::optional<std::uint64_t>();
  }
  return std::optional<std::uint64_t>(u64(r[0]));
}

std::string leaseClause(const Lease& lease) {
  return "lease_until = NOW(6) + INTERVAL " + std::to_string(lease.length.count()) + " SECOND";
}

std::string ownedWhere(DbConnection& db, const Lease& lease) {
  return " WHERE id = " + std::to_string(lease.schedule_id) +
         " AND claim_owner = " + db.quote(lease.owner) +
         " AND claim_epoch = " + std::to_string(lease.epoch) + " AND state = 'running'";
}

// What one page adds to the schedule's counters, by push::OutcomeKind.
using OutcomeCounts = std::array<std::uint64_t, kOutcomeKinds.size()>;

std::string countOf(const OutcomeCounts& n, push::OutcomeKind kind) {
  return std::to_string(n[static_cast<std::size_t>(kind)]);
}

// One multi-row INSERT of a page's results (rows must not be empty).
std::string resultInsert(DbConnection& db, const Lease& lease, Platform p,
                         const std::vector<ResultRow>& rows) {
  std::string sql;
  sql.reserve(96 + rows.size() * 48);
  sql +=
      "INSERT INTO push_result (schedule_id, token_id, platform, outcome, status, reason, "
      "attempts) VALUES ";
  const std::string sid = std::to_string(lease.schedule_id);
  const std::string plat = std::string("'") + platformName(p) + "'";
  bool first = true;
  for (const ResultRow& r : rows) {
    if (!first) sql += ',';
    first = false;
    sql += '(';
    sql += sid;
    sql += ',';
    sql += std::to_string(r.token_id);
    sql += ',';
    sql += plat;
    sql += ",'";
    sql += push::outcomeKindName(r.outcome);
    sql += "',";
    sql += std::to_string(std::clamp(r.status, 0, 65535));
    sql += ',';
    sql += db.quote(utf8Prefix(r.reason, 64));  // VARCHAR(64), utf8mb4, strict
    sql += ',';
    sql += std::to_string(std::clamp(r.attempts, 0, 255));
    sql += ')';
  }
  return sql;
}

// The tokens answered "invalid" stop being sent to: one UPDATE per reason.
diag::Status deactivateInvalid(DbConnection& db, const std::vector<ResultRow>& rows) {
  std::map<std::string, std::vector<std::uint64_t>> by_reason;
  for (const ResultRow& r : rows) {
    if (r.outcome == push::OutcomeKind::kInvalidToken) by_reason[r.reason].push_back(r.token_id);
  }
  for (const auto& [reason, ids] : by_reason) {
    if (auto s = db.exec(
            "UPDATE device_token SET active = 0, last_error = " + db.quote(utf8Prefix(reason, 64)) +
            ", deactivated_at = NOW(6) WHERE id IN (" + joinIds(ids) + ")");
        !s.ok()) {
      return s;
    }
  }
  return diag::Ok{};
}

// The schedule's cursor for `p` moves to last_id, its counters grow by the
// page's, and the lease is renewed.
diag::Status advanceSchedule(DbConnection& db, const Lease& lease, Platform p,
                             std::uint64_t last_id, const OutcomeCounts& n) {
  return db.exec(
      std::string("UPDATE schedule SET ") + cursorColumn(p) + " = " + std::to_string(last_id) +
      ", success_count = success_count + " + countOf(n, push::OutcomeKind::kSuccess) +
      ", invalid_token_count = invalid_token_count + " +
      countOf(n, push::OutcomeKind::kInvalidToken) + ", permanent_count = permanent_count + " +
      countOf(n, push::OutcomeKind::kPermanent) + ", retryable_count = retryable_count + " +
      countOf(n, push::OutcomeKind::kRetryable) + ", " + leaseClause(lease) +
      " WHERE id = " + std::to_string(lease.schedule_id));
}

}  // namespace

diag::Result<WriteOutcome> writePage(DbConnection& db, const Lease& lease, Platform p,
                                     std::uint64_t last_id, const std::vector<ResultRow>& rows) {
  return transaction<WriteOutcome>(db, [&]() -> diag::Result<WriteOutcome> {
    auto cursor = lockOwned(db, lease, p);
    if (!cursor) return cursor.error();
    if (!*cursor) return WriteOutcome::kLeaseLost;
    if (**cursor >= last_id) return WriteOutcome::kAlreadyWritten;
    OutcomeCounts counts{};
    if (!rows.empty()) {
      if (auto s = db.exec(resultInsert(db, lease, p, rows)); !s.ok()) return s.error();
      for (const ResultRow& r : rows) ++counts[static_cast<std::size_t>(r.outcome)];
      if (auto s = deactivateInvalid(db, rows); !s.ok()) return s.error();
    }
    if (auto s = advanceSchedule(db, lease, p, last_id, counts); !s.ok()) return s.error();
    return WriteOutcome::kWritten;
  });
}

diag::Result<bool> renewLease(DbConnection& db, const Lease& lease) {
  if (auto s = db.exec("UPDATE schedule SET " + leaseClause(lease) + ownedWhere(db, lease));
      !s.ok()) {
    return s.error();
  }
  return db.affectedRows() == 1;
}

diag::Result<bool> finishSchedule(DbConnection& db, const Lease& lease) {
  if (auto s = db.exec("UPDATE schedule SET state = 'done', finished_at = NOW(6), lease_until = "
                       "NULL" +
                       ownedWhere(db, lease));
      !s.ok()) {
    return s.error();
  }
  return db.affectedRows() == 1;
}

diag::Result<bool> failSchedule(DbConnection& db, const Lease& lease, const std::string& reason) {
  if (auto s = db.exec("UPDATE schedule SET state = 'failed', finished_at = NOW(6), lease_until = "
                       "NULL, failure_reason = " +
                       db.quote(utf8Prefix(reason, 512)) + ownedWhere(db, lease));
      !s.ok()) {
    return s.error();
  }
  return db.affectedRows() == 1;
}

diag::Result<bool> releaseSchedule(DbConnection& db, const Lease& lease) {
  if (auto s = db.exec("UPDATE schedule SET state = 'waiting', claim_owner = NULL, lease_until = "
                       "NULL" +
                       ownedWhere(db, lease));
      !s.ok()) {
    return s.error();
  }
  return db.affectedRows() == 1;
}

diag::Result<std::vector<std::pair<std::string, double>>> countSchedules(DbConnection& db) {
  auto rows = db.query("SELECT state, COUNT(*) FROM schedule GROUP BY state");
  if (!rows) return rows.error();
  std::vector<std::pair<std::string, double>> out;
  for (const Row& r : *rows) {
    out.emplace_back(r[0].value_or(""), static_cast<double>(u64(r[1])));
  }
  return out;
}

}  // namespace pushdaemon
