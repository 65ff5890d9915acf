// TLS to the database (database.ssl_*, daemon/src/db.cc) against a real
// MariaDB started with the test PKI's certificate and
// --require-secure-transport: each mode connects encrypted or is refused
// with a message that names the setting and never the password.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "daemon_test_support.h"
#include "gtest/gtest.h"

namespace leakscope::testing {
namespace {

using pushdaemon::DbConnection;
using pushdaemon::DbParams;
using pushdaemon::DbSslMode;

DbParams tls(const MariaDbServer& db, DbSslMode mode, const std::string& ca = "") {
  DbParams p = db.params();
  p.ssl_mode = mode;
  p.ssl_ca = ca;
  return p;
}

std::string cipherOf(DbConnection& c) {
  auto rows = c.query("SHOW STATUS LIKE 'Ssl_cipher'");
  if (!rows.ok() || rows->empty()) return "?";
  return (*rows)[0][1].value_or("");
}

class DbTls : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(db_.ok()) << db_.error(); }
  MariaDbServer db_{tlsFlags(/*require=*/true)};
};

TEST_F(DbTls, EveryTlsModeConnectsEncrypted) {
  const TestPki& pki = TestPki::get();
  for (auto [mode, ca] :
       {std::pair{DbSslMode::kPreferred, std::string()},
        std::pair{DbSslMode::kRequired, std::string()}, std::pair{DbSslMode::kVerifyCa, pki.ca},
        std::pair{DbSslMode::kVerifyIdentity, pki.ca}}) {
    auto c = DbConnection::connect(tls(db_, mode, ca));
    ASSERT_TRUE(c.ok()) << pushdaemon::dbSslModeName(mode) << ": " << c.error().message;
    const std::string cipher = cipherOf(**c);
    EXPECT_FALSE(cipher.empty() || cipher == "?") << pushdaemon::dbSslModeName(mode);
    EXPECT_EQ((*c)->tlsCipher(), cipher);
  }
}

TEST_F(DbTls, ACertificateFromAnotherCaIsRefusedNamingTheSetting) {
  const TestPki& pki = TestPki::get();
  for (DbSslMode mode : {DbSslMode::kVerifyCa, DbSslMode::kVerifyIdentity}) {
    auto c = DbConnection::connect(tls(db_, mode, pki.other_ca));
    ASSERT_FALSE(c.ok()) << pushdaemon::dbSslModeName(mode);
    const std::string& e = c.error().message;
    EXPECT_EQ(c.error().code, diag::Errc::kPermission) << e;
    EXPECT_NE(e.find("certificate"), std::string::npos) << e;
    EXPECT_NE(e.find(std::string("database.ssl_mode ") + pushdaemon::dbSslModeName(mode)),
              std::string::npos)
        << e;
    EXPECT_NE(e.find("database.ssl_ca " + pki.other_ca), std::string::npos) << e;
    EXPECT_EQ(e.find(db_.password()), std::string::npos) << e;
  }
}

TEST_F(DbTls, WithoutTlsTheServersAccessDeniedSaysWhichOptionToSet) {
  auto c = DbConnection::connect(tls(db_, DbSslMode::kDisabled));
  ASSERT_FALSE(c.ok());
  const std::string& e = c.error().message;
  EXPECT_NE(e.find("Access denied"), std::string::npos) << e;
  EXPECT_NE(e.find("not encrypted"), std::string::npos) << e;
  EXPECT_NE(e.find("require_secure_transport"), std::string::npos) << e;
  EXPECT_NE(e.find("database.ssl_mode"), std::string::npos) << e;
  EXPECT_EQ(e.find(db_.password()), std::string::npos) << e;
}

