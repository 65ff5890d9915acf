#include "push_logic.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>

namespace mock {

namespace {

// Independent of the client library on purpose (see the header).
std::optional<std::string> unbase64url(std::string_view in) {
  std::string out;
  unsigned acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = -1;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    if (c >= '0' && c <= '9') v = c - '0' + 52;
    if (c == '-') v = 62;
    if (c == '_') v = 63;
    if (c == '=') break;
    if (v < 0) return std::nullopt;
    acc = (acc << 6 | static_cast<unsigned>(v)) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>(acc >> bits & 0xff);
    }
  }
  return out;
}

EVP_PKEY* loadKey(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) throw std::runtime_error("cannot open key " + path);
  EVP_PKEY* k = PEM_read_PUBKEY(f, nullptr, nullptr, nullptr);
  if (k == nullptr) {
    std::rewind(f);
    k = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  }
  std::fclose(f);
  if (k == nullptr) throw std::runtime_error("no PEM key in " + path);
  return k;
}

struct Jwt {
  nlohmann::json header;
  nlohmann::json claims;
  std::string signed_part;
  std::string signature;
};

std::optional<Jwt> parseJwt(const std::string& token) {
  const std::size_t a = token.find('.');
  const std::size_t b = a == std::string::npos ? a : token.find('.', a + 1);
  if (b == std::string::npos || token.find('.', b + 1) != std::string::npos) return std::nullopt;
  auto h = unbase64url(std::string_view(token).substr(0, a));
  auto c = unbase64url(std::string_view(token).substr(a + 1, b - a - 1));
  auto s = unbase64url(std::string_view(token).substr(b + 1));
  if (!h || !c || !s) return std::nullopt;
  Jwt j;
  j.header = nlohmann::json::parse(*h, nullptr, false);
  j.claims = nlohmann::json::parse(*c, nullptr, false);
  if (!j.header.is_object() || !j.claims.is_object()) return std::nullopt;
  j.signed_part = token.substr(0, b);
  j.signature = std::move(*s);
  return j;
}

bool verifySignature(EVP_PKEY* key, const Jwt& j, bool es256) {
  std::string der;
  if (es256) {
    if (j.signature.size() != 64) return false;
    ECDSA_SIG* sig = ECDSA_SIG_new();
    const auto* p = reinterpret_cast<const unsigned char*>(j.signature.data());
    ECDSA_SIG_set0(sig, BN_bin2bn(p, 32, nullptr), BN_bin2bn(p + 32, 32, nullptr));
    unsigned char* out = nullptr;
    const int len = i2d_ECDSA_SIG(sig, &out);
    ECDSA_SIG_free(sig);
    if (len <= 0) return false;
    der.assign(reinterpret_cast<char*>(out), static_cast<std::size_t>(len));
    OPENSSL_free(out);
  } else {
    der = j.signature;
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok =
      EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
      EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(der.data()), der.size(),
                       reinterpret_cast<const unsigned char*>(j.signed_part.data()),
                       j.signed_part.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

bool isHex(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

bool isUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !isHex(s.substr(i, 1))) return false;
  }
  return true;
}

bool isInteger(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string uuid(std::uint64_t n) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012llx",
                static_cast<unsigned long long>(n & 0xffffffffffffULL));
  return buf;
}

Reply apnsError(int status, const std::string& reason, std::optional<std::int64_t> ts = {}) {
  Reply r;
  r.status = status;
  nlohmann::json body = {{"reason", reason}};
  if (ts) body["timestamp"] = *ts;
  r.body = body.dump();
  r.headers.push_back({"content-type", "application/json"});
  return r;
}

const char* googleStatus(int status) {
  switch (status) {
    case 400:
      return "INVALID_ARGUMENT";
    case 401:
      return "UNAUTHENTICATED";
    case 403:
      return "PERMISSION_DENIED";
    case 404:
      return "NOT_FOUND";
    case 429:
      return "RESOURCE_EXHAUSTED";
    case 503:
      return "UNAVAILABLE";
    default:
      return "INTERNAL";
  }
}

