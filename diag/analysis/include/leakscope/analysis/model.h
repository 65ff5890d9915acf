// The in-memory model the CLI analyses: one `Snapshot` per input file, read
// from a leakscope snapshot or a raw gperftools heap profile. It keeps what
// the analyses need and no more — per-object records are compact (labels are
// interned) and the heap keeps one record per symbolic stack — so a series of
// large snapshots can be analysed one file at a time.
//
// Strings shared by the snapshots of one analysis (object labels, frame keys,
// stacks) live in a `SymbolTable` owned by the caller and passed to every
// reader: stacks are matched across files by symbols, never by address.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace leakscope::analysis {

using StringId = std::uint32_t;
using StackId = std::uint32_t;

// One code location, as the CLI shows it.
struct FrameInfo {
  std::string function;  // demangled; "" when unknown
  std::string file;
  int line = 0;
  std::string module;  // base name of the ELF file
  std::uint64_t module_offset = 0;
};

// Interned strings and stacks. A frame's key is its function name (or
// module+offset when unnamed); a stack's key is its frames' keys, innermost
// first.
class SymbolTable {
 public:
  StringId intern(std::string_view s);
  const std::string& str(StringId id) const { return strings_[id]; }

  // Interns a frame by its key; the first description seen is kept for display.
  StringId internFrame(const FrameInfo& f);
  const FrameInfo& frame(StringId key) const;
  // Whether a frame with this key has been interned already.
  bool hasFrame(std::string_view key) const;

  StackId internStack(const std::vector<StringId>& frames);
  const std::vector<StringId>& stack(StackId id) const { return stacks_[id]; }
  std::size_t stackCount() const { return stacks_.size(); }

  static std::string frameKey(const FrameInfo& f);

 private:
  struct VecHash {
    std::size_t operator()(const std::vector<StringId>& v) const noexcept;
  };
  std::deque<std::string> strings_;  // deque: ids stay valid, views stay valid
  std::unordered_map<std::string_view, StringId> string_ids_;
  std::unordered_map<StringId, FrameInfo> frames_;
  std::vector<std::vector<StringId>> stacks_;
  std::unordered_map<std::vector<StringId>, StackId, VecHash> stack_ids_;
};

struct TrackedObject {
  std::uint64_t id = 0;
  std::int64_t birth_unix_ns = 0;
  std::int64_t bytes = 0;
  StringId label = 0;
  std::int32_t fd = -1;  // -1: none declared
  // The id of the tracked object that holds this one (snapshot version 2);
  // 0: none declared. May name an object no longer alive.
  std::uint64_t owner = 0;
};

struct TrackedKind {
  std::string name;
  std::int64_t live = 0;
  std::int64_t live_bytes = 0;
  std::int64_t created_total = 0;
  std::int64_t destroyed_total = 0;
  std::vector<TrackedObject> objects;  // sorted by id
  const TrackedObject* find(std::uint64_t id) const;
};

struct Socket {
  std::int32_t fd = -1;
  std::uint64_t inode = 0;
  std::string protocol;
  std::string local;
  std::string remote;
  std::string state;
  std::string path;
  std::string peer;
  std::optional<std::uint64_t> owner;
};

// One allocation stack. Figures are estimates for sampled profiles (already
// unsampled) and exact for full ones; `alloc_*` only mean something for full
// profiles (sampled ones carry live objects only).
struct HeapSite {
  StackId stack = 0;
  double inuse_objects = 0;
  double inuse_bytes = 0;
  double alloc_objects = 0;
  double alloc_bytes = 0;
};

// A file the profiled process had mapped, as far as the input tells: what a
// pprof export's mappings are made of. Frames name it by `name`, the base
// name (FrameInfo::module).
struct HeapModule {
  std::string name;
  std::string path;
  std::uint64_t start = 0;  // where its file offset 0 was mapped; 0 when unknown
  std::uint64_t limit = 0;  // end of its highest mapping (or frame) seen
  std::string build_id;     // hex; "" when the input does not say
};

struct Heap {
  bool available = false;
  std::string reason;  // why not available
  std::string mode;    // "sampled" | "full"
  std::string format;  // "heap_v2" | "heapprofile"
  std::int64_t sample_period = 0;
  double inuse_bytes = 0;  // sum of sites (estimated when sampled)
  double alloc_bytes = 0;
  std::vector<HeapSite> sites;  // one per stack, sorted by inuse_bytes descending
  // The mapped files the frames lie in, the main executable first when the
  // input says which it is.
  std::vector<HeapModule> modules;
  bool exact() const { return mode == "full"; }
};

