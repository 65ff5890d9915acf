#include "leakscope/push/metrics.h"

#include <algorithm>
#include <limits>

namespace leakscope::push {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

double d(std::uint64_t v) { return static_cast<double>(v); }

}  // namespace

// Builds the families of one component, names prefixed
// "pushdaemon_<component>_".
class UpstreamStats::Families {
 public:
  Families(std::vector<MetricFamily>& out, const std::string& component)
      : out_(out), prefix_("pushdaemon_" + component + "_") {}

  MetricFamily make(std::string_view suffix, std::string help, MetricType type) const {
    MetricFamily f;
    f.name = prefix_ + std::string(suffix);
    f.help = std::move(help);
    f.type = type;
    return f;
  }
  void push(MetricFamily f) { out_.push_back(std::move(f)); }
  void value(std::string_view suffix, std::string help, MetricType type, double v) {
    MetricFamily f = make(suffix, std::move(help), type);
    sample(f, v);
    push(std::move(f));
  }
  static void sample(MetricFamily& f, double v, std::vector<ClientMetric::Label> labels = {}) {
    ClientMetric m;
    m.label = std::move(labels);
    if (f.type == MetricType::Counter) {
      m.counter.value = v;
    } else {
      m.gauge.value = v;
    }
    f.metric.push_back(std::move(m));
  }

 private:
  std::vector<MetricFamily>& out_;
  std::string prefix_;
};

void UpstreamStats::cxDestroyed(CloseSide side, bool with_active_rq) {
  if (with_active_rq) cx_destroy_with_active_rq_.fetch_add(1, kRelaxed);
  (side == CloseSide::kLocal ? cx_destroy_local_ : cx_destroy_remote_).fetch_add(1, kRelaxed);
}

void UpstreamStats::rqCompleted(int status, std::string_view why, OutcomeKind kind,
                                double seconds) {
  if (seconds >= 0) {
    const auto it = std::lower_bound(kBuckets.begin(), kBuckets.end(), seconds);
    duration_counts_[static_cast<std::size_t>(it - kBuckets.begin())].fetch_add(1, kRelaxed);
    duration_sum_ns_.fetch_add(static_cast<std::uint64_t>(seconds * 1e9), kRelaxed);
  }
  if (status == 200 && why.empty() && kind == OutcomeKind::kSuccess) {
    rq_200_.fetch_add(1, kRelaxed);
    return;
  }
  const std::lock_guard lock(mu_);
  ++by_status_[{status, std::string(reasonLabel(why)), static_cast<int>(kind)}];
}

UpstreamStats::Counts UpstreamStats::counts() const {
  Counts c;
  // Destroyed before total, finished before started: a reader never sees
  // more ends than starts, so the differences cannot underflow.
  c.cx_destroy_local = cx_destroy_local_.load(kRelaxed);
  c.cx_destroy_remote = cx_destroy_remote_.load(kRelaxed);
  std::atomic_thread_fence(std::memory_order_acquire);
  c.cx_total = cx_total_.load(kRelaxed);
  c.cx_active = c.cx_total - c.cx_destroy_local - c.cx_destroy_remote;
  c.cx_connect_fail = cx_connect_fail_.load(kRelaxed);
  c.goaway_received = goaway_.load(kRelaxed);
  const std::uint64_t finished = rq_finished_.load(kRelaxed);
  std::atomic_thread_fence(std::memory_order_acquire);
  c.rq_active = rq_started_.load(kRelaxed) - finished;
  c.rq_retry = rq_retry_.load(kRelaxed);
  c.rq_timeout = rq_timeout_.load(kRelaxed);
  for (std::size_t i = 1; i < jwt_refresh_.size(); ++i)
    c.jwt_refresh += jwt_refresh_[i].load(kRelaxed);
  return c;
}

// One sorted list per component (style guide: metric names): the groups
// below, and the families within each, come in name order.
void UpstreamStats::collect(std::vector<MetricFamily>& out) const {
  const Counts c = counts();
  Families f(out, component_);
  collectCredentials(f);     // access_token_fetch_total, jwt_refresh_total
  collectNotifications(f);   // notifications_total
  collectConnections(f, c);  // upstream_cx_*
  collectRequests(f, c);     // upstream_rq_*
}

void UpstreamStats::collectCredentials(Families& f) const {
  auto fetch = f.make("access_token_fetch_total", "OAuth2 access-token requests, by result.",
                      MetricType::Counter);
  Families::sample(fetch, d(token_fetch_error_.load(kRelaxed)), {{"result", "error"}});
  Families::sample(fetch, d(token_fetch_ok_.load(kRelaxed)), {{"result", "ok"}});
  f.push(std::move(fetch));

  auto jwt =
      f.make("jwt_refresh_total", "JWTs signed, by why a new one was needed.", MetricType::Counter);
  for (const TokenRefresh r :
       {TokenRefresh::kAge, TokenRefresh::kInitial, TokenRefresh::kRejected}) {
    Families::sample(jwt, d(jwt_refresh_[static_cast<std::size_t>(r)].load(kRelaxed)),
                     {{"reason", tokenRefreshName(r)}});
  }
  f.push(std::move(jwt));
}

