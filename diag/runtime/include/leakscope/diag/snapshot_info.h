// What writing one snapshot file produced: the in-process writer's
// SnapshotWriter::write() and `leakscope capture` (capture.h) both return it.
#pragma once

#include <cstdint>
#include <string>

namespace leakscope::diag {

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

}  // namespace leakscope::diag
