#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstring>
#include <map>
#include <unordered_map>

#include "json_writer.h"
#include "leakscope/core/snapshot_format.h"
#include "leakscope/core/unique_fd.h"
#include "leakscope/diag/process.h"
#include "leakscope/diag/snapshot_writer.h"
#include "leakscope/diag/tracked.h"
#include "symbolizer.h"

namespace leakscope::diag {

using core::Estimate;
using core::HeapRecord;
using core::isAllocatorFrame;
using core::openDirStream;
using core::parseHeapProfile;
using core::RawHeapProfile;
using core::UniqueDir;
using core::UniqueFd;
using core::unsample;

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

Error sysError(const std::string& what, int err) {
  return Error{errcFor(err), what + ": " + std::strerror(err)};
}

std::int64_t clockNs(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::string utcString(std::int64_t unix_ns) {
  const time_t secs = static_cast<time_t>(unix_ns / 1'000'000'000);
  tm t{};
  gmtime_r(&secs, &t);
  char buf[40];
  const std::size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  char ms[8];
  snprintf(ms, sizeof ms, ".%03dZ", static_cast<int>((unix_ns / 1'000'000) % 1000));
  return std::string(buf, n) + ms;
}

std::string hex(std::uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string baseName(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// ---- the snapshot directory -------------------------------------------------
//
// The directory is opened once per snapshot (O_DIRECTORY | O_NOFOLLOW) and
// checked; every later step is relative to that descriptor (openat,
// renameat2, unlinkat, fstatat, fdopendir), so swapping a path component after
// the checks cannot redirect any step. Entries are never followed: a link
// planted in the directory is never opened, never counted as a snapshot and
// never removed. Only regular files of the effective user are ever removed.

constexpr const char* kScratchDir = ".gperftools";

std::string octalMode(mode_t mode) {
  char buf[8];
  snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// A regular file of the effective user: the only kind of entry the writer
// removes (its snapshots, its temp files, gperftools' dumps).
bool isOwnRegularFile(int dir_fd, const char* file) {
  struct stat st {};
  if (fstatat(dir_fd, file, &st, AT_SYMLINK_NOFOLLOW) != 0) return false;
  return S_ISREG(st.st_mode) && st.st_uid == geteuid();
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

// Opens `file` (relative to `at_fd`) as a directory, never through a link,
// and refuses it unless the effective user owns it and no bit of
// `forbidden_mode` is set. `what` names it in errors.
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

// The snapshot directory, created 0700 (with missing parents) if absent.
// Refused unless it is a real directory (not a link) of the effective user
// that group and others cannot write.
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
    r = static_cast<std::uint64_t>(clockNs(CLOCK_MONOTONIC)) ^
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

// Empties DIR/.gperftools (gperftools' own interval dumps in full mode):
// only while it still is a private directory of this user, never through a
// link, and only the regular files of this user in it.
void emptyScratchDir(int dir_fd, const std::string& dir) {
  auto scratch = openOwnDir(dir_fd, kScratchDir, dir + "/" + kScratchDir, 077);
  if (!scratch.ok()) return;
  std::vector<std::string> files;
  if (UniqueDir d = openDirStream(scratch->get())) {
    while (dirent* e = readdir(d.get())) {
      if (e->d_name[0] != '.') files.emplace_back(e->d_name);
    }
  }
  for (const auto& f : files) {
    if (isOwnRegularFile(scratch->get(), f.c_str())) unlinkat(scratch->get(), f.c_str(), 0);
  }
}

// Creates DIR/.gperftools (0700) if missing and checks it is a private
// directory of this user, not a link; returns its path.
Result<std::string> prepareScratchDir(const std::string& dir) {
  auto dir_fd = openSnapshotDir(dir);
  if (!dir_fd.ok()) return dir_fd.error();
  const std::string path = dir + "/" + kScratchDir;
  if (mkdirat(dir_fd->get(), kScratchDir, 0700) != 0 && errno != EEXIST) {
    const int err = errno;
    return sysError(path + ": cannot create", err);
  }
  auto scratch = openOwnDir(dir_fd->get(), kScratchDir, path, 077);
  if (!scratch.ok()) return scratch.error();
  return path;
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

void writeProcess(JsonWriter& w) {
  w.key("process").beginObject();
  auto p = readProcessStats();
  if (p.ok()) {
    w.field("pid", p->pid)
        .field("exe", p->exe)
        .field("host", p->host)
        .field("build_id", p->build_id)
        .field("start_time_unix", p->start_time_unix)
        .field("rss_bytes", p->rss_bytes)
        .field("virtual_bytes", p->virtual_bytes)
        .field("open_fds", p->open_fds)
        .field("max_fds", p->max_fds)
        .field("threads", p->threads)
        .field("cpu_seconds", p->cpu_seconds);
    // The limit the process runs under, so that `leakscope trend` can project
    // when it is reached without being told (the same figure as the
    // leakscope_memory_limit_bytes metric).
    if (auto limit = readMemoryLimit(); limit.ok()) {
      w.field("memory_limit_bytes", limit->bytes)
          .field("memory_limit_source", std::string_view(memoryLimitSourceName(limit->source)));
    }
  } else {
    w.field("pid", static_cast<int>(getpid())).field("error", p.error().message);
  }
  w.endObject();
}

void writeAllocator(JsonWriter& w) {
  const AllocatorStats a = readAllocatorStats();
  w.key("allocator").beginObject().field("available", a.available);
  if (a.available) {
    w.field("name", a.name)
        .field("allocated_bytes", a.allocated_bytes)
        .field("heap_bytes", a.heap_bytes)
        .field("pageheap_free_bytes", a.pageheap_free_bytes)
        .field("pageheap_unmapped_bytes", a.pageheap_unmapped_bytes)
        .field("central_cache_free_bytes", a.central_cache_free_bytes)
        .field("transfer_cache_free_bytes", a.transfer_cache_free_bytes)
        .field("thread_cache_free_bytes", a.thread_cache_free_bytes);
  }
  w.endObject();
}

// Writes "tracked" and fills fd -> owner id for the socket join.
std::uint64_t writeTracked(JsonWriter& w, std::unordered_map<int, std::uint64_t>& owners) {
  std::uint64_t total = 0;
  std::vector<ObjectRecord> batch;
  w.key("tracked").beginArray();
  for (Kind* k : allKinds()) {
    w.beginObject().field("kind", k->name());
    const Kind::Counts before = k->counts();
    std::uint64_t live = 0;
    std::uint64_t bytes = 0;
    w.key("objects").beginArray();
    for (int s = 0; s < Kind::kShards; ++s) {
      batch.clear();
      k->copyShard(s, batch);  // the only time the kind's shard is locked
      for (const ObjectRecord& r : batch) {
        w.beginObject()
            .field("id", r.id.value)
            .field("birth_unix_ns", r.birth_unix_ns)
            .field("label", r.label)
            .field("bytes", r.bytes);
        w.key("fd");
        if (r.fd >= 0) {
          w.value(r.fd);
          owners[r.fd] = r.id.value;
        } else {
          w.null();
        }
        w.endObject();
        ++live;
        bytes += r.bytes;
      }
    }
    w.endArray();
    w.field("live", live)
        .field("live_bytes", bytes)
        .field("created_total", before.created)
        .field("destroyed_total", before.destroyed)
        .endObject();
    total += live;
  }
  w.endArray();
  std::vector<ObjectRecord>().swap(batch);
  return total;
}

std::uint64_t writeSockets(JsonWriter& w, const PeerNames& names,
                           const std::unordered_map<int, std::uint64_t>& owners) {
  auto sockets = listOwnSockets();
  w.key("sockets").beginArray();
  std::uint64_t n = 0;
  if (sockets.ok()) {
    namePeers(*sockets, names);
    for (const OwnSocket& s : *sockets) {
      w.beginObject()
          .field("fd", s.fd)
          .field("inode", s.inode)
          .field("protocol", s.protocol)
          .field("local", s.local.str())
          .field("remote", s.remote.str())
          .field("state", s.state);
      if (s.protocol == "unix") w.field("path", s.path);
      w.field("peer", s.peer);
      w.key("owner");
      if (auto it = owners.find(s.fd); it != owners.end()) {
        w.value(it->second);
      } else {
        w.null();
      }
      w.endObject();
      ++n;
    }
  }
  w.endArray();
  if (!sockets.ok()) w.field("sockets_error", sockets.error().message);
  return n;
}

// The profile's records merged by call site. Every distinct frame is kept
// once, in `frames`; a site's key is its stack as indexes into `frames`,
// starting past the allocator's own frames.
struct HeapSites {
  std::vector<const Frame*> frames;
  std::map<std::vector<std::uint32_t>, HeapRecord> sites;
};

HeapSites groupSites(const RawHeapProfile& p, Symbolizer& sym) {
  HeapSites out;
  std::unordered_map<const Frame*, std::uint32_t> frame_ids;
  for (const HeapRecord& r : p.records) {
    std::vector<const Frame*> stack;
    stack.reserve(r.stack.size());
    for (std::size_t i = 0; i < r.stack.size(); ++i)
      stack.push_back(&sym.lookup(r.stack[i], i > 0));
    std::size_t first = 0;
    while (first < stack.size() && isAllocatorFrame(stack[first]->module, stack[first]->function))
      ++first;
    if (first == stack.size()) first = 0;
    std::vector<std::uint32_t> ids;
    for (std::size_t i = first; i < stack.size(); ++i) {
      auto [it, inserted] =
          frame_ids.emplace(stack[i], static_cast<std::uint32_t>(out.frames.size()));
      if (inserted) out.frames.push_back(stack[i]);
      ids.push_back(it->second);
    }
    HeapRecord& s = out.sites[ids];
    s.inuse_objects += r.inuse_objects;
    s.inuse_bytes += r.inuse_bytes;
    s.alloc_objects += r.alloc_objects;
    s.alloc_bytes += r.alloc_bytes;
  }
  return out;
}

void writeFrames(JsonWriter& w, const std::vector<const Frame*>& frames) {
  w.key("frames").beginArray();
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const Frame& f = *frames[i];
    w.beginObject()
        .field("id", static_cast<std::uint64_t>(i))
        .field("address", hex(f.address))
        .field("module", f.module)
        .field("module_offset", hex(f.module_offset))
        .field("function", f.function)
        .field("file", f.file)
        .field("line", f.line)
        .endObject();
  }
  w.endArray();
}

// The sites, most bytes in use first; returns how many.
std::uint64_t writeSites(JsonWriter& w, const HeapSites& heap, const RawHeapProfile& p) {
  std::vector<std::pair<const std::vector<std::uint32_t>*, const HeapRecord*>> order;
  for (const auto& [ids, rec] : heap.sites) order.emplace_back(&ids, &rec);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return a.second->inuse_bytes > b.second->inuse_bytes;
  });
  const bool sampled = p.format == "heap_v2";
  w.key("sites").beginArray();
  for (const auto& [ids, rec] : order) {
    w.beginObject()
        .field("inuse_objects", rec->inuse_objects)
        .field("inuse_bytes", rec->inuse_bytes)
        .field("alloc_objects", rec->alloc_objects)
        .field("alloc_bytes", rec->alloc_bytes);
    if (sampled) {
      const Estimate e = unsample(rec->inuse_objects, rec->inuse_bytes, p.sample_period);
      w.field("estimated_inuse_objects", e.objects).field("estimated_inuse_bytes", e.bytes);
    }
    w.key("stack").beginArray();
    for (std::uint32_t id : *ids) w.value(static_cast<std::uint64_t>(id));
    w.endArray().endObject();
  }
  w.endArray();
  return order.size();
}

std::uint64_t writeHeap(JsonWriter& w, HeapMode mode, Result<std::string>& text, Symbolizer& sym) {
  w.key("heap").beginObject().field("mode", heapModeName(mode));
  if (!text.ok()) {
    w.field("available", false).field("reason", text.error().message).endObject();
    return 0;
  }
  auto parsed = parseHeapProfile(*text);
  if (!parsed.ok()) {
    w.field("available", false)
        .field("reason", "tcmalloc profile did not parse: " + parsed.error().message)
        .endObject();
    return 0;
  }
  std::string().swap(text.value());  // the text is no longer needed
  const RawHeapProfile& p = *parsed;
  const HeapSites heap = groupSites(p, sym);

  w.field("available", true).field("format", p.format).field("sample_period", p.sample_period);
  w.key("totals")
      .beginObject()
      .field("inuse_objects", p.totals.inuse_objects)
      .field("inuse_bytes", p.totals.inuse_bytes)
      .field("alloc_objects", p.totals.alloc_objects)
      .field("alloc_bytes", p.totals.alloc_bytes)
      .endObject();
  writeFrames(w, heap.frames);
  const std::uint64_t sites = writeSites(w, heap, p);
  w.endObject();
  return sites;
}

}  // namespace

std::string defaultSnapshotName() {
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return "process";
  std::string name = baseName(std::string(exe, static_cast<std::size_t>(n)));
  // A binary replaced on disk reads "name (deleted)".
  if (const std::size_t sp = name.find(' '); sp != std::string::npos) name.resize(sp);
  return name.empty() ? "process" : name;
}

const char* triggerName(Trigger t) {
  switch (t) {
    case Trigger::kSignal:
      return "signal";
    case Trigger::kApi:
      return "api";
    case Trigger::kInterval:
      return "interval";
    case Trigger::kMemoryPressure:
      return "memory_pressure";
  }
  return "?";
}

SnapshotWriter::SnapshotWriter(SnapshotOptions options) : options_(std::move(options)) {
  if (options_.name.empty()) options_.name = defaultSnapshotName();
  // With a trailing slash, O_NOFOLLOW would follow a link named like the dir.
  while (options_.dir.size() > 1 && options_.dir.back() == '/') options_.dir.pop_back();
  // Full mode: gperftools writes its own interval dumps next to its prefix,
  // by path. They are of no use to us; they go to a scratch directory emptied
  // after every snapshot, so a long drill cannot fill the disk with them. If
  // that directory is not a private one of ours, full profiling is not
  // started and every snapshot says why.
  HeapMode mode = options_.heap_mode;
  std::string prefix;
  if (!options_.heap_unavailable_reason.empty()) {
    heap_unavailable_ = options_.heap_unavailable_reason;
    mode = HeapMode::kOff;
  } else if (mode == HeapMode::kFull) {
    if (auto scratch = prepareScratchDir(options_.dir); scratch.ok()) {
      gperftools_dir_ = *scratch;
      prefix = gperftools_dir_ + "/heap";
    } else {
      heap_unavailable_ = "full heap profiling not started: " + scratch.error().message;
      mode = HeapMode::kOff;
    }
  }
  heap_ = std::make_unique<HeapProfiler>(mode, prefix);
}

SnapshotWriter::~SnapshotWriter() = default;

Status SnapshotWriter::prepareDir() {
  auto dir = openSnapshotDir(options_.dir);
  if (!dir.ok()) return dir.error();
  return Ok{};
}

std::uint64_t SnapshotWriter::nextSequence(int dir_fd) {
  if (next_seq_ == 0) {
    removeStaleTemps(dir_fd, options_.name);
    // Every entry named like a snapshot counts here, ours or not: a name
    // that is taken cannot be renamed onto anyway.
    const auto existing = listSnapshots(dir_fd, options_.name);
    next_seq_ = existing.empty() ? 1 : existing.back().seq + 1;
  }
  return next_seq_++;
}

std::string SnapshotWriter::fileNameFor(std::uint64_t sequence) const {
  char seq[32];
  snprintf(seq, sizeof seq, "%06llu", static_cast<unsigned long long>(sequence));
  return options_.name + "." + seq + ".lsnap";
}

Result<SnapshotInfo> SnapshotWriter::write(Trigger trigger, std::string_view detail) {
  std::lock_guard lock(mu_);
  // Nothing may escape into the snapshot thread: an exception there would
  // terminate the daemon, and memory is tightest exactly when someone asks for
  // a snapshot. The temp file is removed on every path (TempFile).
  try {
    return writeLocked(trigger, detail);
  } catch (const std::bad_alloc&) {
    return Error{Errc::kNoSpace, "snapshot in " + options_.dir + ": out of memory"};
  } catch (const std::exception& e) {
    return Error{Errc::kIo, "snapshot in " + options_.dir + ": " + e.what()};
  }
}

Result<SnapshotInfo> SnapshotWriter::writeLocked(Trigger trigger, std::string_view detail) {
  const auto t0 = std::chrono::steady_clock::now();
  // Opened and checked again for every snapshot (see snapshot.h for why);
  // every step below is relative to this descriptor.
  auto dir = openSnapshotDir(options_.dir);
  if (!dir.ok()) return dir.error();
  const int dir_fd = dir->get();

  SnapshotInfo info;
  info.sequence = nextSequence(dir_fd);
  std::string final_file = fileNameFor(info.sequence);
  info.path = options_.dir + "/" + final_file;
  auto file = TempFile::create(dir_fd, options_.dir, final_file.substr(0, final_file.rfind('.')));
  if (!file.ok()) return file.error();
  const std::string tmp_path = options_.dir + "/" + file->file();

  JsonWriter w(file->fd());
  writeDocument(w, trigger, detail, t0, info);
  int err = w.error();
  if (err == 0 && fsync(file->fd()) != 0) err = errno;
  if (const int close_err = file->close(); err == 0) err = close_err;
  if (err != 0) return sysError("snapshot " + tmp_path + ": write failed", err);
  info.bytes = w.bytesWritten();
  if (options_.max_bytes != 0 && info.bytes > options_.max_bytes) {
    return Error{Errc::kNoSpace, "snapshot " + info.path + " is " + std::to_string(info.bytes) +
                                     " bytes, more than the whole byte budget (" +
                                     std::to_string(options_.max_bytes) + "); not kept"};
  }
  // Never replace a file: another process with the same name may have taken
  // this sequence number; then take the next free one.
  for (int attempt = 0;; ++attempt) {
    if (renameat2(dir_fd, file->file().c_str(), dir_fd, final_file.c_str(), RENAME_NOREPLACE) ==
        0) {
      break;
    }
    if (const int rename_err = errno; rename_err != EEXIST || attempt == 1000) {
      return sysError("snapshot " + info.path + ": rename failed", rename_err);
    }
    info.sequence = nextSequence(dir_fd);
    final_file = fileNameFor(info.sequence);
    info.path = options_.dir + "/" + final_file;
  }
  file->release();
  fsync(dir_fd);  // make the rename durable
  // The snapshot is written; a rotation problem is reported beside it.
  if (Status s = rotate(dir_fd, final_file); !s.ok()) info.warning = s.error().message;
  if (!gperftools_dir_.empty()) emptyScratchDir(dir_fd, options_.dir);
  info.duration_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return info;
}

void SnapshotWriter::writeDocument(JsonWriter& w, Trigger trigger, std::string_view detail,
                                   std::chrono::steady_clock::time_point t0, SnapshotInfo& info) {
  if (!symbolizer_) symbolizer_ = std::make_unique<Symbolizer>();
  const std::int64_t unix_ns = clockNs(CLOCK_REALTIME);
  const std::int64_t mono_ns = clockNs(CLOCK_MONOTONIC);
  // The heap is read first so the snapshot's own work does not show in it.
  Result<std::string> heap_text =
      heap_unavailable_.empty() ? heap_->captureText()
                                : Result<std::string>(Error{Errc::kUnavailable, heap_unavailable_});

  w.beginObject()
      .field("format", core::kSnapshotFormat)
      .field("version", core::kSnapshotVersion)
      .field("sequence", info.sequence)
      .field("name", options_.name);
  w.key("taken")
      .beginObject()
      .field("unix_ns", unix_ns)
      .field("monotonic_ns", mono_ns)
      .field("utc", utcString(unix_ns))
      .endObject();
  w.key("trigger")
      .beginObject()
      .field("reason", triggerName(trigger))
      .field("detail", detail)
      .endObject();
  writeProcess(w);
  writeAllocator(w);
  std::unordered_map<int, std::uint64_t> owners;
  info.objects = writeTracked(w, owners);
  info.sockets = writeSockets(w, options_.peer_names, owners);
  info.heap_sites = writeHeap(w, options_.heap_mode, heap_text, *symbolizer_);
  symbolizer_->releaseDebugData();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  w.key("writer").beginObject().field("duration_seconds", elapsed).endObject();
  w.endObject();
  w.flush();
}

Status SnapshotWriter::rotate(int dir_fd, const std::string& just_written) {
  if (options_.keep == 0 && options_.max_bytes == 0) return Ok{};
  std::vector<SnapFile> files;
  std::string first_error;
  for (SnapFile& f : listSnapshots(dir_fd, options_.name)) {
    if (f.own) {
      files.push_back(std::move(f));
    } else if (first_error.empty()) {
      // Not something this writer wrote: neither counted nor removed.
      first_error = "snapshot rotation: left " + options_.dir + "/" + f.file +
                    " alone: not a regular file of this user";
    }
  }
  std::uint64_t total = 0;
  for (const SnapFile& f : files) total += f.bytes;
  std::size_t count = files.size();
  for (const SnapFile& f : files) {
    const bool over_count = options_.keep != 0 && count > options_.keep;
    const bool over_bytes = options_.max_bytes != 0 && total > options_.max_bytes;
    if (!over_count && !over_bytes) break;
    if (f.file == just_written) continue;
    if (unlinkat(dir_fd, f.file.c_str(), 0) != 0 && errno != ENOENT) {
      const int err = errno;
      // Skip it and go on with the next oldest: one stuck file must not stop
      // the count and byte limits from being enforced.
      if (first_error.empty()) {
        first_error = "snapshot rotation: cannot remove " + options_.dir + "/" + f.file + ": " +
                      std::strerror(err);
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
