// pushdaemon's configuration: TOML errors name file, line and key; flags
// override the file; secrets are never accepted inline; every option is
// documented in docs/config.md.
#include "config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <future>
#include <sstream>

#include "gtest/gtest.h"
#include "test_support.h"

namespace pushdaemon {
namespace {

std::string errorOf(const std::string& text, const std::vector<std::string>& flags = {}) {
  try {
    parseConfig(text, "cfg.toml", flags);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, DefaultsWithoutAFile) {
  const Config c = parseConfig("", "cfg.toml", {});
  EXPECT_EQ(c.http_address, "127.0.0.1:9477");
  EXPECT_EQ(c.page_size, 2000u);
  EXPECT_EQ(c.apns.host, "api.push.apple.com");
  EXPECT_EQ(c.fcm.host, "fcm.googleapis.com");
  EXPECT_EQ(c.log_level, LogLevel::kInfo);
  // The HTTP endpoint's limits (issue #11): on by default.
  EXPECT_EQ(c.http_max_connections, 64u);
  EXPECT_EQ(c.http_request_timeout, std::chrono::milliseconds(5000));
  EXPECT_EQ(c.http_max_header_bytes, 8192u);
  EXPECT_EQ(c.http_fd_reserve, 32u);
}

TEST(Config, HttpLimitsAreReadAndRangeChecked) {
  const Config c = parseConfig(
      "[daemon]\nhttp_max_connections = 8\nhttp_request_timeout_ms = 1500\n"
      "http_max_header_bytes = 4096\nhttp_fd_reserve = 100\n",
      "cfg.toml", {});
  EXPECT_EQ(c.http_max_connections, 8u);
  EXPECT_EQ(c.http_request_timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(c.http_max_header_bytes, 4096u);
  EXPECT_EQ(c.http_fd_reserve, 100u);
  for (const char* bad :
       {"http_max_connections = 0", "http_request_timeout_ms = 0", "http_max_header_bytes = 10"}) {
    EXPECT_THROW(parseConfig(std::string("[daemon]\n") + bad + "\n", "cfg.toml", {}), ConfigError)
        << bad;
  }
}

TEST(Config, ReadsSectionsAndTypes) {
  const Config c = parseConfig(
      "[daemon]\nlog_level = \"debug\"\nlease_s = 12\n[database]\nport = 3307\n"
      "[sending]\npage_size = 700\n[apns]\nrate_limit = 250.5\nmax_connections = 3\n"
      "[fcm]\nenabled = false\n[diag]\nsnapshot_dir = \"/tmp/s\"\n",
      "cfg.toml", {});
  EXPECT_EQ(c.log_level, LogLevel::kDebug);
  EXPECT_EQ(c.lease, std::chrono::seconds(12));
  EXPECT_EQ(c.db_port, 3307);
  EXPECT_EQ(c.page_size, 700u);
  EXPECT_DOUBLE_EQ(c.apns.rate_limit, 250.5);
  EXPECT_EQ(c.apns.max_connections, 3u);
  EXPECT_FALSE(c.fcm.enabled);
  EXPECT_EQ(c.snapshot_dir, "/tmp/s");
}

TEST(Config, SyntaxErrorNamesFileLineAndColumn) {
  const std::string e = errorOf("[daemon]\n\nlog_level = \"info\n");
  EXPECT_EQ(e.rfind("cfg.toml:3:", 0), 0u) << e;
}

TEST(Config, UnknownKeyNamesLineAndKey) {
  EXPECT_EQ(errorOf("[sending]\n\npagesize = 5\n"),
            "cfg.toml:3: unknown option 'sending.pagesize'");
  EXPECT_EQ(errorOf("[nope]\nx = 1\n"), "cfg.toml:2: unknown option 'nope.x'");
}

TEST(Config, WrongTypeOrRangeNamesKeyAndWhatWasFound) {
  EXPECT_EQ(errorOf("[database]\nport = \"3306\"\n"),
            "cfg.toml:2: database.port: expected an integer in 1..65535, got a string");
  EXPECT_EQ(errorOf("[sending]\npage_size = 0\n"),
            "cfg.toml:2: sending.page_size: expected an integer in 1..100000, got 0");
  EXPECT_EQ(errorOf("[daemon]\nlog_level = \"loud\"\n"),
            "cfg.toml:2: daemon.log_level: expected error, warn, info or debug, got 'loud'");
  EXPECT_EQ(errorOf("sending = 3\n"),
            "cfg.toml:1: 'sending' must be a section ([sending]), got an integer");
}

TEST(Config, FlagsOverrideTheFileAndAreCheckedTheSameWay) {
  const Config c = parseConfig("[database]\nhost = \"db1\"\nport = 3307\n", "cfg.toml",
                               {"database.host=db2", "database.port=3308", "apns.enabled=false"});
  EXPECT_EQ(c.db_host, "db2");
  EXPECT_EQ(c.db_port, 3308);
  EXPECT_FALSE(c.apns.enabled);
  EXPECT_EQ(errorOf("", {"database.port=x"}),
            "flag --database.port: database.port: expected an integer in 1..65535, got a string");
  EXPECT_EQ(errorOf("", {"sending.nope=1"}), "flag --sending.nope: unknown option 'sending.nope'");
}

TEST(Config, TheLeakDrillIsOffByDefaultAndOnlyABoolean) {
  EXPECT_FALSE(parseConfig("", "cfg.toml", {}).leak_drill);
  EXPECT_TRUE(parseConfig("[daemon]\nleak_drill = true\n", "cfg.toml", {}).leak_drill);
  // What --leak-drill adds to the overrides.
  EXPECT_TRUE(parseConfig("", "cfg.toml", {"daemon.leak_drill=true"}).leak_drill);
  EXPECT_EQ(errorOf("[daemon]\nleak_drill = \"yes\"\n"),
            "cfg.toml:2: daemon.leak_drill: expected true or false, got a string");
}

TEST(Config, PasswordsAreNeverTakenInlineAndNeverEchoed) {
  const std::string e = errorOf("[database]\npassword = \"hunter2\"\n");
  EXPECT_NE(e.find("database.password_file"), std::string::npos) << e;
  EXPECT_EQ(e.find("hunter2"), std::string::npos);
  const std::string f = errorOf("", {"database.password=hunter2"});
  EXPECT_NE(f.find("password_file"), std::string::npos) << f;
  EXPECT_EQ(f.find("hunter2"), std::string::npos);
}

TEST(Config, ConsistencyIsChecked) {
  EXPECT_NE(errorOf("[sending]\npage_size = 5000\n[apns]\nmax_outstanding = 100\n")
                .find("apns.max_outstanding (100) must be at least sending.page_size (5000)"),
            std::string::npos);
  EXPECT_NE(errorOf("[database]\nreconnect_min_ms = 900\nreconnect_max_ms = 100\n")
                .find("reconnect_min_ms exceeds"),
            std::string::npos);
}

TEST(Config, PasswordFileMustBePrivateAndItsContentIsNeverInTheError) {
  leakscope::testing::TempDir dir;
  const std::string path = dir.path() + "/pw";
  std::ofstream(path) << "s3cr3t-value\n";
  chmod(path.c_str(), 0644);
  try {
    readPasswordFile(path);
    FAIL() << "a world-readable password file was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("mode 644"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("s3cr3t"), std::string::npos);
  }
  chmod(path.c_str(), 0600);
  EXPECT_EQ(readPasswordFile(path), "s3cr3t-value");
  EXPECT_THROW(readPasswordFile(dir.path() + "/missing"), ConfigError);
}

TEST(Config, APasswordFileThatIsASymlinkOrAFifoIsRefusedWithoutBlocking) {
  leakscope::testing::TempDir dir;
  const std::string real = dir.path() + "/pw";
  std::ofstream(real) << "s3cr3t-value\n";
  chmod(real.c_str(), 0600);
  const std::string link = dir.path() + "/pw-link";
  ASSERT_EQ(symlink(real.c_str(), link.c_str()), 0);
  try {
    readPasswordFile(link);
    FAIL() << "a symlinked password file was followed";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("is a symbolic link"), std::string::npos) << e.what();
  }
  // A FIFO (mode 0600) would block a plain open until a writer comes.
  const std::string fifo = dir.path() + "/pw-fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  auto f = std::async(std::launch::async, [&]() -> std::string {
    try {
      readPasswordFile(fifo);
      return "accepted";
    } catch (const ConfigError& e) {
      return e.what();
    }
  });
  if (f.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
    ADD_FAILURE() << "readPasswordFile blocked on a FIFO";
    std::_Exit(1);  // the blocked thread cannot be joined
  }
  EXPECT_NE(f.get().find("not a regular file"), std::string::npos);
}

TEST(Config, TlsCredentialsDirAndCoreDumpOptionsAreCheckedTogether) {
  const Config d = parseConfig("", "t", {});
  EXPECT_EQ(d.db_ssl_mode, DbSslMode::kPreferred);
  EXPECT_EQ(d.credentials_dir, "/etc/pushdaemon/credentials");
  EXPECT_FALSE(d.allow_core_dumps);
  const Config c = parseConfig(
      "[database]\nssl_mode = \"verify_identity\"\nssl_ca = \"/ca.pem\"\n"
      "[push]\ncredentials_dir = \"/srv/keys\"\n[daemon]\nallow_core_dumps = true\n",
      "t", {});
  EXPECT_EQ(c.db_ssl_mode, DbSslMode::kVerifyIdentity);
  EXPECT_EQ(c.db_ssl_ca, "/ca.pem");
  EXPECT_EQ(c.credentials_dir, "/srv/keys");
  EXPECT_TRUE(c.allow_core_dumps);
  auto refused = [](const std::string& text, const std::string& why) {
    try {
      parseConfig(text, "t.toml", {});
      ADD_FAILURE() << "accepted: " << text;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  };
  refused("[database]\nssl_mode = \"strict\"\n", "expected disabled, preferred, required");
  refused("[database]\nssl_mode = \"verify_ca\"\n", "needs database.ssl_ca");
  refused("[database]\nssl_mode = \"required\"\nssl_ca = \"/ca.pem\"\n",
          "verify_ca or verify_identity only");
  refused("[database]\nssl_cert = \"/c.pem\"\n", "go together");
  refused("[push]\ncredentials_dir = \"keys\"\n", "expected an absolute directory");
}

TEST(Config, MemoryPressureSnapshotsAreOnByDefaultAndTheFractionsAreChecked) {
  const Config d = parseConfig("", "t", {});
  EXPECT_EQ(d.memory_pressure_fractions, (std::vector<double>{0.8, 0.9, 0.95}));
  EXPECT_EQ(d.memory_check_interval, std::chrono::milliseconds(1000));
  const Config c = parseConfig(
      "[diag]\nmemory_pressure_fractions = [0.7, 0.85]\nmemory_check_interval_ms = 250\n", "t", {});
  EXPECT_EQ(c.memory_pressure_fractions, (std::vector<double>{0.7, 0.85}));
  EXPECT_EQ(c.memory_check_interval, std::chrono::milliseconds(250));
  EXPECT_TRUE(parseConfig("", "t", {"diag.memory_pressure_fractions=[]"})
                  .memory_pressure_fractions.empty());
  EXPECT_EQ(parseConfig("", "t", {"diag.memory_pressure_fractions=[1]"}).memory_pressure_fractions,
            std::vector<double>{1.0});
  EXPECT_EQ(errorOf("[diag]\nmemory_pressure_fractions = [0.8, 1.5]\n"),
            "cfg.toml:2: diag.memory_pressure_fractions: expected a number in 0..1, got 1.5");
  EXPECT_EQ(errorOf("[diag]\nmemory_pressure_fractions = [0.8, 0]\n"),
            "cfg.toml:2: diag.memory_pressure_fractions: memory-pressure fraction 0: expected a "
            "fraction of the limit in (0, 1]");
  EXPECT_EQ(
      errorOf("[diag]\nmemory_pressure_fractions = [0.9, 0.9]\n"),
      "cfg.toml:2: diag.memory_pressure_fractions: memory-pressure fraction 0.9: listed twice");
  EXPECT_EQ(errorOf("[diag]\nmemory_pressure_fractions = 0.8\n"),
            "cfg.toml:2: diag.memory_pressure_fractions: expected an array of fractions such as "
            "[0.8, 0.9, 0.95], got a float");
  EXPECT_EQ(errorOf("", {"diag.memory_check_interval_ms=-5"}),
            "flag --diag.memory_check_interval_ms: diag.memory_check_interval_ms: expected an "
            "integer in 0..3600000, got -5");
}

TEST(Config, TheShippedExampleIsValid) {
  const Config c =
      loadConfig(std::string(LEAKSCOPE_DOCS_DIR) + "/../daemon/pushdaemon.example.toml", {});
  EXPECT_EQ(c.db_password_file, "/etc/pushdaemon/db-password");
  EXPECT_EQ(c.snapshot_dir, "/var/lib/pushdaemon/snapshots");
}

TEST(Config, EveryOptionIsDocumentedInConfigMd) {
  std::ifstream in(std::string(LEAKSCOPE_DOCS_DIR) + "/config.md");
  ASSERT_TRUE(in) << "docs/config.md missing";
  std::stringstream s;
  s << in.rdbuf();
  const std::string doc = s.str();
  for (const std::string& name : allOptionNames()) {
    EXPECT_NE(doc.find("`" + name + "`"), std::string::npos) << name << " is not in docs/config.md";
  }
}

}  // namespace
}  // namespace pushdaemon
