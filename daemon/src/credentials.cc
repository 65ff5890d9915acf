#include "credentials.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <vector>

namespace pushdaemon {

namespace {

constexpr int kSecretOpenFlags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;

diag::Error ioError(int err, const std::string& what, const std::string& doing) {
  return diag::Error{err == EACCES || err == EPERM ? diag::Errc::kPermission : diag::Errc::kIo,
                     what + ": " + doing + ": " + std::strerror(err)};
}

// The rule, checked on the descriptor that will be read.
diag::Status checkSecret(int fd, const std::string& what, FileId* id) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ioError(errno, what, "fstat");
  if (!S_ISREG(st.st_mode)) {
    return diag::Error{diag::Errc::kPermission,
                       what + ": not a regular file; secrets are read from regular files only"};
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%03o", st.st_mode & 0777);
    return diag::Error{diag::Errc::kPermission,
                       what + ": readable by group or others (mode " + mode + "); chmod 600 it"};
  }
  if (id != nullptr) {
    *id = FileId{st.st_dev, st.st_ino, st.st_size,
                 std::int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec,
                 std::int64_t{st.st_ctim.tv_sec} * 1000000000 + st.st_ctim.tv_nsec};
  }
  return diag::Ok{};
}

// What an open failure means for a secret file.
diag::Error openError(int err, const std::string& what) {
  if (err == ELOOP) {
    return diag::Error{diag::Errc::kPermission,
                       what + ": is a symbolic link; secrets are read from regular files only"};
  }
  return ioError(err, what, "cannot open");
}

// `path` relative to `dir`, or nullopt when it names a place outside.
// Lexical only: openat2 below resolves what this lets through.
std::optional<std::string> relativeTo(const std::string& dir, const std::string& path) {
  if (path.empty()) return std::nullopt;
  if (path.front() != '/') return path;
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  if (path.size() > d.size() + 1 && path.compare(0, d.size(), d) == 0 && path[d.size()] == '/') {
    return path.substr(d.size() + 1);
  }
  return std::nullopt;
}

// openat2 with RESOLVE_BENEATH (Linux 5.6): `..` and symlinks are followed
// only while they stay inside `dirfd`. -errno on failure; -ENOSYS where the
// kernel (or a seccomp filter) has no openat2.
int openat2Beneath(int dirfd, const std::string& rel) {
  open_how how{};
  how.flags = static_cast<std::uint64_t>(kSecretOpenFlags);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  const long fd = ::syscall(SYS_openat2, dirfd, rel.c_str(), &how, sizeof how);
  return fd >= 0 ? static_cast<int>(fd) : -errno;
}

// Without openat2: a walk that follows no symlink and no `..` at all
// (stricter than RESOLVE_BENEATH, equally confined).
int walkBeneath(int dirfd, const std::string& rel) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= rel.size()) {
    const std::size_t slash = std::min(rel.find('/', start), rel.size());
    const std::string part = rel.substr(start, slash - start);
    if (part == "..") return -EXDEV;
    if (!part.empty() && part != ".") parts.push_back(part);
    start = slash + 1;
  }
  if (parts.empty()) return -EISDIR;
  Fd cur(::fcntl(dirfd, F_DUPFD_CLOEXEC, 0));
  if (cur.get() < 0) return -errno;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    Fd next(::openat(cur.get(), parts[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (next.get() < 0) return errno == ENOTDIR ? -EXDEV : -errno;
    cur = std::move(next);
  }
  const int fd = ::openat(cur.get(), parts.back().c_str(), kSecretOpenFlags);
  return fd >= 0 ? fd : -errno;
}

}  // namespace

diag::Result<Fd> openSecretFile(const std::string& path, const std::string& what) {
  Fd fd(::open(path.c_str(), kSecretOpenFlags));
  if (fd.get() < 0) return openError(errno, what);
  if (auto s = checkSecret(fd.get(), what, nullptr); !s.ok()) return s.error();
  return fd;
}

diag::Result<push::SecretString> readSecretFile(const std::string& path, const std::string& what) {
  auto fd = openSecretFile(path, what);
  if (!fd.ok()) return fd.error();
  return push::readSecret(fd->get(), what);
}

void CredentialCache::setDir(const std::string& dir) {
  if (dir == dir_) return;
  dir_ = dir;
  apns_.clear();
  fcm_.clear();
}

diag::Result<Fd> CredentialCache::openBeneath(const std::string& path, const std::string& what,
                                              FileId* id) const {
  const auto rel = relativeTo(dir_, path);
  if (!rel) {
    return diag::Error{diag::Errc::kPermission,
                       what + ": outside push.credentials_dir (" + dir_ +
                           "): credential files must lie beneath it; not opened"};
  }
  Fd dirfd(::open(dir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (dirfd.get() < 0) return ioError(errno, what, "push.credentials_dir " + dir_);
  int fd = openat2Beneath(dirfd.get(), *rel);
  if (fd == -ENOSYS || fd == -EPERM) fd = walkBeneath(dirfd.get(), *rel);
  if (fd == -EXDEV) {
    return diag::Error{diag::Errc::kPermission,
                       what + ": resolves outside push.credentials_dir (" + dir_ +
                           ") through '..' or a symbolic link; credential files must lie "
                           "beneath it; not opened"};
  }
  if (fd < 0) return openError(-fd, what);
  Fd file(fd);
  if (auto s = checkSecret(file.get(), what, id); !s.ok()) return s.error();
  return file;
}

template <class T, class Parse>
diag::Result<std::shared_ptr<const T>> CredentialCache::load(std::map<std::string, Entry<T>>& cache,
                                                             const std::string& path,
                                                             const std::string& what, Parse parse) {
  FileId id;
  auto fd = openBeneath(path, what, &id);
  if (!fd.ok()) return fd.error();
  auto it = cache.find(path);
  if (it != cache.end() && it->second.id == id) return it->second.value;
  auto text = push::readSecret(fd->get(), what);
  if (!text.ok()) return text.error();
  ++parses_;
  diag::Result<T> parsed = parse(*text);  // the text is wiped when it goes
  if (!parsed.ok()) return parsed.error();
  auto value = std::make_shared<const T>(std::move(*parsed));
  cache[path] = Entry<T>{id, value};
  return std::shared_ptr<const T>(value);
}

diag::Result<std::shared_ptr<const push::SigningKey>> CredentialCache::apnsKey(
    const std::string& path, const std::string& what) {
  const std::string w = what + " " + path;
  return load(apns_, path, w, [&](push::SecretString& text) {
    return push::SigningKey::fromPem(text, push::SigningKey::Algorithm::kES256, w);
  });
}

diag::Result<std::shared_ptr<const push::FcmServiceAccount>> CredentialCache::fcmAccount(
    const std::string& path, const std::string& what) {
  const std::string w = what + " " + path;
  return load(fcm_, path, w,
              [&](push::SecretString& text) { return push::FcmServiceAccount::fromJson(text, w); });
}

}  // namespace pushdaemon
