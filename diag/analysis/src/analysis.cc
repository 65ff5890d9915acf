#include "leakscope/analysis/analysis.h"

#include "leakscope/analysis/units.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <unordered_map>

namespace leakscope::analysis {
namespace {

constexpr double kNsPerHour = 3600.0 * 1e9;

std::string portOf(const std::string& endpoint) {
  const auto colon = endpoint.rfind(':');
  return colon == std::string::npos ? std::string() : endpoint.substr(colon + 1);
}

bool isConnectedState(const std::string& state) {
  return state != "LISTEN" && state != "TIME_WAIT" && state != "CLOSE" && !state.empty() &&
         state != "UNCONNECTED";
}

bool isTcp(const Socket& s) { return s.protocol == "tcp" || s.protocol == "tcp6"; }

std::string signedCount(double v) { return (v >= 0 ? "+" : "") + formatCount(v); }
std::string signedBytes(double v) { return (v >= 0 ? "+" : "") + formatBytes(v); }

// Least-squares slope of y over x (x in hours).
double slope(const std::vector<double>& x, const std::vector<double>& y) {
  const std::size_t n = std::min(x.size(), y.size());
  if (n < 2) return 0;
  const double mx = std::accumulate(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(n), 0.0) /
                    static_cast<double>(n);
  const double my = std::accumulate(y.begin(), y.begin() + static_cast<std::ptrdiff_t>(n), 0.0) /
                    static_cast<double>(n);
  double sxy = 0, sxx = 0;
  for (std::size_t i = 0; i < n; ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
  }
  return sxx > 0 ? sxy / sxx : 0;
}

struct Classification {
  Verdict verdict = Verdict::kFlat;
  std::size_t growing = 0;
  std::size_t peak = 0;
};

// Steady growth is growth of the series' floor (the lowest value from each
// point on): a spike that is freed later does not raise it, a leak raises it
// in most intervals and still at the end.
//
// `sd` (optional, per point) is the standard error of sampled estimates:
// growth must then also exceed twice the error of the difference, so a
// sampled cache that wobbles around its size is not a leak.
Classification classify(const std::vector<double>& v, double threshold,
                        const std::vector<double>* sd = nullptr) {
  Classification c;
  const std::size_t n = v.size();
  if (n < 2) return c;
  std::vector<double> floor(n);
  floor[n - 1] = v[n - 1];
  for (std::size_t i = n - 1; i-- > 0;) floor[i] = std::min(v[i], floor[i + 1]);
  const std::size_t intervals = n - 1;
  const double step = std::max(threshold * 0.05, 1e-9);
  for (std::size_t i = 1; i < n; ++i) {
    if (floor[i] - floor[i - 1] >= step) ++c.growing;
  }
  const double total = floor[n - 1] - floor[0];
  // Still growing in the second half, by more than sampling noise: a cache
  // that filled early and then wobbles does not qualify.
  const double late = floor[n - 1] - floor[intervals / 2];
  auto noise = [&](std::size_t a, std::size_t b) {
    if (sd == nullptr || sd->size() != n) return 0.0;
    return 2.0 * std::sqrt((*sd)[a] * (*sd)[a] + (*sd)[b] * (*sd)[b]);
  };
  // The floor's points: where the minimum from each point on was reached.
  auto argFloor = [&](std::size_t from) {
    return static_cast<std::size_t>(
        std::min_element(v.begin() + static_cast<std::ptrdiff_t>(from), v.end()) - v.begin());
  };
  const bool late_growth =
      late >= std::max({threshold * 0.5, total * 0.25, noise(argFloor(intervals / 2), n - 1)});
  const bool above_noise = total >= noise(argFloor(0), n - 1);
  const std::size_t needed = std::max<std::size_t>(2, (intervals + 1) / 2);
  c.peak = static_cast<std::size_t>(std::max_element(v.begin(), v.end()) - v.begin());
  if (total >= threshold && c.growing >= needed && late_growth && above_noise) {
    c.verdict = Verdict::kSteady;
  } else if (v[n - 1] - floor[n - 2] >= threshold && c.growing <= 1 &&
             floor[n - 2] - floor[0] < threshold) {
    c.verdict = Verdict::kRecent;
  } else if (v[c.peak] - std::max(v.front(), v.back()) >= threshold) {
    c.verdict = Verdict::kTransient;
  } else if (total >= threshold) {
    c.verdict = Verdict::kBounded;
  }
  return c;
}

std::string groupKey(Group g, const std::string& name) {
  return std::string(groupName(g)) + ":" + name;
}

// What every series point says of its snapshot: which one, when, which
// process, how many fds. Figures a view adds (RSS, heap) are its own.
SeriesPoint seriesPoint(const Snapshot& s) {
  SeriesPoint p;
  p.path = s.path;
  p.sequence = s.sequence;
  p.taken_unix_ns = s.taken_unix_ns;
  p.utc = s.utc;
  p.pid = s.process.pid;
  p.open_fds = s.process.open_fds;
  p.memory_limit_bytes = s.process.memory_limit_bytes;
  p.memory_limit_source = s.process.memory_limit_source;
  return p;
}

}  // namespace

const char* groupName(Group g) {
  switch (g) {
    case Group::kTracked:
      return "tracked";
    case Group::kHeap:
      return "heap";
    case Group::kSocket:
      return "socket";
  }
  return "?";
}

const char* verdictName(Verdict v) {
  switch (v) {
    case Verdict::kSteady:
      return "steady";
    case Verdict::kTransient:
      return "transient";
    case Verdict::kRecent:
      return "recent";
    case Verdict::kBounded:
      return "bounded";
    case Verdict::kFlat:
      return "flat";
  }
  return "?";
}

std::set<std::string> listeningPorts(const Snapshot& s) {
  std::set<std::string> ports;
  for (const Socket& k : s.sockets) {
    if (k.state == "LISTEN" && isTcp(k)) ports.insert(portOf(k.local));
  }
  return ports;
}

std::string socketGroupName(const Socket& s, const std::set<std::string>& listening) {
  if (!s.peer.empty() && s.peer != "other" && s.peer != "none") return s.peer;
  if (s.remote.empty()) {
    if (s.protocol == "unix") return "unix " + (s.path.empty() ? std::string("(unnamed)") : s.path);
    if (s.protocol == "other") return "other";
    return s.protocol + " " + s.local;
  }
  if (listening.count(portOf(s.local)) != 0) return "inbound :" + portOf(s.local);
  return s.remote;
}

std::string siteName(const SymbolTable& symbols, StackId stack) {
  const auto& frames = symbols.stack(stack);
  if (frames.empty()) return "(no stack)";
  return symbols.str(frames.front());
}

std::string describeStack(const SymbolTable& symbols, StackId stack, std::size_t depth) {
  const auto& frames = symbols.stack(stack);
  std::string out;
  for (std::size_t i = 0; i < frames.size() && i < depth; ++i) {
    if (i > 0) out += " <- ";
    const FrameInfo& f = symbols.frame(frames[i]);
    std::string fn = symbols.str(frames[i]);
    // Long C++ signatures drown the stack; the name says enough.
    if (const auto paren = fn.find('('); paren != std::string::npos && fn.size() > 60) {
      fn = fn.substr(0, paren) + "(...)";
    }
    out += fn;
    if (!f.file.empty()) {
      const auto slash = f.file.rfind('/');
      out += " (" + (slash == std::string::npos ? f.file : f.file.substr(slash + 1)) + ":" +
             std::to_string(f.line) + ")";
    }
  }
  if (frames.size() > depth) out += " <- ...";
  return out;
}

// ---- diff ---------------------------------------------------------------

namespace {

// New/deleted split when the ids (or counters) do not say: the net change.
void netSplit(CompareRow& r) {
  r.basis = "net";
  r.new_count = std::max(0.0, r.delta_count);
  r.deleted_count = std::max(0.0, -r.delta_count);
  r.alloc_bytes = std::max(0.0, r.delta_bytes);
  r.freed_bytes = std::max(0.0, -r.delta_bytes);
}

// Within one process the object ids are comparable: a merge of the two
// sorted id lists counts what was created and what was destroyed.
void idSplit(CompareRow& r, const TrackedKind& b, const TrackedKind& g) {
  r.basis = "ids";
  std::size_t i = 0, j = 0;
  while (i < b.objects.size() || j < g.objects.size()) {
    if (j == g.objects.size() || (i < b.objects.size() && b.objects[i].id < g.objects[j].id)) {
      r.deleted_count += 1;
      r.freed_bytes += static_cast<double>(b.objects[i].bytes);
      ++i;
    } else if (i == b.objects.size() || g.objects[j].id < b.objects[i].id) {
      r.new_count += 1;
      r.alloc_bytes += static_cast<double>(g.objects[j].bytes);
      ++j;
    } else {
      ++i;
      ++j;
    }
  }
  r.created = g.created_total - b.created_total;
  r.destroyed = g.destroyed_total - b.destroyed_total;
}

CompareRow compareKind(const std::string& name, const TrackedKind& b, const TrackedKind& g,
                       bool same_process) {
  CompareRow r;
  r.group = Group::kTracked;
  r.name = name;
  r.base_count = static_cast<double>(b.objects.size());
  r.target_count = static_cast<double>(g.objects.size());
  for (const auto& o : b.objects) r.base_bytes += static_cast<double>(o.bytes);
  for (const auto& o : g.objects) r.target_bytes += static_cast<double>(o.bytes);
  r.delta_count = r.target_count - r.base_count;
  r.delta_bytes = r.target_bytes - r.base_bytes;
  if (same_process) {
    idSplit(r, b, g);
  } else {
    netSplit(r);
  }
  return r;
}

std::vector<CompareRow> compareTracked(const Snapshot& base, const Snapshot& target,
                                       const Thresholds& t, Comparison& c) {
  std::set<std::string> kinds;
  for (const auto& k : base.kinds) kinds.insert(k.name);
  for (const auto& k : target.kinds) kinds.insert(k.name);
  static const TrackedKind kEmpty;
  std::vector<CompareRow> tracked;
  for (const std::string& name : kinds) {
    const TrackedKind* b = base.kind(name);
    const TrackedKind* g = target.kind(name);
    if (b == nullptr) b = &kEmpty;
    if (g == nullptr) g = &kEmpty;
    const CompareRow r = compareKind(name, *b, *g, c.same_process);
    tracked.push_back(r);
    if (r.delta_count >= static_cast<double>(t.min_objects)) {
      c.suspects.push_back({Group::kTracked, name,
                            formatCount(r.new_count) + " new, " + formatCount(r.deleted_count) +
                                " deleted: live " + formatCount(r.base_count) + " -> " +
                                formatCount(r.target_count) + " (" + signedBytes(r.delta_bytes) +
                                ")",
                            r.delta_count, r.delta_bytes, std::nullopt});
    } else if (r.delta_bytes >= t.min_tracked_bytes) {
      c.suspects.push_back({Group::kTracked, name,
                            "retained bytes " + signedBytes(r.delta_bytes) + " (" +
                                formatCount(r.base_count) + " -> " + formatCount(r.target_count) +
                                " objects)",
                            r.delta_count, r.delta_bytes, std::nullopt});
    }
  }
  return tracked;
}

CompareRow compareSite(StackId st, const HeapSite& b, const HeapSite& g, bool exact,
                       const SymbolTable& symbols) {
  CompareRow r;
  r.group = Group::kHeap;
  r.stack = st;
  r.name = siteName(symbols, st);
  r.base_count = b.inuse_objects;
  r.target_count = g.inuse_objects;
  r.base_bytes = b.inuse_bytes;
  r.target_bytes = g.inuse_bytes;
  r.delta_count = r.target_count - r.base_count;
  r.delta_bytes = r.target_bytes - r.base_bytes;
  const double new_objects = g.alloc_objects - b.alloc_objects;
  const double new_bytes = g.alloc_bytes - b.alloc_bytes;
  if (exact && new_objects >= 0 && new_bytes >= 0 && new_objects >= r.delta_count) {
    r.basis = "counters";
    r.new_count = new_objects;
    r.alloc_bytes = new_bytes;
    r.deleted_count = new_objects - r.delta_count;
    r.freed_bytes = new_bytes - r.delta_bytes;
  } else {
    netSplit(r);
  }
  return r;
}

std::vector<CompareRow> compareHeap(const Snapshot& base, const Snapshot& target,
                                    const SymbolTable& symbols, const Thresholds& t,
                                    Comparison& c) {
  std::vector<CompareRow> heap;
  if (!base.heap.available || !target.heap.available) {
    if (base.heap.available != target.heap.available) {
      c.notes.push_back("only one of the two inputs has a heap profile; heap sites not compared");
    }
    return heap;
  }
  std::unordered_map<StackId, const HeapSite*> bs;
  for (const auto& s : base.heap.sites) bs.emplace(s.stack, &s);
  std::unordered_map<StackId, const HeapSite*> ts;
  for (const auto& s : target.heap.sites) ts.emplace(s.stack, &s);
  std::set<StackId> stacks;
  for (const auto& s : base.heap.sites) stacks.insert(s.stack);
  for (const auto& s : target.heap.sites) stacks.insert(s.stack);
  const bool exact = base.heap.exact() && target.heap.exact();
  static const HeapSite kNone;
  for (StackId st : stacks) {
    const HeapSite* b = bs.count(st) ? bs[st] : &kNone;
    const HeapSite* g = ts.count(st) ? ts[st] : &kNone;
    const CompareRow r = compareSite(st, *b, *g, exact, symbols);
    if (r.delta_bytes == 0 && r.new_count == 0 && r.deleted_count == 0) continue;
    heap.push_back(r);
    if (r.delta_bytes >= t.min_heap_bytes) {
      c.suspects.push_back({Group::kHeap, r.name,
                            "in use " + formatBytes(r.base_bytes) + " -> " +
                                formatBytes(r.target_bytes) + " (" + signedBytes(r.delta_bytes) +
                                ", " + signedCount(r.delta_count) + " objects)",
                            r.delta_count, r.delta_bytes, st});
    }
  }
  return heap;
}

std::vector<CompareRow> compareSockets(const Snapshot& base, const Snapshot& target,
                                       const Thresholds& t, Comparison& c) {
  std::vector<CompareRow> sockets;
  const auto bl = listeningPorts(base);
  const auto tl = listeningPorts(target);
  std::map<std::pair<std::string, std::string>,
           std::pair<std::set<std::uint64_t>, std::set<std::uint64_t>>>
      groups;
  for (const auto& s : base.sockets)
    groups[{socketGroupName(s, bl), s.state}].first.insert(s.inode);
  for (const auto& s : target.sockets)
    groups[{socketGroupName(s, tl), s.state}].second.insert(s.inode);
  for (const auto& [key, sets] : groups) {
    CompareRow r;
    r.group = Group::kSocket;
    r.name = key.first + (key.second.empty() ? "" : " " + key.second);
    r.basis = "inodes";
    r.base_count = static_cast<double>(sets.first.size());
    r.target_count = static_cast<double>(sets.second.size());
    for (auto ino : sets.second) r.new_count += sets.first.count(ino) ? 0 : 1;
    for (auto ino : sets.first) r.deleted_count += sets.second.count(ino) ? 0 : 1;
    r.delta_count = r.target_count - r.base_count;
    sockets.push_back(r);
    if (r.delta_count >= static_cast<double>(t.min_objects) && isConnectedState(key.second)) {
      c.suspects.push_back({Group::kSocket, r.name,
                            formatCount(r.base_count) + " -> " + formatCount(r.target_count) +
                                " sockets (" + formatCount(r.new_count) + " new, " +
                                formatCount(r.deleted_count) + " closed)",
                            r.delta_count, 0, std::nullopt});
    }
  }
  return sockets;
}

}  // namespace

Comparison compare(const Snapshot& base, const Snapshot& target, const SymbolTable& symbols,
                   const Thresholds& t) {
  Comparison c;
  c.base = base.path;
  c.target = target.path;
  c.interval_seconds = static_cast<double>(target.taken_unix_ns - base.taken_unix_ns) / 1e9;
  c.same_process = base.process.pid == target.process.pid && base.source == target.source &&
                   base.source == SourceKind::kSnapshot;
  if (base.source == SourceKind::kSnapshot && target.source == SourceKind::kSnapshot &&
      base.process.pid != target.process.pid) {
    c.notes.push_back("the process restarted between the two snapshots (pid " +
                      std::to_string(base.process.pid) + " -> " +
                      std::to_string(target.process.pid) +
                      "): object ids are not comparable, # New/# Deleted are net figures");
  }
  if (c.interval_seconds < 0) c.notes.push_back("TARGET was taken before BASE");

  // Suspects are appended tracked, heap, sockets; the stable sort below
  // keeps that order among equals.
  std::vector<CompareRow> tracked = compareTracked(base, target, t, c);
  std::vector<CompareRow> heap = compareHeap(base, target, symbols, t, c);
  std::vector<CompareRow> sockets = compareSockets(base, target, t, c);

  auto byGrowth = [](const CompareRow& a, const CompareRow& b) {
    if (a.delta_bytes != b.delta_bytes) return a.delta_bytes > b.delta_bytes;
    if (a.delta_count != b.delta_count) return a.delta_count > b.delta_count;
    return a.name < b.name;
  };
  std::sort(tracked.begin(), tracked.end(), byGrowth);
  std::sort(heap.begin(), heap.end(), byGrowth);
  std::sort(sockets.begin(), sockets.end(), byGrowth);
  for (auto* v : {&tracked, &heap, &sockets}) c.rows.insert(c.rows.end(), v->begin(), v->end());
  std::stable_sort(c.suspects.begin(), c.suspects.end(), [](const Suspect& a, const Suspect& b) {
    if (a.delta_bytes != b.delta_bytes) return a.delta_bytes > b.delta_bytes;
    return a.delta_count > b.delta_count;
  });
  return c;
}

// ---- trend --------------------------------------------------------------

TrendBuilder::TrendBuilder(const SymbolTable& symbols, TrendOptions options)
    : symbols_(symbols), options_(std::move(options)) {}

TrendBuilder::Series& TrendBuilder::series(Group g, const std::string& name,
                                           std::optional<StackId> stack) {
  const std::string key = stack ? "heap:#" + std::to_string(*stack) : groupKey(g, name);
  auto [it, added] = series_.try_emplace(key);
  if (added) {
    it->second.group = g;
    it->second.name = name;
    it->second.stack = stack;
    // A group first seen now was at zero before.
    it->second.counts.assign(points_.size() - 1, 0.0);
    it->second.bytes.assign(points_.size() - 1, 0.0);
  }
  return it->second;
}

void TrendBuilder::addTracked(const Snapshot& s) {
  for (const TrackedKind& k : s.kinds) {
    Series& se = series(Group::kTracked, k.name, std::nullopt);
    double bytes = 0;
    for (const auto& o : k.objects) bytes += static_cast<double>(o.bytes);
    se.counts.push_back(static_cast<double>(k.objects.size()));
    se.bytes.push_back(bytes);
  }
}

void TrendBuilder::addHeap(const Snapshot& s, std::size_t n) {
  for (const HeapSite& h : s.heap.sites) {
    Series& se = series(Group::kHeap, siteName(symbols_, h.stack), h.stack);
    // Two snapshot sites never share a stack (the reader merges them).
    se.counts.push_back(h.inuse_objects);
    se.bytes.push_back(h.inuse_bytes);
    // A sampled estimate stands on k sampled objects: relative error 1/sqrt(k).
    double sd = 0;
    if (!s.heap.exact() && s.heap.sample_period > 0 && h.inuse_objects > 0) {
      const double avg = h.inuse_bytes / h.inuse_objects;
      const double k =
          h.inuse_objects * (1 - std::exp(-avg / static_cast<double>(s.heap.sample_period)));
      if (k > 0) sd = h.inuse_bytes / std::sqrt(k);
    }
    se.bytes_sd.resize(n - 1, 0.0);
    se.bytes_sd.push_back(sd);
  }
}

void TrendBuilder::addSockets(const Snapshot& s) {
  const auto listening = listeningPorts(s);
  std::map<std::string, double> socket_counts;
  for (const Socket& k : s.sockets) {
    socket_counts[socketGroupName(k, listening) + (k.state.empty() ? "" : " " + k.state)] += 1;
  }
  for (const auto& [name, count] : socket_counts) {
    Series& se = series(Group::kSocket, name, std::nullopt);
    se.counts.push_back(count);
    se.bytes.push_back(0);
  }
}

void TrendBuilder::updateSurvivors(const Snapshot& s, bool first) {
  std::unordered_map<std::uint64_t, const Socket*> by_owner;
  for (const Socket& k : s.sockets) {
    if (k.owner) by_owner.emplace(*k.owner, &k);
  }
  auto describe = [&](std::uint64_t id) -> std::string {
    auto it = by_owner.find(id);
    if (it == by_owner.end()) return {};
    const Socket& k = *it->second;
    return k.protocol + " " + k.local + (k.remote.empty() ? "" : " -> " + k.remote) + " " + k.state;
  };
  if (first) {
    for (const TrackedKind& k : s.kinds) {
      auto& c = survivors_[k.name];
      c.reserve(k.objects.size());
      for (const auto& o : k.objects) c.push_back({o, describe(o.id)});
    }
    return;
  }
  for (auto& [name, cands] : survivors_) {
    const TrackedKind* k = s.kind(name);
    if (k == nullptr) {
      cands.clear();
      continue;
    }
    std::size_t out = 0;
    for (std::size_t i = 0; i < cands.size(); ++i) {
      const TrackedObject* o = k->find(cands[i].object.id);
      if (o == nullptr) continue;
      cands[out] = {*o, describe(o->id)};
      ++out;
    }
    cands.resize(out);
    cands.shrink_to_fit();
  }
}

void TrendBuilder::add(const Snapshot& s) {
  SeriesPoint p = seriesPoint(s);
  p.rss_bytes = s.process.rss_bytes;
  p.heap_inuse_bytes = s.heap.available ? s.heap.inuse_bytes : 0;
  const bool first = points_.empty();
  if (!first && p.pid != points_.front().pid && survivors_valid_) {
    survivors_valid_ = false;
    survivors_.clear();
    notes_.push_back("the process restarted within the series (pid " +
                     std::to_string(points_.front().pid) + " -> " + std::to_string(p.pid) + " at " +
                     s.path + "): no survivors can be named across a restart");
  }
  points_.push_back(p);
  const std::size_t n = points_.size();

  addTracked(s);
  if (s.heap.available) addHeap(s, n);
  addSockets(s);
  // Groups absent from this snapshot are at zero here.
  for (auto& [key, se] : series_) {
    if (se.counts.size() < n) se.counts.push_back(0);
    if (se.bytes.size() < n) se.bytes.push_back(0);
    if (se.group == Group::kHeap) se.bytes_sd.resize(n, 0.0);
  }

  // Survivors: the ids of the first snapshot still alive in this one.
  if (!survivors_valid_ || s.source != SourceKind::kSnapshot) return;
  updateSurvivors(s, first);
}

namespace {

// The first six values of a series (and the last when there are more).
std::string fmtSeries(const std::vector<double>& v, bool bytes) {
  std::string out;
  const std::size_t show = std::min<std::size_t>(v.size(), 6);
  for (std::size_t i = 0; i < show; ++i) {
    if (i > 0) out += ", ";
    out += bytes ? formatBytes(v[i]) : formatCount(v[i]);
  }
  if (v.size() > show) out += ", ... " + (bytes ? formatBytes(v.back()) : formatCount(v.back()));
  return out;
}

// Heap sites are judged by bytes; tracked kinds by count, unless their
// bytes tell a clearer story (steady bytes, or objects that only grew in
// size); sockets by count. `*by_bytes` says which series decided.
Classification classifyGroup(const TrendGroup& g, const std::vector<double>& bytes_sd,
                             const Thresholds& th, bool* by_bytes) {
  *by_bytes = false;
  if (g.group == Group::kHeap) {
    *by_bytes = true;
    return classify(g.bytes, th.min_heap_bytes, &bytes_sd);
  }
  Classification c = classify(g.counts, static_cast<double>(th.min_objects));
  if (g.group == Group::kTracked && c.verdict != Verdict::kSteady) {
    const Classification cb = classify(g.bytes, th.min_tracked_bytes);
    if (cb.verdict == Verdict::kSteady || c.verdict == Verdict::kFlat) {
      c = cb;
      *by_bytes = true;
    }
  }
  return c;
}

// Growth per interval and per hour, acceleration, time to the memory limit.
void fillGrowth(TrendGroup& g, std::size_t n, const std::vector<double>& hours, bool timed,
                bool by_bytes, const std::optional<MemoryLimitUsed>& limit, double current_memory) {
  const double intervals = static_cast<double>(n - 1);
  if (n >= 2) {
    g.growth_count_per_interval = (g.counts.back() - g.counts.front()) / intervals;
    g.growth_bytes_per_interval = (g.bytes.back() - g.bytes.front()) / intervals;
  }
  if (timed) {
    g.growth_count_per_hour = slope(hours, g.counts);
    g.growth_bytes_per_hour = slope(hours, g.bytes);
  }
  const std::vector<double>& main = by_bytes ? g.bytes : g.counts;
  if (n >= 4) {
    const std::size_t half = (n - 1) / 2;
    const double first_inc = (main[half] - main[0]) / static_cast<double>(half);
    const double last_inc = (main[n - 1] - main[n - 1 - half]) / static_cast<double>(half);
    g.accelerating = last_inc > 0 && last_inc > 1.25 * std::max(first_inc, 0.0);
  }
  if (limit && g.growth_bytes_per_hour > 0) {
    g.hours_to_limit = std::max(0.0, (limit->bytes - current_memory) / g.growth_bytes_per_hour);
  }
}

std::string trendReason(const TrendGroup& g, const Classification& c, bool by_bytes,
                        const std::vector<SeriesPoint>& points) {
  const std::size_t n = points.size();
  const std::vector<double>& main = by_bytes ? g.bytes : g.counts;
  const std::string unit = by_bytes ? "" : (g.group == Group::kSocket ? " sockets" : " objects");
  std::string reason;
  switch (g.verdict) {
    case Verdict::kSteady:
      reason = "grew in " + std::to_string(c.growing) + " of " + std::to_string(n - 1) +
               " intervals and was never freed: " + fmtSeries(main, by_bytes) + unit;
      if (g.group == Group::kTracked && !by_bytes) reason += " (" + fmtSeries(g.bytes, true) + ")";
      if (g.accelerating) reason += "; accelerating";
      break;
    case Verdict::kTransient:
      reason = "peaked at " +
               (by_bytes ? formatBytes(main[c.peak]) : formatCount(main[c.peak]) + unit) + " in " +
               points[c.peak].path + " and was freed later (" + fmtSeries(main, by_bytes) + ")";
      break;
    case Verdict::kRecent:
      reason = "grew in the last interval only (" + fmtSeries(main, by_bytes) +
               "): take another snapshot to tell a leak from a spike";
      break;
    case Verdict::kBounded:
      reason = "grew, then levelled off (" + fmtSeries(main, by_bytes) + ")";
      break;
    case Verdict::kFlat:
      break;
  }
  return reason;
}

// The flag wins: the user may know better (a limit about to be lowered, or
// a snapshot from a process run outside the cgroup it will run in).
std::optional<MemoryLimitUsed> memoryLimitUsed(const TrendOptions& options,
                                               const SeriesPoint& last) {
  if (options.memory_limit_bytes) return MemoryLimitUsed{*options.memory_limit_bytes, "flag", ""};
  if (last.memory_limit_bytes <= 0) return std::nullopt;
  return MemoryLimitUsed{static_cast<double>(last.memory_limit_bytes), "snapshot",
                         last.memory_limit_source};
}

// Suspects first, by bytes per hour (or per interval without times), then
// the rest by how much they grew.
void sortGroups(std::vector<TrendGroup>& groups, bool timed) {
  auto rate = [&](const TrendGroup& g) {
    return timed ? g.growth_bytes_per_hour : g.growth_bytes_per_interval;
  };
  auto count_rate = [&](const TrendGroup& g) {
    return timed ? g.growth_count_per_hour : g.growth_count_per_interval;
  };
  std::stable_sort(groups.begin(), groups.end(), [&](const TrendGroup& a, const TrendGroup& b) {
    const bool sa = a.verdict == Verdict::kSteady, sb = b.verdict == Verdict::kSteady;
    if (sa != sb) return sa;
    if (rate(a) != rate(b)) return rate(a) > rate(b);
    if (count_rate(a) != count_rate(b)) return count_rate(a) > count_rate(b);
    return a.name < b.name;
  });
}

}  // namespace

void TrendBuilder::addSurvivors(TrendGroup& g) const {
  if (g.group != Group::kTracked || !survivors_valid_) return;
  auto it = survivors_.find(g.name);
  if (it == survivors_.end()) return;
  auto cands = it->second;
  g.survivor_count = cands.size();
  std::sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
    return a.object.birth_unix_ns != b.object.birth_unix_ns
               ? a.object.birth_unix_ns < b.object.birth_unix_ns
               : a.object.id < b.object.id;
  });
  for (std::size_t i = 0; i < cands.size() && i < options_.max_survivors; ++i) {
    const auto& o = cands[i].object;
    Survivor sv;
    sv.id = o.id;
    sv.age_seconds = static_cast<double>(points_.back().taken_unix_ns - o.birth_unix_ns) / 1e9;
    sv.label = symbols_.str(o.label);
    sv.bytes = o.bytes;
    sv.fd = o.fd;
    sv.socket = cands[i].socket;
    g.survivors.push_back(sv);
  }
  if (g.verdict == Verdict::kSteady && g.survivor_count > 0) {
    g.reason += "; " + std::to_string(g.survivor_count) + " object(s) alive in every snapshot";
  }
}