TEST_F(DbTls, AClientKeyFileIsHeldToTheSecretFileRule) {
  const TestPki& pki = TestPki::get();
  TempDir dir;
  const std::string key = dir.path() + "/client.key";
  std::filesystem::copy_file(pki.client_key, key);
  ::chmod(key.c_str(), 0644);
  DbParams p = tls(db_, DbSslMode::kVerifyIdentity, pki.ca);
  p.ssl_cert = pki.client_cert;
  p.ssl_key = key;
  auto refused = DbConnection::connect(p);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("database.ssl_key " + key +
                                         ": readable by group or others (mode 644)"),
            std::string::npos)
      << refused.error().message;
  ::chmod(key.c_str(), 0600);
  auto ok = DbConnection::connect(p);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_FALSE((*ok)->tlsCipher().empty());
}

TEST_F(DbTls, TheDaemonRunsASchedulerOverVerifiedTlsAndStopsOnABadCertificate) {
  MockPushServer mock;
  ASSERT_TRUE(mock.ok());
  TempDir dir;
  auto root = db_.connect();  // over TLS: the harness's own params are plain TCP
  ASSERT_EQ(root, nullptr) << "the server accepted an unencrypted connection";
  auto conn = DbConnection::connect(tls(db_, DbSslMode::kVerifyIdentity, TestPki::get().ca));
  ASSERT_TRUE(conn.ok()) << conn.error().message;
  ASSERT_TRUE(pushdaemon::migrate(**conn).ok());
  const std::uint64_t app = createTestApp(**conn, mock, dir.path() + "/app", "game");
  insertTokens(**conn, app, "apns", {deviceToken(1, "a0")});
  insertTokens(**conn, app, "fcm", {deviceToken(2, "f0")});
  auto sid = pushdaemon::addSchedule(**conn, app, bothPlatformsPayload(), -1);
  ASSERT_TRUE(sid.ok());
  const Settings verified = {{"database.ssl_mode", "\"verify_identity\""},
                             {"database.ssl_ca", "\"" + TestPki::get().ca + "\""}};
  {
    DaemonProcess d(db_, mock, dir.path(), verified);
    ASSERT_TRUE(d.start()) << d.log();
    ASSERT_TRUE(waitForState(**conn, *sid, "done")) << d.log();
    EXPECT_EQ(resultsByToken(**conn, *sid).size(), 2u);
    EXPECT_EQ(d.terminate(), 0);
  }
  // A CA that did not sign the server's certificate: the start ends (exit
  // 1) with the reason, not in an endless reconnect loop.
  DaemonProcess bad(db_, mock, dir.path() + "/bad",
                    {{"database.ssl_mode", "\"verify_ca\""},
                     {"database.ssl_ca", "\"" + TestPki::get().other_ca + "\""}});
  bad.writeConfig({});
  Child c({std::string(LEAKSCOPE_BIN_DIR) + "/pushdaemon", "--config", bad.configPath()});
  EXPECT_EQ(c.wait(20000), 1) << c.err();
  EXPECT_NE(c.err().find("database.ssl_mode verify_ca"), std::string::npos) << c.err();
  EXPECT_EQ(c.err().find(db_.password()), std::string::npos);
}

TEST(DbTlsPlainServer, RequiredAndVerifiedModesRefuseAServerWithoutTls) {
  MariaDbServer db;
  ASSERT_TRUE(db.ok()) << db.error();
  const TestPki& pki = TestPki::get();
  auto required = DbConnection::connect(tls(db, DbSslMode::kRequired));
  ASSERT_FALSE(required.ok());
  EXPECT_NE(required.error().message.find("did not encrypt the connection"), std::string::npos)
      << required.error().message;
  auto verify_ca = DbConnection::connect(tls(db, DbSslMode::kVerifyCa, pki.ca));
  ASSERT_FALSE(verify_ca.ok());
  auto identity = DbConnection::connect(tls(db, DbSslMode::kVerifyIdentity, pki.ca));
  ASSERT_FALSE(identity.ok());
  EXPECT_EQ(identity.error().code, diag::Errc::kPermission) << identity.error().message;
  // "preferred" falls back to a plain connection.
  auto preferred = DbConnection::connect(tls(db, DbSslMode::kPreferred));
  ASSERT_TRUE(preferred.ok()) << preferred.error().message;
  EXPECT_EQ((*preferred)->tlsCipher(), "");
}

}  // namespace
}  // namespace leakscope::testing
