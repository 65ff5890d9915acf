// The analyses behind `leakscope diff`, `trend` and `sockets`, over the model
// of model.h. Pure functions of their inputs (no I/O), so tests call them
// directly and the CLI only loads files and renders results.
//
// Groups are what the views count: a tracked kind (its objects), a heap site
// (a symbolic allocation stack), a socket group (remote name + state), or a
// class of a V8 heap snapshot (its objects, by V8's ids).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "leakscope/analysis/model.h"

namespace leakscope::analysis {

class Ownership;  // chains.h

enum class Group { kTracked, kHeap, kSocket, kClass };
const char* groupName(Group g);

// The socket's peer as /metrics names it (core::peerName): `none` without a
// remote, the configured name, `inbound :PORT` when the local port is one this
// process listens on, else `other`. Snapshots of older runtimes wrote `other`
// for accepted connections; the rule names them again here.
// `listening_ports` are the snapshot's TCP LISTEN ports.
std::string socketPeerName(const Socket& s, const std::set<std::string>& listening_ports);
// The name a socket is grouped under: its peer name; `other (REMOTE)` for a
// remote no rule names (one group per remote endpoint); for sockets without a
// remote, the protocol and local end.
std::string socketGroupName(const Socket& s, const std::set<std::string>& listening_ports);
std::set<std::string> listeningPorts(const Snapshot& s);
// The group trend and diff count a socket in: its group name and state
// ("other (17.188.1.1:443) ESTABLISHED").
std::string socketSeriesName(const Socket& s, const std::set<std::string>& listening_ports);

// Thresholds shared by diff and trend: growth below them is noise.
struct Thresholds {
  std::int64_t min_objects = 1;                // tracked objects, sockets
  double min_heap_bytes = 1024.0 * 1024.0;     // heap sites
  double min_tracked_bytes = 1024.0 * 1024.0;  // tracked kinds whose bytes grow, not count
  // V8 classes judged by count must also hold this much more (retained
  // size): at least min_class_bytes, and this fraction of the heap. A heap
  // gains a few objects as it warms up (lazily made caches, feedback) in a
  // program that leaks nothing; growth too small to move the heap is not
  // what an out-of-memory kill is made of.
  double min_class_bytes = 4096;
  double min_class_heap_fraction = 0.001;
};

// The retained growth a V8 class of the program must reach to be a suspect
// in a heap of `heap_bytes` (Thresholds::min_class_bytes).
double classMinBytes(const Thresholds& t, double heap_bytes);
// What the objects of `target` that `base` does not have (by id) hold:
// their retained sizes summed.
double addedRetained(const ObjectClass& base, const ObjectClass& target);
// What the objects of `k` with an id above `after_id` hold.
double addedRetained(const ObjectClass& k, std::uint32_t after_id);

// ---- diff ---------------------------------------------------------------

// One row of the Comparison view between BASE and TARGET.
struct CompareRow {
  Group group = Group::kTracked;
  std::string name;
  std::optional<StackId> stack;  // heap sites
  double base_count = 0, target_count = 0;
  double base_bytes = 0, target_bytes = 0;
  double new_count = 0;      // # New
  double deleted_count = 0;  // # Deleted
  double delta_count = 0;    // # Delta
  double alloc_bytes = 0;    // Alloc. Size
  double freed_bytes = 0;    // Freed Size
  double delta_bytes = 0;    // Size Delta
  // How # New / # Deleted were counted: "ids" (tracked objects, exact),
  // "inodes" (sockets), "counters" (full heap profile: allocations and frees
  // in between), "net" (sampled heap: only the net change is known).
  std::string basis;
  std::int64_t created = 0, destroyed = 0;  // tracked: the kind's counters in between
  // V8 classes: the change of the class's retained size (base → target).
  std::optional<double> retained_delta_bytes;
};

// What a suspect of the socket view is about, so that views can name it.
struct SocketFacts {
  std::string peer;  // as /metrics labels it; "" for an owner kind
  std::string state;
  std::string protocol;
  // "kind#id (label)" of the owners concerned, ids ascending (at most 5).
  std::vector<std::string> owners;
  std::size_t more_owners = 0;  // owners beyond `owners`
};

struct Suspect {
  Group group = Group::kTracked;
  std::string name;
  std::string reason;
  double delta_count = 0;
  // V8 classes: the growth of their retained size (what collecting them
  // would free), which also orders them; others: of their own bytes.
  double delta_bytes = 0;
  std::optional<StackId> stack;
  std::optional<SocketFacts> socket = std::nullopt;  // suspects of analyseSockets
};

// Retainer chains (chains.h): suspects grouped by who holds whom, as the
// program declared owners. A member: its index in the result's `suspects`,
// its depth under the chain's top (0: the top), and how many of its objects
// (or sockets) each object of the top holds.
struct ChainMember {
  std::size_t suspect = 0;
  std::size_t depth = 0;
  double each = 0;
};

struct Chain {
  std::vector<ChainMember> members;  // the top first, then what it holds, depth first
  // The top with what it holds: "apns.provider +1 per interval, never
  // destroyed, holds 3 apns.connection each → 3 ESTABLISHED sockets each".
  std::string summary;
  std::string held_by;  // the kind that holds the top (no suspect), "" for none
};

struct Comparison {
  std::string base, target;
  double interval_seconds = 0;
  bool same_process = true;
  std::vector<CompareRow> rows;  // tracked, heap, socket rows; each group sorted by growth
  std::vector<Suspect> suspects;
  std::vector<Chain> chains;  // every suspect in exactly one chain
  std::vector<std::string> notes;
};

Comparison compare(const Snapshot& base, const Snapshot& target, const SymbolTable& symbols,
                   const Thresholds& t);

// ---- trend --------------------------------------------------------------

enum class Verdict {
  kSteady,     // grows across the series: a suspect
  kTransient,  // rose and was freed later
  kRecent,     // grew only in the last interval: too early to tell
  kBounded,    // grew early, then levelled off
  kFlat,       // no meaningful growth
  // Sampled figures only: the series seems to grow, but whether it does (or
  // levelled off, or was freed) is within sampling error.
  kUncertain,
};
const char* verdictName(Verdict v);

struct Survivor {
  std::uint64_t id = 0;
  double age_seconds = 0;  // at the last snapshot
  std::string label;
  std::int64_t bytes = 0;
  std::int32_t fd = -1;
  std::string socket;  // "tcp 127.0.0.1:5000 -> 17.188.1.1:443 ESTABLISHED" in the last snapshot
  // Tracked objects: what holds it in the last snapshot, root first
  // (Ownership::chainOf); "" when it has no owner.
  std::string chain;
};

// Sampled heap sites: the claim a verdict stands on, e.g. "growth in the
// second half", with its margin (how far the figures are past the claim's
// boundary) and the 2σ sampling error of that margin. A claim whose margin is
// within its error does not stand: the verdict is then `uncertain`.
struct SamplingCheck {
  std::string claim;
  double margin_bytes = 0;
  double error_bytes = 0;
  // Steady growth may also stand on a trend test of the second half: the
  // one-sided p of Kendall's test (set when that test decided).
  std::optional<double> trend_p;
  bool clear() const { return margin_bytes > error_bytes; }
};

// Retaining paths shared by objects of a class, DevTools' notation:
// "(GC roots) → (Global handles) → … → Endpoint._socket → TLSSocket".
struct RetainerPath {
  std::string path;
  std::size_t count = 0;  // objects whose shortest path has this shape
};

struct TrendGroup {
  Group group = Group::kTracked;
  std::string name;
  std::optional<StackId> stack;
  std::vector<double> counts;  // per snapshot, in time order
  std::vector<double> bytes;
  Verdict verdict = Verdict::kFlat;
  std::string reason;
  // For steady growth (of counts for sockets and kinds, bytes for heap):
  double growth_count_per_interval = 0;
  double growth_bytes_per_interval = 0;
  double growth_count_per_hour = 0;
  double growth_bytes_per_hour = 0;
  bool accelerating = false;
  std::optional<double> hours_to_limit;
  std::size_t growing_intervals = 0;
  // Transient: where the peak was.
  std::size_t peak_index = 0;
  // Sampled heap sites that grew: what the verdict was checked against.
  std::optional<SamplingCheck> sampling;
  // Tracked kinds and V8 classes: ids alive in every snapshot.
  std::size_t survivor_count = 0;
  // Tracked: oldest first; classes: lowest id (oldest) first. At most
  // TrendOptions::max_survivors.
  std::vector<Survivor> survivors;
  // V8 classes: retained size per snapshot, and whether the class is V8's
  // own (judged by bytes: its count moves with the engine's caches).
  std::vector<double> retained;
  bool engine = false;
  // V8 classes: what the objects added since the first input (higher ids)
  // hold in the last, retained sizes summed: the growth that is the class's
  // own, whatever its older objects came to hold.
  double added_retained_bytes = 0;
  // V8 class suspects: how the survivors are held in the last snapshot (all
  // its instances when none survived), most shared path first.
  std::vector<RetainerPath> retainers;
};

struct TrendOptions {
  Thresholds thresholds;
  std::optional<double> memory_limit_bytes;
  std::size_t max_survivors = 20;
  std::size_t max_retainer_paths = 5;
};

struct SeriesPoint {
  std::string path;
  std::int64_t sequence = 0;
  std::int64_t taken_unix_ns = 0;
  std::string utc;
  std::int64_t pid = 0;
  // Which process and build, as the snapshot names them ("" when it does not).
  std::string exe;
  std::string host;
  std::string build_id;
  std::int64_t rss_bytes = 0;
  double heap_inuse_bytes = 0;
  std::int64_t open_fds = 0;
  std::int64_t memory_limit_bytes = 0;  // as recorded; 0: not recorded
  std::string memory_limit_source;
};

// The memory limit a trend projects against: --memory-limit when given,
// else the one the last snapshot recorded.
struct MemoryLimitUsed {
  double bytes = 0;
  std::string from;    // "flag" | "snapshot"
  std::string source;  // from a snapshot: "cgroup2" | "cgroup1" | "meminfo"
};

struct TrendResult {
  std::vector<SeriesPoint> points;
  std::vector<TrendGroup> groups;  // every group, suspects first
  std::vector<Suspect> suspects;   // the steady ones, most growth (bytes/h) first
  std::vector<Chain> chains;       // every suspect in exactly one chain
  std::vector<std::string> notes;
  double span_seconds = 0;
  // Projection of the process' memory when a limit is known.
  std::optional<MemoryLimitUsed> memory_limit;
  std::optional<double> rss_growth_bytes_per_hour;
  std::optional<double> hours_to_limit;
};

// Feeds snapshots one at a time, in time order; keeps per-group series and the
// survivor candidates only, so a long series of big files fits in memory.
class TrendBuilder {
 public:
  TrendBuilder(const SymbolTable& symbols, TrendOptions options);
  void add(const Snapshot& s);
  TrendResult finish();

