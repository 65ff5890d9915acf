#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstring>
#include <map>
#include <unordered_map>

#include "json_writer.h"
#include "leakscope/diag/process.h"
#include "leakscope/diag/snapshot.h"
#include "leakscope/diag/tracked.h"
#include "symbolizer.h"

namespace leakscope::diag {
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

std::string defaultName() {
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return "process";
  std::string name = baseName(std::string(exe, static_cast<std::size_t>(n)));
  // A binary replaced on disk reads "name (deleted)".
  if (const std::size_t sp = name.find(' '); sp != std::string::npos) name.resize(sp);
  return name.empty() ? "process" : name;
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

// The temp file of a snapshot being written: closed and removed unless
// release()d after a successful rename, on every path including exceptions.
class TempFile {
 public:
  TempFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  int fd() const { return fd_; }
  // Closes the fd; returns errno of close, or 0.
  int close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc == 0 ? 0 : errno;
  }
  void release() { path_.clear(); }

 private:
  std::string path_;
  int fd_;
};

// "." + name + "." + seq + "." + pid + ".tmp": a temp file of this writer's
// name; returns its pid or 0.
int tempPidOf(const std::string& file, const std::string& name) {
  const std::string prefix = "." + name + ".";
  const std::string suffix = ".tmp";
  if (file.size() <= prefix.size() + suffix.size() || file.compare(0, prefix.size(), prefix) != 0 ||
      file.compare(file.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return 0;
  }
  const std::string middle =
      file.substr(prefix.size(), file.size() - prefix.size() - suffix.size());
  const std::size_t dot = middle.rfind('.');
  if (dot == std::string::npos) return 0;
  int pid = 0;
  auto [p, ec] = std::from_chars(middle.data() + dot + 1, middle.data() + middle.size(), pid);
  return ec == std::errc() && p == middle.data() + middle.size() ? pid : 0;
}

// Removes temp files left by writers that died mid-snapshot (their pid is gone).
void removeStaleTemps(const std::string& dir, const std::string& name) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  std::vector<std::string> stale;
  while (dirent* e = readdir(d)) {
    const int pid = tempPidOf(e->d_name, name);
    if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) stale.push_back(dir + "/" + e->d_name);
  }
  closedir(d);
  for (const auto& f : stale) ::unlink(f.c_str());
}

// Removes every file in `dir` (gperftools' own interval dumps in full mode).
void emptyDir(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  std::vector<std::string> files;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') files.push_back(dir + "/" + e->d_name);
  }
  closedir(d);
  for (const auto& f : files) ::unlink(f.c_str());
}

struct SnapFile {
  std::uint64_t seq;
  std::string path;
  std::uint64_t bytes;
};