std::string defaultFcmCode(int status) {
  switch (status) {
    case 400:
      return "INVALID_ARGUMENT";
    case 403:
      return "SENDER_ID_MISMATCH";
    case 404:
      return "UNREGISTERED";
    case 429:
      return "QUOTA_EXCEEDED";
    case 503:
      return "UNAVAILABLE";
    case 401:
      return "THIRD_PARTY_AUTH_ERROR";
    default:
      return "INTERNAL";
  }
}

Reply fcmError(int status, const std::string& code, const std::string& retry_after = {}) {
  Reply r;
  r.status = status;
  nlohmann::json err = {
      {"code", status}, {"message", "mock: " + code}, {"status", googleStatus(status)}};
  if (!code.empty() && code != googleStatus(status)) {
    err["details"] = nlohmann::json::array(
        {{{"@type", "type.googleapis.com/google.firebase.fcm.v1.FcmError"}, {"errorCode", code}}});
  }
  r.body = nlohmann::json{{"error", err}}.dump();
  r.headers.push_back({"content-type", "application/json; charset=UTF-8"});
  if (!retry_after.empty()) r.headers.push_back({"retry-after", retry_after});
  return r;
}

std::string urlDecode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && isHex(s.substr(i + 1, 2))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> parseForm(std::string_view body) {
  std::map<std::string, std::string> out;
  while (!body.empty()) {
    const std::size_t amp = body.find('&');
    const std::string_view kv = body.substr(0, amp);
    const std::size_t eq = kv.find('=');
    if (eq != std::string_view::npos)
      out[urlDecode(kv.substr(0, eq))] = urlDecode(kv.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    body.remove_prefix(amp + 1);
  }
  return out;
}

Rule ruleFromJson(const nlohmann::json& j) {
  Rule r;
  r.prefix = j.value("prefix", "");
  r.status = j.value("status", 0);
  r.reason = j.value("reason", "");
  r.fcm_code = j.value("fcm_code", "");
  if (j.contains("retry_after")) {
    r.retry_after = j["retry_after"].is_string() ? j["retry_after"].get<std::string>()
                                                 : std::to_string(j["retry_after"].get<int>());
  }
  return r;
}

}  // namespace

const std::string* Request::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return &v;
  }
  return nullptr;
}

int Request::headerCount(std::string_view name) const {
  return static_cast<int>(std::count_if(headers.begin(), headers.end(),
                                        [&](const auto& h) { return h.first == name; }));
}

Logic::Logic(Config config) : config_(std::move(config)) {
  if (!config_.apns_key_file.empty()) apns_key_.reset(loadKey(config_.apns_key_file));
  if (!config_.fcm_key_file.empty()) fcm_key_.reset(loadKey(config_.fcm_key_file));
}

Logic::~Logic() = default;

std::int64_t Logic::now() const {
  return std::chrono::duration_cast<std::chrono::seconds>(
             (std::chrono::system_clock::now() + clock_offset_).time_since_epoch())
      .count();
}

Reply Logic::handle(const Request& r) {
  Reply reply;
  if (r.path.rfind("/3/device/", 0) == 0) {
    reply = apns(r, r.path.substr(10));
  } else if (r.path.rfind("/v1/projects/", 0) == 0) {
    reply = fcm(r);
  } else if (r.path == "/token") {
    reply = oauth(r);
  } else {
    ++requests_["other"];
    reply = apnsError(404, "BadPath");
  }
  if (reply.action == Reply::Action::kRespond) ++responses_[reply.status];
  if (reply.action == Reply::Action::kReset) ++resets_;
  return reply;
}

