// Push clients per app and platform: the daemon's answer to the seed
// story's bug. One client (= one provider = one bounded connection pool)
// per app and platform for the life of the daemon, replaced only when its
// credentials or endpoint settings change, and then the old one is shut
// down (awaited) before the new one is made.
//
// `ClientRegistry::clientFor()` is the one place where a schedule gets its
// client. Issue #6's --leak-drill swaps exactly that function for the seed's
// behaviour (a new client per schedule, never shut down).
//
// Not thread-safe: the scheduler thread owns the registry. The clients
// themselves are thread-safe (outcomes arrive on the event-loop thread).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config.h"
#include "leakscope/diag/result.h"
#include "leakscope/push/apns.h"
#include "leakscope/push/event_loop.h"
#include "leakscope/push/fcm.h"
#include "leakscope/push/metrics.h"
#include "metrics.h"
#include "payload.h"

namespace pushdaemon {

namespace push = leakscope::push;
namespace diag = leakscope::diag;

// An app row: credentials are file paths, read when a client is made.
struct AppRow {
  std::uint64_t id = 0;
  std::string name;
  std::string apns_topic;
  std::string apns_key_file;
  std::string apns_key_id;
  std::string apns_team_id;
  std::string fcm_service_account_file;
};

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
};

class ClientRegistry {
 public:
  ClientRegistry(push::EventLoop& loop, std::shared_ptr<push::PushMetrics> push_metrics,
                 DaemonMetrics* metrics);
  ~ClientRegistry();  // shuts every client down

  // New settings; clients whose endpoint or pool settings changed are
  // replaced at their next clientFor().
  void configure(const Config& config);

  // The client of `app` for `p`: the cached one when the app's credentials
  // (paths and file contents) and the settings are unchanged; otherwise the
  // cached one is shut down (awaited) and a new one made. Errors name the
  // app and the file or setting.
  diag::Result<std::shared_ptr<PlatformClient>> clientFor(const AppRow& app, Platform p);

  // Apps that have a client now (SIGHUP re-reads these rows and calls
  // clientFor() on each, so changed credentials are replaced at once).
  std::vector<std::uint64_t> appIds() const;
  // Shuts down and forgets the clients of an app (deleted app).
  void drop(std::uint64_t app_id);
  void shutdownAll();
  std::size_t size() const { return clients_.size(); }

 private:
  struct Entry {
    std::string fingerprint;
    std::shared_ptr<PlatformClient> client;
    std::size_t max_connections = 0;  // its pool's maximum, from the settings it was made with
  };
  std::string fingerprint(const AppRow& app, Platform p) const;
  diag::Result<std::shared_ptr<PlatformClient>> make(const AppRow& app, Platform p);
  void shutdown(Entry& e);
  // pushdaemon_pool_max_connections: the sum over the clients held now.
  void publishPoolMax();

  push::EventLoop& loop_;
  std::shared_ptr<push::PushMetrics> push_metrics_;
  DaemonMetrics* metrics_;
  Config config_;
  std::map<std::pair<std::uint64_t, Platform>, Entry> clients_;
};

}  // namespace pushdaemon