std::vector<SnapFile> listSnapshots(const std::string& dir, const std::string& name) {
  std::vector<SnapFile> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    const std::string file = e->d_name;
    const std::uint64_t seq = sequenceOf(file, name);
    if (seq == 0) continue;
    struct stat st {};
    const std::string path = dir + "/" + file;
    if (stat(path.c_str(), &st) != 0) continue;
    out.push_back(SnapFile{seq, path, static_cast<std::uint64_t>(st.st_size)});
  }
  closedir(d);
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
        .field("build_id", p->build_id)
        .field("start_time_unix", p->start_time_unix)
        .field("rss_bytes", p->rss_bytes)
        .field("virtual_bytes", p->virtual_bytes)
        .field("open_fds", p->open_fds)
        .field("max_fds", p->max_fds)
        .field("threads", p->threads)
        .field("cpu_seconds", p->cpu_seconds);
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
    for (const OwnSocket& s : *sockets) {
      w.beginObject()
          .field("fd", s.fd)
          .field("inode", s.inode)
          .field("protocol", s.protocol)
          .field("local", s.local.str())
          .field("remote", s.remote.str())
          .field("state", s.state);
      if (s.protocol == "unix") w.field("path", s.path);
      w.field("peer", s.protocol == "unix" ? std::string("none") : names.nameFor(s.remote));
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

std::uint64_t writeHeap(JsonWriter& w, const HeapProfiler* heap, Result<std::string>& text,
                        Symbolizer& sym) {
  w.key("heap").beginObject().field("mode", heapModeName(heap ? heap->mode() : HeapMode::kOff));
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

  // Frame table: every distinct frame once; sites refer to frames by index.
  std::vector<const Frame*> frames;
  std::unordered_map<const Frame*, std::uint32_t> frame_ids;
  std::map<std::vector<std::uint32_t>, HeapRecord> sites;
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
      auto [it, inserted] = frame_ids.emplace(stack[i], static_cast<std::uint32_t>(frames.size()));
      if (inserted) frames.push_back(stack[i]);
      ids.push_back(it->second);
    }
    HeapRecord& s = sites[ids];
    s.inuse_objects += r.inuse_objects;
    s.inuse_bytes += r.inuse_bytes;
    s.alloc_objects += r.alloc_objects;
    s.alloc_bytes += r.alloc_bytes;
  }

  w.field("available", true).field("format", p.format).field("sample_period", p.sample_period);
  w.key("totals")
      .beginObject()
      .field("inuse_objects", p.totals.inuse_objects)
      .field("inuse_bytes", p.totals.inuse_bytes)
      .field("alloc_objects", p.totals.alloc_objects)
      .field("alloc_bytes", p.totals.alloc_bytes)
      .endObject();

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

  std::vector<std::pair<const std::vector<std::uint32_t>*, const HeapRecord*>> order;
  for (const auto& [ids, rec] : sites) order.emplace_back(&ids, &rec);
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
  w.endArray().endObject();
  return order.size();
}

}  // namespace

const char* triggerName(Trigger t) {
  switch (t) {
    case Trigger::kSignal:
      return "signal";
    case Trigger::kApi:
      return "api";
    case Trigger::kInterval:
      return "interval";
  }
  return "?";
}

SnapshotWriter::SnapshotWriter(SnapshotOptions options) : options_(std::move(options)) {
  if (options_.name.empty()) options_.name = defaultName();
  // Full mode: gperftools writes its own interval dumps next to its prefix.
  // They are of no use to us; they go to a scratch directory emptied after
  // every snapshot, so a long drill cannot fill the disk with them.
  if (options_.heap_mode == HeapMode::kFull && !options_.dir.empty()) {
    gperftools_dir_ = options_.dir + "/.gperftools";
    if (prepareDir().ok()) mkdir(gperftools_dir_.c_str(), 0700);
  }
  heap_ = std::make_unique<HeapProfiler>(options_.heap_mode, gperftools_dir_ + "/heap");
}

SnapshotWriter::~SnapshotWriter() = default;

Status SnapshotWriter::prepareDir() {
  const std::string& dir = options_.dir;
  if (dir.empty()) return Error{Errc::kInvalidArgument, "no snapshot directory configured"};
  // mkdir -p, each new level 0700.
  for (std::size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    const std::string part = dir.substr(0, pos);
    if (mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
      return sysError("snapshot dir " + dir + ": cannot create " + part, errno);
    }
  }
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) return sysError("snapshot dir " + dir, errno);
  if (!S_ISDIR(st.st_mode)) {
    return Error{Errc::kInvalidArgument, "snapshot dir " + dir + ": not a directory"};
  }
  // Snapshots name peers and code paths: keep them to the owner.
  if ((st.st_mode & 077) != 0 && st.st_uid == geteuid()) chmod(dir.c_str(), 0700);
  if (access(dir.c_str(), W_OK | X_OK) != 0) {
    return sysError("snapshot dir " + dir + ": not writable", errno);
  }
  return Ok{};
}

