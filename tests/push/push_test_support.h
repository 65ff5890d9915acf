// Fixtures for the push transport's integration tests: throw-away keys and
// certificates (made once per test binary), the mock push server as a child
// process with its control endpoint, client configurations pointing at it,
// and PushClientTest, the GoogleTest fixture that starts the mock, a loop
// and a client in one order and tears them down in the other. Every server
// started here is killed by its destructor, also when an assertion ends the
// test early.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "leakscope/push/apns.h"
#include "leakscope/push/fcm.h"
#include "test_support.h"

namespace leakscope::testing {

// Keys and certificates from tests/mock_push/make-test-pki.sh, in a temp dir
// removed at exit.
struct TestPki {
  static const TestPki& get();
  std::string dir;
  std::string ca, other_ca, server_cert, server_key, client_cert, client_key;
  std::string apns_key, apns_pub, fcm_key, fcm_pub;
};

inline constexpr const char* kKeyId = "ABC123DEFG";
inline constexpr const char* kTeamId = "DEF123GHIJ";
inline constexpr const char* kTopic = "com.example.app";
inline constexpr const char* kProject = "leakscope-test";
inline constexpr const char* kClientEmail = "push@leakscope-test.iam.gserviceaccount.com";

class MockPushServer {
 public:
  // Starts build/bin/mock-push-server with the test PKI (APNs key, FCM key,
  // topic) plus `extra` arguments; waits for its ports.
  explicit MockPushServer(std::vector<std::string> extra = {});
  ~MockPushServer();

  bool ok() const { return port_ > 0 && control_port_ > 0; }
  int port() const { return port_; }
  std::string control() const { return "127.0.0.1:" + std::to_string(control_port_); }

  nlohmann::json stats() const;
  nlohmann::json received() const;
  // POST /control/<what> with `body`; true on 200.
  bool control(const std::string& what, const nlohmann::json& body) const;
  bool faults(const nlohmann::json& f) const { return control("faults", f); }
  bool rules(const nlohmann::json& r) const { return control("rules", r); }
  bool clockOffset(std::chrono::seconds s) const {
    return control("clock", {{"offset_s", s.count()}});
  }
  // SIGTERM and wait; the exit status.
  int stop();
  std::string err() const { return child_ ? child_->err() : ""; }

 private:
  std::unique_ptr<Child> child_;
  int port_ = 0;
  int control_port_ = 0;
};

// Collects the transport's log lines (and keeps test output quiet).
class LogCapture {
 public:
  std::function<void(std::string_view)> sink();
  std::string text() const;

 private:
  mutable std::mutex mu_;
  std::string text_;
};

// A clock tests can move: starts at the real time, advanced by hand.
class TestClock {
 public:
  std::chrono::system_clock::time_point now() const {
    return start_ + std::chrono::seconds(offset_.load());
  }
  void advance(std::chrono::seconds s) { offset_ += s.count(); }
  push::SystemClock fn() {
    return [this] { return now(); };
  }

