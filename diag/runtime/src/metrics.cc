#include "leakscope/diag/metrics.h"

#include <map>
#include <tuple>

#include "leakscope/diag/process.h"
#include "leakscope/diag/tracked.h"

namespace leakscope::diag {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void add(MetricFamily& f, double v, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  if (f.type == MetricType::Counter) {
    m.counter.value = v;
  } else {
    m.gauge.value = v;
  }
  f.metric.push_back(std::move(m));
}

double d(std::uint64_t v) { return static_cast<double>(v); }

// The families of one group are appended in name order: the whole list stays
// sorted (allocator, memory limit, snapshots, sockets, tracked, process_*).

void appendAllocator(std::vector<MetricFamily>& out) {
  const AllocatorStats a = readAllocatorStats();
  if (!a.available) return;
  auto allocated = family("leakscope_allocator_allocated_bytes",
                          "Bytes in use by the application (tcmalloc current_allocated_bytes).",
                          MetricType::Gauge);
  add(allocated, d(a.allocated_bytes));
  auto free_bytes =
      family("leakscope_allocator_free_bytes",
             "Bytes the allocator holds free and mapped, by cache.", MetricType::Gauge);
  add(free_bytes, d(a.pageheap_free_bytes), {{"cache", "pageheap"}});
  add(free_bytes, d(a.central_cache_free_bytes), {{"cache", "central"}});
  add(free_bytes, d(a.transfer_cache_free_bytes), {{"cache", "transfer"}});
  add(free_bytes, d(a.thread_cache_free_bytes), {{"cache", "thread"}});
  auto heap = family("leakscope_allocator_heap_bytes",
                     "Bytes the allocator has reserved from the OS (tcmalloc heap_size).",
                     MetricType::Gauge);
  add(heap, d(a.heap_bytes));
  auto unmapped = family("leakscope_allocator_unmapped_bytes",
                         "Bytes of heap released to the OS but still reserved.", MetricType::Gauge);
  add(unmapped, d(a.pageheap_unmapped_bytes));
  out.push_back(std::move(allocated));
  out.push_back(std::move(free_bytes));
  out.push_back(std::move(heap));
  out.push_back(std::move(unmapped));
}

void appendMemoryLimit(std::vector<MetricFamily>& out) {
  auto limit = readMemoryLimit();
  if (!limit.ok()) return;
  auto f = family("leakscope_memory_limit_bytes",
                  "Memory limit of the process: its cgroup's limit, or the machine's MemTotal "
                  "when that is smaller or there is none (source says which).",
                  MetricType::Gauge);
  add(f, d(limit->bytes), {{"source", memoryLimitSourceName(limit->source)}});
  out.push_back(std::move(f));
}

// What DiagCollector has recorded about snapshots, read once per scrape.
struct SnapshotFigures {
  std::uint64_t failures = 0;
  double last_duration = 0;
  double last_unix = 0;
  std::uint64_t written[kTriggerCount] = {};  // by Trigger
};

void appendSnapshots(std::vector<MetricFamily>& out, const SnapshotFigures& s) {
  auto failures =
      family("leakscope_snapshot_failures_total",
             "Snapshots that could not be written (see the log for why).", MetricType::Counter);
  add(failures, d(s.failures));
  auto last_duration = family("leakscope_snapshot_last_duration_seconds",
                              "Wall time the last written snapshot took.", MetricType::Gauge);
  add(last_duration, s.last_duration);
  auto last_time =
      family("leakscope_snapshot_last_timestamp_seconds",
             "Unix time of the last written snapshot (0: none yet).", MetricType::Gauge);
  add(last_time, s.last_unix);
  auto snapshots =
      family("leakscope_snapshots_total", "Snapshots written, by trigger.", MetricType::Counter);
  for (Trigger t : kAllTriggers) {
    add(snapshots, d(s.written[static_cast<int>(t)]), {{"trigger", triggerName(t)}});
  }
  out.push_back(std::move(failures));
  out.push_back(std::move(last_duration));
  out.push_back(std::move(last_time));
  out.push_back(std::move(snapshots));
}

void appendSockets(std::vector<MetricFamily>& out, const PeerNames& peer_names) {
  auto sockets = family("leakscope_sockets",
                        "Socket fds of this process by protocol, state and remote peer name.",
                        MetricType::Gauge);
  if (auto list = listOwnSockets(); list.ok()) {
    namePeers(*list, peer_names);
    std::map<std::tuple<std::string, std::string, std::string>, int> groups;
    for (const OwnSocket& s : *list)
      ++groups[{s.protocol, s.state.empty() ? "UNKNOWN" : s.state, s.peer}];
    for (const auto& [key, n] : groups) {
      add(sockets, n,
          {{"peer", std::get<2>(key)},
           {"protocol", std::get<0>(key)},
           {"state", std::get<1>(key)}});
    }
  }
  out.push_back(std::move(sockets));
}

void appendTracked(std::vector<MetricFamily>& out) {
  auto bytes = family("leakscope_tracked_bytes", "Bytes retained by live tracked objects, by kind.",
                      MetricType::Gauge);
  auto created = family("leakscope_tracked_created_total", "Tracked objects created, by kind.",
                        MetricType::Counter);
  auto destroyed = family("leakscope_tracked_destroyed_total",
                          "Tracked objects destroyed (released), by kind.", MetricType::Counter);
  auto live = family("leakscope_tracked_objects",
                     "Live tracked objects by kind; always created_total - destroyed_total.",
                     MetricType::Gauge);
  for (Kind* k : allKinds()) {
    const Kind::Counts c = k->counts();
    const std::vector<ClientMetric::Label> label = {{"kind", k->name()}};
    add(bytes, d(k->liveBytes()), label);
    add(created, d(c.created), label);
    add(destroyed, d(c.destroyed), label);
    add(live, d(c.live), label);
  }
  out.push_back(std::move(bytes));
  out.push_back(std::move(created));
  out.push_back(std::move(destroyed));
  out.push_back(std::move(live));
}

// The standard process_* families (the names Prometheus client libraries use).
void appendProcess(std::vector<MetricFamily>& out) {
  auto p = readProcessStats();
  if (!p.ok()) return;
  auto cpu = family("process_cpu_seconds_total", "User and system CPU time spent in seconds.",
                    MetricType::Counter);
  add(cpu, p->cpu_seconds);
  auto max_fds =
      family("process_max_fds", "Maximum number of open file descriptors.", MetricType::Gauge);
  add(max_fds, d(p->max_fds));
  auto open_fds = family("process_open_fds", "Number of open file descriptors.", MetricType::Gauge);
  add(open_fds, d(p->open_fds));
  auto rss =
      family("process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::Gauge);
  add(rss, d(p->rss_bytes));
  auto start = family("process_start_time_seconds",
                      "Start time of the process since unix epoch in seconds.", MetricType::Gauge);
  add(start, p->start_time_unix);
  auto threads =
      family("process_threads", "Number of OS threads in the process.", MetricType::Gauge);
  add(threads, d(p->threads));
  auto vm =
      family("process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::Gauge);
  add(vm, d(p->virtual_bytes));
  for (auto* f : {&cpu, &max_fds, &open_fds, &rss, &start, &threads, &vm}) {
    out.push_back(std::move(*f));
  }
}

}  // namespace

DiagCollector::DiagCollector(PeerNames peer_names) : peer_names_(std::move(peer_names)) {}

void DiagCollector::recordSnapshot(Trigger trigger, double duration_seconds, double unix_seconds) {
  snapshots_[static_cast<int>(trigger)].fetch_add(1);
  last_duration_.store(duration_seconds);
  last_unix_.store(unix_seconds);
}

void DiagCollector::recordSnapshotFailure() { failures_.fetch_add(1); }

// One sorted list: allocator, memory limit, snapshots, sockets, tracked, then process_*.
std::vector<MetricFamily> DiagCollector::Collect() const {
  std::vector<MetricFamily> out;
  appendAllocator(out);
  appendMemoryLimit(out);
  SnapshotFigures figures;
  figures.failures = failures_.load();
  figures.last_duration = last_duration_.load();
  figures.last_unix = last_unix_.load();
  for (int t = 0; t < kTriggerCount; ++t) figures.written[t] = snapshots_[t].load();
  appendSnapshots(out, figures);
  appendSockets(out, peer_names_);
  appendTracked(out);
  appendProcess(out);
  return out;
}

}  // namespace leakscope::diag