std::string Logic::checkProviderToken(const std::string& jwt, std::uint64_t connection,
                                      std::int64_t& iat, int& status) {
  status = 403;
  auto known = good_jwts_.find(jwt);
  if (known == good_jwts_.end()) {
    if (!apns_key_) return "InvalidProviderToken";
    ++jwt_verifications_;
    auto j = parseJwt(jwt);
    if (!j || j->header.value("alg", "") != "ES256") return "InvalidProviderToken";
    if (j->header.value("kid", "") != config_.apns_key_id) return "InvalidProviderToken";
    if (!j->claims.contains("iss") || j->claims["iss"] != config_.apns_team_id ||
        !j->claims.contains("iat") || !j->claims["iat"].is_number_integer()) {
      return "InvalidProviderToken";
    }
    if (!verifySignature(apns_key_.get(), *j, true)) return "InvalidProviderToken";
    known = good_jwts_.emplace(jwt, j->claims["iat"].get<std::int64_t>()).first;
  }
  iat = known->second;
  // A connection may move to a newer token at most every 20 minutes.
  const auto used = connection_iat_.find(connection);
  if (used == connection_iat_.end()) {
    connection_iat_[connection] = iat;
  } else if (iat > used->second) {
    if (iat - used->second < 20 * 60) {
      status = 429;
      return "TooManyProviderTokenUpdates";
    }
    used->second = iat;
  }
  if (now() - iat > 3600) return "ExpiredProviderToken";
  return "";
}

std::optional<Reply> Logic::transportFault(const Request& r) {
  if (config_.faults.close_after_requests > 0 &&
      r.connection_requests >= config_.faults.close_after_requests) {
    Reply close;
    close.action = Reply::Action::kClose;
    return close;
  }
  if (config_.faults.rst_count > 0) {
    --config_.faults.rst_count;
    Reply rst;
    rst.action = Reply::Action::kReset;
    rst.rst_code = config_.faults.rst_code;
    return rst;
  }
  return std::nullopt;
}

bool Logic::goawayAfter(const Request& r) const {
  return config_.faults.goaway_after_streams > 0 &&
         r.connection_requests == config_.faults.goaway_after_streams;
}

