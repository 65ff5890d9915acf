// Push credentials named by app rows (daemon/src/credentials.cc, through
// ClientRegistry::clientFor as the scheduler uses it): the secret-file
// rule, confinement to push.credentials_dir (nothing outside is opened:
// inotify watches the files outside), and one parse per key file version
// however many clients use it.
#include "credentials.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>

#include "clients.h"
#include "gtest/gtest.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using leakscope::testing::TempDir;
using pushdaemon::AppRow;
using pushdaemon::ClientRegistry;
using pushdaemon::Platform;

std::string pem(const char* type) {
  EVP_PKEY* key = std::string_view(type) == "EC"
                      ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")
                      : EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(2048));
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PKCS8PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  EVP_PKEY_free(key);
  return out;
}

void write(const std::string& path, const std::string& text, mode_t mode = 0600) {
  fs::create_directories(fs::path(path).parent_path());
  {
    std::ofstream out(path, std::ios::trunc);
    out << text;
  }
  ::chmod(path.c_str(), mode);
}

std::string serviceAccount(const std::string& key_pem, const std::string& key_id = "k1") {
  return nlohmann::json{{"type", "service_account"},
                        {"project_id", "proj-1"},
                        {"private_key_id", key_id},
                        {"private_key", key_pem},
                        {"client_email", "svc@proj-1.iam.gserviceaccount.com"},
                        {"token_uri", "https://localhost:1/token"}}
      .dump();
}

// Counts IN_OPEN events on files outside the credentials dir.
class OpenWatch {
 public:
  OpenWatch() : fd_(inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {}
  ~OpenWatch() { ::close(fd_); }
  void watch(const std::string& path) {
    ASSERT_GE(inotify_add_watch(fd_, path.c_str(), IN_OPEN), 0);
  }
  int opens() const {
    int n = 0;
    alignas(inotify_event) char buf[4096];
    for (;;) {
      const ssize_t r = ::read(fd_, buf, sizeof buf);
      if (r <= 0) return n;
      for (ssize_t off = 0; off < r;) {
        const auto* e = reinterpret_cast<const inotify_event*>(buf + off);
        if ((e->mask & IN_OPEN) != 0) ++n;
        off += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
      }
    }
  }

 private:
  int fd_;
};

class Credentials : public ::testing::Test {
 protected:
  void SetUp() override {
    creds_ = dir_.path() + "/credentials";
    outside_ = dir_.path() + "/outside";
    fs::create_directories(creds_);
    fs::create_directories(outside_);
    ::chmod(creds_.c_str(), 0700);
    config_.credentials_dir = creds_;
    config_.apns.host = "localhost";
    config_.fcm.host = "localhost";
    registry_.configure(config_);
    app_.id = 7;
    app_.name = "game";
    app_.apns_topic = "com.example.game";
    app_.apns_key_id = "ABC123DEFG";
    app_.apns_team_id = "DEF123GHIJ";
  }
  // clientFor on another thread: a test that would hang (a FIFO opened for
  // reading without O_NONBLOCK) fails instead of hanging the suite.
  leakscope::diag::Result<std::shared_ptr<pushdaemon::PlatformClient>> clientFor(
      Platform p, std::uint64_t schedule = 1) {
    auto f = std::async(std::launch::async, [&] { return registry_.clientFor(app_, p, schedule); });
    if (f.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
      ADD_FAILURE() << "clientFor did not return (blocked opening a file?)";
      std::_Exit(1);  // the blocked thread cannot be joined
    }
    return f.get();
  }
  std::string error(Platform p) {
    auto c = clientFor(p);
    EXPECT_FALSE(c.ok());
    return c.ok() ? "" : c.error().message;
  }

