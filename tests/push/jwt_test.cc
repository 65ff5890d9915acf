// Unit tests of daemon/push/src/jwt.cc: base64url, ES256/RS256 JWTs checked
// with OpenSSL's verifier, and the provider-token cache under an injected
// clock (no sleeping).
#include "leakscope/push/jwt.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "test_support.h"

namespace push = leakscope::push;
using leakscope::testing::TempDir;
using std::chrono::minutes;
using std::chrono::seconds;

namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

Pkey generate(const char* type) {
  if (std::string_view(type) == "EC")
    return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(2048)));
}

std::string writePkcs8(const TempDir& dir, EVP_PKEY* key, const std::string& name) {
  const std::string path = dir.path() + "/" + name;
  FILE* f = std::fopen(path.c_str(), "w");
  EXPECT_NE(f, nullptr);
  EXPECT_EQ(PEM_write_PKCS8PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr), 1);
  std::fclose(f);
  return path;
}

std::vector<std::string> split(const std::string& jwt) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    const std::size_t dot = jwt.find('.', start);
    parts.push_back(jwt.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

// Verifies a JWS signature the way a server would, independently of the
// signing code: ES256's R||S is turned back into DER for OpenSSL.
bool verify(EVP_PKEY* key, const std::string& jwt, bool es256) {
  const auto parts = split(jwt);
  if (parts.size() != 3) return false;
  const std::string input = parts[0] + "." + parts[1];
  auto sig = push::base64UrlDecode(parts[2]);
  if (!sig) return false;
  std::vector<unsigned char> der;
  if (es256) {
    if (sig->size() != 64) return false;
    ECDSA_SIG* s = ECDSA_SIG_new();
    BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig->data()), 32, nullptr);
    BIGNUM* ss = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig->data()) + 32, 32, nullptr);
    ECDSA_SIG_set0(s, r, ss);
    unsigned char* out = nullptr;
    const int len = i2d_ECDSA_SIG(s, &out);
    der.assign(out, out + len);
    OPENSSL_free(out);
    ECDSA_SIG_free(s);
  } else {
    der.assign(sig->begin(), sig->end());
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok =
      EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
      EVP_DigestVerify(ctx, der.data(), der.size(),
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

nlohmann::json part(const std::string& jwt, int i) {
  return nlohmann::json::parse(*push::base64UrlDecode(split(jwt)[static_cast<std::size_t>(i)]));
}

}  // namespace

TEST(Base64Url, Rfc4648VectorsWithoutPadding) {
  EXPECT_EQ(push::base64UrlEncode(""), "");
  EXPECT_EQ(push::base64UrlEncode("f"), "Zg");
  EXPECT_EQ(push::base64UrlEncode("fo"), "Zm8");
  EXPECT_EQ(push::base64UrlEncode("foo"), "Zm9v");
  EXPECT_EQ(push::base64UrlEncode("foob"), "Zm9vYg");
  EXPECT_EQ(push::base64UrlEncode("fooba"), "Zm9vYmE");
  EXPECT_EQ(push::base64UrlEncode("foobar"), "Zm9vYmFy");
  // The URL-safe alphabet: 62 and 63 are '-' and '_', not '+' and '/'.
  EXPECT_EQ(push::base64UrlEncode(std::string("\xfb\xff", 2)), "-_8");
}

TEST(Base64Url, DecodeRoundTripsAndRejectsGarbage) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t n = 0; n <= all.size(); n += 37) {
    const std::string in = all.substr(0, n);
    EXPECT_EQ(push::base64UrlDecode(push::base64UrlEncode(in)), in) << n;
  }
  EXPECT_EQ(push::base64UrlDecode("Zm9vYg=="), "foob");  // padding tolerated
  EXPECT_FALSE(push::base64UrlDecode("Zm9v+g"));         // '+' is not base64url
  EXPECT_FALSE(push::base64UrlDecode("Zm9vY"));          // impossible length
  EXPECT_FALSE(push::base64UrlDecode("Zm 9v"));
}

