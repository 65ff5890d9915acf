// Snapshot files: one self-contained, versioned JSON document per snapshot
// (spec: docs/snapshot-format.md), holding the process and allocator figures,
// every tracked object, every socket fd joined to its owner, and the heap
// profile symbolized in-process.
//
// Files are DIR/<name>.<seq>.lsnap (seq zero-padded, continuing after the
// highest already in DIR), written to a new DIR/.<name>.<seq>.<pid>.<random>.tmp
// (O_EXCL, never through a link), fsynced and renamed into place without
// replacing any file, mode 0600. Temp files of dead writers are removed.
// After each write, the oldest files beyond `keep` or beyond `max_bytes` in
// total are removed.
//
// DIR must be safe to write as this user: a real directory (not a symbolic
// link) owned by the effective user that group and others cannot write. A
// missing DIR is created 0700 (missing parents too); an existing one is never
// chmodded — one that fails the rule is refused with an error naming it and
// the reason. Only regular files of the effective user are ever removed from
// it; links and other entries are never followed, counted or removed.
//
// DIR is opened and checked again for every snapshot, and every step of that
// snapshot is relative to the open descriptor. The writer does not keep it
// open between snapshots on purpose: a directory an operator moved away,
// removed or recreated is then found (or recreated) at its configured path,
// re-checked, instead of snapshots going on into a moved or deleted one. The
// extra open and fstat per snapshot cost nothing next to the snapshot.
//
// Memory: the document is streamed to disk; the extra memory is one shard of
// one kind's object records, the heap profile text and the symbol cache — not
// a copy of the heap.
//
// Thread-safe: write() may be called from any thread; calls are serialized.
#pragma once

#include <chrono>
#include <cstdint>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "leakscope/diag/heap_profile.h"
#include "leakscope/diag/result.h"
#include "leakscope/diag/snapshot_info.h"
#include "leakscope/diag/sockets.h"

namespace leakscope::diag {

struct SnapshotOptions {
  std::string dir;              // created 0700 if missing; see the rules above
  std::string name;             // file name prefix; default: the executable's name
  std::uint64_t keep = 0;       // keep at most this many files (0 = no limit)
  std::uint64_t max_bytes = 0;  // keep at most this many bytes of files (0 = no limit)
  HeapMode heap_mode = HeapMode::kSampled;
  PeerNames peer_names;  // names written beside each socket's remote endpoint
  // Non-empty: no heap capture; every snapshot's heap section gives this reason.
  std::string heap_unavailable_reason;
};

// The executable's file name ("process" if unknown): the default name, and
// what the preload agent names its snapshots by (PROGRAM.PID).
std::string defaultSnapshotName();

// What made a snapshot: SIGUSR2, Runtime::snapshot(), the interval, or RSS
// first crossing a fraction of the memory limit (memory_pressure.h).
enum class Trigger { kSignal, kApi, kInterval, kMemoryPressure };
inline constexpr Trigger kAllTriggers[] = {Trigger::kSignal, Trigger::kApi, Trigger::kInterval,
                                           Trigger::kMemoryPressure};
inline constexpr int kTriggerCount = static_cast<int>(std::size(kAllTriggers));
// "signal", "api", "interval", "memory_pressure": the snapshot's
// trigger.reason and the trigger label of leakscope_snapshots_total.
const char* triggerName(Trigger t);

class Symbolizer;
class JsonWriter;
class SnapshotFiles;

class SnapshotWriter {
 public:
  // Does not touch the file system, except in full heap mode: then it
  // creates DIR and DIR/.gperftools (0700, the scratch directory for
  // gperftools' own dumps, which must be a private directory of this user;
  // if it is not, full profiling is not started and each snapshot's heap
  // section says why). Otherwise the first write() creates DIR.
  explicit SnapshotWriter(SnapshotOptions options);
  ~SnapshotWriter();
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  // Checks that the directory exists or can be created with mode 0700, is
  // writable, and follows the rules above. Errors name the directory and the
  // reason.
  Status prepareDir();

  // Writes one snapshot. `detail` says more about the trigger ("SIGUSR2",
  // "after schedule 42"); it is written verbatim, so never put a secret in it.
  Result<SnapshotInfo> write(Trigger trigger, std::string_view detail = {});

  const SnapshotOptions& options() const { return options_; }

 private:
  void writeDocument(JsonWriter& w, Trigger trigger, std::string_view detail,
                     std::chrono::steady_clock::time_point t0, SnapshotInfo& info);

  SnapshotOptions options_;
  std::mutex mu_;
  std::unique_ptr<SnapshotFiles> files_;  // the directory's rules (snapshot_files.h)
  std::string gperftools_dir_;            // full mode: gperftools' own dumps, emptied
  std::string heap_unavailable_;          // why full mode could not start, or empty
  std::unique_ptr<HeapProfiler> heap_;
  std::unique_ptr<Symbolizer> symbolizer_;
};

}  // namespace leakscope::diag
