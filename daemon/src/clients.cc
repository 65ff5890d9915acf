#include "clients.h"

#include <sstream>
#include <thread>

#include "log.h"

namespace pushdaemon {

namespace {

class ApnsPlatformClient : public PlatformClient {
 public:
  explicit ApnsPlatformClient(std::unique_ptr<push::ApnsClient> c) : client_(std::move(c)) {}
  push::Admission sendMany(const std::vector<const std::string*>& tokens,
                           const SchedulePayload& payload, const AppRow& app,
                           push::BatchCallback done) override {
    std::vector<push::ApnsNotification> batch(tokens.size());
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      push::ApnsNotification& n = batch[i];
      n.device_token = *tokens[i];
      n.topic = app.apns_topic;
      n.push_type = payload.apns_push_type;
      n.priority = payload.apns_priority;
      n.expiration = payload.apns_expiration;
      n.collapse_id = payload.apns_collapse_id;
      n.payload = *payload.apns;
    }
    return client_->sendMany(std::move(batch), std::move(done));
  }
  diag::Status shutdown(std::chrono::milliseconds grace) override {
    return client_->shutdown(grace);
  }
  push::ClientStats stats() const override { return client_->stats(); }
  diag::ObjectId trackedId() const override { return client_->trackedId(); }
  void setOwner(diag::ObjectId owner) override { client_->setOwner(owner); }

 private:
  std::unique_ptr<push::ApnsClient> client_;
};

class FcmPlatformClient : public PlatformClient {
 public:
  explicit FcmPlatformClient(std::unique_ptr<push::FcmClient> c) : client_(std::move(c)) {}
  push::Admission sendMany(const std::vector<const std::string*>& tokens,
                           const SchedulePayload& payload, const AppRow&,
                           push::BatchCallback done) override {
    std::vector<push::FcmNotification> batch(tokens.size());
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      batch[i].token = *tokens[i];
      batch[i].message = *payload.fcm;
    }
    return client_->sendMany(std::move(batch), std::move(done));
  }
  diag::Status shutdown(std::chrono::milliseconds grace) override {
    return client_->shutdown(grace);
  }
  push::ClientStats stats() const override { return client_->stats(); }
  diag::ObjectId trackedId() const override { return client_->trackedId(); }
  void setOwner(diag::ObjectId owner) override { client_->setOwner(owner); }

 private:
  std::unique_ptr<push::FcmClient> client_;
};

std::string settingsFingerprint(const PlatformConfig& c) {
  std::ostringstream s;
  s << c.host << '|' << c.port << '|' << c.connect_address << '|' << c.ca_file << '|'
    << c.max_connections << '|' << c.max_streams << '|' << c.max_outstanding << '|'
    << c.connect_timeout.count() << '|' << c.request_timeout.count() << '|'
    << c.idle_timeout.count() << '|' << c.retry_max_attempts << '|' << c.retry_backoff_min.count()
    << '|' << c.retry_backoff_max.count() << '|' << c.oauth_connect_address;
  return s.str();
}

push::PoolOptions poolOptions(const PlatformConfig& c, const char* component) {
  push::PoolOptions o;
  o.max_connections = c.max_connections;
  o.max_streams_per_connection = c.max_streams;
  o.connect_timeout = c.connect_timeout;
  o.request_timeout = c.request_timeout;
  o.idle_timeout = c.idle_timeout;
  o.reconnect = {std::chrono::milliseconds(100), std::chrono::seconds(30), 2.0};
  const std::string who = component;
  // The transport's lines name peers and reasons, never tokens or keys.
  o.log = [who](std::string_view line) { logInfo(who, line); };
  return o;
}

push::RetryOptions retryOptions(const PlatformConfig& c) {
  push::RetryOptions r;
  r.max_attempts = c.retry_max_attempts;
  r.backoff = {c.retry_backoff_min, c.retry_backoff_max, 2.0};
  return r;
}

}  // namespace

ClientRegistry::ClientRegistry(push::EventLoop& loop,
                               std::shared_ptr<push::PushMetrics> push_metrics,
                               DaemonMetrics* metrics)
    : loop_(loop),
      push_metrics_(std::move(push_metrics)),
      metrics_(metrics),
      tracked_(diag::kind("pushdaemon.registry")) {}

ClientRegistry::~ClientRegistry() { shutdownAll(); }

void ClientRegistry::configure(const Config& config) {
  config_ = config;
  credentials_.setDir(config.credentials_dir);
}

