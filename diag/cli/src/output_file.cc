#include "output_file.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <utility>

#include "leakscope/core/unique_fd.h"

namespace leakscope::analysis {
namespace {

using core::Errc;
using core::Error;
using core::Ok;
using core::Status;

using core::UniqueFd;

// The temp file until it is renamed into place: removed on every other path.
class TempName {
 public:
  TempName(int dir_fd, std::string name) : dir_fd_(dir_fd), name_(std::move(name)) {}
  ~TempName() {
    if (!name_.empty()) ::unlinkat(dir_fd_, name_.c_str(), 0);
  }
  TempName(const TempName&) = delete;
  TempName& operator=(const TempName&) = delete;
  const std::string& name() const { return name_; }
  void release() { name_.clear(); }

 private:
  int dir_fd_;
  std::string name_;
};

Error failure(const std::string& path, int err) {
  return Error{err == EACCES || err == EPERM ? Errc::kPermission : Errc::kIo,
               path + ": cannot write: " + std::strerror(err)};
}

// 64 random bits as hex: a temp name nobody can plant in advance.
std::string randomTag() {
  unsigned long long r = 0;
  if (getrandom(&r, sizeof r, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof r)) {
    r = static_cast<unsigned long long>(getpid()) * 0x9e3779b97f4a7c15ULL ^
        static_cast<unsigned long long>(reinterpret_cast<std::uintptr_t>(&r));
  }
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", r);
  return buf;
}

int writeAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

}  // namespace

Status writeFileReplacing(const std::string& path, std::string_view content) {
  const std::size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (base.empty() || base == "." || base == "..") {
    return Error{Errc::kInvalidArgument, path + ": cannot write: not a file name"};
  }
  const UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() < 0) return failure(path, errno);

  int fd = -1;
  std::string tmp;
  for (int attempt = 0; fd < 0; ++attempt) {
    tmp = "." + base + "." + randomTag() + ".tmp";
    fd = ::openat(dir_fd.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0600);
    if (fd < 0 && (errno != EEXIST || attempt == 100)) return failure(path, errno);
  }
  UniqueFd file(fd);
  TempName temp(dir_fd.get(), tmp);
  int err = writeAll(file.get(), content);
  if (err == 0 && ::fsync(file.get()) != 0) err = errno;
  if (const int close_err = file.close(); err == 0) err = close_err;
  if (err != 0) return failure(path, err);
  if (::renameat(dir_fd.get(), temp.name().c_str(), dir_fd.get(), base.c_str()) != 0) {
    return failure(path, errno);
  }
  temp.release();
  (void)::fsync(dir_fd.get());  // make the rename durable; the file is complete either way
  return Ok{};
}

}  // namespace leakscope::analysis