Reply Logic::apns(const Request& r, const std::string& token) {
  ++requests_["apns"];
  // Building the record costs more than answering; skip it when not kept.
  const bool record = received_.size() < config_.max_records;
  nlohmann::json rec;
  if (record) {
    rec = {{"endpoint", "apns"},
           {"token", token},
           {"connection", r.connection},
           {"stream", r.stream},
           {"payload_bytes", r.body.size()}};
    for (const char* h : {"apns-topic", "apns-push-type", "apns-priority", "apns-expiration",
                          "apns-collapse-id", "apns-id"}) {
      if (const std::string* v = r.header(h)) rec[h] = *v;
    }
  }
  auto finish = [&](Reply reply) {
    if (!record) return reply;
    rec["status"] = reply.action == Reply::Action::kRespond ? reply.status : 0;
    rec["action"] = reply.action == Reply::Action::kRespond ? "respond"
                    : reply.action == Reply::Action::kReset ? "reset"
                                                            : "close";
    if (reply.action == Reply::Action::kRespond && reply.status != 200) {
      rec["reason"] = nlohmann::json::parse(reply.body, nullptr, false).value("reason", "");
    }
    reply.record = static_cast<std::ptrdiff_t>(received_.size());
    reply.record_generation = records_generation_;
    received_.push_back(std::move(rec));
    return reply;
  };

  if (auto fault = transportFault(r)) return finish(*fault);
  Reply ok;
  ok.delay_ms = config_.faults.delay_ms;
  ok.goaway_after = goawayAfter(r);
  auto error = [&](int status, const std::string& reason, std::optional<std::int64_t> ts = {}) {
    Reply e = apnsError(status, reason, ts);
    e.delay_ms = ok.delay_ms;
    e.goaway_after = ok.goaway_after;
    return finish(e);
  };

  if (r.method != "POST") return error(405, "MethodNotAllowed");
  if (token.empty()) return error(400, "MissingDeviceToken");
  for (const char* h : {"apns-topic", "apns-push-type", "apns-priority", "apns-expiration",
                        "apns-collapse-id", "apns-id", "authorization"}) {
    if (r.headerCount(h) > 1) return error(400, "DuplicateHeaders");
  }
  const std::string* auth = r.header("authorization");
  if (auth != nullptr) {
    if (auth->rfind("bearer ", 0) != 0) return error(403, "InvalidProviderToken");
    std::int64_t iat = 0;
    int status = 403;
    std::string why;
    if (*auth == last_auth_ && r.connection == last_auth_connection_) {
      // The same token as the previous request on this connection (the
      // common case): already verified; only its age can have changed.
      iat = last_auth_iat_;
      if (now() - iat > 3600) why = "ExpiredProviderToken";
    } else {
      const std::string jwt = auth->substr(7);
      distinct_jwts_.insert(jwt);
      why = checkProviderToken(jwt, r.connection, iat, status);
      if (why.empty()) {
        last_auth_ = *auth;
        last_auth_connection_ = r.connection;
        last_auth_iat_ = iat;
      }
    }
    if (!why.empty()) return error(status, why);
    if (record) {
      rec["auth"] = "jwt";
      rec["jwt_iat"] = iat;
    }
  } else if (r.client_cert_verified) {
    if (record) rec["auth"] = "cert";
  } else {
    return error(403, "MissingProviderToken");
  }
  const std::string* topic = r.header("apns-topic");
  if (topic == nullptr && auth != nullptr) return error(400, "MissingTopic");
  if (topic != nullptr && !config_.topics.empty() &&
      std::find(config_.topics.begin(), config_.topics.end(), *topic) == config_.topics.end()) {
    return error(400, "TopicDisallowed");
  }
  const std::string* push_type = r.header("apns-push-type");
  static const std::set<std::string> kTypes = {"alert", "background",   "location",
                                               "voip",  "complication", "fileprovider",
                                               "mdm",   "liveactivity", "pushtotalk"};
  if (push_type != nullptr && kTypes.count(*push_type) == 0) return error(400, "InvalidPushType");
  if (const std::string* p = r.header("apns-priority"); p && *p != "10" && *p != "5" && *p != "1") {
    return error(400, "BadPriority");
  }
  if (const std::string* id = r.header("apns-id"); id && !isUuid(*id)) {
    return error(400, "BadMessageId");
  }
  if (const std::string* e = r.header("apns-expiration"); e && !isInteger(*e)) {
    return error(400, "BadExpirationDate");
  }
  if (const std::string* c = r.header("apns-collapse-id"); c && c->size() > 64) {
    return error(400, "BadCollapseId");
  }
  if (!isHex(token)) return error(400, "BadDeviceToken");
  if (r.body.empty()) return error(400, "PayloadEmpty");
  const std::size_t limit = push_type != nullptr && *push_type == "voip" ? 5120 : 4096;
  if (r.body.size() > limit) return error(413, "PayloadTooLarge");

  if (config_.faults.fail_count > 0) {
    --config_.faults.fail_count;
    const Rule& f = config_.faults.fail;
    Reply e = apnsError(f.status, f.reason);
    if (!f.retry_after.empty()) e.headers.push_back({"retry-after", f.retry_after});
    e.delay_ms = ok.delay_ms;
    e.goaway_after = ok.goaway_after;
    return finish(e);
  }
  for (const Rule& rule : config_.rules) {
    if (token.rfind(rule.prefix, 0) != 0) continue;
    std::optional<std::int64_t> ts;
    if (rule.status == 410) ts = (now() - 86400) * 1000;  // "invalid since yesterday"
    Reply e = apnsError(rule.status, rule.reason, ts);
    if (!rule.retry_after.empty()) e.headers.push_back({"retry-after", rule.retry_after});
    e.delay_ms = ok.delay_ms;
    e.goaway_after = ok.goaway_after;
    return finish(e);
  }
  const std::string* id = r.header("apns-id");
  ok.headers.push_back({"apns-id", id != nullptr ? *id : uuid(requests_["apns"])});
  return finish(ok);
}