namespace {
std::string appWhere(const AppRow& app, Platform p) {
  return "app '" + app.name + "' (" + std::to_string(app.id) + ") " + platformName(p) + ": ";
}
}  // namespace

diag::Result<ClientRegistry::Credential> ClientRegistry::credential(const AppRow& app, Platform p) {
  const std::string where = appWhere(app, p);
  const PlatformConfig& c = p == Platform::kApns ? config_.apns : config_.fcm;
  if (!c.enabled) {
    return diag::Error{diag::Errc::kInvalidArgument, where + platformName(p) + " is disabled"};
  }
  Credential cred;
  if (p == Platform::kApns) {
    if (app.apns_key_file.empty() || app.apns_topic.empty()) {
      return diag::Error{diag::Errc::kInvalidArgument,
                         where + "no APNs credentials (apns_key_file and apns_topic)"};
    }
    auto key = credentials_.apnsKey(app.apns_key_file, "apns_key_file");
    if (!key.ok()) return diag::Error{key.error().code, where + key.error().message};
    cred.apns_key = *key;
    cred.id = (*key)->fingerprint();
    return cred;
  }
  if (app.fcm_service_account_file.empty()) {
    return diag::Error{diag::Errc::kInvalidArgument,
                       where + "no FCM credentials (fcm_service_account_file)"};
  }
  auto account = credentials_.fcmAccount(app.fcm_service_account_file, "fcm_service_account_file");
  if (!account.ok()) return diag::Error{account.error().code, where + account.error().message};
  const push::FcmServiceAccount& a = **account;
  cred.fcm_account = *account;
  cred.id = a.key.fingerprint() + "|" + a.private_key_id + "|" + a.client_email + "|" +
            a.project_id + "|" + a.token_uri;
  return cred;
}

std::string ClientRegistry::fingerprint(const AppRow& app, Platform p,
                                        const Credential& cred) const {
  if (p == Platform::kApns) {
    return settingsFingerprint(config_.apns) + "#" + app.apns_topic + "|" + app.apns_key_id + "|" +
           app.apns_team_id + "|" + app.apns_key_file + "|" + cred.id;
  }
  return settingsFingerprint(config_.fcm) + "#" + app.fcm_service_account_file + "|" + cred.id;
}

diag::Result<std::shared_ptr<PlatformClient>> ClientRegistry::make(const AppRow& app, Platform p,
                                                                   const Credential& cred) {
  const std::string where = appWhere(app, p);
  if (p == Platform::kApns) {
    const PlatformConfig& c = config_.apns;
    push::ApnsConfig ac;
    ac.endpoint = {c.host, c.port, c.connect_address};
    ac.tls.ca_file = c.ca_file;
    ac.token_auth = push::ApnsTokenAuth{*cred.apns_key, app.apns_key_id, app.apns_team_id,
                                        std::chrono::minutes(50)};
    ac.pool = poolOptions(c, "apns");
    // The seed's provider kept its connections open for as long as the
    // process lived (node-apn never closed an idle one): a drill client does
    // not close idle connections either, or the leak would turn into a
    // memory-only one after apns.idle_timeout_ms.
    if (drills(p)) ac.pool.idle_timeout = std::chrono::milliseconds(0);
    ac.retry = retryOptions(c);
    ac.max_outstanding = c.max_outstanding;
    ac.metrics = push_metrics_;
    auto client = push::ApnsClient::create(loop_, std::move(ac));
    if (!client) return diag::Error{client.error().code, where + client.error().message};
    return std::shared_ptr<PlatformClient>(
        std::make_shared<ApnsPlatformClient>(std::move(*client)));
  }
  const PlatformConfig& c = config_.fcm;
  push::FcmConfig fc;
  fc.endpoint = {c.host, c.port, c.connect_address};
  fc.service_account = *cred.fcm_account;  // shares the parsed key
  fc.oauth_connect_address = c.oauth_connect_address;
  fc.tls.ca_file = c.ca_file;
  fc.pool = poolOptions(c, "fcm");
  fc.oauth_pool.log = fc.pool.log;
  fc.retry = retryOptions(c);
  fc.max_outstanding = c.max_outstanding;
  fc.metrics = push_metrics_;
  auto client = push::FcmClient::create(loop_, std::move(fc));
  if (!client) return diag::Error{client.error().code, where + client.error().message};
  return std::shared_ptr<PlatformClient>(std::make_shared<FcmPlatformClient>(std::move(*client)));
}

void ClientRegistry::shutdown(Entry& e) {
  if (!e.client) return;
  if (auto s = e.client->shutdown(config_.shutdown_grace); !s.ok()) {
    logWarn("clients", "shutdown: " + s.error().message);
  }
  e.client.reset();
}

