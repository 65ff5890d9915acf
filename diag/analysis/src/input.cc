#include "leakscope/analysis/input.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "char_source.h"
#include "readers.h"
#include "safe_open.h"

namespace leakscope::analysis {
namespace {

enum class Detected { kSnapshot, kProfile };

// gperftools writes a few hundred bytes per stack: 1 GiB is millions of
// stacks. A bigger "profile" is most likely a sparse or runaway file.
constexpr std::uint64_t kMaxProfileBytes = std::uint64_t{1} << 30;

// Reads the first bytes: '{' opens a snapshot, "heap profile:" a gperftools
// profile. Anything else is named in the error.
Result<Detected> detect(std::string_view head, const std::string& path) {
  std::size_t i = 0;
  while (i < head.size() &&
         (head[i] == ' ' || head[i] == '\n' || head[i] == '\r' || head[i] == '\t'))
    ++i;
  if (head.empty()) return Error{Errc::kParse, path + ": byte 0: empty file"};
  if (i == head.size())
    return Error{Errc::kParse, path + ": byte " + std::to_string(i) + ": only whitespace"};
  if (head[i] == '{') return Detected::kSnapshot;
  if (head.substr(i, 13) == "heap profile:") return Detected::kProfile;
  std::string shown;
  for (std::size_t k = i; k < head.size() && shown.size() < 24; ++k) {
    const auto c = static_cast<unsigned char>(head[k]);
    if (c >= 0x20 && c < 0x7f) {
      shown += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      shown += hex;
    }
  }
  return Error{Errc::kParse, path + ": byte " + std::to_string(i) +
                                 ": not a leakscope snapshot or a gperftools heap profile "
                                 "(starts with \"" +
                                 shown + "\")"};
}

// A file time in ns since the epoch, kept within [0, INT64_MAX] so that
// differences between inputs cannot overflow.
std::int64_t clampedNs(const timespec& t) {
  constexpr std::int64_t kMaxSeconds = INT64_MAX / 1'000'000'000 - 1;
  if (t.tv_sec < 0) return 0;
  if (t.tv_sec > kMaxSeconds) return kMaxSeconds * 1'000'000'000;
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

struct Opened {
  UniqueFd fd;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::string head;
};

// Inputs the user named may be symlinks (to a regular file); FIFOs, devices
// and the like are refused before they are opened (see safe_open.h).
Result<Opened> open(const std::string& path) {
  Opened o;
  auto fd = openRegularFile(path, FollowLinks::kYes);
  if (!fd) return fd.error();
  o.fd = std::move(*fd);
  struct stat st {};
  if (::fstat(o.fd.get(), &st) != 0) return Error{Errc::kIo, path + ": " + std::strerror(errno)};
  o.size = static_cast<std::uint64_t>(st.st_size);
  o.mtime_ns = clampedNs(st.st_mtim);
  char buf[64];
  const ssize_t n = ::pread(o.fd.get(), buf, sizeof buf, 0);
  if (n < 0) return Error{Errc::kIo, path + ": " + std::strerror(errno)};
  o.head.assign(buf, static_cast<std::size_t>(n));
  return o;
}

Result<std::string> readAll(int fd, const std::string& path, const LoadOptions& options,
                            std::uint64_t size) {
  std::string text;
  // st_size of a sparse file can be anything; reserve a sane amount only.
  text.reserve(std::min<std::uint64_t>(size, std::uint64_t{256} << 20));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error{Errc::kIo, path + ": " + std::strerror(errno)};
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (options.progress) options.progress(text.size(), size);
  }
  return text;
}

}  // namespace

Result<InputHeader> readHeader(const std::string& path) {
  auto o = open(path);
  if (!o) return o.error();
  auto d = detect(o->head, path);
  if (!d) return d.error();
  if (*d == Detected::kProfile) {
    InputHeader h;
    h.path = path;
    h.source = SourceKind::kHeapProfile;
    h.taken_unix_ns = o->mtime_ns;
    return h;
  }
  CharSource src(o->fd.get(), o->size, nullptr);
  return readSnapshotHeader(src, path);
}

Result<Snapshot> load(const std::string& path, SymbolTable& symbols, const LoadOptions& options) {
  auto o = open(path);
  if (!o) return o.error();
  auto d = detect(o->head, path);
  if (!d) return d.error();
  if (*d == Detected::kProfile) {
    // Raw profiles are parsed in memory (snapshots are streamed).
    if (o->size > kMaxProfileBytes) {
      return Error{Errc::kInvalidArgument,
                   path + ": " + std::to_string(o->size) +
                       " bytes: raw heap profiles are read whole, and this one is larger than " +
                       std::to_string(kMaxProfileBytes >> 30) + " GiB"};
    }
    auto text = readAll(o->fd.get(), path, options, o->size);
    if (!text) return text.error();
    auto s = parseProfileText(*text, path, symbols, options);
    if (s) s->taken_unix_ns = o->mtime_ns;
    return s;
  }
  CharSource src(o->fd.get(), o->size, options.progress);
  return readSnapshot(src, path, symbols);
}

Result<Snapshot> parseSnapshotText(std::string_view text, const std::string& path,
                                   SymbolTable& symbols) {
  auto d = detect(text.substr(0, 64), path);
  if (!d) return d.error();
  if (*d != Detected::kSnapshot) return Error{Errc::kParse, path + ": not a snapshot"};
  CharSource src(text);
  return readSnapshot(src, path, symbols);
}

}  // namespace leakscope::analysis