  TempDir dir_;
  std::string creds_, outside_;
  pushdaemon::Config config_;
  leakscope::push::EventLoop loop_;
  pushdaemon::DaemonMetrics metrics_;
  ClientRegistry registry_{loop_, std::make_shared<leakscope::push::PushMetrics>(), &metrics_};
  AppRow app_;
};

TEST_F(Credentials, KeyFilesReadableByGroupOrOthersAreRefused) {
  const std::string key_text = pem("EC");
  app_.apns_key_file = creds_ + "/apns.p8";
  app_.fcm_service_account_file = creds_ + "/fcm.json";
  write(app_.apns_key_file, key_text, 0644);
  write(app_.fcm_service_account_file, serviceAccount(pem("RSA")), 0640);
  const std::string apns = error(Platform::kApns);
  EXPECT_NE(apns.find("app 'game' (7) apns: apns_key_file " + app_.apns_key_file +
                      ": readable by group or others (mode 644); chmod 600 it"),
            std::string::npos)
      << apns;
  EXPECT_EQ(apns.find(key_text.substr(30, 20)), std::string::npos);
  const std::string fcm = error(Platform::kFcm);
  EXPECT_NE(fcm.find("fcm_service_account_file " + app_.fcm_service_account_file +
                     ": readable by group or others (mode 640)"),
            std::string::npos)
      << fcm;
  ::chmod(app_.apns_key_file.c_str(), 0600);
  ::chmod(app_.fcm_service_account_file.c_str(), 0600);
  EXPECT_TRUE(clientFor(Platform::kApns).ok());
  EXPECT_TRUE(clientFor(Platform::kFcm).ok());
}

TEST_F(Credentials, ASymlinkOrAFifoInsideTheDirectoryIsNoKeyFile) {
  write(creds_ + "/real.p8", pem("EC"));
  fs::create_symlink(creds_ + "/real.p8", creds_ + "/link.p8");
  app_.apns_key_file = creds_ + "/link.p8";
  EXPECT_NE(error(Platform::kApns).find("link.p8: is a symbolic link"), std::string::npos);
  ASSERT_EQ(::mkfifo((creds_ + "/fifo.json").c_str(), 0600), 0);
  app_.fcm_service_account_file = "fifo.json";  // relative to the directory
  EXPECT_NE(error(Platform::kFcm).find("fifo.json: not a regular file"), std::string::npos);
}

TEST_F(Credentials, PathsLeadingOutOfTheDirectoryAreRefusedWithoutOpeningAnything) {
  // Targets outside: a real key (would work if opened) and a FIFO (would
  // block a reader forever).
  const std::string key = outside_ + "/apns.p8";
  write(key, pem("EC"));
  const std::string fifo = outside_ + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  fs::create_symlink(key, creds_ + "/escape.p8");
  fs::create_symlink(outside_, creds_ + "/sub");
  OpenWatch watch;
  watch.watch(key);
  watch.watch(fifo);
  const std::vector<std::string> escapes = {
      key,                             // absolute, elsewhere
      fifo,                            // absolute, a FIFO
      creds_ + "/../outside/apns.p8",  // absolute inside, `..` out
      "../outside/fifo",               // relative, `..` out
      "sub/apns.p8",                   // through a symlinked directory
      creds_ + "/sub/fifo",            // the same, absolute
      "escape.p8",                     // a symlink to the key outside
  };
  for (const std::string& path : escapes) {
    app_.apns_key_file = path;
    const std::string e = error(Platform::kApns);
    EXPECT_NE(e.find("app 'game' (7) apns: apns_key_file " + path), std::string::npos) << e;
    const bool names_rule =
        e.find("outside push.credentials_dir (" + creds_ + ")") != std::string::npos ||
        e.find("is a symbolic link") != std::string::npos;
    EXPECT_TRUE(names_rule) << path << ": " << e;
  }
  EXPECT_EQ(watch.opens(), 0) << "a file outside push.credentials_dir was opened";
  EXPECT_EQ(registry_.credentialParses(), 0u);
}

TEST_F(Credentials, AKeyFileIsParsedOnceForManyClientsAndAgainWhenItChanges) {
  app_.apns_key_file = "apns.p8";
  app_.fcm_service_account_file = creds_ + "/fcm.json";
  write(creds_ + "/apns.p8", pem("EC"));
  write(app_.fcm_service_account_file, serviceAccount(pem("RSA")));
  auto first = clientFor(Platform::kApns);
  ASSERT_TRUE(first.ok()) << first.error().message;
  for (std::uint64_t schedule = 2; schedule <= 20; ++schedule) {
    auto again = clientFor(Platform::kApns, schedule);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, *first);  // the same client: nothing changed
  }
  // A second app with the same file shares the parsed key.
  AppRow other = app_;
  other.id = 8;
  ASSERT_TRUE(registry_.clientFor(other, Platform::kApns, 21).ok());
  EXPECT_EQ(registry_.credentialParses(), 1u);
  ASSERT_TRUE(clientFor(Platform::kFcm).ok());
  ASSERT_TRUE(clientFor(Platform::kFcm, 22).ok());
  EXPECT_EQ(registry_.credentialParses(), 2u);