TrendResult TrendBuilder::finish() {
  TrendResult r;
  r.points = points_;
  r.notes = notes_;
  const std::size_t n = points_.size();
  if (n == 0) return r;
  r.span_seconds =
      static_cast<double>(points_.back().taken_unix_ns - points_.front().taken_unix_ns) / 1e9;
  std::vector<double> hours;
  for (const auto& p : points_) {
    hours.push_back(static_cast<double>(p.taken_unix_ns - points_.front().taken_unix_ns) /
                    kNsPerHour);
  }
  const bool timed = r.span_seconds > 0;
  r.memory_limit = memoryLimitUsed(options_, points_.back());
  const double current_memory = points_.back().rss_bytes > 0
                                    ? static_cast<double>(points_.back().rss_bytes)
                                    : points_.back().heap_inuse_bytes;
  if (timed) {
    std::vector<double> rss;
    for (const auto& p : points_) rss.push_back(static_cast<double>(p.rss_bytes));
    if (points_.back().rss_bytes > 0) r.rss_growth_bytes_per_hour = slope(hours, rss);
    if (r.memory_limit && r.rss_growth_bytes_per_hour && *r.rss_growth_bytes_per_hour > 0) {
      r.hours_to_limit =
          std::max(0.0, (r.memory_limit->bytes - current_memory) / *r.rss_growth_bytes_per_hour);
    }
  }
  for (auto& [key, se] : series_) {
    TrendGroup g;
    g.group = se.group;
    g.name = se.name;
    g.stack = se.stack;
    g.counts = se.counts;
    g.bytes = se.bytes;
    bool by_bytes = false;
    const Classification c = classifyGroup(g, se.bytes_sd, options_.thresholds, &by_bytes);
    g.verdict = c.verdict;
    g.growing_intervals = c.growing;
    g.peak_index = c.peak;
    fillGrowth(g, n, hours, timed, by_bytes, r.memory_limit, current_memory);
    g.reason = trendReason(g, c, by_bytes, points_);
    addSurvivors(g);
    if (g.verdict == Verdict::kFlat && g.counts.back() == 0 && g.bytes.back() == 0 &&
        se.group == Group::kHeap) {
      continue;  // heap sites that came and went without mattering
    }
    r.groups.push_back(std::move(g));
  }
  sortGroups(r.groups, timed);
  for (const TrendGroup& g : r.groups) {
    if (g.verdict != Verdict::kSteady) continue;
    r.suspects.push_back({g.group, g.name, g.reason, g.counts.back() - g.counts.front(),
                          g.bytes.back() - g.bytes.front(), g.stack});
  }
  return r;
}

