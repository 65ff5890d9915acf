// Runtime: the part of leakscope a daemon starts in main. It owns
//  - the snapshot thread: snapshots on SIGUSR2, on an interval, on request,
//    and when RSS first crosses a fraction of the memory limit (checked on
//    the same thread's timer, see memory_pressure.h); the signal handler
//    only writes one byte to a pipe, all work runs in a thread started with
//    every signal blocked;
//  - the /metrics endpoint (HttpServer: bounded connections, header size
//    and time per request, see http_server.h), 127.0.0.1 by default.
//
// Run-time problems never stop the daemon: an unwritable snapshot directory
// or a metrics address that cannot be bound is logged with the reason and the
// rest carries on (`metricsStatus()`, `snapshot()` return the error too).
// Only one Runtime may exist at a time (the snapshot signal is process-wide).
// A program that installs its own handler for that signal later keeps it: the
// destructor puts the old disposition back only while its own is in place.
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "leakscope/core/listen_address.h"
#include "leakscope/diag/heap_profile.h"
#include "leakscope/diag/http_server.h"
#include "leakscope/diag/memory_thresholds.h"
#include "leakscope/diag/result.h"
#include "leakscope/diag/snapshot_writer.h"
#include "leakscope/diag/sockets.h"

namespace prometheus {
class Collectable;
}  // namespace prometheus

namespace leakscope::diag {

class DiagCollector;

struct Config {
  // Snapshots. An empty dir turns snapshots (and the SIGUSR2 handler) off.
  std::string snapshot_dir;
  std::string snapshot_name;                       // file prefix; default: executable name
  std::uint64_t snapshot_keep = 0;                 // keep the newest N files (0 = all)
  std::uint64_t snapshot_max_bytes = 0;            // and at most this many bytes (0 = no limit)
  std::chrono::milliseconds snapshot_interval{0};  // 0 = no interval snapshots
  bool snapshot_on_sigusr2 = true;                 // on snapshot_signal, whichever it is
  // The snapshot signal. SIGUSR2 unless the program uses that one itself
  // (`leakscope run --signal`); core::parseSignal names the usable ones.
  int snapshot_signal = SIGUSR2;
  // Start the snapshot thread only when the first snapshot is asked for,
  // from the signal's handler at a point where that is safe (the preload
  // agent: until then the program has no thread of ours, and glibc and the
  // kernel stay on their single-threaded paths). Only when nothing needs the
  // thread sooner: no interval, no memory-pressure check, no /metrics. On a
  // platform without the rule (not x86-64) the thread starts at once.
  bool snapshot_thread_on_demand = false;
  // `leakscope run`'s watcher (core/watch_protocol.h): its sigqueue()
  // values on the snapshot signal ask for interval and memory-pressure
  // snapshots. 0 = none; other senders' values are plain signals.
  pid_t watcher_pid = 0;
  HeapMode heap_mode = HeapMode::kSampled;
  // Set when this process has no heap profile to give (the preload agent in
  // a program on another allocator): written as the heap section's reason.
  // Heap capture is off then, whatever heap_mode says.
  std::string heap_unavailable_reason;
  // Snapshots before the OOM kill (trigger "memory_pressure"): one when RSS
  // first reaches each fraction of the memory limit (cgroup v2 memory.max,
  // cgroup v1 memory.limit_in_bytes, else MemTotal), and again only after RSS
  // fell 5 points of the limit below it. Checked every
  // memory_check_interval with one read of /proc/self/statm. Empty or an
  // interval of 0 turns it off; invalid fractions are logged and turn it off
  // (validateMemoryPressureFractions, memory_thresholds.h).
  std::vector<double> memory_pressure_fractions{kDefaultMemoryPressureFractions.begin(),
                                                kDefaultMemoryPressureFractions.end()};
  std::chrono::milliseconds memory_check_interval = kDefaultMemoryCheckInterval;

  // Metrics. An empty address serves nothing (use collector() yourself).
  // "HOST:PORT" or "[V6]:PORT"; port 0 picks a free port (see metricsAddress()).
  std::string metrics_address = "127.0.0.1:9477";
  // What the endpoint tolerates from its clients (see HttpServer).
  HttpLimits metrics_limits;
  PeerNames peer_names;  // remote endpoint -> low-cardinality name

  // Where leakscope reports problems; default: one line on stderr.
  std::function<void(std::string_view)> log;
};

// Checks "HOST:PORT" / "[V6]:PORT" syntax (core: `leakscope run` checks
// --metrics with it before the program starts).
using core::validateListenAddress;
// validateMemoryPressureFractions: memory_thresholds.h.

class Runtime {
 public:
  // Throws std::logic_error only if another Runtime is alive.
  explicit Runtime(Config config);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Writes a snapshot now, in the calling thread (serialized with the others).
  Result<SnapshotInfo> snapshot(std::string_view detail = "api");

  // "127.0.0.1:PORT" as actually bound; "" when not serving.
  std::string metricsAddress() const { return metrics_bound_; }
  const Status& metricsStatus() const { return metrics_status_; }

  // For the child of a fork(), which has no threads but the caller: gives
  // `r` up without its destructor (its snapshot thread exists only in the
  // parent: joining it would fail) so that a new Runtime can start. Its pipe
  // and the child's copy of the /metrics listening socket are closed; the
  // object itself and the /metrics server's memory are left behind on
  // purpose (freeing them would run code that expects the threads).
  // The preload agent calls it from its pthread_atfork child handler.
  static void abandonAfterFork(std::unique_ptr<Runtime> r);

  // Adds the daemon's own metrics to the same endpoint.
  void registerCollectable(const std::weak_ptr<prometheus::Collectable>& c);
  std::shared_ptr<DiagCollector> collector() const { return collector_; }

 private:
  class SnapshotThread;  // the thread and the pipe that wakes it (runtime.cc)

  // Start-up steps, in the order the constructor takes them.
  void startMetrics();
  void createSnapshotWriter();
  void installSnapshotSignal();
  void restoreSnapshotSignal();
  // The periodic jobs of the snapshot thread: interval snapshots and the
  // memory-pressure check, as configured.
  void addIntervalSnapshots();
  void addMemoryPressureCheck();

  void log(const std::string& line) const;
  void record(const Result<SnapshotInfo>& r, Trigger trigger);
  // Writes and records one snapshot (the snapshot thread's work).
  void takeSnapshot(Trigger trigger, std::string_view detail);

  Config config_;
  std::shared_ptr<DiagCollector> collector_;
  std::unique_ptr<SnapshotWriter> writer_;
  std::mutex collectables_mu_;
  std::vector<std::weak_ptr<prometheus::Collectable>> collectables_;  // served on /metrics
  std::unique_ptr<HttpServer> http_;  // after what its handler reads
  std::string metrics_bound_;
  Status metrics_status_ = Ok{};
  bool handler_installed_ = false;
  // Last: its thread starts after everything it uses exists.
  std::unique_ptr<SnapshotThread> snapshot_thread_;
};

}  // namespace leakscope::diag
