#include "leakscope/analysis/analysis.h"

#include "leakscope/analysis/chains.h"

#include "leakscope/analysis/units.h"
#include "leakscope/core/peer_name.h"

#include <algorithm>
#include <charconv>
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
  std::optional<SamplingCheck> sampling;
};

// The floor of a series: the lowest value from each point on.
std::vector<double> floorOf(const std::vector<double>& v) {
  std::vector<double> floor(v);
  for (std::size_t i = v.size(); i-- > 1;) floor[i - 1] = std::min(v[i - 1], floor[i]);
  return floor;
}

// The point where the floor from `from` on is reached.
std::size_t argFloor(const std::vector<double>& v, std::size_t from) {
  return static_cast<std::size_t>(
      std::min_element(v.begin() + static_cast<std::ptrdiff_t>(from), v.end()) - v.begin());
}

// The rule on figures taken as exact. Steady growth is growth of the
// series' floor: a spike that is freed later does not raise it, a leak
// raises it in most intervals and still in the second half (a cache that
// filled early does not).
Classification classify(const std::vector<double>& v, double threshold) {
  Classification c;
  const std::size_t n = v.size();
  if (n < 2) return c;
  const std::vector<double> floor = floorOf(v);
  const std::size_t intervals = n - 1;
  const double step = std::max(threshold * 0.05, 1e-9);
  for (std::size_t i = 1; i < n; ++i) {
    if (floor[i] - floor[i - 1] >= step) ++c.growing;
  }
  const double total = floor[n - 1] - floor[0];
  const double late = floor[n - 1] - floor[intervals / 2];
  const bool late_growth = late >= std::max(threshold * 0.5, total * 0.25);
  const std::size_t needed = std::max<std::size_t>(2, (intervals + 1) / 2);
  c.peak = static_cast<std::size_t>(std::max_element(v.begin(), v.end()) - v.begin());
  if (total >= threshold && c.growing >= needed && late_growth) {
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

// Error bars, in standard errors each way: two for a claim that raises an
// alarm (steady, recent); three for one that reassures (bounded, transient,
// flat), since a leak called levelled off is the costlier mistake.
constexpr double kAlarmSigmas = 2.0;
constexpr double kReassureSigmas = 3.0;
// A second half whose trend test (Kendall's) is this unlikely under
// sampling noise alone counts as still growing.
constexpr double kTrendAlpha = 0.01;
// Beyond this many points Kendall's S is taken as normal.
constexpr std::size_t kKendallExactPoints = 200;

// One-sided p of Kendall's trend test on v[from..]: the chance that noise
// alone orders the points at least as upward. Exact (permutations by their
// inversions) up to kKendallExactPoints; ties count as neither way, which
// only lowers S.
double kendallTrendP(const std::vector<double>& v, std::size_t from) {
  const std::size_t m = v.size() - from;
  if (m < 3) return 1.0;
  long long s = 0;
  for (std::size_t i = from; i < v.size(); ++i) {
    for (std::size_t j = i + 1; j < v.size(); ++j) s += (v[j] > v[i]) - (v[j] < v[i]);
  }
  const long long pairs = static_cast<long long>(m * (m - 1) / 2);
  if (m > kKendallExactPoints) {
    const double var = static_cast<double>(m * (m - 1) * (2 * m + 5)) / 18.0;
    return 0.5 * std::erfc((static_cast<double>(s) - 1) / std::sqrt(2 * var));
  }
  // S = pairs - 2 * inversions: P(S >= s) = P(inversions <= (pairs - s) / 2).
  std::vector<double> dist = {1.0};  // inversions of a permutation of j items
  for (std::size_t j = 2; j <= m; ++j) {
    std::vector<double> next(dist.size() + j - 1, 0.0);
    double window = 0;
    for (std::size_t k = 0; k < next.size(); ++k) {
      if (k < dist.size()) window += dist[k];
      if (k >= j && k - j < dist.size()) window -= dist[k - j];
      next[k] = window / static_cast<double>(j);
    }
    dist = std::move(next);
  }
  const long long most = (pairs - s) / 2;
  double p = 0;
  for (long long k = 0; k <= most && k < static_cast<long long>(dist.size()); ++k) {
    p += dist[static_cast<std::size_t>(k)];
  }
  return std::min(1.0, p);
}

// Least-squares slope of v[from..to] over the point index, as weights on
// the points (slope = sum of w[i] * v[i]), so its error follows from theirs.
std::vector<double> slopeWeights(std::size_t n, std::size_t from, std::size_t to) {
  std::vector<double> w(n, 0.0);
  const double mean = static_cast<double>(from + to) / 2;
  double sxx = 0;
  for (std::size_t i = from; i <= to; ++i)
    sxx += (static_cast<double>(i) - mean) * (static_cast<double>(i) - mean);
  if (sxx <= 0) return w;
  for (std::size_t i = from; i <= to; ++i) w[i] = (static_cast<double>(i) - mean) / sxx;
  return w;
}

// A sampled series' verdict: the exact rule's verdict stands when the claim
// it makes stands beyond the sampling error. When it does not, a steady or
// transient series may still have levelled off (bounded) beyond the error;
// otherwise the series is uncertain. Each point's error comes from the
// unsampling model (a point on k samples: relative error 1/sqrt(k)); the
// points' errors add as if their samples were independent — the worst case,
// a site whose objects all turned over in between. Growth is measured by
// least-squares slopes, so every point counts, not only the ends.
class SampledJudge {
 public:
  SampledJudge(const std::vector<double>& v, const std::vector<double>& sd, double threshold)
      : v_(v), sd_(sd), threshold_(threshold), mid_((v.size() - 1) / 2) {}

  Classification judge(Classification exact) const {
    switch (exact.verdict) {
      case Verdict::kSteady:
        return orBounded(exact, steadyCheck());
      case Verdict::kTransient: {
        const Classification c = orBounded(exact, peakAboveEnds(exact.peak));
        // A wobble within error on a floor that did not grow: flat, if that
        // claim stands.
        const std::vector<double> floor = floorOf(v_);
        if (c.verdict == Verdict::kUncertain && floor.back() - floor.front() < threshold_) {
          Classification flat = exact;
          flat.verdict = Verdict::kFlat;
          return flatCheck(flat);
        }
        return c;
      }
      case Verdict::kBounded:
        return orBounded(exact, boundedCheck());
      case Verdict::kRecent:
        return keepIf(exact, lastInterval());
      case Verdict::kFlat:
        return flatCheck(exact);
      case Verdict::kUncertain:
        break;
    }
    return exact;
  }

 private:
  static Classification keepIf(Classification c, SamplingCheck check) {
    if (!check.clear() && !check.trend_p) c.verdict = Verdict::kUncertain;
    c.sampling = std::move(check);
    return c;
  }

  // The exact verdict if its claim stands, else bounded if that claim
  // stands, else uncertain (with the first claim that failed).
  Classification orBounded(Classification c, SamplingCheck check) const {
    if (check.clear() || check.trend_p || c.verdict == Verdict::kBounded) {
      return keepIf(c, std::move(check));
    }
    SamplingCheck bounded = boundedCheck();
    if (bounded.clear()) {
      c.verdict = Verdict::kBounded;
      c.sampling = std::move(bounded);
      return c;
    }
    return keepIf(c, std::move(check));
  }

  // The margin and 2-sigma error of sum(w[i] * v[i]) * scale.
  SamplingCheck combination(std::string claim, const std::vector<double>& w, double scale,
                            double sigmas = kAlarmSigmas) const {
    double value = 0, var = 0;
    for (std::size_t i = 0; i < v_.size(); ++i) {
      value += w[i] * v_[i];
      var += w[i] * w[i] * sd_[i] * sd_[i];
    }
    return {std::move(claim), value * scale, sigmas * std::sqrt(var) * scale, {}};
  }
  double error(std::size_t a, std::size_t b, double sigmas) const {
    return sigmas * std::sqrt(sd_[a] * sd_[a] + sd_[b] * sd_[b]);
  }
  std::size_t last() const { return v_.size() - 1; }

  SamplingCheck growthOverSeries() const {
    return combination("growth over the series", slopeWeights(v_.size(), 0, last()),
                       static_cast<double>(last()));
  }
  // Steady: the series grew, and still grows in its second half — by the
  // slope, or, since error bars of single points ignore the order of the
  // points, by a second half that rises in (nearly) every interval: a trend
  // noise alone rarely makes (Kendall's test).
  SamplingCheck steadyCheck() const {
    SamplingCheck total = growthOverSeries();
    if (!total.clear()) return total;
    SamplingCheck late =
        combination("growth in the second half", slopeWeights(v_.size(), mid_, last()),
                    static_cast<double>(last() - mid_));
    if (!late.clear()) {
      const double p = kendallTrendP(v_, mid_);
      if (p < kTrendAlpha) late.trend_p = p;
    }
    return late;
  }
  // Bounded: the series grew, and its second half grew more slowly than its
  // first half.
  SamplingCheck boundedCheck() const {
    SamplingCheck total = growthOverSeries();
    if (!total.clear() || mid_ == 0) return total;
    std::vector<double> w = slopeWeights(v_.size(), 0, mid_);
    const std::vector<double> late = slopeWeights(v_.size(), mid_, last());
    for (std::size_t i = 0; i < w.size(); ++i) w[i] -= late[i];
    return combination("slowdown of the second half", w, static_cast<double>(last() - mid_),
                       kReassureSigmas);
  }
  // Flat: growth below the threshold, beyond the error of the growth.
  Classification flatCheck(Classification c) const {
    const SamplingCheck total = growthOverSeries();
    return keepIf(c, {"room below the threshold",
                      threshold_ - total.margin_bytes,
                      total.error_bytes * kReassureSigmas / kAlarmSigmas,
                      {}});
  }
  SamplingCheck peakAboveEnds(std::size_t peak) const {
    const std::size_t end = v_.front() > v_.back() ? 0 : last();
    return {"peak above both ends", v_[peak] - v_[end], error(peak, end, kReassureSigmas), {}};
  }
  SamplingCheck lastInterval() const {
    const std::vector<double> floor = floorOf(v_);
    return {"growth in the last interval",
            v_[last()] - floor[last() - 1],
            error(argFloor(v_, last() - 1), last(), kAlarmSigmas),
            {}};
  }

  const std::vector<double>& v_;
  const std::vector<double>& sd_;
  double threshold_;
  std::size_t mid_;  // the second half starts here
};

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
  p.exe = s.process.exe;
  p.host = s.process.host;
  p.build_id = s.process.build_id;
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
    case Group::kClass:
      return "class";
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
    case Verdict::kUncertain:
      return "uncertain";
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

std::string socketPeerName(const Socket& s, const std::set<std::string>& listening) {
  core::PeerFacts facts;
  facts.has_remote = s.protocol != "unix" && !s.remote.empty();
  if (!core::isFallbackPeerName(s.peer)) facts.configured = s.peer;
  const std::string port = portOf(s.local);
  std::uint16_t number = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (ec == std::errc() && end == port.data() + port.size() && listening.count(port) != 0) {
    facts.listening_local_port = number;
  }
  return core::peerName(facts);
}

std::string socketGroupName(const Socket& s, const std::set<std::string>& listening) {
  const std::string peer = socketPeerName(s, listening);
  if (peer == core::kPeerNone) {
    if (s.protocol == "unix") return "unix " + (s.path.empty() ? std::string("(unnamed)") : s.path);
    if (s.protocol == "other") return "other";
    return s.protocol + " " + s.local;
  }
  // Unnamed remotes share the metrics' name but keep a group each: the
  // endpoint is what tells the reader which server it is.
  if (peer == core::kPeerOther) return peer + " (" + s.remote + ")";
  return peer;
}

std::string socketSeriesName(const Socket& s, const std::set<std::string>& listening) {
  return socketGroupName(s, listening) + (s.state.empty() ? "" : " " + s.state);
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

// V8 classes: the program's by count, V8's own by bytes (model.h); ranked
// by how much more they retain.
std::vector<CompareRow> compareClasses(const Snapshot& base, const Snapshot& target,
                                       const Thresholds& t, Comparison& c) {
  std::set<std::string> names;
  for (const auto& k : base.classes) names.insert(k.name);
  for (const auto& k : target.classes) names.insert(k.name);
  static const ObjectClass kEmpty;
  std::vector<CompareRow> rows;
  for (const std::string& name : names) {
    const ObjectClass* b = base.objectClass(name);
    const ObjectClass* g = target.objectClass(name);
    const bool engine = (b != nullptr && b->engine) || (g != nullptr && g->engine);
    if (b == nullptr) b = &kEmpty;
    if (g == nullptr) g = &kEmpty;
    CompareRow r = compareKind(name, *b, *g, c.same_process);
    r.group = Group::kClass;
    r.created = r.destroyed = 0;
    const double retained = static_cast<double>(g->retained_bytes - b->retained_bytes);
    r.retained_delta_bytes = retained;
    rows.push_back(r);
    const bool grew = engine ? r.delta_bytes >= t.min_heap_bytes
                             : r.delta_count >= static_cast<double>(t.min_objects) &&
                                   addedRetained(*b, *g) >=
                                       classMinBytes(t, static_cast<double>(target.v8.self_bytes));
    if (!grew) continue;
    c.suspects.push_back({Group::kClass, name,
                          formatCount(r.new_count) + " new, " + formatCount(r.deleted_count) +
                              " deleted: live " + formatCount(r.base_count) + " -> " +
                              formatCount(r.target_count) + " (self " + signedBytes(r.delta_bytes) +
                              ", retained " + signedBytes(retained) + ")",
                          r.delta_count, retained, std::nullopt});
  }
  return rows;
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

// A chain top's growth between BASE and TARGET, and its fate: "+4,
// never destroyed".
std::string compareGrowth(const Comparison& c, const Snapshot& target, const Suspect& s) {
  if (s.group == Group::kHeap || s.group == Group::kClass || s.delta_count == 0) {
    return signedBytes(s.delta_bytes);
  }
  std::string text = signedCount(s.delta_count);
  const TrackedKind* k = s.group == Group::kTracked ? target.kind(s.name) : nullptr;
  if (k == nullptr || !c.same_process) return text;
  if (k->destroyed_total == 0) return text + ", never destroyed";
  for (const CompareRow& r : c.rows) {
    if (r.group == Group::kTracked && r.name == s.name && r.destroyed == 0) {
      return text + ", none destroyed in between";
    }
  }
  return text;
}

}  // namespace

Comparison compare(const Snapshot& base, const Snapshot& target, const SymbolTable& symbols,
                   const Thresholds& t) {
  Comparison c;
  c.base = base.path;
  c.target = target.path;
  c.interval_seconds = static_cast<double>(target.taken_unix_ns - base.taken_unix_ns) / 1e9;
  // V8 ids only grow within one isolate: ids that went backwards are
  // another process's, whatever the file names say.
  const bool v8 = base.source == SourceKind::kV8HeapSnapshot;
  c.same_process =
      base.process.pid == target.process.pid && base.source == target.source &&
      (base.source == SourceKind::kSnapshot || (v8 && target.v8.max_js_id >= base.v8.max_js_id));
  if (v8 && target.source == base.source && !c.same_process) {
    c.notes.push_back(
        "the two heap snapshots come from different processes (another pid in the file name, "
        "or object ids that went backwards): # New/# Deleted are net figures");
  }
  if (base.source == SourceKind::kSnapshot && target.source == SourceKind::kSnapshot &&
      base.process.pid != target.process.pid) {
    c.notes.push_back("the process restarted between the two snapshots (pid " +
                      std::to_string(base.process.pid) + " -> " +
                      std::to_string(target.process.pid) +
                      "): object ids are not comparable, # New/# Deleted are net figures");
  }
  if (c.interval_seconds < 0) {
    c.notes.push_back("TARGET was taken " + formatDuration(-c.interval_seconds) +
                      " before BASE: the figures run backwards in time (swap them to see growth)");
  }

  // Suspects are appended tracked, heap, sockets; the stable sort below
  // keeps that order among equals.
  std::vector<CompareRow> tracked = compareTracked(base, target, t, c);
  std::vector<CompareRow> heap = compareHeap(base, target, symbols, t, c);
  std::vector<CompareRow> sockets = compareSockets(base, target, t, c);
  std::vector<CompareRow> classes = compareClasses(base, target, t, c);

  auto byGrowth = [](const CompareRow& a, const CompareRow& b) {
    if (a.delta_bytes != b.delta_bytes) return a.delta_bytes > b.delta_bytes;
    if (a.delta_count != b.delta_count) return a.delta_count > b.delta_count;
    return a.name < b.name;
  };
  std::sort(tracked.begin(), tracked.end(), byGrowth);
  std::sort(heap.begin(), heap.end(), byGrowth);
  std::sort(sockets.begin(), sockets.end(), byGrowth);
  // DevTools' Comparison sorts by Alloc. Size; growth of what is held says
  // more of a leak.
  std::sort(classes.begin(), classes.end(), [](const CompareRow& a, const CompareRow& b) {
    if (*a.retained_delta_bytes != *b.retained_delta_bytes)
      return *a.retained_delta_bytes > *b.retained_delta_bytes;
    if (a.delta_count != b.delta_count) return a.delta_count > b.delta_count;
    return a.name < b.name;
  });
  for (auto* v : {&tracked, &heap, &sockets, &classes}) {
    c.rows.insert(c.rows.end(), v->begin(), v->end());
  }
  std::stable_sort(c.suspects.begin(), c.suspects.end(), [](const Suspect& a, const Suspect& b) {
    if (a.delta_bytes != b.delta_bytes) return a.delta_bytes > b.delta_bytes;
    return a.delta_count > b.delta_count;
  });
  const Ownership owners(target, symbols);
  c.chains = buildChains(
      c.suspects, owners, [&](std::size_t i) { return compareGrowth(c, target, c.suspects[i]); },
      c.notes);
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
  if (s.source == SourceKind::kSnapshot) last_ownership_ = std::make_shared<Ownership>(s, symbols_);
  for (const TrackedKind& k : s.kinds) {
    auto [d, added] = destroyed_.try_emplace(k.name, k.destroyed_total, k.destroyed_total);
    d->second.second = k.destroyed_total;
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
    // A sampled estimate stands on k sampled objects, each object sampled
    // with probability p: relative error sqrt((1 - p) / k) — 1/sqrt(k) for
    // objects much smaller than the period, 0 for ones so large that they
    // are always sampled.
    double sd = 0;
    if (!s.heap.exact() && s.heap.sample_period > 0 && h.inuse_objects > 0) {
      const double avg = h.inuse_bytes / h.inuse_objects;
      const double p = -std::expm1(-avg / static_cast<double>(s.heap.sample_period));
      const double k = h.inuse_objects * p;
      if (k > 0) {
        sd = h.inuse_bytes * std::sqrt((1 - p) / k);
        // One sample's error: what a point without samples may hide.
        se.sample_bytes = std::max(se.sample_bytes, h.inuse_bytes / k * std::sqrt(1 - p));
      }
    }
    se.bytes_sd.resize(n - 1, 0.0);
    se.bytes_sd.push_back(sd);
  }
}

void TrendBuilder::addSockets(const Snapshot& s) {
  const auto listening = listeningPorts(s);
  std::map<std::string, double> socket_counts;
  for (const Socket& k : s.sockets) {
    socket_counts[socketSeriesName(k, listening)] += 1;
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
  if (s.source == SourceKind::kV8HeapSnapshot)
    p.heap_inuse_bytes = static_cast<double>(s.v8.self_bytes);
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
  addClasses(s);
  // Groups absent from this snapshot are at zero here.
  for (auto& [key, se] : series_) {
    if (se.counts.size() < n) se.counts.push_back(0);
    if (se.bytes.size() < n) se.bytes.push_back(0);
    if (se.group == Group::kClass && se.retained.size() < n) se.retained.resize(n, 0.0);
    if (se.group == Group::kHeap) se.bytes_sd.resize(n, 0.0);
  }

  // Survivors: the ids of the first snapshot still alive in this one.
  if (!survivors_valid_) return;
  if (s.source == SourceKind::kV8HeapSnapshot) updateClassSurvivors(s, first);
  if (s.source != SourceKind::kSnapshot) return;
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
// Sampled heap sites (`sample_bytes` > 0) are judged against their sampling
// error, exact figures by the rule alone.
Classification classifyGroup(const TrendGroup& g, const std::vector<double>& bytes_sd,
                             double sample_bytes, const Thresholds& th, bool* by_bytes) {
  *by_bytes = false;
  if (g.group == Group::kHeap) {
    *by_bytes = true;
    const Classification c = classify(g.bytes, th.min_heap_bytes);
    if (sample_bytes <= 0 || bytes_sd.size() != g.bytes.size()) return c;
    // A point without samples is zero give or take one sample.
    std::vector<double> sd(bytes_sd);
    for (double& e : sd) e = std::max(e, sample_bytes);
    return SampledJudge(g.bytes, sd, th.min_heap_bytes).judge(c);
  }
  if (g.group == Group::kClass && g.engine) {
    *by_bytes = true;
    return classify(g.bytes, th.min_heap_bytes);
  }
  Classification c = classify(g.counts, static_cast<double>(th.min_objects));
  if ((g.group == Group::kTracked || g.group == Group::kClass) && c.verdict != Verdict::kSteady) {
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

// "growth in the second half +6.0 MiB ± 6.2 MiB (2σ)".
std::string samplingText(const SamplingCheck& s) {
  std::string out = s.claim + " " + signedBytes(s.margin_bytes) + " ± " +
                    formatBytes(s.error_bytes) + " (2 sigma)";
  if (s.trend_p) {
    char p[32];
    std::snprintf(p, sizeof p, "%.2g", *s.trend_p);
    out += std::string(", rising trend p = ") + p;
  }
  return out;
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
      if ((g.group == Group::kTracked || g.group == Group::kClass) && !by_bytes) {
        reason += " (" + fmtSeries(g.bytes, true) + ")";
      }
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
    case Verdict::kUncertain:
      reason = "growth within sampling error: take more snapshots or lower the sampling period (" +
               fmtSeries(main, by_bytes) + "; " + samplingText(*g.sampling) + ")";
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
  // V8 classes by what they hold more: the class that keeps the others
  // alive comes first.
  auto rate = [&](const TrendGroup& g) {
    if (g.group == Group::kClass && g.retained.size() >= 2) {
      return g.retained.back() - g.retained.front();
    }
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
    if (last_ownership_) sv.chain = last_ownership_->chainOf(o.id);
    g.survivors.push_back(sv);
  }
  if (g.verdict == Verdict::kSteady && last_ownership_ && last_ownership_->any()) {
    std::vector<std::uint64_t> ids;
    for (const Candidate& c : cands) ids.push_back(c.object.id);
    auto paths = last_ownership_->retainers(g.name, ids, options_.max_retainer_paths);
    // Paths that are the kind alone say nothing: no owner was declared.
    const bool owned = std::any_of(paths.begin(), paths.end(),
                                   [&](const RetainerPath& p) { return p.path != g.name; });
    if (owned) g.retainers = std::move(paths);
  }
  if (g.verdict == Verdict::kSteady && g.survivor_count > 0) {
    g.reason += "; " + std::to_string(g.survivor_count) + " object(s) alive in every snapshot";
  }
}

TrendGroup TrendBuilder::judge(const Series& se, const std::vector<double>& hours,
                               const std::optional<MemoryLimitUsed>& limit,
                               double current_memory) const {
  TrendGroup g;
  g.group = se.group;
  g.name = se.name;
  g.stack = se.stack;
  g.counts = se.counts;
  g.bytes = se.bytes;
  g.retained = se.retained;
  g.engine = se.engine;
  g.added_retained_bytes = se.added_retained;
  bool by_bytes = false;
  const Classification c =
      classifyGroup(g, se.bytes_sd, se.sample_bytes, options_.thresholds, &by_bytes);
  g.verdict = c.verdict;
  g.sampling = c.sampling;
  g.growing_intervals = c.growing;
  g.peak_index = c.peak;
  const bool timed = hours.back() > 0;
  fillGrowth(g, points_.size(), hours, timed, by_bytes, limit, current_memory);
  g.reason = trendReason(g, c, by_bytes, points_);
  if (g.group == Group::kClass && !by_bytes) {
    tooSmallToLeak(g, options_.thresholds, points_.back().heap_inuse_bytes);
  }
  addSurvivors(g);
  addClassSurvivors(g);
  return g;
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
    TrendGroup g = judge(se, hours, r.memory_limit, current_memory);
    if (g.verdict == Verdict::kFlat && g.counts.back() == 0 && g.bytes.back() == 0 &&
        se.group == Group::kHeap) {
      continue;  // heap sites that came and went without mattering
    }
    r.groups.push_back(std::move(g));
  }
  sortGroups(r.groups, timed);
  std::vector<const TrendGroup*> steady;  // r.suspects[i] is *steady[i]
  for (const TrendGroup& g : r.groups) {
    if (g.verdict != Verdict::kSteady) continue;
    const std::vector<double>& held = g.group == Group::kClass ? g.retained : g.bytes;
    r.suspects.push_back({g.group, g.name, g.reason, g.counts.back() - g.counts.front(),
                          held.back() - held.front(), g.stack});
    steady.push_back(&g);
  }
  const Ownership none;
  r.chains = buildChains(
      r.suspects, last_ownership_ ? *last_ownership_ : none,
      [&](std::size_t i) { return chainGrowth(*steady[i]); }, r.notes);
  return r;
}

std::string TrendBuilder::chainGrowth(const TrendGroup& g) const {
  const bool by_count = g.group != Group::kHeap && g.growth_count_per_interval != 0;
  std::string s = (by_count ? signedCount(g.growth_count_per_interval)
                            : signedBytes(g.growth_bytes_per_interval)) +
                  " per interval";
  const auto d = destroyed_.find(g.name);
  if (g.group != Group::kTracked || !survivors_valid_ || d == destroyed_.end()) return s;
  if (d->second.second == 0) return s + ", never destroyed";
  if (d->second.second == d->second.first) return s + ", none destroyed during the series";
  return s;
}

// ---- sockets ------------------------------------------------------------

namespace {

// Group name, TCP state, protocol.
using SocketKey = std::tuple<std::string, std::string, std::string>;
using SocketRows = std::map<SocketKey, SocketRow>;

constexpr std::size_t kOwnersListed = 5;

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
      row.peer = socketPeerName(k, listening);
      row.state = k.state;
      row.protocol = k.protocol;
      row.counts.resize(n, 0);
      row.counts[i] += 1;
    }
  }
  for (auto& [key, row] : rows) row.counts.resize(n, 0);
  return rows;
}

// "kind#id (label)" of the last snapshot's tracked objects, by id.
class OwnerNames {
 public:
  OwnerNames(const Snapshot& last, const SymbolTable& symbols) : symbols_(symbols) {
    for (const TrackedKind& k : last.kinds) {
      for (const TrackedObject& o : k.objects) objects_.emplace(o.id, std::make_pair(&k, &o));
    }
  }
  std::string operator()(std::uint64_t id) const {
    auto it = objects_.find(id);
    if (it == objects_.end()) return "#" + std::to_string(id) + " (no longer live)";
    std::string name = it->second.first->name + "#" + std::to_string(id);
    const std::string& label = symbols_.str(it->second.second->label);
    if (!label.empty()) name += " (" + label + ")";
    return name;
  }

 private:
  const SymbolTable& symbols_;
  std::unordered_map<std::uint64_t, std::pair<const TrackedKind*, const TrackedObject*>> objects_;
};

// The first kOwnersListed of `ids` in ascending (numeric) order, named.
std::vector<std::string> listOwners(std::vector<std::uint64_t> ids, const OwnerNames& names) {
  std::sort(ids.begin(), ids.end());
  std::vector<std::string> out;
  for (std::size_t i = 0; i < ids.size() && i < kOwnersListed; ++i) out.push_back(names(ids[i]));
  return out;
}

// The last snapshot's sockets: details, and each group's owners.
void describeLast(const Snapshot& last, const OwnerNames& names, SocketRows& rows,
                  SocketsResult& r) {
  const auto listening = listeningPorts(last);
  std::map<SocketKey, std::vector<std::uint64_t>> owner_ids;
  for (const Socket& k : last.sockets) {
    SocketDetail d;
    d.socket = k;
    d.group = socketGroupName(k, listening);
    d.peer = socketPeerName(k, listening);
    const SocketKey key{d.group, k.state, k.protocol};
    SocketRow& row = rows[key];
    if (k.owner) {
      ++row.owned;
      owner_ids[key].push_back(*k.owner);
      d.owner = names(*k.owner);
    } else {
      ++row.unowned;
    }
    r.last.push_back(std::move(d));
  }
  for (auto& [key, ids] : owner_ids) rows[key].owners = listOwners(std::move(ids), names);
}

SocketFacts factsOf(const SocketRow& row) {
  SocketFacts f{row.peer, row.state, row.protocol, row.owners, 0};
  f.more_owners = static_cast<std::size_t>(row.owned) -
                  std::min<std::size_t>(row.owners.size(), static_cast<std::size_t>(row.owned));
  return f;
}

// Where each socket inode had an owner, snapshot by snapshot: what tells a
// connection no code tracks from one caught while it was being opened (its
// owner appears in the next snapshot) or closed (it had one in the previous).
class OwnerHistory {
 public:
  enum class Judgement { kUntracked, kInTransit, kYoung, kUnknown };

  explicit OwnerHistory(const std::vector<const Snapshot*>& snaps) {
    for (const Snapshot* s : snaps) {
      auto& seen = seen_.emplace_back();
      for (const Socket& k : s->sockets) seen[k.inode] = k.owner ? Seen::kOwned : Seen::kUnowned;
      any_owned_ = any_owned_ || std::any_of(s->sockets.begin(), s->sockets.end(),
                                             [](const Socket& k) { return k.owner.has_value(); });
    }
  }
  // Unowned sockets only mean something in a program that declares owners.
  bool anyOwned() const { return any_owned_; }

  // An unowned socket of snapshot `i`. With one snapshot, its age is unknown
  // and it is held against the program (kUntracked).
  Judgement judge(std::size_t i, std::uint64_t inode) const {
    if (seen_.size() == 1) return Judgement::kUntracked;
    if (at(i + 1, inode) == Seen::kOwned || (i > 0 && at(i - 1, inode) == Seen::kOwned)) {
      return Judgement::kInTransit;
    }
    if (i == 0) return Judgement::kUnknown;  // judged in the next snapshot if still there
    if (at(i - 1, inode) == Seen::kAbsent) return Judgement::kYoung;
    return Judgement::kUntracked;  // unowned for at least an interval
  }

 private:
  enum class Seen { kAbsent, kUnowned, kOwned };
  Seen at(std::size_t i, std::uint64_t inode) const {
    if (i >= seen_.size()) return Seen::kAbsent;
    auto it = seen_[i].find(inode);
    return it == seen_[i].end() ? Seen::kAbsent : it->second;
  }

  std::vector<std::unordered_map<std::uint64_t, Seen>> seen_;  // per snapshot
  bool any_owned_ = false;
};

// Connected TCP sockets no tracked object owns, judged against their
// neighbouring snapshots: the untracked ones by group, and how many of the
// last snapshot's were only caught being opened or closed.
struct Unowned {
  std::map<SocketKey, std::set<std::uint64_t>> untracked;  // inodes
  std::size_t last_in_transit = 0, last_young = 0;
};

Unowned findUnowned(const std::vector<const Snapshot*>& snaps, const OwnerHistory& history) {
  Unowned u;
  for (std::size_t i = 0; i < snaps.size(); ++i) {
    const auto listening = listeningPorts(*snaps[i]);
    const bool last = i + 1 == snaps.size();
    for (const Socket& k : snaps[i]->sockets) {
      if (k.owner || !isTcp(k) || !isConnectedState(k.state)) continue;
      switch (history.judge(i, k.inode)) {
        case OwnerHistory::Judgement::kUntracked:
          u.untracked[{socketGroupName(k, listening), k.state, k.protocol}].insert(k.inode);
          break;
        case OwnerHistory::Judgement::kInTransit:
          if (last) ++u.last_in_transit;
          break;
        case OwnerHistory::Judgement::kYoung:
          if (last) ++u.last_young;
          break;
        case OwnerHistory::Judgement::kUnknown:
          break;
      }
    }
  }
  return u;
}

void flagUnowned(const std::vector<const Snapshot*>& snaps, const SocketRows& rows,
                 SocketsResult& r) {
  const OwnerHistory history(snaps);
  if (!history.anyOwned()) return;
  const Unowned u = findUnowned(snaps, history);
  const bool one = snaps.size() == 1;
  for (const auto& [key, inodes] : u.untracked) {
    const SocketRow& row = rows.at(key);
    const std::string name = row.name + " " + row.state;
    SocketFlag f{"unowned", name,
                 std::to_string(inodes.size()) + " " + row.state + " TCP socket(s) with no " +
                     "tracked owner" + (one ? "" : " in two snapshots in a row") +
                     ": opened by code that does not track its connections" +
                     (one ? " (one snapshot cannot tell them from connections being opened or "
                            "closed: take another)"
                          : "")};
    r.flags.push_back(f);
    SocketFacts facts = factsOf(row);
    facts.owners.clear();
    facts.more_owners = 0;
    r.suspects.push_back({Group::kSocket, name, f.reason, static_cast<double>(inodes.size()), 0,
                          std::nullopt, facts});
  }
  if (u.last_in_transit + u.last_young > 0) {
    r.notes.push_back(
        std::to_string(u.last_in_transit + u.last_young) +
        " TCP socket(s) without an owner in the last snapshot were being opened or closed (" +
        std::to_string(u.last_in_transit) + " owned in a neighbouring snapshot, " +
        std::to_string(u.last_young) +
        " younger than one snapshot interval): not held against the program");
  }
}

// Tracked objects whose declared fd is no longer a socket of the process.
void flagOrphans(const Snapshot& last, const OwnerNames& names, SocketsResult& r) {
  std::set<std::uint64_t> owners_seen;
  for (const Socket& k : last.sockets) {
    if (k.owner) owners_seen.insert(*k.owner);
  }
  for (const TrackedKind& k : last.kinds) {
    std::vector<std::uint64_t> orphans;
    for (const TrackedObject& o : k.objects) {
      if (o.fd >= 0 && owners_seen.count(o.id) == 0) orphans.push_back(o.id);
    }
    if (orphans.empty()) continue;
    SocketFacts facts;
    facts.owners = listOwners(orphans, names);
    facts.more_owners = orphans.size() - facts.owners.size();
    std::string ids;
    for (std::size_t i = 0; i < orphans.size() && i < kOwnersListed; ++i)
      ids += (i ? ", #" : "#") + std::to_string(orphans[i]);
    if (orphans.size() > kOwnersListed) ids += ", ...";
    SocketFlag f{"owner-without-socket", k.name,
                 std::to_string(orphans.size()) + " live " + k.name +
                     " object(s) declare an fd that is no longer a socket of this process (" + ids +
                     "): closed sockets whose objects were never destroyed"};
    r.flags.push_back(f);
    r.suspects.push_back({Group::kTracked, k.name, f.reason, static_cast<double>(orphans.size()), 0,
                          std::nullopt, facts});
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
                              static_cast<double>(c.back() - c.front()), 0, std::nullopt,
                              factsOf(row)});
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
      r.suspects.push_back(
          {Group::kSocket, name, "open sockets keep growing (" + countSeries(c) + ")",
           static_cast<double>(c.back() - c.front()), 0, std::nullopt, factsOf(row)});
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
  const OwnerNames names(last, symbols);
  describeLast(last, names, rows, r);
  flagUnowned(snaps, rows, r);
  flagOrphans(last, names, r);
  flagGrowth(rows, snaps.size(), t, r);
  for (auto& [key, row] : rows) r.rows.push_back(std::move(row));
  std::stable_sort(r.rows.begin(), r.rows.end(), [](const SocketRow& a, const SocketRow& b) {
    if (a.counts.back() != b.counts.back()) return a.counts.back() > b.counts.back();
    return a.name < b.name;
  });
  return r;
}

}  // namespace leakscope::analysis
