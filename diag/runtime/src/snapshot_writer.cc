#include "leakscope/diag/snapshot_writer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <map>
#include <unordered_map>

#include "json_writer.h"
#include "leakscope/core/unique_fd.h"
#include "leakscope/diag/process.h"
#include "leakscope/diag/tracked.h"
#include "snapshot_files.h"
#include "snapshot_sections.h"
#include "symbolizer.h"

namespace leakscope::diag {

using core::Estimate;
using core::HeapRecord;
using core::isAllocatorFrame;
using core::openDirStream;
using core::parseHeapProfile;
using core::RawHeapProfile;
using core::UniqueDir;
using core::unsample;

namespace {

std::string hex(std::uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string baseName(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The scratch directory for gperftools' own dumps in full heap mode.
constexpr const char* kScratchDir = ".gperftools";

// Empties DIR/.gperftools (gperftools' own interval dumps in full mode):
// only while it still is a private directory of this user, never through a
// link, and only the regular files of this user in it.
void emptyScratchDir(const std::string& dir) {
  auto dir_fd = openSnapshotDir(dir);
  if (!dir_fd.ok()) return;
  auto scratch = openOwnDir(dir_fd->get(), kScratchDir, dir + "/" + kScratchDir, 077);
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
        w.key("owner");
        if (r.owner.value != 0) {
          w.value(r.owner.value);
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
  files_ = std::make_unique<SnapshotFiles>(options_.dir, options_.name, options_.keep,
                                           options_.max_bytes);
}

SnapshotWriter::~SnapshotWriter() = default;

Status SnapshotWriter::prepareDir() { return files_->prepareDir(); }

Result<SnapshotInfo> SnapshotWriter::write(Trigger trigger, std::string_view detail) {
  std::lock_guard lock(mu_);
  // Nothing may escape into the snapshot thread: an exception there would
  // terminate the daemon, and memory is tightest exactly when someone asks for
  // a snapshot. The temp file is removed on every path (TempFile).
  try {
    const auto t0 = std::chrono::steady_clock::now();
    auto info = files_->write([&](JsonWriter& w, SnapshotInfo& i) -> Status {
      writeDocument(w, trigger, detail, t0, i);
      return Ok{};
    });
    if (info.ok() && !gperftools_dir_.empty()) emptyScratchDir(options_.dir);
    return info;
  } catch (const std::bad_alloc&) {
    return Error{Errc::kNoSpace, "snapshot in " + options_.dir + ": out of memory"};
  } catch (const std::exception& e) {
    return Error{Errc::kIo, "snapshot in " + options_.dir + ": " + e.what()};
  }
}

void SnapshotWriter::writeDocument(JsonWriter& w, Trigger trigger, std::string_view detail,
                                   std::chrono::steady_clock::time_point t0, SnapshotInfo& info) {
  if (!symbolizer_) symbolizer_ = std::make_unique<Symbolizer>();
  writeHead(w, info.sequence, options_.name, triggerName(trigger), detail);
  // The heap is read before anything else is collected, so the snapshot's
  // own work does not show in it.
  Result<std::string> heap_text =
      heap_unavailable_.empty() ? heap_->captureText()
                                : Result<std::string>(Error{Errc::kUnavailable, heap_unavailable_});
  writeProcess(w, readProcessStats(), 0);
  writeAllocator(w);
  std::unordered_map<int, std::uint64_t> owners;
  info.objects = writeTracked(w, owners);
  auto sockets = listOwnSockets();
  info.sockets = writeSockets(w, sockets, options_.peer_names, owners);
  info.heap_sites = writeHeap(w, options_.heap_mode, heap_text, *symbolizer_);
  symbolizer_->releaseDebugData();
  writeTail(w, t0);
}

}  // namespace leakscope::diag
