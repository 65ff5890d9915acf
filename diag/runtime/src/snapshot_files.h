// The files of snapshots in one directory, by the rules snapshot_writer.h
// states (a safe directory of this user, a temp file renamed into place
// without replacing anything, mode 0600, sequence numbers continuing after the
// highest in DIR, rotation by count and bytes). The in-process SnapshotWriter
// and `leakscope capture` (capture.h) both write through it; they differ only
// in the document they stream. No tcmalloc here: leakscope::collect.
//
// Not thread-safe: the owner serializes write() (SnapshotWriter holds a mutex).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "json_writer.h"
#include "leakscope/core/unique_fd.h"
#include "leakscope/diag/result.h"
#include "leakscope/diag/snapshot_info.h"

namespace leakscope::diag {

// errno as Errc (EACCES/EPERM/EROFS: kPermission, ENOSPC/EDQUOT: kNoSpace)
// with "what: strerror".
Error sysError(const std::string& what, int err);

// Opens `file` (relative to `at_fd`) as a directory, never through a link,
// and refuses it unless the effective user owns it and no bit of
// `forbidden_mode` is set. `what` names it in errors.
Result<core::UniqueFd> openOwnDir(int at_fd, const std::string& file, const std::string& what,
                                  mode_t forbidden_mode);
// The snapshot directory, created 0700 (with missing parents) if absent.
// Refused unless it is a real directory (not a link) of the effective user
// that group and others cannot write.
Result<core::UniqueFd> openSnapshotDir(const std::string& dir);
// A regular file of the effective user: the only kind of entry the writer
// removes.
bool isOwnRegularFile(int dir_fd, const char* file);

class SnapshotFiles {
 public:
  // Files DIR/<name>.<seq>.lsnap; keep / max_bytes 0 = no limit.
  SnapshotFiles(std::string dir, std::string name, std::uint64_t keep, std::uint64_t max_bytes);

  const std::string& dir() const { return dir_; }
  Status prepareDir() const;

  // Streams one document through `body` into a new temp file and renames it
  // into place. `body` gets the sequence and path in `info` and fills what it
  // counts; when it returns an error (or the write fails) nothing is kept.
  // Fills bytes, duration_seconds and warning (a rotation problem).
  using Body = std::function<Status(JsonWriter&, SnapshotInfo&)>;
  Result<SnapshotInfo> write(const Body& body);

 private:
  // The directory is open as `dir_fd`; file names are relative to it.
  Status rotate(int dir_fd, const std::string& just_written);
  std::uint64_t nextSequence(int dir_fd);
  std::string fileNameFor(std::uint64_t sequence) const;
  Status commit(int dir_fd, const std::string& temp_file, SnapshotInfo& info);

  std::string dir_;
  std::string name_;
  std::uint64_t keep_;
  std::uint64_t max_bytes_;
  std::uint64_t next_seq_ = 0;  // 0 = not yet scanned
};

}  // namespace leakscope::diag
