// Unit tests of FcmServiceAccount (daemon/push/src/fcm.cc): the JSON key is
// parsed into a key object, and the text it came from is wiped whatever the
// outcome.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

#include "leakscope/push/fcm.h"

namespace push = leakscope::push;

namespace {

std::string rsaPem() {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(2048));
  BIO* bio = BIO_new(BIO_s_mem());
  EXPECT_EQ(PEM_write_bio_PKCS8PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr), 1);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  EVP_PKEY_free(key);
  return pem;
}

std::string account(const std::string& pem) {
  return nlohmann::json{{"type", "service_account"},
                        {"project_id", "proj-1"},
                        {"private_key_id", "kid-1"},
                        {"private_key", pem},
                        {"client_email", "svc@proj-1.iam.gserviceaccount.com"},
                        {"token_uri", "https://oauth2.example:8443/token"}}
      .dump();
}

bool allZero(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == '\0'; });
}

TEST(FcmServiceAccount, ParsesTheKeyAndWipesTheText) {
  std::string text = account(rsaPem());
  const std::size_t size = text.size();
  auto sa = push::FcmServiceAccount::fromJson(text, "sa.json");
  ASSERT_TRUE(sa) << sa.error().message;
  EXPECT_EQ(sa->project_id, "proj-1");
  EXPECT_EQ(sa->private_key_id, "kid-1");
  EXPECT_EQ(sa->client_email, "svc@proj-1.iam.gserviceaccount.com");
  EXPECT_EQ(sa->token_uri, "https://oauth2.example:8443/token");
  EXPECT_EQ(sa->key.algorithm(), push::SigningKey::Algorithm::kRS256);
  // The key now lives only in the EVP_PKEY: the text is zeroed in place.
  EXPECT_EQ(text.size(), size);
  EXPECT_TRUE(allZero(text));
}

TEST(FcmServiceAccount, WipesTheTextOnEveryError) {
  const std::string pem = rsaPem();
  std::string bad_key =
      account("-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n");
  auto a = push::FcmServiceAccount::fromJson(bad_key, "bad.json");
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message.find("bad.json"), std::string::npos) << a.error().message;
  EXPECT_EQ(a.error().message.find("c2VjcmV0"), std::string::npos);
  EXPECT_TRUE(allZero(bad_key));

  std::string no_email = nlohmann::json{{"type", "service_account"}, {"private_key", pem}}.dump();
  EXPECT_FALSE(push::FcmServiceAccount::fromJson(no_email, "x"));
  EXPECT_TRUE(allZero(no_email));

  std::string truncated = account(pem).substr(0, 300);
  EXPECT_FALSE(push::FcmServiceAccount::fromJson(truncated, "x"));
  EXPECT_TRUE(allZero(truncated));

  std::string bad_uri = nlohmann::json{{"type", "service_account"},
                                       {"private_key", pem},
                                       {"client_email", "a@b"},
                                       {"token_uri", "http://plain/token"}}
                            .dump();
  auto u = push::FcmServiceAccount::fromJson(bad_uri, "uri.json");
  ASSERT_FALSE(u);
  EXPECT_NE(u.error().message.find("uri.json"), std::string::npos);
  EXPECT_TRUE(allZero(bad_uri));
}

}  // namespace