diag::Result<std::shared_ptr<PlatformClient>> ClientRegistry::clientFor(const AppRow& app,
                                                                        Platform p,
                                                                        std::uint64_t schedule_id) {
  auto cred = credential(app, p);
  if (!cred) return cred.error();
  const std::string fp = fingerprint(app, p, *cred);
  const auto key = std::make_pair(app.id, p);
  auto it = clients_.find(key);
  const bool drill = drills(p);
  const std::string who = std::string("app ") + std::to_string(app.id) + " " + platformName(p);
  if (it != clients_.end() && it->second.fingerprint == fp &&
      (!drill || schedule_id == kNoSchedule || schedule_id == it->second.schedule_id)) {
    return it->second.client;
  }
  if (it != clients_.end() && drill) {
    // The seed's bug, on purpose: the provider of the previous schedule is
    // dropped from the registry without shutdown(); it keeps its pool, its
    // connections and their buffers for the life of the process.
    if (!leaked_tracked_) leaked_tracked_.emplace(diag::kind("pushdaemon.leak_drill"));
    it->second.client->setOwner(leaked_tracked_->id());
    leaked_.push_back(std::move(it->second.client));
    clients_.erase(it);
  } else if (it != clients_.end()) {
    // Credentials or settings changed: the old pool goes first, awaited, so
    // its connections are closed before the new pool opens any.
    logInfo("clients", who + ": credentials or settings changed; replacing its client");
    shutdown(it->second);
    clients_.erase(it);
    metrics_->clientReplaced(p);
  }
  auto made = make(app, p, *cred);
  if (!made) {
    publishPoolMax();  // the replaced client is gone even when its successor failed
    return made.error();
  }
  metrics_->clientCreated(p);
  (*made)->setOwner(tracked_.id());
  if (drill) {
    logWarn("clients", "LEAK DRILL: schedule " + std::to_string(schedule_id) + " gets a new " +
                           who + " client; " + std::to_string(leaked_.size()) +
                           " earlier client(s) left open, never shut down");
  }
  const PlatformConfig& c = p == Platform::kApns ? config_.apns : config_.fcm;
  clients_[key] = Entry{fp, *made, schedule_id, c.max_connections};
  publishPoolMax();
  return *made;
}

std::vector<std::uint64_t> ClientRegistry::appIds() const {
  std::vector<std::uint64_t> ids;
  for (const auto& [key, e] : clients_) {
    if (ids.empty() || ids.back() != key.first) ids.push_back(key.first);
  }
  return ids;
}

void ClientRegistry::drop(std::uint64_t app_id) {
  for (auto it = clients_.begin(); it != clients_.end();) {
    if (it->first.first == app_id) {
      shutdown(it->second);
      it = clients_.erase(it);
    } else {
      ++it;
    }
  }
  publishPoolMax();
}

void ClientRegistry::shutdownAll() {
  // All at once: each gets the whole shutdown_grace, and the daemon's stop
  // takes one grace, not one per client (systemd's TimeoutStopSec).
  std::vector<std::thread> stopping;
  stopping.reserve(clients_.size());
  for (auto& kv : clients_) {
    Entry& e = kv.second;  // named, not bound: clang before 16 cannot capture a binding
    stopping.emplace_back([this, &e] { shutdown(e); });
  }
  for (auto& t : stopping) t.join();
  clients_.clear();
  publishPoolMax();
  if (leaked_.empty()) return;
  // The daemon is exiting: close what the drill leaked, without grace (they
  // have nothing in flight), so that the exit neither waits nor leaves the
  // push service with half-closed connections.
  logWarn("clients",
          "LEAK DRILL: closing " + std::to_string(leaked_.size()) + " leaked client(s) at exit");
  for (auto& c : leaked_) {
    if (auto s = c->shutdown(std::chrono::milliseconds(0)); !s.ok()) {
      logWarn("clients", "shutdown of a leaked client: " + s.error().message);
    }
  }
  leaked_.clear();
}

void ClientRegistry::publishPoolMax() {
  // Only the clients held here: anything made outside the registry (the
  // leak drill's clients) is exactly what this maximum is checked against.
  std::size_t sum[2] = {0, 0};
  for (const auto& [key, e] : clients_) sum[static_cast<int>(key.second)] += e.max_connections;
  for (Platform p : kPlatforms) {
    metrics_->poolMaxConnections(p, static_cast<double>(sum[static_cast<int>(p)]));
  }
}

}  // namespace pushdaemon
