// Owners of the two C handles the snapshot writer uses: a file descriptor and
// a directory stream. Each closes its handle exactly once; both are movable,
// not copyable. Not thread-safe (like the handles themselves).
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <utility>

namespace leakscope::core {

class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Closes now; returns close()'s errno, or 0. Closing twice is a no-op.
  int close() {
    if (fd_ < 0) return 0;
    const int rc = ::close(std::exchange(fd_, -1));
    return rc == 0 ? 0 : errno;
  }
  void reset() { (void)close(); }
  // Gives up ownership (e.g. to fdopendir, which then closes it).
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};
using UniqueDir = std::unique_ptr<DIR, DirCloser>;

// A stream over the entries of the directory open as `dir_fd`. The stream
// gets its own descriptor (re-opened through "." of `dir_fd`), so reading it
// neither moves nor closes `dir_fd`. Null (errno set) on failure.
inline UniqueDir openDirStream(int dir_fd) {
  UniqueFd own(::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!own.valid()) return nullptr;
  DIR* d = ::fdopendir(own.get());
  if (d == nullptr) return nullptr;  // `own` still closes the fd
  own.release();                     // the stream owns it now
  return UniqueDir(d);
}

}  // namespace leakscope::core
