// Prometheus export of the diag figures (reference: docs/metrics.md).
//
// A prometheus::Collectable read at scrape time: tracked objects per kind,
// the process's sockets by protocol/state/peer name, allocator and process
// figures, and snapshot counters. Register it on any prometheus-cpp Exposer,
// or let `Runtime` serve it. Thread-safe: Collect() may run concurrently with
// everything else; the snapshot counters are atomics.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <atomic>
#include <vector>

#include "leakscope/diag/snapshot_writer.h"
#include "leakscope/diag/sockets.h"

namespace leakscope::diag {

class DiagCollector : public prometheus::Collectable {
 public:
  explicit DiagCollector(PeerNames peer_names = {});

  std::vector<prometheus::MetricFamily> Collect() const override;

  // Called by whoever writes snapshots.
  void recordSnapshot(Trigger trigger, double duration_seconds, double unix_seconds);
  void recordSnapshotFailure();

 private:
  PeerNames peer_names_;
  std::atomic<std::uint64_t> snapshots_[kTriggerCount] = {};  // by Trigger
  std::atomic<std::uint64_t> failures_{0};
  std::atomic<double> last_duration_{0};
  std::atomic<double> last_unix_{0};
};

}  // namespace leakscope::diag
