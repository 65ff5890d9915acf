#include "leakscope/push/jwt.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "leakscope/push/secret.h"
#include "tls.h"

namespace leakscope::push {

using diag::Errc;
using diag::Error;
using diag::Result;

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int decodeChar(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};

bool isAppleId(std::string_view s) {
  return s.size() == 10 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
         });
}

// "sha256:<hex>" of the DER SubjectPublicKeyInfo; "" if OpenSSL fails (then
// two loads never compare equal: a needless client replacement, no harm).
std::string publicKeyFingerprint(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  if (len <= 0) {
    ERR_clear_error();
    return "";
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  const int ok = EVP_Digest(der, static_cast<std::size_t>(len), md, &md_len, EVP_sha256(), nullptr);
  OPENSSL_free(der);
  if (ok != 1) {
    ERR_clear_error();
    return "";
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned i = 0; i < md_len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

std::int64_t unixSeconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

std::string base64UrlEncode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto byte = [&](std::size_t k) {
    return static_cast<unsigned>(static_cast<unsigned char>(in[k]));
  };
  for (; i + 3 <= in.size(); i += 3) {
    const unsigned v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
    out += kAlphabet[v & 63];
  }
  if (in.size() - i == 1) {
    const unsigned v = byte(i) << 16;
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
  } else if (in.size() - i == 2) {
    const unsigned v = byte(i) << 16 | byte(i + 1) << 8;
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
  }
  return out;
}

std::optional<std::string> base64UrlDecode(std::string_view in) {
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  unsigned acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = decodeChar(c);
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

void SigningKey::KeyFree::operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }

void secureWipe(void* p, std::size_t n) {
  if (p != nullptr && n > 0) OPENSSL_cleanse(p, n);
}

Result<SecretString> readSecret(int fd, std::string_view what) {
  constexpr std::size_t kMax = 1 << 20;
  SecretString out;
  // Reserved up front: growth would leave copies behind (wiped, but why make them).
  out.reserve(8192);
  char chunk[4096];
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      secureWipe(chunk, sizeof chunk);
      return Error{err == EACCES ? Errc::kPermission : Errc::kIo,
                   "cannot read " + std::string(what) + ": " + std::strerror(err)};
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > kMax) {
      secureWipe(chunk, sizeof chunk);
      return Error{Errc::kInvalidArgument, std::string(what) + " is larger than 1 MiB: no key"};
    }
    out.append(chunk, static_cast<std::size_t>(n));
  }
  secureWipe(chunk, sizeof chunk);
  return out;
}

Result<SigningKey> SigningKey::fromPemFile(const std::string& path, Algorithm alg) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Error{errno == EACCES ? Errc::kPermission : Errc::kIo,
                 "cannot read key file " + path + ": " + std::strerror(errno)};
  }
  auto pem = readSecret(fd, "key file " + path);
  ::close(fd);
  if (!pem) return pem.error();
  return fromPem(*pem, alg, path);
}

Result<SigningKey> SigningKey::fromPem(std::string_view pem, Algorithm alg, std::string_view what) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return Error{Errc::kIo, "out of memory reading key " + std::string(what)};
  EVP_PKEY* raw = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (raw == nullptr) {
    return Error{Errc::kParse, "no PEM private key in " + std::string(what) + " (" +
                                   detail::sslErrorQueue() + ")"};
  }
  std::shared_ptr<EVP_PKEY> key(raw, KeyFree{});
  if (alg == Algorithm::kES256) {
    char group[64] = {};
    std::size_t len = 0;
    if (EVP_PKEY_get_base_id(raw) != EVP_PKEY_EC ||
        EVP_PKEY_get_utf8_string_param(raw, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &len) != 1 ||
        std::string_view(group, len) != "prime256v1") {
      ERR_clear_error();
      return Error{Errc::kInvalidArgument,
                   "key in " + std::string(what) + " is not an EC P-256 key (ES256 needs one)"};
    }
  } else {
    if (EVP_PKEY_get_base_id(raw) != EVP_PKEY_RSA || EVP_PKEY_get_bits(raw) < 2048) {
      return Error{Errc::kInvalidArgument, "key in " + std::string(what) +
                                               " is not an RSA key of at least 2048 bits (RS256)"};
    }
  }
  return SigningKey(std::move(key), alg, publicKeyFingerprint(raw));
}

Result<std::string> SigningKey::signJwt(std::string_view header_json,
                                        std::string_view claims_json) const {
  std::string input = base64UrlEncode(header_json);
  input += '.';
  input += base64UrlEncode(claims_json);

  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1) {
    return Error{Errc::kIo, "cannot start JWT signature: " + detail::sslErrorQueue()};
  }
  std::size_t sig_len = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  if (EVP_DigestSign(ctx.get(), nullptr, &sig_len, data, input.size()) != 1) {
    return Error{Errc::kIo, "cannot size JWT signature: " + detail::sslErrorQueue()};
  }
  std::vector<unsigned char> sig(sig_len);
  if (EVP_DigestSign(ctx.get(), sig.data(), &sig_len, data, input.size()) != 1) {
    return Error{Errc::kIo, "cannot sign JWT: " + detail::sslErrorQueue()};
  }
  sig.resize(sig_len);

  std::string raw;
  if (alg_ == Algorithm::kES256) {
    // OpenSSL gives DER (SEQUENCE of two INTEGERs); JWS wants R||S, 32 bytes each.
    const unsigned char* p = sig.data();
    std::unique_ptr<ECDSA_SIG, EcdsaSigFree> es(
        d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size())));
    if (!es) return Error{Errc::kIo, "cannot decode ECDSA signature: " + detail::sslErrorQueue()};
    const BIGNUM* r = nullptr;
    const BIGNUM* s = nullptr;
    ECDSA_SIG_get0(es.get(), &r, &s);
    std::array<unsigned char, 64> rs{};
    if (BN_bn2binpad(r, rs.data(), 32) != 32 || BN_bn2binpad(s, rs.data() + 32, 32) != 32) {
      return Error{Errc::kIo, "ECDSA signature does not fit P-256"};
    }
    raw.assign(reinterpret_cast<const char*>(rs.data()), rs.size());
  } else {
    raw.assign(reinterpret_cast<const char*>(sig.data()), sig.size());
  }
  input += '.';
  input += base64UrlEncode(raw);
  return input;
}

