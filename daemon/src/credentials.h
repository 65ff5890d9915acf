// Files that hold secrets, and the push credentials the app rows name.
//
// One rule for every secret file (database.password_file,
// database.ssl_key, APNs .p8 keys, FCM service accounts): it is opened with
// O_NOFOLLOW | O_NONBLOCK (a symlink is refused, a FIFO cannot block the
// daemon) and then checked on the open descriptor with fstat (no race with
// a rename): a regular file with no permission bit for group or others.
//
// Push credential paths come from database rows, so whoever can write the
// `app` table chooses them. They are confined to `push.credentials_dir`: a
// path is taken relative to that directory (an absolute path must name a
// place inside it), resolved with openat2(RESOLVE_BENEATH), so neither `..`
// nor a symlink can lead out, and a path that would is refused without
// opening anything outside.
//
// CredentialCache parses each file once into a key object (an EVP_PKEY in
// push::SigningKey) that every client of that file shares, and parses it
// again only when the file changes (device, inode, size, mtime or ctime of
// the opened file). The text a key came from is wiped (push::SecretString).
// Not thread-safe: the scheduler thread owns the registry that owns it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "leakscope/core/unique_fd.h"
#include "leakscope/diag/result.h"
#include "leakscope/push/fcm.h"
#include "leakscope/push/jwt.h"
#include "leakscope/push/secret.h"

namespace pushdaemon {

namespace diag = leakscope::diag;
namespace push = leakscope::push;

using Fd = leakscope::core::UniqueFd;

// Which file an open descriptor is, and which version of it.
struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_ns = 0;
  bool operator==(const FileId&) const = default;
};

// Opens `path` under the secret-file rule. `what` names it in errors
// ("database.password_file /etc/pushdaemon/db-password"); the content never
// appears in one.
diag::Result<Fd> openSecretFile(const std::string& path, const std::string& what);

// The whole content of a secret file (same rule), in a buffer wiped on free.
diag::Result<push::SecretString> readSecretFile(const std::string& path, const std::string& what);

class CredentialCache {
 public:
  // `dir` is push.credentials_dir (absolute). Entries of files no longer
  // reachable under a new dir are dropped.
  void setDir(const std::string& dir);
  const std::string& dir() const { return dir_; }

  // The parsed key of an APNs .p8 file / an FCM service-account file named
  // by an app row. `what` names the row's column in errors
  // ("apns_key_file"). Errors name the path and the rule, never contents.
  diag::Result<std::shared_ptr<const push::SigningKey>> apnsKey(const std::string& path,
                                                                const std::string& what);
  diag::Result<std::shared_ptr<const push::FcmServiceAccount>> fcmAccount(const std::string& path,
                                                                          const std::string& what);

  // Files read and parsed so far (one per file version): for tests and
  // the debug log.
  std::uint64_t parses() const { return parses_; }

  // Opens `path` beneath the directory (see above) under the secret-file
  // rule; `id` gets the file's identity.
  diag::Result<Fd> openBeneath(const std::string& path, const std::string& what, FileId* id) const;

 private:
  template <class T>
  struct Entry {
    FileId id;
    std::shared_ptr<const T> value;
  };
  template <class T, class Parse>
  diag::Result<std::shared_ptr<const T>> load(std::map<std::string, Entry<T>>& cache,
                                              const std::string& path, const std::string& what,
                                              Parse parse);

  std::string dir_;
  std::map<std::string, Entry<push::SigningKey>> apns_;  // by path as the row gives it
  std::map<std::string, Entry<push::FcmServiceAccount>> fcm_;
  std::uint64_t parses_ = 0;
};

}  // namespace pushdaemon
