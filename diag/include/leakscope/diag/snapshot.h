// Snapshot files: one self-contained, versioned JSON document per snapshot
// (spec: docs/snapshot-format.md), holding the process and allocator figures,
// every tracked object, every socket fd joined to its owner, and the heap
// profile symbolized in-process.
//
// Files are DIR/<name>.<seq>.lsnap (seq zero-padded, continuing after the
// highest already in DIR), written to DIR/.<name>.<seq>.<pid>.tmp, fsynced and
// renamed into place without replacing any file, mode 0600; DIR is created
// 0700. Temp files of dead writers are removed. After each write, the oldest
// files beyond `keep` or beyond `max_bytes` in total are removed.
//
// Memory: the document is streamed to disk; the extra memory is one shard of
// one kind's object records, the heap profile text and the symbol cache — not
// a copy of the heap.
//
// Thread-safe: write() may be called from any thread; calls are serialized.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "leakscope/diag/heap_profile.h"
#include "leakscope/diag/result.h"
#include "leakscope/diag/sockets.h"

namespace leakscope::diag {

inline constexpr std::string_view kSnapshotFormat = "leakscope-snapshot";
inline constexpr int kSnapshotVersion = 1;

struct SnapshotOptions {
  std::string dir;              // created 0700 if missing
  std::string name;             // file name prefix; default: the executable's name
  std::uint64_t keep = 0;       // keep at most this many files (0 = no limit)
  std::uint64_t max_bytes = 0;  // keep at most this many bytes of files (0 = no limit)
  HeapMode heap_mode = HeapMode::kSampled;
  PeerNames peer_names;  // names written beside each socket's remote endpoint
};

enum class Trigger { kSignal, kApi, kInterval };
const char* triggerName(Trigger t);

struct SnapshotInfo {
  std::string path;
  std::uint64_t sequence = 0;
  std::uint64_t bytes = 0;
  double duration_seconds = 0;
  std::uint64_t objects = 0;
  std::uint64_t sockets = 0;
  std::uint64_t heap_sites = 0;
  // Set when the snapshot was written but something around it failed
  // (e.g. rotation could not remove an old file).
  std::string warning;
};

class Symbolizer;

class SnapshotWriter {
 public:
  // Does not touch the file system; the first write() creates the directory.
  explicit SnapshotWriter(SnapshotOptions options);
  ~SnapshotWriter();
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  // Checks that the directory exists or can be created with mode 0700 and is
  // writable. Errors name the directory and the reason.
  Status prepareDir();

  // Writes one snapshot. `detail` says more about the trigger ("SIGUSR2",
  // "after schedule 42"); it is written verbatim, so never put a secret in it.
  Result<SnapshotInfo> write(Trigger trigger, std::string_view detail = {});

  const SnapshotOptions& options() const { return options_; }

 private:
  Result<SnapshotInfo> writeLocked(Trigger trigger, std::string_view detail);
  Status rotate(const std::string& just_written);
  std::uint64_t nextSequence();

  SnapshotOptions options_;
  std::mutex mu_;
  std::uint64_t next_seq_ = 0;  // 0 = not yet scanned
  std::string gperftools_dir_;  // full mode: gperftools' own dumps, emptied
  std::unique_ptr<HeapProfiler> heap_;
  std::unique_ptr<Symbolizer> symbolizer_;
};

}  // namespace leakscope::diag