 private:
  struct Series {
    Group group;
    std::string name;
    std::optional<StackId> stack;
    std::vector<double> counts, bytes;
    // Standard error of each bytes estimate (sampled heap profiles; 0 when
    // the figure is exact or the site had no samples).
    std::vector<double> bytes_sd;
    // The error of one sample (sampled heap sites; 0 when exact): what a
    // point without samples may hide.
    double sample_bytes = 0;
    std::vector<double> retained;  // V8 classes
    bool engine = false;           // V8 classes: V8's own objects
    double added_retained = 0;     // V8 classes: TrendGroup::added_retained_bytes
  };
  struct Candidate {
    TrackedObject object;
    std::string socket;
  };
  // A V8 object that has been alive in every snapshot so far (compact:
  // a class's candidates at first are all its instances).
  // 8 bytes: V8's ids are 32-bit; a self size past 4 GiB (none V8 makes
  // on its heap) would show as 4 GiB.
  struct ClassCandidate {
    std::uint32_t id = 0;
    std::uint32_t bytes = 0;
  };
  Series& series(Group g, const std::string& name, std::optional<StackId> stack);
  // The steps of add(): one value per series for this snapshot.
  void addTracked(const Snapshot& s);
  void addHeap(const Snapshot& s, std::size_t n);
  void addSockets(const Snapshot& s);
  void addClasses(const Snapshot& s);
  void updateClassSurvivors(const Snapshot& s, bool first);
  void addClassSurvivors(TrendGroup& g) const;
  // One series' verdict, rates and survivors (`hours`: each point's time
  // since the first).
  TrendGroup judge(const Series& se, const std::vector<double>& hours,
                   const std::optional<MemoryLimitUsed>& limit, double current_memory) const;
  // A class of the program that grew steadily by a few objects holding
  // next to nothing (classMinBytes of added_retained_bytes) is no suspect:
  // its verdict becomes flat.
  static void tooSmallToLeak(TrendGroup& g, const Thresholds& t, double heap_bytes);
  void updateSurvivors(const Snapshot& s, bool first);
  // A tracked kind's objects alive in every snapshot, oldest first, with
  // what holds them.
  void addSurvivors(TrendGroup& g) const;
  // A chain top's growth and fate: "+1 per interval, never destroyed".
  std::string chainGrowth(const TrendGroup& g) const;