struct ProcessInfo {
  std::int64_t pid = 0;
  std::string exe;
  std::string host;  // "" when the snapshot does not say (raw profiles, older snapshots)
  std::string build_id;
  // Seconds since the epoch (0: not recorded). With the pid it tells one run
  // of the process from the next: pids are reused, start times are not.
  double start_time_unix = 0;
  std::int64_t rss_bytes = 0;
  std::int64_t virtual_bytes = 0;
  std::int64_t open_fds = 0;
  std::int64_t max_fds = 0;
  std::int64_t threads = 0;
  // The limit the process ran under, as the snapshot recorded it (cgroup or
  // MemTotal); 0 when not recorded (older snapshots, raw profiles).
  std::int64_t memory_limit_bytes = 0;
  std::string memory_limit_source;  // "cgroup2" | "cgroup1" | "meminfo"
};

enum class SourceKind { kSnapshot, kHeapProfile, kV8HeapSnapshot };
const char* sourceName(SourceKind k);  // "snapshot" | "heap-profile" | "v8-heapsnapshot"

// A class of objects in a V8 heap snapshot, named as Chrome DevTools names
// it (docs/v8-graph.md): its instances as objects (V8's id, self size;
// `live_bytes` sums the self sizes), sorted by id like a tracked kind's, so
// that diff and trend compare them by id; and what the graph says of them.
// Objects with self size 0 are not counted, as in DevTools' Summary.
struct ObjectClass : TrackedKind {
  // The sum over instances that no other instance of the class dominates.
  std::int64_t retained_bytes = 0;
  // Fewest references from the GC roots to an instance; kNoDistance when
  // none is reachable from the user roots (DevTools shows "-").
  std::uint32_t distance = 0;
  // V8's own objects (hidden, code, arrays, strings, shapes, numbers ...):
  // judged by bytes, since their counts move with the engine's caches, not
  // with the program.
  bool engine = false;
  // Each object's retained size, in the order of `objects`; 0 for objects
  // that only V8's compiled code holds (their dominator is code: allocation-
  // site boilerplates, feedback), which come with compilation, not with the
  // program's work. What the leak floor (analysis.h classMinBytes) weighs.
  std::vector<std::uint64_t> retained_of;
  static constexpr std::uint32_t kNoDistance = 0xffffffffu;
};

// What the rest of the graph is kept as, when LoadOptions::keep_graph asks
// (defined in the reader's private headers): enough to print retaining
// paths.
struct V8Graph;

// The objects of one class that hold a TCP connection's handle in a V8 heap
// snapshot (Node: net.Socket and its subclasses such as TLSSocket; rule in
// docs/node.md, "Joining captures with heap snapshots").
struct HeapSocketClass {
  std::string name;
  std::int64_t objects = 0;
};

struct V8Facts {
  std::uint64_t nodes = 0;
  std::uint64_t edges = 0;
  std::uint64_t strings = 0;
  // Nodes no path from the root reaches over strong edges (DevTools hangs
  // them under the root and warns).
  std::uint64_t unreachable = 0;
  std::uint32_t max_js_id = 0;  // ids only grow within one isolate
  std::int64_t self_bytes = 0;  // all nodes
  // Socket objects by class, most objects first, and the distinct TCP
  // handles they hold: one per kernel TCP socket of the process.
  std::vector<HeapSocketClass> socket_classes;
  std::int64_t tcp_handles = 0;
  std::shared_ptr<const V8Graph> graph;
};

struct Snapshot {
  std::string path;
  SourceKind source = SourceKind::kSnapshot;
  std::int64_t sequence = 0;
  std::string name;
  std::int64_t taken_unix_ns = 0;  // raw profiles: the file's mtime
  std::string utc;
  std::string trigger;
  // A capture's trigger.heap_snapshot: the file name of the V8 heap snapshot
  // taken with it (`leakscope capture --signal --wait`); "" otherwise.
  std::string heap_snapshot_file;
  ProcessInfo process;
  bool allocator_available = false;
  std::int64_t allocated_bytes = 0;
  std::int64_t heap_bytes = 0;
  std::vector<TrackedKind> kinds;  // sorted by name
  std::vector<Socket> sockets;
  std::string sockets_error;
  Heap heap;
  // V8 heap snapshots: classes sorted by name, and the graph's figures.
  std::vector<ObjectClass> classes;
  V8Facts v8;

  const TrackedKind* kind(std::string_view name) const;
  const ObjectClass* objectClass(std::string_view name) const;
};

}  // namespace leakscope::analysis
