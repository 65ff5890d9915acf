// `leakscope capture PID`: a snapshot of another process, taken from the
// outside, in any language. The file is an ordinary leakscope-snapshot
// current-version document (docs/snapshot-format.md) with trigger.reason
// "capture": the process's figures (/proc/PID), the memory limit of its
// cgroup, its sockets joined with its network namespace's tables, and no
// allocator figures, tracked objects or heap profile (those need the
// process's cooperation). Files are DIR/<comm>.<pid>.<seq>.lsnap, written by
// the snapshot writer's rules (snapshot_writer.h: a safe directory, atomic,
// 0600).
//
// In leakscope::collect (no tcmalloc): the `leakscope` CLI links it.
// A Capture is a value; its calls read /proc at the time of the call.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "leakscope/diag/result.h"
#include "leakscope/diag/snapshot_info.h"

namespace leakscope::diag {

// trigger.reason of a capture.
inline constexpr std::string_view kCaptureReason = "capture";

class Capture {
 public:
  // Finds process `pid` and checks this user may look at it. Errors, each
  // naming the pid: no such process (or it has exited: a zombie);
  // Errc::kPermission when /proc/PID/fd cannot be read (another user's
  // process: capture needs the same user, or root / CAP_SYS_PTRACE).
  static Result<Capture> open(int pid);

  int pid() const { return pid_; }
  // "<comm>.<pid>": the file name prefix (comm with anything but letters,
  // digits, '-' and '_' replaced by '_').
  const std::string& name() const { return name_; }

  // True while the process open() found is still running: not exited, not a
  // zombie, and its pid not reused (same start time).
  bool alive() const;

  // Whether one of the process's fds is the file at `path` (same device and
  // inode): a writer that still has it open. Errors when /proc/PID/fd
  // cannot be read any more.
  Result<bool> holdsOpen(const std::string& path) const;

  // Writes one capture into `dir` (created 0700 if missing). `detail` is
  // trigger.detail, verbatim. If the process exits before the file is
  // complete, nothing is written and the error says so. `heap_snapshot`: the
  // path of the heap snapshot the process wrote just before (capture
  // --signal --wait); its file name goes into trigger.heap_snapshot, so the
  // join pairs the two however long the dump took.
  Result<SnapshotInfo> write(const std::string& dir, std::string_view detail,
                             std::string_view heap_snapshot = {}) const;

 private:
  Capture(int pid, std::uint64_t start_ticks, std::string name)
      : pid_(pid), start_ticks_(start_ticks), name_(std::move(name)) {}

  int pid_;
  std::uint64_t start_ticks_;  // /proc/PID/stat starttime: tells a reused pid apart
  std::string name_;
};

}  // namespace leakscope::diag