  const SymbolTable& symbols_;
  TrendOptions options_;
  std::vector<SeriesPoint> points_;
  std::map<std::string, Series> series_;  // key: group + name
  // Tracked kind → ids alive in every snapshot so far.
  std::map<std::string, std::vector<Candidate>> survivors_;
  bool survivors_valid_ = true;
  // V8 class → ids alive in every snapshot so far, sorted.
  std::map<std::string, std::vector<ClassCandidate>> class_survivors_;
  // The last snapshot's graph, when it was loaded with keep_graph.
  std::shared_ptr<const V8Graph> last_graph_;
  // The first V8 snapshot's highest JS id: objects above it were added since.
  std::optional<std::uint32_t> first_max_id_;
  std::vector<std::string> notes_;
  // The last snapshot's owners (leakscope snapshots only), and each tracked
  // kind's destroyed_total in the first and the last snapshot.
  std::shared_ptr<const Ownership> last_ownership_;
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> destroyed_;
};

// ---- V8 retainers -------------------------------------------------------

// The shortest retaining paths to a class's objects `ids` (all its instances
// when empty), clustered by shape (paths that differ only in element
// indexes are one), most shared first, at most `max_paths`. Empty when the
// snapshot was loaded without LoadOptions::keep_graph.
std::vector<RetainerPath> classRetainers(const Snapshot& s, const std::string& name,
                                         const std::vector<std::uint64_t>& ids,
                                         std::size_t max_paths);

// ---- sockets ------------------------------------------------------------

struct SocketRow {
  std::string name;   // group name
  std::string peer;   // socketPeerName of its sockets
  std::string state;  // TCP state ("" for none)
  std::string protocol;
  std::vector<std::int64_t> counts;  // per snapshot
  std::int64_t owned = 0;            // in the last snapshot
  std::int64_t unowned = 0;
  // "kind#id (label)" of the last snapshot's owners, ids ascending (up to 5).
  std::vector<std::string> owners;
};

struct SocketDetail {  // one socket of the last snapshot
  Socket socket;
  std::string group;
  std::string peer;
  std::string owner;  // "kind#id (label)" or ""
};

struct SocketFlag {
  std::string what;  // "unowned" | "owner-without-socket" | "close-wait"
  std::string name;
  std::string reason;
};

struct SocketsResult {
  std::vector<SeriesPoint> points;
  std::vector<SocketRow> rows;
  std::vector<SocketDetail> last;  // the last snapshot's sockets
  std::vector<SocketFlag> flags;
  std::vector<Suspect> suspects;  // each with its SocketFacts
  // Unowned sockets not held against the program: caught while being opened
  // or closed (owned in a neighbouring snapshot, or younger than an interval).
  std::vector<std::string> notes;
};

// `snaps` in time order.
SocketsResult analyseSockets(const std::vector<const Snapshot*>& snaps, const SymbolTable& symbols,
                             const Thresholds& t);

// ---- shared helpers -----------------------------------------------------

// "operator new ← foo::bar (src/x.cc:12) ← main", innermost first, at most
// `depth` frames.
std::string describeStack(const SymbolTable& symbols, StackId stack, std::size_t depth = 4);
// The first frame's function (or module+offset).
std::string siteName(const SymbolTable& symbols, StackId stack);

}  // namespace leakscope::analysis