Reply Logic::fcm(const Request& r) {
  ++requests_["fcm"];
  nlohmann::json rec = {{"endpoint", "fcm"}, {"connection", r.connection}, {"stream", r.stream}};
  auto finish = [&](Reply reply) {
    rec["status"] = reply.action == Reply::Action::kRespond ? reply.status : 0;
    rec["action"] = reply.action == Reply::Action::kRespond ? "respond"
                    : reply.action == Reply::Action::kReset ? "reset"
                                                            : "close";
    if (reply.action == Reply::Action::kRespond && reply.status != 200) {
      const auto b = nlohmann::json::parse(reply.body, nullptr, false);
      if (b.is_object() && b.contains("error")) rec["reason"] = b["error"].value("status", "");
    }
    if (received_.size() < config_.max_records) {
      reply.record = static_cast<std::ptrdiff_t>(received_.size());
      reply.record_generation = records_generation_;
      received_.push_back(std::move(rec));
    }
    reply.delay_ms = config_.faults.delay_ms;
    reply.goaway_after = goawayAfter(r);
    return reply;
  };
  const std::string expected = "/v1/projects/" + config_.fcm_project + "/messages:send";
  if (r.method != "POST" || r.path != expected) return finish(fcmError(404, "NOT_FOUND"));
  const std::string* auth = r.header("authorization");
  const std::string bearer =
      auth != nullptr && auth->rfind("Bearer ", 0) == 0 ? auth->substr(7) : "";
  const auto tok = access_tokens_.find(bearer);
  if (tok == access_tokens_.end() || tok->second <= now()) {
    return finish(fcmError(401, "UNAUTHENTICATED"));
  }
  rec["access_token"] = bearer;
  const auto body = nlohmann::json::parse(r.body, nullptr, false);
  if (!body.is_object() || !body.contains("message") || !body["message"].is_object() ||
      !body["message"].contains("token") || !body["message"]["token"].is_string()) {
    return finish(fcmError(400, "INVALID_ARGUMENT"));
  }
  const std::string token = body["message"]["token"].get<std::string>();
  rec["token"] = token;
  if (auto fault = transportFault(r)) return finish(*fault);
  if (body["message"].dump().size() > 4096) return finish(fcmError(400, "INVALID_ARGUMENT"));
  if (config_.faults.fail_count > 0) {
    --config_.faults.fail_count;
    const Rule& f = config_.faults.fail;
    return finish(fcmError(f.status, f.fcm_code.empty() ? defaultFcmCode(f.status) : f.fcm_code,
                           f.retry_after));
  }
  for (const Rule& rule : config_.rules) {
    if (token.rfind(rule.prefix, 0) != 0) continue;
    return finish(fcmError(rule.status,
                           rule.fcm_code.empty() ? defaultFcmCode(rule.status) : rule.fcm_code,
                           rule.retry_after));
  }
  Reply ok;
  ok.headers.push_back({"content-type", "application/json; charset=UTF-8"});
  ok.body = nlohmann::json{{"name", "projects/" + config_.fcm_project + "/messages/" +
                                        std::to_string(requests_["fcm"])}}
                .dump();
  return finish(ok);
}

Reply Logic::oauth(const Request& r) {
  ++requests_["oauth"];
  auto refuse = [&](int status, const std::string& error) {
    ++oauth_rejected_;
    Reply e;
    e.status = status;
    e.headers.push_back({"content-type", "application/json"});
    e.body = nlohmann::json{{"error", error}, {"error_description", "mock: " + error}}.dump();
    return e;
  };
  if (config_.faults.oauth_fail_count > 0) {
    --config_.faults.oauth_fail_count;
    return refuse(config_.faults.oauth_fail_status, "temporarily_unavailable");
  }
  const auto form = parseForm(r.body);
  const auto grant = form.find("grant_type");
  const auto assertion = form.find("assertion");
  if (r.method != "POST" || grant == form.end() ||
      grant->second != "urn:ietf:params:oauth:grant-type:jwt-bearer" || assertion == form.end()) {
    return refuse(400, "unsupported_grant_type");
  }
  auto j = parseJwt(assertion->second);
  if (!j || !fcm_key_ || j->header.value("alg", "") != "RS256" ||
      !verifySignature(fcm_key_.get(), *j, false)) {
    return refuse(400, "invalid_grant");
  }
  const auto& c = j->claims;
  const std::int64_t iat = c.value("iat", std::int64_t{0});
  const std::int64_t exp = c.value("exp", std::int64_t{0});
  if (c.value("iss", "") != config_.fcm_client_email ||
      c.value("scope", "").find("firebase.messaging") == std::string::npos ||
      c.value("aud", "").find("/token") == std::string::npos || exp - iat > 3600 || exp <= now()) {
    return refuse(400, "invalid_grant");
  }
  const std::string token = "ya29.mock-" + std::to_string(next_access_token_++);
  access_tokens_[token] = now() + config_.token_lifetime_s;
  ++oauth_tokens_issued_;
  Reply ok;
  ok.headers.push_back({"content-type", "application/json"});
  ok.body = nlohmann::json{{"access_token", token},
                           {"expires_in", config_.token_lifetime_s},
                           {"token_type", "Bearer"}}
                .dump();
  ok.delay_ms = config_.faults.delay_ms;  // the delay fault slows every answer
  return ok;
}

