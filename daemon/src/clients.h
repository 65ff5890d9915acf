// Push clients per app and platform: the daemon's answer to the seed
// story's bug. One client (= one provider = one bounded connection pool)
// per app and platform for the life of the daemon, replaced only when its
// credentials or endpoint settings change, and then the old one is shut
// down (awaited) before the new one is made.
//
// `ClientRegistry::clientFor()` is the one place where a schedule gets its
// client. With `daemon.leak_drill` (`--leak-drill`) it reproduces the seed's
// bug on purpose, for APNs only: every schedule gets a new APNs client, and
// the one it replaces is moved to `leaked_` instead of being shut down, so
// its connections stay ESTABLISHED and its memory stays allocated until the
// process exits. `clients_` still holds exactly one client per app and
// platform (the one in use), so whatever sums up the registry's pools sees
// one pool per app and platform while the leaked ones pile up beside it —
// as the seed's daemon believed. FCM stays managed: the same run shows one
// platform leaking and one bounded.
//
// Who owns what, as snapshots show it (tracked owners, docs/pushdaemon.md):
// each client's provider (`apns.provider`, `fcm.provider`) is owned by the
// registry (`pushdaemon.registry`, one object) while it is in `clients_`,
// and by the drill's list (`pushdaemon.leak_drill`, made at the first
// abandoned client) once it is moved to `leaked_`; the connections are owned
// by their provider, and their sockets by the connections (the fd each
// declared). So `leakscope trend` shows the abandoned providers as the top
// of the chain that holds the growing connections and sockets.
//
// Credentials: the key files named by the app rows are opened beneath
// push.credentials_dir under the secret-file rule and parsed once into key
// objects shared by every client made from them (credentials.h); a client
// is replaced when its key (path or public key), ids or settings change.
//
// Not thread-safe: the scheduler thread owns the registry. The clients
// themselves are thread-safe (outcomes arrive on the event-loop thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config.h"
#include "credentials.h"
#include "leakscope/diag/result.h"
#include "leakscope/diag/tracked.h"
#include "leakscope/push/apns.h"
#include "leakscope/push/event_loop.h"
#include "leakscope/push/fcm.h"
#include "leakscope/push/metrics.h"
#include "metrics.h"
#include "model.h"
#include "payload.h"

namespace pushdaemon {

namespace push = leakscope::push;
namespace diag = leakscope::diag;

// One platform's client behind one interface.
class PlatformClient {
 public:
  virtual ~PlatformClient() = default;
  // tokens[i] with the schedule's payload; done(i, outcome) runs once per
  // token on the loop thread. All or nothing (kQueueFull: try later).
  virtual push::Admission sendMany(const std::vector<const std::string*>& tokens,
                                   const SchedulePayload& payload, const AppRow& app,
                                   push::BatchCallback done) = 0;
  virtual diag::Status shutdown(std::chrono::milliseconds grace) = 0;
  virtual push::ClientStats stats() const = 0;
  // The client's provider as a tracked object, and what holds it (the
  // registry, or the leak drill's list): the retainer chain's links.
  virtual diag::ObjectId trackedId() const = 0;
  virtual void setOwner(diag::ObjectId owner) = 0;
};

class ClientRegistry {
 public:
  ClientRegistry(push::EventLoop& loop, std::shared_ptr<push::PushMetrics> push_metrics,
                 DaemonMetrics* metrics);
  ~ClientRegistry();  // shuts every client down

  // New settings; clients whose endpoint or pool settings changed are
  // replaced at their next clientFor().
  void configure(const Config& config);

  // Passed as clientFor()'s schedule by callers that serve no schedule
  // (the reload's refresh of the clients in use).
  static constexpr std::uint64_t kNoSchedule = 0;

  // The client of `app` for `p`: the cached one when the app's credentials
  // (paths, ids and keys) and the settings are unchanged; otherwise the
  // cached one is shut down (awaited) and a new one made. A key file is
  // read and parsed only when it changed (CredentialCache). Errors name the
  // app and the file, the rule or the setting; a file that breaks a rule
  // is not read (and one outside the directory not even opened).
  // Leak drill (APNs only): a schedule other than the one the cached client
  // was made for gets a new client, and the cached one is leaked (kept
  // open, never shut down) instead; kNoSchedule takes the cached one.
  diag::Result<std::shared_ptr<PlatformClient>> clientFor(const AppRow& app, Platform p,
                                                          std::uint64_t schedule_id);

  // Apps that have a client now (SIGHUP re-reads these rows and calls
  // clientFor() on each, so changed credentials are replaced at once).
  std::vector<std::uint64_t> appIds() const;
  // Shuts down and forgets the clients of an app (deleted app).
  void drop(std::uint64_t app_id);
  // Shuts every client in use down (awaited). Leaked drill clients are
  // closed without grace: only the process's exit ends the drill's leak.
  void shutdownAll();
  // Clients in use, one per app and platform (leaked drill clients are not
  // among them).
  std::size_t size() const { return clients_.size(); }
  // Drill clients abandoned so far, never shut down.
  std::size_t leakedCount() const { return leaked_.size(); }
  // Credential files read and parsed so far (a test seam: N clientFor()
  // calls on one unchanged file parse it once).
  std::uint64_t credentialParses() const { return credentials_.parses(); }

 private:
  struct Entry {
    std::string fingerprint;
    std::shared_ptr<PlatformClient> client;
    std::uint64_t schedule_id = kNoSchedule;  // the schedule it was made for
    std::size_t max_connections = 0;  // its pool's maximum, from the settings it was made with
  };
  // An app's parsed credential for one platform.
  struct Credential {
    std::shared_ptr<const push::SigningKey> apns_key;
    std::shared_ptr<const push::FcmServiceAccount> fcm_account;
    std::string id;  // the key's public fingerprint and ids: never secret
  };
  bool drills(Platform p) const { return config_.leak_drill && p == Platform::kApns; }
  diag::Result<Credential> credential(const AppRow& app, Platform p);
  std::string fingerprint(const AppRow& app, Platform p, const Credential& cred) const;
  diag::Result<std::shared_ptr<PlatformClient>> make(const AppRow& app, Platform p,
                                                     const Credential& cred);
  void shutdown(Entry& e);
  // pushdaemon_pool_max_connections: the sum over the clients held now.
  void publishPoolMax();

  push::EventLoop& loop_;
  std::shared_ptr<push::PushMetrics> push_metrics_;
  DaemonMetrics* metrics_;
  Config config_;
  CredentialCache credentials_;
  std::map<std::pair<std::uint64_t, Platform>, Entry> clients_;
  // The leak drill's abandoned clients: alive, connected, never shut down
  // before shutdownAll().
  std::vector<std::shared_ptr<PlatformClient>> leaked_;
  // The owners of the providers in clients_ and in leaked_ (see the top).
  diag::Tracked tracked_;
  std::optional<diag::Tracked> leaked_tracked_;
};

}  // namespace pushdaemon