 private:
  std::chrono::system_clock::time_point start_ = std::chrono::system_clock::now();
  std::atomic<std::int64_t> offset_{0};
};

// The test PKI's APNs key, parsed once.
push::SigningKey testApnsKey();
// Writes a service-account file for `mock` (token_uri on the mock, mode
// 0600) into `dir`; returns its path.
std::string writeServiceAccount(const MockPushServer& mock, const std::string& dir);

// Token auth against `mock`: host "localhost" (as the certificate says),
// connecting to 127.0.0.1, the test CA, short timeouts, quiet log.
push::ApnsConfig apnsConfig(const MockPushServer& mock, LogCapture* log = nullptr);
// A service-account file for `mock` (token_uri on the mock) in `dir`, and
// an FCM client configuration using it.
push::FcmConfig fcmConfig(const MockPushServer& mock, const std::string& dir,
                          LogCapture* log = nullptr);

push::ApnsNotification notification(const std::string& token);
// A 64-hex-digit token made from `n` after `prefix`.
std::string deviceToken(std::uint64_t n, const std::string& prefix = "");

// The client's metrics as Prometheus text, and one series' value (-1 when
// absent).
std::string scrape(const push::PushMetrics& m);
double metric(const push::PushMetrics& m, const std::string& series);

// create(), with an error reported as a test failure; null then.
std::unique_ptr<push::ApnsClient> makeClient(push::EventLoop& loop, push::ApnsConfig config);
std::unique_ptr<push::FcmClient> makeClient(push::EventLoop& loop, push::FcmConfig config);

// Sockets of this process connected to `port` (-1: cannot read them).
int socketsTo(int port);

// A snapshot of this process (heap off) written by the runtime's writer into
// a temp dir, as JSON: what `leakscope` would read. Null on failure (the
// failure is reported).
nlohmann::json snapshotOfThisProcess();
// The snapshot's tracked objects of `kind`, and its sockets connected to
// `port`.
std::vector<nlohmann::json> objectsOf(const nlohmann::json& snapshot, const std::string& kind);
std::vector<nlohmann::json> socketsToPort(const nlohmann::json& snapshot, int port);

// Each id's records in the mock's /control/received, by token.
std::map<std::string, int> receivedCounts(const nlohmann::json& received, int status = -1);

// The fixture of the clients' integration tests: the mock push server,
// started by startMock() with the test's own arguments, then the event loop,
// then the client under test, made by connect(). Each test starts them in
// that order because some set the mock's faults or rules, or count tracked
// objects, in between. Teardown runs in reverse, also when an assertion ends
// the test early: the client first (its destructor runs the awaited
// shutdown, see event_loop.h), then the loop, then the server (killed and
// reaped). The temp dir, the log and the clock a configuration points at
// are declared before them, so they outlive the client. Used from the
// test's thread only.
template <class Client, class Config>
class PushClientTest : public ::testing::Test {
 protected:
  // Starts the mock and then the loop; for ASSERT_TRUE.
  ::testing::AssertionResult startMock(std::vector<std::string> extra = {}) {
    mock_.emplace(std::move(extra));
    if (!mock_->ok()) {
      return ::testing::AssertionFailure() << "mock-push-server did not start: " << mock_->err();
    }
    loop_.emplace();
    return ::testing::AssertionSuccess();
  }
  MockPushServer& mock() { return *mock_; }
  push::EventLoop& loop() { return *loop_; }

  // The tests' usual configuration for the mock (apnsConfig, fcmConfig with
  // its service account in dir_); log lines go to `log`, or nowhere.
  Config clientConfig(LogCapture* log = nullptr) {
    if constexpr (std::is_same_v<Config, push::ApnsConfig>) {
      return apnsConfig(*mock_, log);
    } else {
      return fcmConfig(*mock_, dir_.path(), log);
    }
  }
  // makeClient() on the loop; the fixture owns the client. Null (and a
  // test failure) when create() refused the configuration.
  Client* connect(Config config) {
    client_ = makeClient(*loop_, std::move(config));
    return client_.get();
  }
  Client* connect() { return connect(clientConfig()); }
  // The usual start: startMock(extra), the mock's `faults` (when given),
  // connect(). Null, with the step that failed as a test failure, when one
  // did.
  Client* startClient(std::vector<std::string> extra = {}, const nlohmann::json& faults = nullptr) {
    if (auto up = startMock(std::move(extra)); !up) {
      ADD_FAILURE() << up.message();
      return nullptr;
    }
    if (!faults.is_null() && !mock_->faults(faults)) {
      ADD_FAILURE() << "the mock refused the faults " << faults.dump();
      return nullptr;
    }
    return connect();
  }

  // Declaration order: see the class comment.
  TempDir dir_;
  LogCapture log_;
  TestClock clock_;
  std::optional<MockPushServer> mock_;
  std::optional<push::EventLoop> loop_;
  std::unique_ptr<Client> client_;
};

using ApnsClientTest = PushClientTest<push::ApnsClient, push::ApnsConfig>;
using FcmClientTest = PushClientTest<push::FcmClient, push::FcmConfig>;

}  // namespace leakscope::testing
