// pushdaemon's own Prometheus series (docs/metrics.md, section
// "pushdaemon"): schedules by state, tokens by platform and outcome, batch
// durations by stage, database errors, the result backlog, reloads, the
// pool maximum of the managed push clients. Served
// next to leakscope's and the transport's series on /metrics.
//
// Label values are fixed sets chosen in code (platform, outcome, stage,
// op, state): never a token, an app name or an address.
// Thread-safe: prometheus-cpp metrics are atomics; the families are created
// once in the constructor and never change.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <memory>
#include <string>

namespace pushdaemon {

enum class Platform { kApns = 0, kFcm = 1 };
inline constexpr std::array<Platform, 2> kPlatforms = {Platform::kApns, Platform::kFcm};
inline const char* platformName(Platform p) { return p == Platform::kApns ? "apns" : "fcm"; }

// Final outcomes recorded per token (push_result.outcome).
enum class TokenOutcome { kSuccess = 0, kInvalidToken = 1, kPermanent = 2, kRetryable = 3 };
const char* tokenOutcomeName(TokenOutcome o);

enum class Stage { kRead = 0, kSend = 1, kWrite = 2 };

enum class DbOp { kConnect, kPoll, kClaim, kRead, kWrite, kLease, kFinish, kMigrate, kApp };
inline constexpr int kDbOps = 9;

class DaemonMetrics {
 public:
  DaemonMetrics();

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  void setSchedules(const char* state, double n);
  void scheduleClaimed() { claimed_->Increment(); }
  void scheduleFinished(bool done) { (done ? finished_done_ : finished_failed_)->Increment(); }
  void leaseLost() { lease_lost_->Increment(); }
  void tokens(Platform p, TokenOutcome o, double n) {
    tokens_[static_cast<int>(p)][static_cast<int>(o)]->Increment(n);
  }
  void resend(Platform p, bool undelivered, double n) {
    resends_[static_cast<int>(p)][undelivered ? 0 : 1]->Increment(n);
  }
  void deactivated(Platform p, double n) { deactivated_[static_cast<int>(p)]->Increment(n); }
  void batchDuration(Platform p, Stage s, double seconds) {
    batch_[static_cast<int>(p)][static_cast<int>(s)]->Observe(seconds);
  }
  void dbError(DbOp op) { db_errors_[static_cast<int>(op)]->Increment(); }
  void dbConnect(bool ok) { (ok ? db_connect_ok_ : db_connect_error_)->Increment(); }
  void backlog(double delta) { backlog_->Increment(delta); }
  double backlogValue() const { return backlog_->Value(); }
  void reload(bool ok) { (ok ? reload_ok_ : reload_error_)->Increment(); }
  void clientReplaced(Platform p) { replaced_[static_cast<int>(p)]->Increment(); }
  void clientCreated(Platform p) { created_[static_cast<int>(p)]->Increment(); }
  // The connections the registry's clients may open together (the
  // PushConnectionsAbovePoolMax alert compares the live count with it).
  void poolMaxConnections(Platform p, double n) { pool_max_[static_cast<int>(p)]->Set(n); }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Gauge>* schedules_;
  prometheus::Counter* claimed_;
  prometheus::Counter* finished_done_;
  prometheus::Counter* finished_failed_;
  prometheus::Counter* lease_lost_;
  prometheus::Counter* tokens_[2][4];
  prometheus::Counter* resends_[2][2];
  prometheus::Counter* deactivated_[2];
  prometheus::Histogram* batch_[2][3];
  prometheus::Counter* db_errors_[kDbOps];
  prometheus::Counter* db_connect_ok_;
  prometheus::Counter* db_connect_error_;
  prometheus::Gauge* backlog_;
  prometheus::Counter* reload_ok_;
  prometheus::Counter* reload_error_;
  prometheus::Counter* replaced_[2];
  prometheus::Counter* created_[2];
  prometheus::Gauge* pool_max_[2];
};

}  // namespace pushdaemon
