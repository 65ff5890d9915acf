#include "admin.h"

#include <algorithm>
#include <cctype>
#include <sstream>

#include "payload.h"

namespace pushdaemon {

namespace {

std::string orNull(DbConnection& db, const std::string& v) {
  return v.empty() ? "NULL" : db.quote(v);
}

bool isPrintableAscii(const std::string& s) {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

diag::Result<std::uint64_t> addApp(DbConnection& db, const AppRow& a) {
  if (a.name.empty() || a.name.size() > 64) {
    return diag::Error{diag::Errc::kInvalidArgument, "app name must have 1..64 characters"};
  }
  if (auto s =
          db.exec("INSERT INTO app (name, apns_topic, apns_key_file, apns_key_id, apns_team_id, "
                  "fcm_service_account_file) VALUES (" +
                  db.quote(a.name) + ", " + orNull(db, a.apns_topic) + ", " +
                  orNull(db, a.apns_key_file) + ", " + orNull(db, a.apns_key_id) + ", " +
                  orNull(db, a.apns_team_id) + ", " + orNull(db, a.fcm_service_account_file) + ")");
      !s.ok()) {
    return s.error();
  }
  return db.insertId();
}

diag::Result<std::vector<TokenLine>> parseTokenFile(std::istream& in, const std::string& name) {
  std::vector<TokenLine> out;
  std::string errors;
  int errors_n = 0;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::istringstream f(line);
    std::string platform, token, extra;
    f >> platform;
    if (platform.empty() || platform[0] == '#') continue;
    f >> token >> extra;
    std::string why;
    if (platform != "apns" && platform != "fcm") {
      // Named only when it looks like a word: a line holding just a token
      // would otherwise put the token on stderr.
      const bool word = platform.size() <= 16 &&
                        std::all_of(platform.begin(), platform.end(),
                                    [](unsigned char ch) { return std::isalpha(ch) != 0; });
      why = word ? "unknown platform '" + platform + "' (expected apns or fcm)"
                 : std::string("unknown platform (expected apns or fcm)");
    } else if (token.empty()) {
      why = "empty token";
    } else if (!extra.empty()) {
      why = "expected 'PLATFORM TOKEN', found more fields";
    } else if (token.size() > 512) {
      why = "token longer than 512 characters";
    } else if (!isPrintableAscii(token)) {
      why = "token has characters outside printable ASCII";
    } else if (platform == "apns" &&
               token.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
      why = "APNs token is not hexadecimal";
    }
    if (!why.empty()) {
      if (errors_n < 20)
        errors += (errors.empty() ? "" : "\n") + name + ":" + std::to_string(n) + ": " + why;
      ++errors_n;
      continue;
    }
    out.push_back(TokenLine{platform, token});
  }
  if (errors_n > 0) {
    if (errors_n > 20) errors += "\n... and " + std::to_string(errors_n - 20) + " more";
    return diag::Error{diag::Errc::kParse, errors + "\n" + name + ": " + std::to_string(errors_n) +
                                               " bad line(s); nothing was loaded"};
  }
  return out;
}

diag::Result<LoadCounts> loadTokens(DbConnection& db, std::uint64_t app_id,
                                    const std::vector<TokenLine>& tokens) {
  if (auto s = db.exec("START TRANSACTION"); !s.ok()) return s.error();
  LoadCounts counts;
  const std::string app = std::to_string(app_id);
  for (std::size_t i = 0; i < tokens.size(); i += 5000) {
    std::string sql = "INSERT IGNORE INTO device_token (app_id, platform, token) VALUES ";
    const std::size_t end = std::min(tokens.size(), i + 5000);
    for (std::size_t k = i; k < end; ++k) {
      if (k > i) sql += ',';
      sql += "(" + app + ",'" + tokens[k].platform + "'," + db.quote(tokens[k].token) + ")";
    }
    if (auto s = db.exec(sql); !s.ok()) {
      (void)db.exec("ROLLBACK");
      return s.error();
    }
    counts.inserted += db.affectedRows();
  }
  if (auto s = db.exec("COMMIT"); !s.ok()) return s.error();
  counts.already_present = tokens.size() - counts.inserted;
  return counts;
}

diag::Result<std::uint64_t> generateTokens(DbConnection& db, std::uint64_t app_id,
                                           const std::string& platform, std::uint64_t count,
                                           const std::string& prefix, std::uint64_t start) {
  if (platform != "apns" && platform != "fcm") {
    return diag::Error{diag::Errc::kInvalidArgument,
                       "unknown platform '" + platform + "' (expected apns or fcm)"};
  }
  if (prefix.size() > 48 || prefix.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return diag::Error{diag::Errc::kInvalidArgument,
                       "prefix must be at most 48 lowercase hex digits"};
  }
  if (count == 0) return std::uint64_t{0};
  const std::string pad = std::to_string(64 - prefix.size());
  if (auto s = db.exec("INSERT IGNORE INTO device_token (app_id, platform, token) SELECT " +
                       std::to_string(app_id) + ", '" + platform + "', CONCAT(" + db.quote(prefix) +
                       ", LPAD(LOWER(HEX(seq)), " + pad + ", '0')) FROM seq_" +
                       std::to_string(start) + "_to_" + std::to_string(start + count - 1));
      !s.ok()) {
    return s.error();
  }
  return db.affectedRows();
}

diag::Result<std::uint64_t> addSchedule(DbConnection& db, std::uint64_t app_id,
                                        const std::string& payload, double delay_s, bool validate) {
  if (validate) {
    auto p = validateSchedulePayload(payload, 4096);
    if (!p.ok()) return p.error();
  }
  const auto us = static_cast<long long>(delay_s * 1e6);
  if (auto s = db.exec("INSERT INTO schedule (app_id, send_at, payload) VALUES (" +
                       std::to_string(app_id) + ", NOW(6) + INTERVAL " + std::to_string(us) +
                       " MICROSECOND, " + db.quote(payload) + ")");
      !s.ok()) {
    return s.error();
  }
  return db.insertId();
}

diag::Result<std::optional<ScheduleStatus>> scheduleStatus(DbConnection& db, std::uint64_t id) {
  auto rows = db.query(
      "SELECT state, success_count, invalid_token_count, permanent_count, retryable_count, "
      "apns_cursor, fcm_cursor, claim_epoch, COALESCE(claim_owner, ''), "
      "COALESCE(failure_reason, '') FROM schedule WHERE id = " +
      std::to_string(id));
  if (!rows) return rows.error();
  if (rows->empty()) return std::optional<ScheduleStatus>();
  const Row& r = (*rows)[0];
  auto u = [](const std::optional<std::string>& v) { return v ? std::stoull(*v) : 0ULL; };
  ScheduleStatus s;
  s.state = r[0].value_or("");
  s.success = u(r[1]);
  s.invalid_token = u(r[2]);
  s.permanent = u(r[3]);
  s.retryable = u(r[4]);
  s.apns_cursor = u(r[5]);
  s.fcm_cursor = u(r[6]);
  s.epoch = static_cast<std::uint32_t>(u(r[7]));
  s.owner = r[8].value_or("");
  s.failure_reason = r[9].value_or("");
  return std::optional<ScheduleStatus>(std::move(s));
}

}  // namespace pushdaemon
