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
#include <cstddef>
#include <memory>
#include <string>

#include "model.h"

namespace pushdaemon {

enum class Stage { kRead = 0, kSend = 1, kWrite = 2 };

class DaemonMetrics {
 public:
  DaemonMetrics();

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  void setSchedules(const char* state, double n);
  void scheduleClaimed() { claimed_->Increment(); }
  void scheduleFinished(bool done) { (done ? finished_done_ : finished_failed_)->Increment(); }
  void leaseLost() { lease_lost_->Increment(); }
  void tokens(Platform p, push::OutcomeKind o, double n) {
    of(p).tokens[static_cast<std::size_t>(o)]->Increment(n);
  }
  void resend(Platform p, bool undelivered, double n) {
    (undelivered ? of(p).resend_undelivered : of(p).resend_retryable)->Increment(n);
  }
  void deactivated(Platform p, double n) { of(p).deactivated->Increment(n); }
  void batchDuration(Platform p, Stage s, double seconds) {
    of(p).batch[static_cast<std::size_t>(s)]->Observe(seconds);
  }
  void dbError(DbOp op) { db_errors_[static_cast<int>(op)]->Increment(); }
  void dbConnect(bool ok) { (ok ? db_connect_ok_ : db_connect_error_)->Increment(); }
  void backlog(double delta) { backlog_->Increment(delta); }
  double backlogValue() const { return backlog_->Value(); }
  void reload(bool ok) { (ok ? reload_ok_ : reload_error_)->Increment(); }
  void clientReplaced(Platform p) { of(p).replaced->Increment(); }
  void clientCreated(Platform p) { of(p).created->Increment(); }
  // The connections the registry's clients may open together (the
  // PushConnectionsAbovePoolMax alert compares the live count with it).
  void poolMaxConnections(Platform p, double n) { of(p).pool_max->Set(n); }

 private:
  // One platform's series (label platform="apns" or "fcm").
  struct PlatformSeries {
    std::array<prometheus::Counter*, kOutcomeKinds.size()> tokens{};  // by push::OutcomeKind
    prometheus::Counter* resend_undelivered = nullptr;
    prometheus::Counter* resend_retryable = nullptr;
    prometheus::Counter* deactivated = nullptr;
    std::array<prometheus::Histogram*, 3> batch{};  // by Stage
    prometheus::Counter* replaced = nullptr;
    prometheus::Counter* created = nullptr;
    prometheus::Gauge* pool_max = nullptr;
  };
  PlatformSeries& of(Platform p) { return platforms_[static_cast<std::size_t>(p)]; }
  void addPlatformSeries();

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Gauge>* schedules_;
  prometheus::Counter* claimed_;
  prometheus::Counter* finished_done_;
  prometheus::Counter* finished_failed_;
  prometheus::Counter* lease_lost_;
  prometheus::Counter* db_errors_[kDbOps];
  prometheus::Counter* db_connect_ok_;
  prometheus::Counter* db_connect_error_;
  prometheus::Gauge* backlog_;
  prometheus::Counter* reload_ok_;
  prometheus::Counter* reload_error_;
  std::array<PlatformSeries, kPlatforms.size()> platforms_;  // by Platform
};

}  // namespace pushdaemon
