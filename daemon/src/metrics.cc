#include "metrics.h"

namespace pushdaemon {

namespace {
const char* kDbOpNames[kDbOps] = {"connect", "poll",   "claim",   "read", "write",
                                  "lease",   "finish", "migrate", "app"};
const char* kStageNames[3] = {"read", "send", "write"};
}  // namespace

DaemonMetrics::DaemonMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  using namespace prometheus;
  schedules_ = &BuildGauge()
                    .Name("pushdaemon_schedules")
                    .Help("Schedules in the database by state, as of the last poll")
                    .Register(*registry_);
  for (const char* s : {"waiting", "running", "done", "failed"}) setSchedules(s, 0);
  auto& claimed = BuildCounter()
                      .Name("pushdaemon_schedules_claimed_total")
                      .Help("Schedules this daemon claimed (new or taken over)")
                      .Register(*registry_);
  claimed_ = &claimed.Add({});
  auto& finished = BuildCounter()
                       .Name("pushdaemon_schedules_finished_total")
                       .Help("Schedules this daemon finished, by final state")
                       .Register(*registry_);
  finished_done_ = &finished.Add({{"state", "done"}});
  finished_failed_ = &finished.Add({{"state", "failed"}});
  lease_lost_ = &BuildCounter()
                     .Name("pushdaemon_schedule_leases_lost_total")
                     .Help("Running schedules abandoned because another daemon took the lease")
                     .Register(*registry_)
                     .Add({});
  addPlatformSeries();
  auto& dberr = BuildCounter()
                    .Name("pushdaemon_db_errors_total")
                    .Help("Database statements or connections that failed, by operation")
                    .Register(*registry_);
  for (int op = 0; op < kDbOps; ++op) db_errors_[op] = &dberr.Add({{"op", kDbOpNames[op]}});
  auto& connect = BuildCounter()
                      .Name("pushdaemon_db_connect_total")
                      .Help("Database connection attempts, by result")
                      .Register(*registry_);
  db_connect_ok_ = &connect.Add({{"result", "ok"}});
  db_connect_error_ = &connect.Add({{"result", "error"}});
  backlog_ = &BuildGauge()
                  .Name("pushdaemon_result_backlog_tokens")
                  .Help("Tokens handed to the transport whose results are not yet committed")
                  .Register(*registry_)
                  .Add({});
  auto& reload = BuildCounter()
                     .Name("pushdaemon_config_reloads_total")
                     .Help("SIGHUP reloads, by result")
                     .Register(*registry_);
  reload_ok_ = &reload.Add({{"result", "ok"}});
  reload_error_ = &reload.Add({{"result", "error"}});
}

// The series labelled by platform, registered between the schedules'
// and the database's families (the order /metrics lists them in).
void DaemonMetrics::addPlatformSeries() {
  using namespace prometheus;
  auto& tokens = BuildCounter()
                     .Name("pushdaemon_tokens_total")
                     .Help("Tokens whose final outcome was recorded, by platform and outcome")
                     .Register(*registry_);
  auto& resends = BuildCounter()
                      .Name("pushdaemon_token_resends_total")
                      .Help("Tokens sent again: undelivered (no answer) or retryable answer")
                      .Register(*registry_);
  auto& deact = BuildCounter()
                    .Name("pushdaemon_tokens_deactivated_total")
                    .Help("Device tokens deactivated after an invalid-token answer")
                    .Register(*registry_);
  auto& batch = BuildHistogram()
                    .Name("pushdaemon_batch_duration_seconds")
                    .Help(
                        "Time per page of tokens: read from the database, sent until every "
                        "outcome is final, written back")
                    .Register(*registry_);
  auto& replaced = BuildCounter()
                       .Name("pushdaemon_push_clients_replaced_total")
                       .Help("Push clients shut down and replaced after a credential change")
                       .Register(*registry_);
  auto& created = BuildCounter()
                      .Name("pushdaemon_push_clients_created_total")
                      .Help("Push clients created (one per app and platform, plus replacements)")
                      .Register(*registry_);
  auto& pool_max =
      BuildGauge()
          .Name("pushdaemon_pool_max_connections")
          .Help("Sum of max_connections over the push clients the daemon manages, by platform")
          .Register(*registry_);
  const Histogram::BucketBoundaries buckets = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                               0.5,   1,     2.5,  5,     10,   30,  60};
  for (Platform p : kPlatforms) {
    PlatformSeries& x = of(p);
    // Added in the order they always were (apns before fcm; outcomes
    // success, invalid_token, permanent, retryable), so /metrics lists them
    // as before.
    for (push::OutcomeKind o : kOutcomeKinds) {
      x.tokens[static_cast<std::size_t>(o)] =
          &tokens.Add({{"platform", platformName(p)}, {"outcome", push::outcomeKindName(o)}});
    }
    x.resend_undelivered = &resends.Add({{"platform", platformName(p)}, {"reason", "undelivered"}});
    x.resend_retryable = &resends.Add({{"platform", platformName(p)}, {"reason", "retryable"}});
    x.deactivated = &deact.Add({{"platform", platformName(p)}});
    for (std::size_t s = 0; s < x.batch.size(); ++s) {
      x.batch[s] = &batch.Add({{"platform", platformName(p)}, {"stage", kStageNames[s]}}, buckets);
    }
    x.replaced = &replaced.Add({{"platform", platformName(p)}});
    x.created = &created.Add({{"platform", platformName(p)}});
    x.pool_max = &pool_max.Add({{"platform", platformName(p)}});
  }
}

void DaemonMetrics::setSchedules(const char* state, double n) {
  schedules_->Add({{"state", state}}).Set(n);
}

}  // namespace pushdaemon
