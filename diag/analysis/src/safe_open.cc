#include "safe_open.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace leakscope::analysis {
namespace {

using core::Errc;
using core::Error;

const char* kindOf(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a file";
}

Error sysError(const std::string& path) {
  return Error{Errc::kIo, path + ": " + std::strerror(errno)};
}

// Kernel file systems whose "regular" files are interfaces, not data: a
// read may block (/proc/kmsg), never end, or have effects.
bool isPseudo(const struct statfs& fs) {
  switch (static_cast<unsigned long>(fs.f_type)) {
    case PROC_SUPER_MAGIC:
    case SYSFS_MAGIC:
    case DEBUGFS_MAGIC:
    case TRACEFS_MAGIC:
    case SECURITYFS_MAGIC:
    case CGROUP_SUPER_MAGIC:
    case CGROUP2_SUPER_MAGIC:
    case BPF_FS_MAGIC:
      return true;
    default:
      return false;
  }
}

bool isPseudoFileSystem(int fd) {
  struct statfs fs {};
  return ::fstatfs(fd, &fs) != 0 || isPseudo(fs);
}

}  // namespace

core::Result<UniqueFd> openRegularFile(const std::string& path, FollowLinks follow) {
  struct stat before {};
  const int st =
      follow == FollowLinks::kYes ? ::stat(path.c_str(), &before) : ::lstat(path.c_str(), &before);
  if (st != 0) return sysError(path);
  if (S_ISDIR(before.st_mode)) return Error{Errc::kInvalidArgument, path + ": is a directory"};
  if (!S_ISREG(before.st_mode)) {
    return Error{Errc::kInvalidArgument,
                 path + ": not a regular file (" + kindOf(before.st_mode) + ")"};
  }
  // Before opening: opening some kernel files already has effects.
  if (struct statfs fs{}; ::statfs(path.c_str(), &fs) != 0 || isPseudo(fs)) {
    return Error{Errc::kInvalidArgument,
                 path + ": on a kernel pseudo file system (/proc, /sys, ...), not a data file"};
  }
  int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  if (follow == FollowLinks::kNo) flags |= O_NOFOLLOW;
  UniqueFd fd(::open(path.c_str(), flags));
  if (fd.get() < 0) return sysError(path);
  // The path may have been replaced between stat and open.
  struct stat after {};
  if (::fstat(fd.get(), &after) != 0) return sysError(path);
  if (!S_ISREG(after.st_mode) || after.st_dev != before.st_dev || after.st_ino != before.st_ino) {
    return Error{Errc::kInvalidArgument, path + ": changed while being opened"};
  }
  if (isPseudoFileSystem(fd.get())) {
    return Error{Errc::kInvalidArgument,
                 path + ": on a kernel pseudo file system (/proc, /sys, ...), not a data file"};
  }
  // Regular files never block; clear the flag so reads behave as usual.
  const int fl = ::fcntl(fd.get(), F_GETFL);
  if (fl < 0 || ::fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK) != 0) return sysError(path);
  return fd;
}

}  // namespace leakscope::analysis