void UpstreamStats::collectNotifications(Families& f) const {
  auto notes = f.make("notifications_total", "Notifications finished, by final outcome.",
                      MetricType::Counter);
  for (const OutcomeKind k : {OutcomeKind::kInvalidToken, OutcomeKind::kPermanent,
                              OutcomeKind::kRetryable, OutcomeKind::kSuccess}) {
    Families::sample(notes, d(notifications_[static_cast<std::size_t>(k)].load(kRelaxed)),
                     {{"outcome", outcomeKindName(k)}});
  }
  f.push(std::move(notes));
}

void UpstreamStats::collectConnections(Families& f, const Counts& c) const {
  f.value("upstream_cx_active", "Open upstream connections (connecting, ready, busy or draining).",
          MetricType::Gauge, d(c.cx_active));
  f.value("upstream_cx_connect_fail_total",
          "Connection attempts that failed (TCP, TLS, certificate, ALPN).", MetricType::Counter,
          d(c.cx_connect_fail));
  auto destroy =
      f.make("upstream_cx_destroy_total",
             "Upstream connections closed, by the side that ended them.", MetricType::Counter);
  Families::sample(destroy, d(c.cx_destroy_local), {{"side", "local"}});
  Families::sample(destroy, d(c.cx_destroy_remote), {{"side", "remote"}});
  f.push(std::move(destroy));
  f.value("upstream_cx_destroy_with_active_rq_total",
          "Upstream connections closed while requests were in flight.", MetricType::Counter,
          d(cx_destroy_with_active_rq_.load(kRelaxed)));
  f.value("upstream_cx_goaway_received_total", "GOAWAY frames received from the server.",
          MetricType::Counter, d(c.goaway_received));
  f.value("upstream_cx_idle_timeout_total", "Connections closed after sitting idle.",
          MetricType::Counter, d(cx_idle_timeout_.load(kRelaxed)));
  f.value("upstream_cx_ping_timeout_total", "Connections closed because a PING went unanswered.",
          MetricType::Counter, d(cx_ping_timeout_.load(kRelaxed)));
  f.value("upstream_cx_total", "Upstream connections opened (attempts included).",
          MetricType::Counter, d(c.cx_total));
}

void UpstreamStats::collectRequests(Families& f, const Counts& c) const {
  f.value("upstream_rq_active", "Requests on the wire (open HTTP/2 streams).", MetricType::Gauge,
          d(c.rq_active));
  f.push(durationHistogram(f));
  f.value("upstream_rq_pending_active", "Requests queued for a free stream.", MetricType::Gauge,
          static_cast<double>(std::max<std::int64_t>(rq_pending_.load(kRelaxed), 0)));
  f.value("upstream_rq_pending_overflow_total",
          "Notifications refused because the queue was full (back-pressure).", MetricType::Counter,
          d(rq_pending_overflow_.load(kRelaxed)));
  f.value("upstream_rq_retry_total", "Requests sent again (unprocessed, throttled, server error).",
          MetricType::Counter, d(c.rq_retry));
  f.value("upstream_rq_timeout_total", "Requests that got no answer in time.", MetricType::Counter,
          d(c.rq_timeout));
  f.push(requestsByStatus(f));
}

MetricFamily UpstreamStats::durationHistogram(const Families& f) const {
  auto hist = f.make("upstream_rq_duration_seconds",
                     "Time from sending a request to its complete answer.", MetricType::Histogram);
  ClientMetric m;
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < duration_counts_.size(); ++i) {
    cumulative += duration_counts_[i].load(kRelaxed);
    ClientMetric::Bucket b;
    b.cumulative_count = cumulative;
    b.upper_bound = i < kBuckets.size() ? kBuckets[i] : std::numeric_limits<double>::infinity();
    m.histogram.bucket.push_back(b);
  }
  m.histogram.sample_count = cumulative;
  m.histogram.sample_sum = static_cast<double>(duration_sum_ns_.load(kRelaxed)) / 1e9;
  hist.metric.push_back(std::move(m));
  return hist;
}

MetricFamily UpstreamStats::requestsByStatus(const Families& f) const {
  auto by_status =
      f.make("upstream_rq_total",
             "Requests finished, by HTTP status (none: no answer), reason and outcome.",
             MetricType::Counter);
  std::map<std::tuple<int, std::string, int>, std::uint64_t> table;
  {
    const std::lock_guard lock(mu_);
    table = by_status_;
  }
  const std::uint64_t ok = rq_200_.load(kRelaxed);
  if (ok > 0) table[{200, "", static_cast<int>(OutcomeKind::kSuccess)}] += ok;
  for (const auto& [key, n] : table) {
    const auto& [status, why, kind] = key;
    Families::sample(by_status, d(n),
                     {{"outcome", outcomeKindName(static_cast<OutcomeKind>(kind))},
                      {"reason", why.empty() ? "none" : why},
                      {"status", status == 0 ? "none" : std::to_string(status)}});
  }
  return by_status;
}

std::shared_ptr<UpstreamStats> PushMetrics::upstream(std::string_view component) {
  const std::lock_guard lock(mu_);
  const auto it = components_.find(component);
  if (it != components_.end()) return it->second;
  auto stats = std::make_shared<UpstreamStats>(std::string(component));
  components_.emplace(std::string(component), stats);
  return stats;
}

std::vector<MetricFamily> PushMetrics::Collect() const {
  std::vector<MetricFamily> out;
  const std::lock_guard lock(mu_);
  for (const auto& [name, stats] : components_) stats->collect(out);
  return out;
}

}  // namespace leakscope::push
