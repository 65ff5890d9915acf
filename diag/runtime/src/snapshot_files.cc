#include "snapshot_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstring>
#include <utility>
#include <vector>

namespace leakscope::diag {

using core::openDirStream;
using core::UniqueDir;
using core::UniqueFd;

namespace {

Errc errcFor(int err) {
  switch (err) {
    case EACCES:
    case EPERM:
    case EROFS:
      return Errc::kPermission;
    case ENOSPC:
    case EDQUOT:
      return Errc::kNoSpace;
    default:
      return Errc::kIo;
  }
}

// ---- the snapshot directory -------------------------------------------------
//
// The directory is opened once per snapshot (O_DIRECTORY | O_NOFOLLOW) and
// checked; every later step is relative to that descriptor (openat,
// renameat2, unlinkat, fstatat, fdopendir), so swapping a path component after
// the checks cannot redirect any step. Entries are never followed: a link
// planted in the directory is never opened, never counted as a snapshot and
// never removed. Only regular files of the effective user are ever removed.

std::string octalMode(mode_t mode) {
  char buf[8];
  snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// mkdir -p: each missing level is created 0700; existing levels are left as
// they are (never chmodded).
Status makeMissingDirs(const std::string& dir) {
  for (std::size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    const std::string part = dir.substr(0, pos);
    if (mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
      const int err = errno;
      return sysError("snapshot dir " + dir + ": cannot create " + part, err);
    }
  }
  return Ok{};
}

// Matches "<name>.<digits>.lsnap"; returns the sequence or 0.
std::uint64_t sequenceOf(const std::string& file, const std::string& name) {
  const std::string suffix = ".lsnap";
  if (file.size() <= name.size() + 1 + suffix.size()) return 0;
  if (file.compare(0, name.size(), name) != 0 || file[name.size()] != '.') return 0;
  if (file.compare(file.size() - suffix.size(), suffix.size(), suffix) != 0) return 0;
  const std::string digits =
      file.substr(name.size() + 1, file.size() - name.size() - 1 - suffix.size());
  std::uint64_t seq = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seq);
  if (digits.empty() || ec != std::errc() || p != digits.data() + digits.size()) return 0;
  return seq;
}

// 48 random bits as 12 hex digits: the part of a temp file name nobody can
// guess in advance.
std::string randomTag() {
  static std::atomic<std::uint64_t> fallback{0};
  std::uint64_t r = 0;
  if (getrandom(&r, sizeof r, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof r)) {
    r = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
        (fallback.fetch_add(1) * 0x9e3779b97f4a7c15ULL);
  }
  char buf[16];
  snprintf(buf, sizeof buf, "%012llx", static_cast<unsigned long long>(r & 0xffffffffffffULL));
  return buf;
}

// The temp file of a snapshot being written, in the directory open as
// `dir_fd` (not owned; it outlives this object): closed and removed unless
// release()d after a successful rename, on every path including exceptions.
class TempFile {
 public:
  // Creates ".<stem>.<pid>.<random>.tmp", a file that did not exist before
  // (O_EXCL, never through a link), mode 0600. The random part means a name
  // planted in advance is never the one used; a clash just takes another.
  static Result<TempFile> create(int dir_fd, const std::string& dir, const std::string& stem) {
    const std::string base = "." + stem + "." + std::to_string(getpid()) + ".";
    for (int attempt = 0;; ++attempt) {
      std::string file = base + randomTag() + ".tmp";
      UniqueFd fd(
          openat(dir_fd, file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (fd.valid()) return TempFile(dir_fd, std::move(file), std::move(fd));
      if (const int err = errno; err != EEXIST || attempt == 100) {
        return sysError("snapshot " + dir + "/" + file + ": cannot create", err);
      }
    }
  }
  TempFile(TempFile&& o) noexcept
      : dir_fd_(o.dir_fd_), file_(std::exchange(o.file_, {})), fd_(std::move(o.fd_)) {}
  TempFile& operator=(TempFile&&) = delete;
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    fd_.reset();
    if (!file_.empty()) unlinkat(dir_fd_, file_.c_str(), 0);
  }

  int fd() const { return fd_.get(); }
  const std::string& file() const { return file_; }
  // Closes the fd; returns errno of close, or 0.
  int close() { return fd_.close(); }
  void release() { file_.clear(); }

 private:
  TempFile(int dir_fd, std::string file, UniqueFd fd)
      : dir_fd_(dir_fd), file_(std::move(file)), fd_(std::move(fd)) {}

  int dir_fd_;
  std::string file_;  // empty once released
  UniqueFd fd_;
};

bool allDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// ".<name>.<seq>.<pid>.<random>.tmp" (or, from older writers,
// ".<name>.<seq>.<pid>.tmp"): a temp file of this writer's name; returns its
// pid or 0.
int tempPidOf(const std::string& file, const std::string& name) {
  const std::string prefix = "." + name + ".";
  const std::string suffix = ".tmp";
  if (file.size() <= prefix.size() + suffix.size() || file.compare(0, prefix.size(), prefix) != 0 ||
      file.compare(file.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return 0;
  }
  const std::string_view middle =
      std::string_view(file).substr(prefix.size(), file.size() - prefix.size() - suffix.size());
  const std::size_t dot1 = middle.find('.');
  if (dot1 == std::string_view::npos || !allDigits(middle.substr(0, dot1))) return 0;
  std::string_view pid_text = middle.substr(dot1 + 1);
  if (const std::size_t dot2 = pid_text.find('.'); dot2 != std::string_view::npos) {
    pid_text = pid_text.substr(0, dot2);
  }
  int pid = 0;
  auto [p, ec] = std::from_chars(pid_text.data(), pid_text.data() + pid_text.size(), pid);
  return ec == std::errc() && p == pid_text.data() + pid_text.size() ? pid : 0;
}

// Removes temp files left by writers that died mid-snapshot (their pid is
// gone); only regular files of this user.
void removeStaleTemps(int dir_fd, const std::string& name) {
  std::vector<std::string> stale;
  if (UniqueDir d = openDirStream(dir_fd)) {
    while (dirent* e = readdir(d.get())) {
      const int pid = tempPidOf(e->d_name, name);
      if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) stale.emplace_back(e->d_name);
    }
  }
  for (const auto& f : stale) {
    if (isOwnRegularFile(dir_fd, f.c_str())) unlinkat(dir_fd, f.c_str(), 0);
  }
}

struct SnapFile {
  std::uint64_t seq;
  std::string file;  // name in the directory
  std::uint64_t bytes;
  bool own;  // a regular file of this user: one this writer may remove
};

// Every entry named like a snapshot, oldest first; never follows a link.
std::vector<SnapFile> listSnapshots(int dir_fd, const std::string& name) {
  std::vector<SnapFile> out;
  UniqueDir d = openDirStream(dir_fd);
  if (!d) return out;
  while (dirent* e = readdir(d.get())) {
    const std::uint64_t seq = sequenceOf(e->d_name, name);
    if (seq == 0) continue;
    struct stat st {};
    if (fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    const bool own = S_ISREG(st.st_mode) && st.st_uid == geteuid();
    out.push_back(SnapFile{seq, e->d_name, own ? static_cast<std::uint64_t>(st.st_size) : 0, own});
  }
  std::sort(out.begin(), out.end(),
            [](const SnapFile& a, const SnapFile& b) { return a.seq < b.seq; });
  return out;
}

}  // namespace

Error sysError(const std::string& what, int err) {
  return Error{errcFor(err), what + ": " + std::strerror(err)};
}

bool isOwnRegularFile(int dir_fd, const char* file) {
  struct stat st {};
  if (fstatat(dir_fd, file, &st, AT_SYMLINK_NOFOLLOW) != 0) return false;
  return S_ISREG(st.st_mode) && st.st_uid == geteuid();
}

Result<UniqueFd> openOwnDir(int at_fd, const std::string& file, const std::string& what,
                            mode_t forbidden_mode) {
  UniqueFd fd(openat(at_fd, file.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) {
    const int err = errno;
    struct stat st {};
    if (err == ELOOP ||
        (fstatat(at_fd, file.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))) {
      return Error{Errc::kPermission,
                   what +
                       ": is a symbolic link; refusing it (a link can be re-pointed "
                       "elsewhere): give the real directory"};
    }
    if (err == ENOTDIR) return Error{Errc::kInvalidArgument, what + ": not a directory"};
    return sysError(what, err);
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) {
    const int err = errno;
    return sysError(what, err);
  }
  if (st.st_uid != geteuid()) {
    return Error{Errc::kPermission,
                 what + ": owned by uid " + std::to_string(st.st_uid) +
                     ", not by this process's user (uid " + std::to_string(geteuid()) +
                     "); refusing it: its owner could read, replace or plant files in it"};
  }
  if ((st.st_mode & forbidden_mode) != 0) {
    return Error{Errc::kPermission,
                 what + ": mode " + octalMode(st.st_mode) +
                     ((forbidden_mode & 044) != 0 ? " is open to group or others (must be 0700)"
                                                  : " lets group or others write") +
                     "; refusing it: another user could plant files or links in it "
                     "(it is never chmodded: use a directory only you can write)"};
  }
  return fd;
}

Result<UniqueFd> openSnapshotDir(const std::string& dir) {
  if (dir.empty()) return Error{Errc::kInvalidArgument, "no snapshot directory configured"};
  if (Status s = makeMissingDirs(dir); !s.ok()) return s.error();
  auto fd = openOwnDir(AT_FDCWD, dir, "snapshot dir " + dir, S_IWGRP | S_IWOTH);
  if (!fd.ok()) return fd;
  // Root passes any mode bits; others need the owner's write and search bits.
  if (faccessat(fd->get(), ".", W_OK | X_OK, AT_EACCESS) != 0) {
    const int err = errno;
    return sysError("snapshot dir " + dir + ": not writable", err);
  }
  return fd;
}

SnapshotFiles::SnapshotFiles(std::string dir, std::string name, std::uint64_t keep,
                             std::uint64_t max_bytes)
    : dir_(std::move(dir)), name_(std::move(name)), keep_(keep), max_bytes_(max_bytes) {
  // With a trailing slash, O_NOFOLLOW would follow a link named like the dir.
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
}

Status SnapshotFiles::prepareDir() const {
  auto dir = openSnapshotDir(dir_);
  if (!dir.ok()) return dir.error();
  return Ok{};
}

std::uint64_t SnapshotFiles::nextSequence(int dir_fd) {
  if (next_seq_ == 0) {
    removeStaleTemps(dir_fd, name_);
    // Every entry named like a snapshot counts here, ours or not: a name
    // that is taken cannot be renamed onto anyway.
    const auto existing = listSnapshots(dir_fd, name_);
    next_seq_ = existing.empty() ? 1 : existing.back().seq + 1;
  }
  return next_seq_++;
}

std::string SnapshotFiles::fileNameFor(std::uint64_t sequence) const {
  char seq[32];
  snprintf(seq, sizeof seq, "%06llu", static_cast<unsigned long long>(sequence));
  return name_ + "." + seq + ".lsnap";
}

Result<SnapshotInfo> SnapshotFiles::write(const Body& body) {
  const auto t0 = std::chrono::steady_clock::now();
  // Opened and checked again for every snapshot (see snapshot_writer.h for
  // why); every step below is relative to this descriptor.
  auto dir = openSnapshotDir(dir_);
  if (!dir.ok()) return dir.error();
  const int dir_fd = dir->get();

  SnapshotInfo info;
  info.sequence = nextSequence(dir_fd);
  const std::string final_file = fileNameFor(info.sequence);
  info.path = dir_ + "/" + final_file;
  auto file = TempFile::create(dir_fd, dir_, final_file.substr(0, final_file.rfind('.')));
  if (!file.ok()) return file.error();
  const std::string tmp_path = dir_ + "/" + file->file();

  JsonWriter w(file->fd());
  if (Status s = body(w, info); !s.ok()) return s.error();  // the temp file goes
  int err = w.error();
  if (err == 0 && fsync(file->fd()) != 0) err = errno;
  if (const int close_err = file->close(); err == 0) err = close_err;
  if (err != 0) return sysError("snapshot " + tmp_path + ": write failed", err);
  info.bytes = w.bytesWritten();
  if (max_bytes_ != 0 && info.bytes > max_bytes_) {
    return Error{Errc::kNoSpace, "snapshot " + info.path + " is " + std::to_string(info.bytes) +
                                     " bytes, more than the whole byte budget (" +
                                     std::to_string(max_bytes_) + "); not kept"};
  }
  if (Status s = commit(dir_fd, file->file(), info); !s.ok()) return s.error();
  file->release();
  info.duration_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return info;
}

// Renames the complete temp file into place, never replacing a file: another
// process with the same name may have taken this sequence number; then it
// takes the next free one (and updates `info`).
Status SnapshotFiles::commit(int dir_fd, const std::string& temp_file, SnapshotInfo& info) {
  std::string final_file = fileNameFor(info.sequence);
  for (int attempt = 0;; ++attempt) {
    if (renameat2(dir_fd, temp_file.c_str(), dir_fd, final_file.c_str(), RENAME_NOREPLACE) == 0) {
      break;
    }
    if (const int rename_err = errno; rename_err != EEXIST || attempt == 1000) {
      return sysError("snapshot " + info.path + ": rename failed", rename_err);
    }
    info.sequence = nextSequence(dir_fd);
    final_file = fileNameFor(info.sequence);
    info.path = dir_ + "/" + final_file;
  }
  fsync(dir_fd);  // make the rename durable
  // The snapshot is written; a rotation problem is reported beside it.
  if (Status s = rotate(dir_fd, final_file); !s.ok()) info.warning = s.error().message;
  return Ok{};
}

Status SnapshotFiles::rotate(int dir_fd, const std::string& just_written) {
  if (keep_ == 0 && max_bytes_ == 0) return Ok{};
  std::vector<SnapFile> files;
  std::string first_error;
  for (SnapFile& f : listSnapshots(dir_fd, name_)) {
    if (f.own) {
      files.push_back(std::move(f));
    } else if (first_error.empty()) {
      // Not something this writer wrote: neither counted nor removed.
      first_error = "snapshot rotation: left " + dir_ + "/" + f.file +
                    " alone: not a regular file of this user";
    }
  }
  std::uint64_t total = 0;
  for (const SnapFile& f : files) total += f.bytes;
  std::size_t count = files.size();
  for (const SnapFile& f : files) {
    const bool over_count = keep_ != 0 && count > keep_;
    const bool over_bytes = max_bytes_ != 0 && total > max_bytes_;
    if (!over_count && !over_bytes) break;
    if (f.file == just_written) continue;
    if (unlinkat(dir_fd, f.file.c_str(), 0) != 0 && errno != ENOENT) {
      const int err = errno;
      // Skip it and go on with the next oldest: one stuck file must not stop
      // the count and byte limits from being enforced.
      if (first_error.empty()) {
        first_error =
            "snapshot rotation: cannot remove " + dir_ + "/" + f.file + ": " + std::strerror(err);
      }
      continue;
    }
    --count;
    total -= f.bytes;
  }
  if (!first_error.empty()) return Error{Errc::kIo, first_error};
  return Ok{};
}

}  // namespace leakscope::diag
