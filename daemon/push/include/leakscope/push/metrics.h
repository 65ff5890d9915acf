// Prometheus metrics of the push transport, in Envoy's vocabulary
// (reference: docs/metrics.md, section "Push transport").
//
// One `UpstreamStats` per upstream component ("apns", "fcm", "oauth"), fed by
// that component's pool and client; `PushMetrics` owns them and is the
// prometheus::Collectable a daemon registers (Runtime::registerCollectable).
// Series are `pushdaemon_<component>_upstream_cx_*` / `_rq_*` plus the
// credential counters `pushdaemon_<component>_jwt_refresh_total` and
// `pushdaemon_fcm_access_token_fetch_total`.
//
// Invariants, in every scrape: `cx_active == cx_total - cx_destroy_total`
// (summed over `side`) and `rq_active == started - finished`; the gauges are
// computed from the counters, read in an order that cannot underflow.
//
// Thread-safety: every method may be called from any thread. The counters and
// the histogram are relaxed atomics; only answers other than 200 take a mutex
// (for the per-status/reason table).
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "leakscope/push/jwt.h"
#include "leakscope/push/outcome.h"

namespace leakscope::push {

// Who ended a connection: we did (idle, health check, shutdown, our protocol
// error) or the server did (GOAWAY, EOF, reset, its TLS alert).
enum class CloseSide { kLocal, kRemote };

class UpstreamStats {
 public:
  explicit UpstreamStats(std::string component) : component_(std::move(component)) {}
  UpstreamStats(const UpstreamStats&) = delete;
  UpstreamStats& operator=(const UpstreamStats&) = delete;

  const std::string& component() const { return component_; }

  // Connections. Every cxOpened() is matched by exactly one cxDestroyed().
  void cxOpened() { cx_total_.fetch_add(1, kRelaxed); }
  void cxDestroyed(CloseSide side, bool with_active_rq);
  void cxConnectFailed() { cx_connect_fail_.fetch_add(1, kRelaxed); }
  void cxIdleTimeout() { cx_idle_timeout_.fetch_add(1, kRelaxed); }
  void cxPingTimeout() { cx_ping_timeout_.fetch_add(1, kRelaxed); }
  void goawayReceived() { goaway_.fetch_add(1, kRelaxed); }

  // Streams (requests on the wire) and the queue in front of them.
  void rqStarted() { rq_started_.fetch_add(1, kRelaxed); }
  void rqFinished() { rq_finished_.fetch_add(1, kRelaxed); }
  void rqPending(std::int64_t delta) { rq_pending_.fetch_add(delta, kRelaxed); }
  void rqPendingOverflow() { rq_pending_overflow_.fetch_add(1, kRelaxed); }
  void rqTimeout() { rq_timeout_.fetch_add(1, kRelaxed); }
  void rqRetry() { rq_retry_.fetch_add(1, kRelaxed); }

  // One request's end: the answer's status (0: none) and reason, and how long
  // it took on the wire (negative: not measured).
  void rqCompleted(int status, std::string_view reason, OutcomeKind kind, double seconds);
  // One notification's final outcome (after retries).
  void notificationDone(OutcomeKind kind) {
    notifications_[static_cast<std::size_t>(kind)].fetch_add(1, kRelaxed);
  }

  // Credentials.
  void jwtRefreshed(TokenRefresh why) {
    jwt_refresh_[static_cast<std::size_t>(why)].fetch_add(1, kRelaxed);
  }
  void accessTokenFetched(bool ok) {
    (ok ? token_fetch_ok_ : token_fetch_error_).fetch_add(1, kRelaxed);
  }

  // Figures for tests and for the client's own stats.
  struct Counts {
    std::uint64_t cx_total = 0;
    std::uint64_t cx_destroy_local = 0;
    std::uint64_t cx_destroy_remote = 0;
    std::uint64_t cx_active = 0;
    std::uint64_t cx_connect_fail = 0;
    std::uint64_t goaway_received = 0;
    std::uint64_t rq_active = 0;
    std::uint64_t rq_retry = 0;
    std::uint64_t rq_timeout = 0;
    std::uint64_t jwt_refresh = 0;  // all reasons but kNone
  };
  Counts counts() const;

  void collect(std::vector<prometheus::MetricFamily>& out) const;

  // Histogram buckets of _rq_duration_seconds (upper bounds, +Inf implied).
  static constexpr std::array<double, 13> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                      0.25,  0.5,    1.0,   2.5,  5.0,   10.0};

 private:
  class Families;  // metrics.cc
  // collect(), one group of families each, in name order.
  void collectCredentials(Families& f) const;
  void collectNotifications(Families& f) const;
  void collectConnections(Families& f, const Counts& c) const;
  void collectRequests(Families& f, const Counts& c) const;
  prometheus::MetricFamily durationHistogram(const Families& f) const;
  prometheus::MetricFamily requestsByStatus(const Families& f) const;

  static constexpr auto kRelaxed = std::memory_order_relaxed;
  std::string component_;
  std::atomic<std::uint64_t> cx_total_{0};
  std::atomic<std::uint64_t> cx_destroy_local_{0};
  std::atomic<std::uint64_t> cx_destroy_remote_{0};
  std::atomic<std::uint64_t> cx_destroy_with_active_rq_{0};
  std::atomic<std::uint64_t> cx_connect_fail_{0};
  std::atomic<std::uint64_t> cx_idle_timeout_{0};
  std::atomic<std::uint64_t> cx_ping_timeout_{0};
  std::atomic<std::uint64_t> goaway_{0};
  std::atomic<std::uint64_t> rq_started_{0};
  std::atomic<std::uint64_t> rq_finished_{0};
  std::atomic<std::int64_t> rq_pending_{0};
  std::atomic<std::uint64_t> rq_pending_overflow_{0};
  std::atomic<std::uint64_t> rq_timeout_{0};
  std::atomic<std::uint64_t> rq_retry_{0};
  std::array<std::atomic<std::uint64_t>, 4> notifications_{};  // by OutcomeKind
  std::array<std::atomic<std::uint64_t>, 4> jwt_refresh_{};    // by TokenRefresh
  std::atomic<std::uint64_t> token_fetch_ok_{0};
  std::atomic<std::uint64_t> token_fetch_error_{0};

  std::atomic<std::uint64_t> rq_200_{0};  // the common case, without the table
  std::array<std::atomic<std::uint64_t>, kBuckets.size() + 1> duration_counts_{};  // last: +Inf
  std::atomic<std::uint64_t> duration_sum_ns_{0};
  mutable std::mutex mu_;  // guards by_status_
  // (status, reason label, outcome) -> requests, for answers other than 200
  std::map<std::tuple<int, std::string, int>, std::uint64_t> by_status_;
};

class PushMetrics : public prometheus::Collectable {
 public:
  // The stats of `component` ([a-z_]+), created on first use. The pointer
  // stays valid as long as this PushMetrics (and any copy of the shared_ptr).
  std::shared_ptr<UpstreamStats> upstream(std::string_view component);

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<UpstreamStats>, std::less<>> components_;
};

}  // namespace leakscope::push