// ---- sockets ------------------------------------------------------------

namespace {

// Key: group name, TCP state, protocol.
using SocketRows = std::map<std::tuple<std::string, std::string, std::string>, SocketRow>;

// One point per snapshot and the per-snapshot count of each socket group.
SocketRows countSockets(const std::vector<const Snapshot*>& snaps, SocketsResult& r) {
  const std::size_t n = snaps.size();
  SocketRows rows;
  for (std::size_t i = 0; i < n; ++i) {
    const Snapshot& s = *snaps[i];
    r.points.push_back(seriesPoint(s));
    const auto listening = listeningPorts(s);
    for (const Socket& k : s.sockets) {
      const std::string name = socketGroupName(k, listening);
      SocketRow& row = rows[{name, k.state, k.protocol}];
      row.name = name;
      row.state = k.state;
      row.protocol = k.protocol;
      row.counts.resize(n, 0);
      row.counts[i] += 1;
    }
  }
  for (auto& [key, row] : rows) row.counts.resize(n, 0);
  return rows;
}

// What the last snapshot's sockets are owned by.
struct Ownership {
  bool any_owned = false;
  std::set<std::uint64_t> owners_seen;
  std::map<std::pair<std::string, std::string>, std::int64_t> unowned;  // connected TCP
};

Ownership describeLast(const Snapshot& last, const SymbolTable& symbols, SocketRows& rows,
                       SocketsResult& r) {
  std::unordered_map<std::uint64_t, std::pair<const TrackedKind*, const TrackedObject*>> objects;
  for (const TrackedKind& k : last.kinds) {
    for (const TrackedObject& o : k.objects) objects.emplace(o.id, std::make_pair(&k, &o));
  }
  const auto listening = listeningPorts(last);
  Ownership own;
  for (const Socket& k : last.sockets) {
    SocketDetail d;
    d.socket = k;
    d.group = socketGroupName(k, listening);
    SocketRow& row = rows[{d.group, k.state, k.protocol}];
    if (k.owner) {
      own.any_owned = true;
      own.owners_seen.insert(*k.owner);
      ++row.owned;
      auto it = objects.find(*k.owner);
      if (it != objects.end()) {
        d.owner = it->second.first->name + "#" + std::to_string(*k.owner);
        const std::string& label = symbols.str(it->second.second->label);
        if (!label.empty()) d.owner += " (" + label + ")";
      } else {
        d.owner = "#" + std::to_string(*k.owner) + " (no longer live)";
      }
      if (row.owners.size() < 5) row.owners.push_back(d.owner);
    } else {
      ++row.unowned;
      if (isTcp(k) && isConnectedState(k.state)) own.unowned[{d.group, k.state}] += 1;
    }
    r.last.push_back(std::move(d));
  }
  return own;
}

void flagOwnership(const Snapshot& last, const Ownership& own, SocketsResult& r) {
  // Unowned connections only mean something in a program that declares owners.
  if (own.any_owned) {
    for (const auto& [key, count] : own.unowned) {
      const std::string name = key.first + " " + key.second;
      SocketFlag f{"unowned", name,
                   std::to_string(count) + " " + key.second +
                       " TCP socket(s) with no tracked owner: opened by code that does not "
                       "track its connections"};
      r.flags.push_back(f);
      r.suspects.push_back(
          {Group::kSocket, name, f.reason, static_cast<double>(count), 0, std::nullopt});
    }
  }
  for (const TrackedKind& k : last.kinds) {
    std::vector<std::uint64_t> orphans;
    for (const TrackedObject& o : k.objects) {
      if (o.fd >= 0 && own.owners_seen.count(o.id) == 0) orphans.push_back(o.id);
    }
    if (orphans.empty()) continue;
    std::string ids;
    for (std::size_t i = 0; i < orphans.size() && i < 5; ++i)
      ids += (i ? ", #" : "#") + std::to_string(orphans[i]);
    if (orphans.size() > 5) ids += ", ...";
    SocketFlag f{"owner-without-socket", k.name,
                 std::to_string(orphans.size()) + " live " + k.name +
                     " object(s) declare an fd that is no longer a socket of this process (" + ids +
                     "): closed sockets whose objects were never destroyed"};
    r.flags.push_back(f);
    r.suspects.push_back(
        {Group::kTracked, k.name, f.reason, static_cast<double>(orphans.size()), 0, std::nullopt});
  }
}

std::string countSeries(const std::vector<std::int64_t>& c) {
  std::string series;
  for (std::size_t i = 0; i < c.size(); ++i) series += (i ? ", " : "") + std::to_string(c[i]);
  return series;
}

// CLOSE_WAIT that only accumulates, and connected groups that keep growing.
void flagGrowth(const SocketRows& rows, std::size_t n, const Thresholds& t, SocketsResult& r) {
  for (const auto& [key, row] : rows) {
    const auto& c = row.counts;
    std::vector<double> v(c.begin(), c.end());
    const std::string name = row.name + (row.state.empty() ? "" : " " + row.state);
    if (row.state == "CLOSE_WAIT" && c.back() >= t.min_objects) {
      bool non_decreasing = true;
      for (std::size_t i = 1; i < n; ++i) non_decreasing = non_decreasing && c[i] >= c[i - 1];
      if (non_decreasing) {
        SocketFlag f{"close-wait", name,
                     "CLOSE_WAIT sockets accumulating (" + countSeries(c) +
                         "): the peer closed and this process never closed its end"};
        r.flags.push_back(f);
        r.suspects.push_back({Group::kSocket, name, f.reason,
                              static_cast<double>(c.back() - c.front()), 0, std::nullopt});
        continue;
      }
    }
    if (!isConnectedState(row.state) || n < 2) continue;
    bool growing = false;
    if (n >= 3) {
      growing = classify(v, static_cast<double>(t.min_objects)).verdict == Verdict::kSteady;
    } else {
      growing = c[1] - c[0] >= t.min_objects;
    }
    if (growing) {
      r.suspects.push_back({Group::kSocket, name,
                            "open sockets keep growing (" + countSeries(c) + ")",
                            static_cast<double>(c.back() - c.front()), 0, std::nullopt});
    }
  }
}

}  // namespace

SocketsResult analyseSockets(const std::vector<const Snapshot*>& snaps, const SymbolTable& symbols,
                             const Thresholds& t) {
  SocketsResult r;
  if (snaps.empty()) return r;
  SocketRows rows = countSockets(snaps, r);
  // The last snapshot: owners and details.
  const Snapshot& last = *snaps.back();
  const Ownership own = describeLast(last, symbols, rows, r);
  flagOwnership(last, own, r);
  flagGrowth(rows, snaps.size(), t, r);
  for (auto& [key, row] : rows) r.rows.push_back(std::move(row));
  std::stable_sort(r.rows.begin(), r.rows.end(), [](const SocketRow& a, const SocketRow& b) {
    if (a.counts.back() != b.counts.back()) return a.counts.back() > b.counts.back();
    return a.name < b.name;
  });
  return r;
}

}  // namespace leakscope::analysis