  // A new key in the same place (written beside it and renamed, as key
  // rotation does): parsed once more, and the client is replaced.
  write(creds_ + "/apns.p8.new", pem("EC"));
  fs::rename(creds_ + "/apns.p8.new", creds_ + "/apns.p8");
  auto rotated = clientFor(Platform::kApns, 23);
  ASSERT_TRUE(rotated.ok());
  EXPECT_NE(*rotated, *first);
  EXPECT_EQ(registry_.credentialParses(), 3u);

  // The same key rewritten (a new inode and mtime, same content): parsed
  // again, but the client stays, since its key did not change.
  std::stringstream text;
  text << std::ifstream(creds_ + "/apns.p8").rdbuf();
  write(creds_ + "/apns.p8.new", text.str());
  fs::rename(creds_ + "/apns.p8.new", creds_ + "/apns.p8");
  auto same = clientFor(Platform::kApns, 24);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, *rotated);
  EXPECT_EQ(registry_.credentialParses(), 4u);

  // Garbage: an error naming the file, never its content.
  write(creds_ + "/apns.p8", "not a key: hunter2-secret\n");
  const std::string e = error(Platform::kApns);
  EXPECT_NE(e.find("apns_key_file apns.p8"), std::string::npos) << e;
  EXPECT_EQ(e.find("hunter2"), std::string::npos) << e;
}

TEST_F(Credentials, AChangedServiceAccountIdReplacesTheClient) {
  const std::string key_pem = pem("RSA");
  app_.fcm_service_account_file = "fcm.json";
  write(creds_ + "/fcm.json", serviceAccount(key_pem, "k1"));
  auto a = clientFor(Platform::kFcm);
  ASSERT_TRUE(a.ok()) << a.error().message;
  write(creds_ + "/fcm.json", serviceAccount(key_pem, "k2"));
  auto b = clientFor(Platform::kFcm, 2);
  ASSERT_TRUE(b.ok());
  EXPECT_NE(*a, *b);
}

TEST(SecretFile, TheRuleIsCheckedOnTheOpenedFile) {
  TempDir dir;
  const std::string f = dir.path() + "/secret";
  write(f, "x\n");
  EXPECT_TRUE(pushdaemon::openSecretFile(f, "f").ok());
  ::chmod(f.c_str(), 0604);
  auto world = pushdaemon::openSecretFile(f, "database.ssl_key " + f);
  ASSERT_FALSE(world.ok());
  EXPECT_NE(world.error().message.find("database.ssl_key " + f + ": readable by group or others"),
            std::string::npos)
      << world.error().message;
  EXPECT_FALSE(pushdaemon::openSecretFile(dir.path() + "/missing", "m").ok());
  EXPECT_FALSE(pushdaemon::openSecretFile(dir.path(), "a directory").ok());
}

}  // namespace