std::uint64_t SnapshotWriter::nextSequence() {
  if (next_seq_ == 0) {
    removeStaleTemps(options_.dir, options_.name);
    const auto existing = listSnapshots(options_.dir, options_.name);
    next_seq_ = existing.empty() ? 1 : existing.back().seq + 1;
  }
  return next_seq_++;
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
  if (Status s = prepareDir(); !s.ok()) return s.error();

  SnapshotInfo info;
  info.sequence = nextSequence();
  char seq[32];
  snprintf(seq, sizeof seq, "%06llu", static_cast<unsigned long long>(info.sequence));
  info.path = options_.dir + "/" + options_.name + "." + seq + ".lsnap";
  // The pid keeps two processes that share a directory and a name apart.
  const std::string tmp =
      options_.dir + "/." + options_.name + "." + seq + "." + std::to_string(getpid()) + ".tmp";
  const int raw_fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (raw_fd < 0) return sysError("snapshot " + tmp + ": cannot create", errno);
  TempFile file(tmp, raw_fd);
  const int fd = file.fd();
  if (!symbolizer_) symbolizer_ = std::make_unique<Symbolizer>();

  const std::int64_t unix_ns = clockNs(CLOCK_REALTIME);
  const std::int64_t mono_ns = clockNs(CLOCK_MONOTONIC);
  // The heap is read first so the snapshot's own work does not show in it.
  Result<std::string> heap_text = heap_->captureText();

  JsonWriter w(fd);
  w.beginObject()
      .field("format", kSnapshotFormat)
      .field("version", kSnapshotVersion)
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
  info.heap_sites = writeHeap(w, heap_.get(), heap_text, *symbolizer_);
  symbolizer_->releaseDebugData();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  w.key("writer").beginObject().field("duration_seconds", elapsed).endObject();
  w.endObject();
  w.flush();

  int err = w.error();
  if (err == 0 && fsync(fd) != 0) err = errno;
  if (const int close_err = file.close(); err == 0) err = close_err;
  if (err != 0) return sysError("snapshot " + tmp + ": write failed", err);
  info.bytes = w.bytesWritten();
  if (options_.max_bytes != 0 && info.bytes > options_.max_bytes) {
    return Error{Errc::kNoSpace, "snapshot " + info.path + " is " + std::to_string(info.bytes) +
                                     " bytes, more than the whole byte budget (" +
                                     std::to_string(options_.max_bytes) + "); not kept"};
  }
  // Never replace a file: another process with the same name may have taken
  // this sequence number; then take the next free one.
  for (int attempt = 0;; ++attempt) {
    if (renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, info.path.c_str(), RENAME_NOREPLACE) == 0) break;
    if (errno != EEXIST || attempt == 1000) {
      return sysError("snapshot " + info.path + ": rename failed", errno);
    }
    info.sequence = nextSequence();
    snprintf(seq, sizeof seq, "%06llu", static_cast<unsigned long long>(info.sequence));
    info.path = options_.dir + "/" + options_.name + "." + seq + ".lsnap";
  }
  file.release();
  if (const int dfd = ::open(options_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    fsync(dfd);  // make the rename durable
    ::close(dfd);
  }
  // The snapshot is written; a rotation problem is reported beside it.
  if (Status s = rotate(info.path); !s.ok()) info.warning = s.error().message;
  if (!gperftools_dir_.empty()) emptyDir(gperftools_dir_);
  info.duration_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return info;
}

Status SnapshotWriter::rotate(const std::string& just_written) {
  if (options_.keep == 0 && options_.max_bytes == 0) return Ok{};
  auto files = listSnapshots(options_.dir, options_.name);
  std::uint64_t total = 0;
  for (const SnapFile& f : files) total += f.bytes;
  std::size_t count = files.size();
  std::string first_error;
  for (const SnapFile& f : files) {
    const bool over_count = options_.keep != 0 && count > options_.keep;
    const bool over_bytes = options_.max_bytes != 0 && total > options_.max_bytes;
    if (!over_count && !over_bytes) break;
    if (f.path == just_written) continue;
    if (unlink(f.path.c_str()) != 0 && errno != ENOENT) {
      // Skip it and go on with the next oldest: one stuck file must not stop
      // the count and byte limits from being enforced.
      if (first_error.empty()) {
        first_error = "snapshot rotation: cannot remove " + f.path + ": " + std::strerror(errno);
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
