// JSON Web Tokens for the two push services, signed with OpenSSL:
//  - APNs provider tokens: ES256 over {"alg":"ES256","kid":KEY_ID} .
//    {"iss":TEAM_ID,"iat":SECONDS}, signed with the .p8 key Apple issues
//    (PKCS#8, EC P-256). Apple accepts a token for an hour and refuses
//    updates more often than every 20 minutes, so `ProviderTokenCache` reuses
//    one token and replaces it between 20 and 60 minutes — never per request.
//  - Google service-account assertions: RS256, exchanged for an OAuth2 access
//    token (RFC 7523) by the FCM client.
//
// A key is parsed once into an EVP_PKEY (SigningKey, shared by its copies)
// and the clients take that object, never a path: a daemon with many clients
// per key file parses it once. The text a key was parsed from is wiped
// (secret.h). Nothing here logs or returns key material, and error messages
// name files, never contents.
// Thread-safety: SigningKey is immutable after loading and may be shared
// between threads; ProviderTokenCache is not thread-safe (the client uses it
// from its event-loop thread only).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "leakscope/diag/result.h"

typedef struct evp_pkey_st EVP_PKEY;  // NOLINT: OpenSSL's own forward name

namespace leakscope::push {

using SystemClock = std::function<std::chrono::system_clock::time_point()>;

// RFC 4648 §5 without padding (JWT's flavour).
std::string base64UrlEncode(std::string_view bytes);
// Accepts unpadded or padded input; nullopt on any character outside the
// alphabet or an impossible length.
std::optional<std::string> base64UrlDecode(std::string_view text);

class SigningKey {
 public:
  enum class Algorithm { kES256, kRS256 };

  // ES256 requires an EC P-256 key, RS256 an RSA key of at least 2048 bits.
  // The file is read into a wiped buffer (secret.h); no permission check
  // here: a caller that takes paths from elsewhere checks them first.
  static diag::Result<SigningKey> fromPemFile(const std::string& path, Algorithm alg);
  // `what` names the source in error messages (e.g. the service-account
  // file). The caller owns (and wipes) `pem`.
  static diag::Result<SigningKey> fromPem(std::string_view pem, Algorithm alg,
                                          std::string_view what);

  Algorithm algorithm() const { return alg_; }
  // "sha256:<hex>" of the public key (DER SubjectPublicKeyInfo): tells
  // whether two loads hold the same key without comparing secrets. Safe to
  // log.
  const std::string& fingerprint() const { return fingerprint_; }
  // header_json and claims_json are the two JSON objects; returns
  // b64url(header).b64url(claims).b64url(signature). ES256 signatures are
  // the raw 64-byte R||S of RFC 7518 §3.4, not DER.
  diag::Result<std::string> signJwt(std::string_view header_json,
                                    std::string_view claims_json) const;

 private:
  struct KeyFree {
    void operator()(EVP_PKEY* k) const;
  };
  SigningKey(std::shared_ptr<EVP_PKEY> key, Algorithm alg, std::string fingerprint)
      : key_(std::move(key)), alg_(alg), fingerprint_(std::move(fingerprint)) {}
  std::shared_ptr<EVP_PKEY> key_;  // shared: copies of a loaded key are cheap
  Algorithm alg_;
  std::string fingerprint_;
};

// The APNs provider token for `iat`. `key_id` and `team_id` are Apple's
// 10-character identifiers (checked).
diag::Result<std::string> makeApnsProviderToken(const SigningKey& key, std::string_view key_id,
                                                std::string_view team_id,
                                                std::chrono::system_clock::time_point iat);

// A Google OAuth2 JWT-bearer assertion (valid for `lifetime`, at most 1 h).
diag::Result<std::string> makeGoogleAssertion(const SigningKey& key, std::string_view key_id,
                                              std::string_view client_email, std::string_view scope,
                                              std::string_view audience,
                                              std::chrono::system_clock::time_point iat,
                                              std::chrono::seconds lifetime);

// Why a provider token was (re)made; also the metric label.
enum class TokenRefresh { kNone, kInitial, kAge, kRejected };
const char* tokenRefreshName(TokenRefresh r);  // "none", "initial", "age", "rejected"

class ProviderTokenCache {
 public:
  static constexpr std::chrono::minutes kMinRefresh{20};
  static constexpr std::chrono::minutes kMaxRefresh{60};

  struct Options {
    std::string key_id;
    std::string team_id;
    // Age at which the token is replaced; must lie in [20 min, 60 min).
    // Apple: tokens older than an hour are refused; updates more often than
    // every 20 minutes are refused too (TooManyProviderTokenUpdates).
    std::chrono::minutes refresh_after{50};
    SystemClock clock;  // default: std::chrono::system_clock::now
  };

  // Validates the options (error names the setting).
  static diag::Result<ProviderTokenCache> create(SigningKey key, Options options);

  // Makes sure the cached token may be sent now: keeps it unless it is
  // missing, too old, or was rejected since. Returns why a new one was made
  // (kNone: the cached one is still good). Fails only if signing fails.
  diag::Result<TokenRefresh> refresh();
  // The current token (valid after a successful refresh()).
  const std::string& jwt() const { return jwt_; }

  // APNs said ExpiredProviderToken for `jwt`. If it is still the current
  // token, the next refresh() makes a new one (kRejected); answers for older tokens
  // (other in-flight requests) change nothing, so a burst of rejections
  // makes one new token, not one per request.
  void reject(std::string_view jwt);

  std::optional<std::chrono::system_clock::time_point> issuedAt() const { return issued_at_; }

 private:
  ProviderTokenCache(SigningKey key, Options options)
      : key_(std::move(key)), options_(std::move(options)) {}
  SigningKey key_;
  Options options_;
  std::string jwt_;
  std::optional<std::chrono::system_clock::time_point> issued_at_;
  bool rejected_ = false;
};

}  // namespace leakscope::push