TEST(SigningKey, Es256ProviderTokenHasAppleFieldsAndVerifies) {
  TempDir dir;
  auto ec = generate("EC");
  const auto path = writePkcs8(dir, ec.get(), "AuthKey_ABC123DEFG.p8");
  auto key = push::SigningKey::fromPemFile(path, push::SigningKey::Algorithm::kES256);
  ASSERT_TRUE(key) << key.error().message;
  const auto iat = std::chrono::system_clock::time_point(seconds(1700000000));
  auto jwt = push::makeApnsProviderToken(*key, "ABC123DEFG", "DEF123GHIJ", iat);
  ASSERT_TRUE(jwt) << jwt.error().message;
  EXPECT_EQ(part(*jwt, 0), nlohmann::json::parse(R"({"alg":"ES256","kid":"ABC123DEFG"})"));
  EXPECT_EQ(part(*jwt, 1), nlohmann::json::parse(R"({"iss":"DEF123GHIJ","iat":1700000000})"));
  EXPECT_EQ(push::base64UrlDecode(split(*jwt)[2])->size(), 64u);  // raw R||S, not DER
  EXPECT_TRUE(verify(ec.get(), *jwt, true));
  // Another key does not verify it: the check above is not vacuous.
  auto other = generate("EC");
  EXPECT_FALSE(verify(other.get(), *jwt, true));
}

TEST(SigningKey, RejectsWrongKeyTypeMissingFileAndBadIds) {
  TempDir dir;
  auto rsa = generate("RSA");
  const auto rsa_path = writePkcs8(dir, rsa.get(), "rsa.pem");
  auto as_ec = push::SigningKey::fromPemFile(rsa_path, push::SigningKey::Algorithm::kES256);
  ASSERT_FALSE(as_ec);
  EXPECT_NE(as_ec.error().message.find("P-256"), std::string::npos);

  auto missing =
      push::SigningKey::fromPemFile(dir.path() + "/nope.p8", push::SigningKey::Algorithm::kES256);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, leakscope::diag::Errc::kIo);
  EXPECT_NE(missing.error().message.find("nope.p8"), std::string::npos);

  auto garbage = push::SigningKey::fromPem("not a key", push::SigningKey::Algorithm::kES256, "x");
  ASSERT_FALSE(garbage);
  EXPECT_EQ(garbage.error().code, leakscope::diag::Errc::kParse);

  auto ec = generate("EC");
  auto key = push::SigningKey::fromPemFile(writePkcs8(dir, ec.get(), "k.p8"),
                                           push::SigningKey::Algorithm::kES256);
  ASSERT_TRUE(key);
  const auto now = std::chrono::system_clock::now();
  EXPECT_FALSE(push::makeApnsProviderToken(*key, "short", "DEF123GHIJ", now));
  EXPECT_FALSE(push::makeApnsProviderToken(*key, "ABC123DEFG", "lower12345", now));
  EXPECT_FALSE(push::makeApnsProviderToken(*key, "ABC\"23DEFG", "DEF123GHIJ", now));
}

TEST(SigningKey, Rs256GoogleAssertionHasClaimsAndVerifies) {
  TempDir dir;
  auto rsa = generate("RSA");
  auto key = push::SigningKey::fromPemFile(writePkcs8(dir, rsa.get(), "sa.pem"),
                                           push::SigningKey::Algorithm::kRS256);
  ASSERT_TRUE(key) << key.error().message;
  const auto iat = std::chrono::system_clock::time_point(seconds(1700000000));
  auto jwt = push::makeGoogleAssertion(*key, "kid-1", "svc@proj.iam.gserviceaccount.com",
                                       "https://www.googleapis.com/auth/firebase.messaging",
                                       "https://oauth2.example/token", iat, std::chrono::hours(1));
  ASSERT_TRUE(jwt) << jwt.error().message;
  EXPECT_EQ(part(*jwt, 0)["alg"], "RS256");
  EXPECT_EQ(part(*jwt, 0)["kid"], "kid-1");
  const auto claims = part(*jwt, 1);
  EXPECT_EQ(claims["iss"], "svc@proj.iam.gserviceaccount.com");
  EXPECT_EQ(claims["aud"], "https://oauth2.example/token");
  EXPECT_EQ(claims["iat"], 1700000000);
  EXPECT_EQ(claims["exp"], 1700003600);
  EXPECT_TRUE(verify(rsa.get(), *jwt, false));
  EXPECT_FALSE(push::makeGoogleAssertion(*key, "", "a@b", "s", "aud", iat, std::chrono::hours(2)));
}

class ProviderTokenCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ec_ = generate("EC");
    auto key = push::SigningKey::fromPemFile(writePkcs8(dir_, ec_.get(), "k.p8"),
                                             push::SigningKey::Algorithm::kES256);
    ASSERT_TRUE(key);
    key_.emplace(std::move(*key));
  }
  push::ProviderTokenCache make(minutes refresh) {
    push::ProviderTokenCache::Options o;
    o.key_id = "ABC123DEFG";
    o.team_id = "DEF123GHIJ";
    o.refresh_after = refresh;
    o.clock = [this] { return now_; };
    auto c = push::ProviderTokenCache::create(*key_, o);
    EXPECT_TRUE(c);
    return std::move(*c);
  }
  TempDir dir_;
  Pkey ec_;
  std::optional<push::SigningKey> key_;
  std::chrono::system_clock::time_point now_{seconds(1700000000)};
};