std::string Logic::setFaults(const nlohmann::json& j) {
  if (!j.is_object()) return "faults must be a JSON object";
  // Applied to a copy and kept only when every field is good: a control
  // request with a wrong type is refused (400), it changes nothing.
  Faults f = config_.faults;
  try {
    for (const auto& [key, v] : j.items()) {
      if (key == "delay_ms") {
        f.delay_ms = v.get<int>();
      } else if (key == "fail") {
        f.fail = ruleFromJson(v);
        f.fail_count = v.value("count", 1);
      } else if (key == "goaway_after_streams") {
        f.goaway_after_streams = v.get<int>();
      } else if (key == "rst") {
        f.rst_count = v.value("count", 1);
        f.rst_code = v.value("error_code", 7u);
      } else if (key == "close_after_requests") {
        f.close_after_requests = v.get<int>();
      } else if (key == "refuse_connections") {
        f.refuse_connections = v.get<bool>();
      } else if (key == "stall") {
        f.stall = v.get<bool>();
      } else if (key == "oauth_fail") {
        f.oauth_fail_count = v.value("count", 1);
        f.oauth_fail_status = v.value("status", 503);
      } else if (key == "max_concurrent_streams") {
        continue;  // handled by the server
      } else {
        return "unknown fault '" + key + "'";
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return std::string("bad fault value: ") + e.what();
  }
  config_.faults = f;
  return "";
}

std::string Logic::setRules(const nlohmann::json& j) {
  if (!j.is_array()) return "rules must be a JSON array";
  std::vector<Rule> rules;
  try {
    for (const auto& r : j) rules.push_back(ruleFromJson(r));
  } catch (const nlohmann::json::exception& e) {
    return std::string("bad rule: ") + e.what();
  }
  config_.rules = std::move(rules);
  return "";
}

void Logic::unprocessed(const Reply* reply) {
  ++unprocessed_;
  if (reply == nullptr || reply->record < 0 || reply->record_generation != records_generation_ ||
      static_cast<std::size_t>(reply->record) >= received_.size()) {
    return;
  }
  auto& rec = received_[static_cast<std::size_t>(reply->record)];
  rec["action"] = "unanswered";
  rec["status"] = 0;
}

void Logic::reset() {
  last_auth_.clear();
  received_ = nlohmann::json::array();
  ++records_generation_;
  requests_.clear();
  responses_.clear();
  resets_ = 0;
  unprocessed_ = 0;
  distinct_jwts_.clear();
  jwt_verifications_ = 0;
}

nlohmann::json Logic::stats() const {
  nlohmann::json requests = nlohmann::json::object();
  for (const auto& [k, v] : requests_) requests[k] = v;
  nlohmann::json responses = nlohmann::json::object();
  for (const auto& [k, v] : responses_) responses[std::to_string(k)] = v;
  return {{"requests", requests},
          {"responses", responses},
          {"resets", resets_},
          {"unprocessed", unprocessed_},
          {"distinct_jwts", distinct_jwts_.size()},
          {"jwt_verifications", jwt_verifications_},
          {"oauth_tokens_issued", oauth_tokens_issued_},
          {"oauth_rejected", oauth_rejected_},
          {"received", received_.size()}};
}

}  // namespace mock
