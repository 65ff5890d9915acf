#include "push_test_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "leakscope/diag/snapshot_writer.h"
#include "leakscope/diag/sockets.h"

namespace leakscope::testing {

const TestPki& TestPki::get() {
  static TempDir dir;  // removed at exit
  static const TestPki pki = [] {
    TestPki p;
    p.dir = dir.path();
    Child gen({"/bin/bash", LEAKSCOPE_PKI_SCRIPT, p.dir});
    if (gen.wait(60000) != 0) {
      std::fprintf(stderr, "make-test-pki.sh failed: %s\n", gen.err().c_str());
      std::abort();
    }
    p.ca = p.dir + "/ca.pem";
    p.other_ca = p.dir + "/other-ca.pem";
    p.server_cert = p.dir + "/server.pem";
    p.server_key = p.dir + "/server.key";
    p.client_cert = p.dir + "/client.pem";
    p.client_key = p.dir + "/client.key";
    p.apns_key = p.dir + "/apns.p8";
    p.apns_pub = p.dir + "/apns.pub.pem";
    p.fcm_key = p.dir + "/fcm.key";
    p.fcm_pub = p.dir + "/fcm.pub.pem";
    return p;
  }();
  return pki;
}

MockPushServer::MockPushServer(std::vector<std::string> extra) {
  const TestPki& pki = TestPki::get();
  std::vector<std::string> argv = {std::string(LEAKSCOPE_BIN_DIR) + "/mock-push-server",
                                   "--cert",
                                   pki.server_cert,
                                   "--key",
                                   pki.server_key,
                                   "--apns-key",
                                   pki.apns_pub,
                                   "--apns-key-id",
                                   kKeyId,
                                   "--apns-team-id",
                                   kTeamId,
                                   "--topic",
                                   kTopic,
                                   "--topic",
                                   std::string(kTopic) + ".voip",
                                   "--fcm-key",
                                   pki.fcm_pub,
                                   "--fcm-client-email",
                                   kClientEmail,
                                   "--fcm-project",
                                   kProject};
  argv.insert(argv.end(), extra.begin(), extra.end());
  child_ = std::make_unique<Child>(argv);
  const auto port = child_->waitForLine("port=");
  const auto control = child_->waitForLine("control_port=");
  if (port && control) {
    port_ = std::stoi(port->substr(5));
    control_port_ = std::stoi(control->substr(13));
  }
}

MockPushServer::~MockPushServer() = default;  // Child kills and reaps

nlohmann::json MockPushServer::stats() const {
  const auto body = httpGet(control(), "/control/stats");
  return body ? nlohmann::json::parse(*body, nullptr, false) : nlohmann::json();
}

nlohmann::json MockPushServer::received() const {
  const auto body = httpGet(control(), "/control/received");
  return body ? nlohmann::json::parse(*body, nullptr, false) : nlohmann::json();
}

bool MockPushServer::control(const std::string& what, const nlohmann::json& body) const {
  return httpPost(control(), "/control/" + what, body.dump()).has_value();
}

int MockPushServer::stop() { return child_ ? child_->terminate() : -1; }

std::function<void(std::string_view)> LogCapture::sink() {
  return [this](std::string_view line) {
    const std::lock_guard lock(mu_);
    text_.append(line);
    text_ += '\n';
  };
}

std::string LogCapture::text() const {
  const std::lock_guard lock(mu_);
  return text_;
}

namespace {

// What the APNs and FCM test configurations share: the mock's address
// (host "localhost" as the certificate says, connecting to 127.0.0.1), the
// test CA, two connections, short timeouts and back-offs, and the log.
template <class Config>
void aimAtMock(Config& c, const MockPushServer& mock, LogCapture* log) {
  c.endpoint = {"localhost", static_cast<std::uint16_t>(mock.port()), "127.0.0.1"};
  c.tls.ca_file = TestPki::get().ca;
  c.pool.max_connections = 2;
  c.pool.request_timeout = std::chrono::seconds(5);
  c.pool.reconnect = {std::chrono::milliseconds(20), std::chrono::milliseconds(200), 2.0};
  c.retry.backoff = {std::chrono::milliseconds(20), std::chrono::milliseconds(200), 2.0};
  if (log != nullptr) {
    c.pool.log = log->sink();
  } else {
    c.pool.log = [](std::string_view) {};
  }
}

}  // namespace

push::ApnsConfig apnsConfig(const MockPushServer& mock, LogCapture* log) {
  push::ApnsConfig c;
  aimAtMock(c, mock, log);
  c.token_auth = push::ApnsTokenAuth{testApnsKey(), kKeyId, kTeamId, std::chrono::minutes(50)};
  c.pool.connect_timeout = std::chrono::seconds(5);
  return c;
}

push::SigningKey testApnsKey() {
  static const push::SigningKey key = [] {
    auto k =
        push::SigningKey::fromPemFile(TestPki::get().apns_key, push::SigningKey::Algorithm::kES256);
    if (!k) {
      std::fprintf(stderr, "test APNs key: %s\n", k.error().message.c_str());
      std::abort();
    }
    return *k;
  }();
  return key;
}

std::string writeServiceAccount(const MockPushServer& mock, const std::string& dir) {
  const TestPki& pki = TestPki::get();
  std::ifstream in(pki.fcm_key);
  std::stringstream pem;
  pem << in.rdbuf();
  const nlohmann::json sa = {
      {"type", "service_account"},
      {"project_id", kProject},
      {"private_key_id", "0123456789abcdef"},
      {"private_key", pem.str()},
      {"client_email", kClientEmail},
      {"client_id", "1"},
      {"token_uri", "https://localhost:" + std::to_string(mock.port()) + "/token"}};
  const std::string path = dir + "/service-account.json";
  {
    std::ofstream out(path);
    out << sa.dump(2);
  }
  ::chmod(path.c_str(), 0600);  // as a daemon would require
  return path;
}

push::FcmConfig fcmConfig(const MockPushServer& mock, const std::string& dir, LogCapture* log) {
  const std::string path = writeServiceAccount(mock, dir);
  auto account = push::FcmServiceAccount::fromFile(path);
  if (!account) {
    ADD_FAILURE() << account.error().message;
    return {};
  }
  push::FcmConfig c;
  aimAtMock(c, mock, log);
  c.service_account = std::move(*account);
  c.oauth_connect_address = "127.0.0.1";
  return c;
}

push::ApnsNotification notification(const std::string& token) {
  push::ApnsNotification n;
  n.device_token = token;
  n.topic = kTopic;
  n.payload = R"({"aps":{"alert":"leakscope test"}})";
  return n;
}

std::string deviceToken(std::uint64_t n, const std::string& prefix) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(n));
  std::string t = prefix + buf;
  while (t.size() < 64) t += '0';
  return t.substr(0, 64);
}