TEST_F(ProviderTokenCacheTest, ReusesTheTokenUntilRefreshAgeThenMakesANewOne) {
  auto cache = make(minutes(50));
  auto first = cache.refresh();
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, push::TokenRefresh::kInitial);
  const std::string first_jwt = cache.jwt();
  for (int m : {0, 1, 19, 20, 49}) {
    now_ = std::chrono::system_clock::time_point(seconds(1700000000)) + minutes(m);
    auto t = cache.refresh();
    ASSERT_TRUE(t);
    EXPECT_EQ(*t, push::TokenRefresh::kNone);
    EXPECT_EQ(cache.jwt(), first_jwt) << "minute " << m;  // never per request
  }
  now_ = std::chrono::system_clock::time_point(seconds(1700000000)) + minutes(50);
  auto second = cache.refresh();
  ASSERT_TRUE(second);
  EXPECT_EQ(*second, push::TokenRefresh::kAge);
  EXPECT_NE(cache.jwt(), first_jwt);
  EXPECT_EQ(part(cache.jwt(), 1)["iat"], 1700000000 + 50 * 60);
  EXPECT_TRUE(verify(ec_.get(), cache.jwt(), true));
}

TEST_F(ProviderTokenCacheTest, RejectionOfTheCurrentTokenMakesOneNewTokenOnly) {
  auto cache = make(minutes(50));
  ASSERT_TRUE(cache.refresh());
  const std::string first = cache.jwt();
  now_ += minutes(10);
  cache.reject("an older token");  // answers about other tokens change nothing
  EXPECT_EQ(*cache.refresh(), push::TokenRefresh::kNone);
  cache.reject(first);
  cache.reject(first);  // a burst of rejections of the same token
  EXPECT_EQ(*cache.refresh(), push::TokenRefresh::kRejected);
  const std::string second = cache.jwt();
  EXPECT_NE(second, first);
  cache.reject(first);  // late answer for the old token: no third token
  EXPECT_EQ(*cache.refresh(), push::TokenRefresh::kNone);
  EXPECT_EQ(cache.jwt(), second);
}

TEST_F(ProviderTokenCacheTest, RefreshIntervalMustLieInApplesWindow) {
  push::ProviderTokenCache::Options o;
  o.key_id = "ABC123DEFG";
  o.team_id = "DEF123GHIJ";
  for (int m : {0, 19, 60, 61}) {
    o.refresh_after = minutes(m);
    auto c = push::ProviderTokenCache::create(*key_, o);
    ASSERT_FALSE(c) << m;
    EXPECT_EQ(c.error().code, leakscope::diag::Errc::kInvalidArgument);
  }
  for (int m : {20, 59}) {
    o.refresh_after = minutes(m);
    EXPECT_TRUE(push::ProviderTokenCache::create(*key_, o)) << m;
  }
}

TEST_F(ProviderTokenCacheTest, AClockThatJumpsBackMakesANewToken) {
  auto cache = make(minutes(50));
  ASSERT_TRUE(cache.refresh());
  const std::string first = cache.jwt();
  now_ -= minutes(30);
  EXPECT_EQ(*cache.refresh(), push::TokenRefresh::kAge);
  EXPECT_NE(cache.jwt(), first);
}

TEST(SigningKey, FingerprintNamesThePublicKeyNotTheLoad) {
  TempDir dir;
  auto ec = generate("EC");
  const std::string path = writePkcs8(dir, ec.get(), "k.p8");
  auto a = push::SigningKey::fromPemFile(path, push::SigningKey::Algorithm::kES256);
  auto b = push::SigningKey::fromPemFile(path, push::SigningKey::Algorithm::kES256);
  auto other = push::SigningKey::fromPemFile(writePkcs8(dir, generate("EC").get(), "o.p8"),
                                             push::SigningKey::Algorithm::kES256);
  ASSERT_TRUE(a && b && other);
  EXPECT_EQ(a->fingerprint().rfind("sha256:", 0), 0u) << a->fingerprint();
  EXPECT_EQ(a->fingerprint().size(), 7u + 64u);
  EXPECT_EQ(a->fingerprint(), b->fingerprint());  // two parses of one key
  EXPECT_NE(a->fingerprint(), other->fingerprint());
}