Result<std::string> makeApnsProviderToken(const SigningKey& key, std::string_view key_id,
                                          std::string_view team_id,
                                          std::chrono::system_clock::time_point iat) {
  if (key.algorithm() != SigningKey::Algorithm::kES256) {
    return Error{Errc::kInvalidArgument, "APNs provider tokens need an ES256 (.p8) key"};
  }
  if (!isAppleId(key_id)) {
    return Error{Errc::kInvalidArgument, "APNs key id must be 10 characters A-Z0-9"};
  }
  if (!isAppleId(team_id)) {
    return Error{Errc::kInvalidArgument, "APNs team id must be 10 characters A-Z0-9"};
  }
  // The ids are [A-Z0-9]{10}: no JSON escaping needed.
  const std::string header = R"({"alg":"ES256","kid":")" + std::string(key_id) + R"("})";
  const std::string claims =
      R"({"iss":")" + std::string(team_id) + R"(","iat":)" + std::to_string(unixSeconds(iat)) + "}";
  return key.signJwt(header, claims);
}

Result<std::string> makeGoogleAssertion(const SigningKey& key, std::string_view key_id,
                                        std::string_view client_email, std::string_view scope,
                                        std::string_view audience,
                                        std::chrono::system_clock::time_point iat,
                                        std::chrono::seconds lifetime) {
  if (key.algorithm() != SigningKey::Algorithm::kRS256) {
    return Error{Errc::kInvalidArgument, "Google assertions need an RS256 (RSA) key"};
  }
  if (lifetime <= std::chrono::seconds(0) || lifetime > std::chrono::hours(1)) {
    return Error{Errc::kInvalidArgument, "assertion lifetime must be in (0, 1 h]"};
  }
  nlohmann::json header = {{"alg", "RS256"}, {"typ", "JWT"}};
  if (!key_id.empty()) header["kid"] = std::string(key_id);
  const std::int64_t t = unixSeconds(iat);
  const nlohmann::json claims = {{"iss", std::string(client_email)},
                                 {"scope", std::string(scope)},
                                 {"aud", std::string(audience)},
                                 {"iat", t},
                                 {"exp", t + lifetime.count()}};
  return key.signJwt(header.dump(), claims.dump());
}

const char* tokenRefreshName(TokenRefresh r) {
  switch (r) {
    case TokenRefresh::kNone:
      return "none";
    case TokenRefresh::kInitial:
      return "initial";
    case TokenRefresh::kAge:
      return "age";
    case TokenRefresh::kRejected:
      return "rejected";
  }
  return "unknown";
}

Result<ProviderTokenCache> ProviderTokenCache::create(SigningKey key, Options options) {
  if (options.refresh_after < kMinRefresh || options.refresh_after >= kMaxRefresh) {
    return Error{Errc::kInvalidArgument,
                 "APNs token refresh interval must be at least 20 and under 60 minutes (got " +
                     std::to_string(options.refresh_after.count()) + ")"};
  }
  if (!isAppleId(options.key_id)) {
    return Error{Errc::kInvalidArgument, "APNs key id must be 10 characters A-Z0-9"};
  }
  if (!isAppleId(options.team_id)) {
    return Error{Errc::kInvalidArgument, "APNs team id must be 10 characters A-Z0-9"};
  }
  if (key.algorithm() != SigningKey::Algorithm::kES256) {
    return Error{Errc::kInvalidArgument, "APNs provider tokens need an ES256 (.p8) key"};
  }
  if (!options.clock) options.clock = [] { return std::chrono::system_clock::now(); };
  return ProviderTokenCache(std::move(key), std::move(options));
}

Result<TokenRefresh> ProviderTokenCache::refresh() {
  const auto now = options_.clock();
  TokenRefresh why = TokenRefresh::kNone;
  if (!issued_at_) {
    why = TokenRefresh::kInitial;
  } else if (rejected_) {
    why = TokenRefresh::kRejected;
  } else {
    const auto age = now - *issued_at_;
    // A clock that jumped back by more than a few minutes makes the age
    // meaningless: start over rather than keep a token from the "future".
    if (age >= options_.refresh_after || age < -std::chrono::minutes(5)) why = TokenRefresh::kAge;
  }
  if (why == TokenRefresh::kNone) return why;
  auto jwt = makeApnsProviderToken(key_, options_.key_id, options_.team_id, now);
  if (!jwt) return jwt.error();
  jwt_ = std::move(*jwt);
  issued_at_ = now;
  rejected_ = false;
  return why;
}

void ProviderTokenCache::reject(std::string_view jwt) {
  if (!jwt_.empty() && jwt == jwt_) rejected_ = true;
}

}  // namespace leakscope::push