std::map<std::string, int> receivedCounts(const nlohmann::json& received, int status) {
  std::map<std::string, int> out;
  if (!received.is_array()) return out;
  for (const auto& r : received) {
    if (!r.contains("token")) continue;
    if (status >= 0 && r.value("status", -1) != status) continue;
    ++out[r["token"].get<std::string>()];
  }
  return out;
}

std::string scrape(const push::PushMetrics& m) {
  return prometheus::TextSerializer().Serialize(m.Collect());
}

double metric(const push::PushMetrics& m, const std::string& series) {
  return metricValue(scrape(m), series).value_or(-1);
}

namespace {
template <class Client, class Config>
std::unique_ptr<Client> create(push::EventLoop& loop, Config config) {
  auto c = Client::create(loop, std::move(config));
  EXPECT_TRUE(c) << (c ? "" : c.error().message);
  return c ? std::move(*c) : nullptr;
}
}  // namespace

std::unique_ptr<push::ApnsClient> makeClient(push::EventLoop& loop, push::ApnsConfig config) {
  return create<push::ApnsClient>(loop, std::move(config));
}

std::unique_ptr<push::FcmClient> makeClient(push::EventLoop& loop, push::FcmConfig config) {
  return create<push::FcmClient>(loop, std::move(config));
}

int socketsTo(int port) {
  auto socks = leakscope::diag::listOwnSockets();
  if (!socks) return -1;
  int n = 0;
  for (const auto& s : *socks) n += s.remote.port == port ? 1 : 0;
  return n;
}

nlohmann::json snapshotOfThisProcess() {
  TempDir dir;
  leakscope::diag::SnapshotOptions o;
  o.dir = dir.path() + "/snaps";
  o.name = "push-test";
  o.heap_mode = leakscope::diag::HeapMode::kOff;
  leakscope::diag::SnapshotWriter w(o);
  auto info = w.write(leakscope::diag::Trigger::kApi, "push test");
  if (!info.ok()) {
    ADD_FAILURE() << info.error().message;
    return nullptr;
  }
  std::ifstream in(info->path);
  return nlohmann::json::parse(in, nullptr, false);
}

std::vector<nlohmann::json> objectsOf(const nlohmann::json& snapshot, const std::string& kind) {
  std::vector<nlohmann::json> out;
  for (const auto& k : snapshot.at("tracked")) {
    if (k.at("kind").get<std::string>() != kind) continue;
    for (const auto& o : k.at("objects")) out.push_back(o);
  }
  return out;
}

std::vector<nlohmann::json> socketsToPort(const nlohmann::json& snapshot, int port) {
  std::vector<nlohmann::json> out;
  const std::string suffix = ":" + std::to_string(port);
  for (const auto& s : snapshot.at("sockets")) {
    if (s.at("remote").get<std::string>().ends_with(suffix)) out.push_back(s);
  }
  return out;
}

}  // namespace leakscope::testing
