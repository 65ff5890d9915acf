#include "leakscope/analysis/join.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "leakscope/analysis/analysis.h"
#include "leakscope/analysis/units.h"
#include "v8_model.h"

namespace leakscope::analysis {
namespace {

// Node names its heap snapshots to the second: such a file was begun
// somewhere in the second its name gives.
constexpr std::int64_t kNodeNameResolutionNs = 1'000'000'000;

// Time between the two files of a pair beyond which the text says how far
// apart they are: sockets open and close in between.
constexpr double kFarApartSeconds = 1.0;

// The capture's TCP sockets by group and state, most first.
std::vector<JoinSocketGroup> tcpGroups(const Snapshot& s) {
  const std::set<std::string> listening = listeningPorts(s);
  std::map<std::pair<std::string, std::string>, std::int64_t> counts;
  for (const Socket& k : s.sockets) {
    if (k.protocol != "tcp" && k.protocol != "tcp6") continue;
    ++counts[{socketGroupName(k, listening), k.state}];
  }
  std::vector<JoinSocketGroup> out;
  for (const auto& [key, n] : counts) out.push_back({key.first, key.second, n});
  std::stable_sort(out.begin(), out.end(), [](const JoinSocketGroup& a, const JoinSocketGroup& b) {
    return a.count > b.count;
  });
  return out;
}

// The group as the line names it: an unnamed remote by its endpoint
// ("other (127.0.0.1:8443)" is 127.0.0.1:8443).
std::string endpointOf(const std::string& group) {
  const std::string other = "other (";
  if (group.starts_with(other) && group.ends_with(")")) {
    return group.substr(other.size(), group.size() - other.size() - 1);
  }
  return group;
}

std::string baseName(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string plural(std::int64_t n, const std::string& one, const std::string& many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string apart(const JoinPair& p) {
  if (std::abs(p.seconds_apart) < kFarApartSeconds) return "";
  return " (the files are " + formatDuration(std::abs(p.seconds_apart)) + " apart)";
}

}  // namespace

// The reader appends the trigger's detail: "capture (SIGUSR2)".
bool isCapture(const Snapshot& s) {
  return s.source == SourceKind::kSnapshot &&
         (s.trigger == "capture" || s.trigger.starts_with("capture ("));
}

void JoinBuilder::add(const Snapshot& s) {
  if (s.source == SourceKind::kV8HeapSnapshot) {
    const bool named = parseNodeFileName(s.path).taken_unix_ns > 0;
    heaps_.push_back({s.path, s.process.pid, s.taken_unix_ns, named ? kNodeNameResolutionNs : 0,
                      s.v8.socket_classes, s.v8.tcp_handles});
  } else if (isCapture(s)) {
    captures_.push_back(
        {s.path, s.process.pid, s.taken_unix_ns, s.heap_snapshot_file, tcpGroups(s)});
  }
}

// How far a capture is from the time span a heap snapshot was begun in.
std::int64_t JoinBuilder::distance(const Heap& h, const Capture& c) {
  if (c.taken_unix_ns < h.taken_unix_ns) return h.taken_unix_ns - c.taken_unix_ns;
  return std::max<std::int64_t>(0, c.taken_unix_ns - (h.taken_unix_ns + h.resolution_ns));
}

// `leakscope capture --signal --wait` writes its capture after the heap
// snapshot is complete, which takes seconds for a big heap: the file name it
// records pairs the two where times could not.
const JoinBuilder::Capture* JoinBuilder::captureFor(const Heap& h, std::int64_t pid) const {
  const std::string file = baseName(h.path);
  for (const Capture& c : captures_) {
    if (c.pid == pid && c.heap_file == file) return &c;
  }
  return nearest(h, pid);
}

// Of captures equally near (several in the second a Node file name gives),
// the earliest. A capture taken with another heap snapshot of the series
// belongs to that one.
const JoinBuilder::Capture* JoinBuilder::nearest(const Heap& h, std::int64_t pid) const {
  std::set<std::string> heap_files;
  for (const Heap& other : heaps_) heap_files.insert(baseName(other.path));
  const Capture* best = nullptr;
  for (const Capture& c : captures_) {
    if (c.pid != pid || (!c.heap_file.empty() && heap_files.contains(c.heap_file))) continue;
    const bool nearer =
        best == nullptr || distance(h, c) < distance(h, *best) ||
        (distance(h, c) == distance(h, *best) && c.taken_unix_ns < best->taken_unix_ns);
    if (nearer) best = &c;
  }
  return best;
}

JoinResult JoinBuilder::finish() const {
  JoinResult r;
  std::set<std::int64_t> captured;
  for (const Capture& c : captures_) captured.insert(c.pid);
  std::vector<const Heap*> heaps;
  for (const Heap& h : heaps_) heaps.push_back(&h);
  std::stable_sort(heaps.begin(), heaps.end(), [](const Heap* a, const Heap* b) {
    return a->taken_unix_ns < b->taken_unix_ns;
  });
  for (const Heap* h : heaps) {
    // A heap snapshot whose name gives no pid (not Node's naming) can only
    // be placed when the captures are of one process.
    std::int64_t pid = h->pid;
    if (pid == 0 && captured.size() == 1) pid = *captured.begin();
    const Capture* c = pid == 0 ? nullptr : captureFor(*h, pid);
    if (c == nullptr) {
      r.notes.push_back(h->path + ": not joined: " +
                        (pid == 0 ? "its name gives no pid (Node's Heap.*.PID.*.heapsnapshot) and "
                                    "the captures are of " +
                                        std::to_string(captured.size()) + " processes"
                                  : "no capture of pid " + std::to_string(pid)));
      continue;
    }
    JoinPair p;
    p.heap_path = h->path;
    p.capture_path = c->path;
    p.pid = pid;
    const auto d = static_cast<double>(distance(*h, *c)) / 1e9;
    p.seconds_apart = c->taken_unix_ns < h->taken_unix_ns ? -d : d;
    p.classes = h->classes;
    p.heap_connections = h->tcp_handles;
    p.groups = c->groups;
    for (const JoinSocketGroup& g : p.groups) p.kernel_connections += g.count;
    p.line = joinLine(p);
    p.disagreements = joinDisagreements(p);
    r.pairs.push_back(std::move(p));
  }
  return r;
}

std::string joinLine(const JoinPair& p) {
  std::string heap = p.classes.empty() ? "no socket object alive in the heap"
                                       : std::to_string(p.classes.front().objects) + " " +
                                             p.classes.front().name + " alive in the heap";
  std::string kernel;
  for (const JoinSocketGroup& g : p.groups) {
    if (g.state != "ESTABLISHED") continue;
    kernel += kernel.empty() ? plural(g.count, "ESTABLISHED socket to ", "ESTABLISHED sockets to ")
                             : ", " + std::to_string(g.count) + " to ";
    kernel += endpointOf(g.name);
  }
  if (kernel.empty()) kernel = "no ESTABLISHED socket";
  return heap + ", " + kernel;
}

std::vector<std::string> joinDisagreements(const JoinPair& p) {
  std::vector<std::string> out;
  const std::int64_t d = p.heap_connections - p.kernel_connections;
  if (d > 0) {
    out.push_back(plural(d, "socket object holds", "socket objects hold") +
                  " a TCP handle whose socket the kernel no longer has (closed, or not yet "
                  "collected)" +
                  apart(p));
  } else if (d < 0) {
    out.push_back(plural(-d, "TCP connection", "TCP connections") + " of pid " +
                  std::to_string(p.pid) +
                  " that no socket object in the heap holds (opened outside JavaScript: a "
                  "native addon, an inherited fd)" +
                  apart(p));
  }
  return out;
}

}  // namespace leakscope::analysis
