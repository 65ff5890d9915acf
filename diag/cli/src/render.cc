#include "render.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <utility>

#include "text_layout.h"

namespace leakscope::analysis {

std::string signedNum(double v) { return (v > 0 ? "+" : "") + formatCount(v); }
std::string signedBytes(double v) { return (v > 0 ? "+" : "") + formatBytes(v); }

namespace {

using json = nlohmann::json;

// Text from an input, inline in a view: escaped, on one line.
std::string oneLine(std::string_view text) { return printable(text); }

// Objects, sockets and bytes as JSON integers, also where the model holds
// them as doubles (sampled heap figures are estimates, but no finer than
// one object or byte), so that a count reads 3, not 3.0.
json whole(double v) {
  // Nothing a reader accepts comes near int64's range; if it did, the
  // figure stays a number rather than wrapping.
  if (std::fabs(v) < 9.2e18) return json(static_cast<std::int64_t>(std::llround(v)));
  return json(v);
}

json whole(const std::vector<double>& v) {
  json out = json::array();
  for (double x : v) out.push_back(whole(x));
  return out;
}

json stackJson(const SymbolTable& symbols, StackId stack) {
  json frames = json::array();
  for (StringId f : symbols.stack(stack)) {
    const FrameInfo& fi = symbols.frame(f);
    json j = {{"function", symbols.str(f)}, {"module", fi.module}};
    if (!fi.file.empty()) {
      j["file"] = fi.file;
      j["line"] = fi.line;
    }
    frames.push_back(std::move(j));
  }
  return frames;
}

// A suspect without its stack: what every view's "suspects" entry has.
json suspectFields(const Suspect& s) {
  return {{"group", groupName(s.group)},
          {"name", s.name},
          {"reason", s.reason},
          {"delta_objects", whole(s.delta_count)},
          {"delta_bytes", whole(s.delta_bytes)}};
}

json suspectJson(const Suspect& s, const SymbolTable& symbols) {
  json j = suspectFields(s);
  if (s.stack) j["stack"] = stackJson(symbols, *s.stack);
  if (s.socket) {
    const SocketFacts& f = *s.socket;
    j["peer"] = f.peer;
    j["state"] = f.state;
    j["protocol"] = f.protocol;
    j["owners"] = f.owners;
    j["more_owners"] = f.more_owners;
  }
  return j;
}

// "peer other, state ESTABLISHED, owners: a#1 (x), a#2 (y), … 3 more": what a
// socket suspect is about, so that the reader can find it without --json.
std::string describeFacts(const SocketFacts& f) {
  std::string out;
  if (!f.peer.empty()) out += "peer " + f.peer;
  if (!f.state.empty()) out += (out.empty() ? "state " : ", state ") + f.state;
  out += out.empty() ? "" : ", ";
  if (f.owners.empty()) return out + "no owner";
  out += f.owners.size() == 1 && f.more_owners == 0 ? "owner " : "owners ";
  // Three say who owns them; --json lists five.
  const std::size_t shown = std::min<std::size_t>(f.owners.size(), 3);
  for (std::size_t i = 0; i < shown; ++i) out += (i ? ", " : "") + f.owners[i];
  const std::size_t more = f.owners.size() - shown + f.more_owners;
  if (more > 0) out += ", ... " + std::to_string(more) + " more";
  return out;
}

// `chains`: diff's (in chain order, each under its holder); none: in order.
void printSuspects(std::ostream& out, const std::vector<Suspect>& suspects,
                   const SymbolTable& symbols, const std::vector<Chain>& chains = {}) {
  if (suspects.empty()) {
    out << "No leak suspected.\n";
    return;
  }
  out << "Leak suspects (" << suspects.size() << "):\n";
  std::size_t number = 0;
  forEachChainMember(out, chains, suspects.size(), [&](std::size_t i, std::size_t depth) {
    const Suspect& s = suspects[i];
    out << chainMemberHeader(++number, depth, s.group, s.name) << "\n     " << oneLine(s.reason)
        << "\n";
    if (s.stack) out << "     at " << oneLine(describeStack(symbols, *s.stack, 6)) << "\n";
    if (s.socket) out << "     " << oneLine(describeFacts(*s.socket)) << "\n";
  });
}

}  // namespace

std::string shortPath(const std::string& p) {
  const auto slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

void renderSuspects(std::ostream& out, const std::vector<Suspect>& suspects,
                    const SymbolTable& symbols) {
  printSuspects(out, suspects, symbols);
}

json suspectsJson(const std::vector<Suspect>& suspects, const SymbolTable& symbols) {
  json j = json::array();
  for (const Suspect& s : suspects) j.push_back(suspectJson(s, symbols));
  return j;
}

// ---- show ---------------------------------------------------------------

namespace {

// Where the input came from: the snapshot's process figures, or the
// profile's format.
void showSource(std::ostream& out, const Snapshot& s) {
  if (s.source == SourceKind::kV8HeapSnapshot) return showV8Source(out, s);
  out << oneLine(s.path) << "\n";
  if (s.source != SourceKind::kSnapshot) {
    out << "  gperftools heap profile (" << oneLine(s.heap.format) << ")\n";
    return;
  }
  out << "  snapshot " << oneLine(s.name) << " #" << s.sequence << ", taken " << oneLine(s.utc)
      << " (" << oneLine(s.trigger) << ")\n";
  out << "  process pid " << s.process.pid << " " << oneLine(s.process.exe) << ": RSS "
      << formatBytes(static_cast<double>(s.process.rss_bytes)) << ", " << s.process.open_fds << "/"
      << s.process.max_fds << " fds, " << s.process.threads << " threads\n";
  if (s.allocator_available) {
    out << "  tcmalloc: " << formatBytes(static_cast<double>(s.allocated_bytes))
        << " allocated, heap " << formatBytes(static_cast<double>(s.heap_bytes)) << "\n";
  }
}

// "-" when the kind has no live object.
std::string oldestAge(const TrackedKind& k, std::int64_t taken_unix_ns) {
  std::int64_t oldest = 0;
  for (const auto& obj : k.objects) {
    if (oldest == 0 || obj.birth_unix_ns < oldest) oldest = obj.birth_unix_ns;
  }
  return oldest == 0 ? "-" : formatDuration(static_cast<double>(taken_unix_ns - oldest) / 1e9);
}

void showKinds(std::ostream& out, const Snapshot& s, const RenderOptions& o) {
  if (s.kinds.empty()) return;
  std::vector<const TrackedKind*> kinds;
  for (const auto& k : s.kinds) kinds.push_back(&k);
  std::stable_sort(kinds.begin(), kinds.end(), [](const TrackedKind* a, const TrackedKind* b) {
    return a->live_bytes != b->live_bytes ? a->live_bytes > b->live_bytes : a->live > b->live;
  });
  out << "\nTracked objects by live bytes:\n";
  Table t({"kind", "live", "live bytes", "created", "destroyed", "oldest age"});
  for (std::size_t i = 0; i < kinds.size() && i < o.top; ++i) {
    const TrackedKind& k = *kinds[i];
    t.add({k.name, std::to_string(k.objects.size()), formatBytes(static_cast<double>(k.live_bytes)),
           std::to_string(k.created_total), std::to_string(k.destroyed_total),
           oldestAge(k, s.taken_unix_ns)});
  }
  t.print(out, o.width);
}

void showHeap(std::ostream& out, const Snapshot& s, const SymbolTable& symbols,
              const RenderOptions& o) {
  out << "\nHeap";
  if (!s.heap.available) {
    out << ": not available (" << oneLine(s.heap.reason) << ")\n";
    return;
  }
  out << " (" << oneLine(s.heap.mode)
      << (s.heap.mode == "sampled"
              ? ", estimated from a 1-in-" + std::to_string(s.heap.sample_period) + "-bytes sample"
              : "")
      << "): " << formatBytes(s.heap.inuse_bytes) << " in use at " << s.heap.sites.size()
      << " sites; top sites:\n";
  Table t({"in use", "objects", "site"});
  t.lastColumnLeft();
  for (std::size_t i = 0; i < s.heap.sites.size() && i < o.top; ++i) {
    const HeapSite& h = s.heap.sites[i];
    t.add({formatBytes(h.inuse_bytes), formatCount(h.inuse_objects),
           describeStack(symbols, h.stack, 3)});
  }
  t.print(out, o.width);
}

// Snapshots only: a profile has no sockets.
void showSockets(std::ostream& out, const Snapshot& s, const SocketsResult& sockets,
                 const SymbolTable& symbols, const RenderOptions& o) {
  out << "\nSockets (" << s.sockets.size() << "):\n";
  if (!s.sockets_error.empty()) out << "  not read: " << oneLine(s.sockets_error) << "\n";
  Table t({"remote / group", "state", "proto", "count", "owned"});
  for (std::size_t i = 0; i < sockets.rows.size() && i < o.top; ++i) {
    const SocketRow& r = sockets.rows[i];
    t.add({r.name, r.state, r.protocol, std::to_string(r.counts.back()), std::to_string(r.owned)});
  }
  if (!t.empty()) t.print(out, o.width);
  out << "\n";
  printSuspects(out, sockets.suspects, symbols);
}

}  // namespace

static void renderShowText(std::ostream& out, const Snapshot& s, const SocketsResult& sockets,
                           const SymbolTable& symbols, const RenderOptions& o) {
  showSource(out, s);
  if (s.source == SourceKind::kV8HeapSnapshot) return showV8Classes(out, s, o);
  showKinds(out, s, o);
  showHeap(out, s, symbols, o);
  if (s.source == SourceKind::kSnapshot) showSockets(out, s, sockets, symbols, o);
}

json showJson(const Snapshot& s, const SocketsResult& sockets, const SymbolTable& symbols,
              const RenderOptions& o) {
  json j;
  j["command"] = "show";
  j["input"] = s.path;
  j["source"] = sourceName(s.source);
  if (s.source == SourceKind::kV8HeapSnapshot) j.update(v8ShowJson(s));
  j["sequence"] = s.sequence;
  j["taken_unix_ns"] = s.taken_unix_ns;
  j["utc"] = s.utc;
  j["process"] = {{"pid", s.process.pid},
                  {"exe", s.process.exe},
                  {"rss_bytes", s.process.rss_bytes},
                  {"open_fds", s.process.open_fds},
                  {"max_fds", s.process.max_fds},
                  {"threads", s.process.threads}};
  json kinds = json::array();
  for (const auto& k : s.kinds) {
    kinds.push_back({{"kind", k.name},
                     {"live", k.objects.size()},
                     {"live_bytes", k.live_bytes},
                     {"created_total", k.created_total},
                     {"destroyed_total", k.destroyed_total}});
  }
  j["tracked"] = kinds;
  json heap = {{"available", s.heap.available}};
  if (s.heap.available) {
    heap["mode"] = s.heap.mode;
    heap["sample_period"] = s.heap.sample_period;
    heap["inuse_bytes"] = whole(s.heap.inuse_bytes);
    heap["site_count"] = s.heap.sites.size();
    json sites = json::array();
    for (std::size_t i = 0; i < s.heap.sites.size() && i < o.top; ++i) {
      const HeapSite& h = s.heap.sites[i];
      sites.push_back({{"name", siteName(symbols, h.stack)},
                       {"inuse_bytes", whole(h.inuse_bytes)},
                       {"inuse_objects", whole(h.inuse_objects)},
                       {"stack", stackJson(symbols, h.stack)}});
    }
    heap["top_sites"] = sites;
  } else {
    heap["reason"] = s.heap.reason;
  }
  j["heap"] = heap;
  j["sockets"] = socketsJson(sockets, o)["groups"];
  json suspects = json::array();
  for (const auto& x : sockets.suspects) suspects.push_back(suspectJson(x, symbols));
  j["suspects"] = suspects;
  return j;
}

// ---- diff ---------------------------------------------------------------

static void renderCompareText(std::ostream& out, const Comparison& c, const SymbolTable& symbols,
                              const RenderOptions& o) {
  out << "Comparison " << oneLine(shortPath(c.base)) << " -> " << oneLine(shortPath(c.target));
  // A TARGET older than BASE has a note saying so, with the gap.
  if (c.interval_seconds >= 0) out << " (" << formatDuration(c.interval_seconds) << " apart)";
  out << "\n";
  for (const auto& n : c.notes) out << "  note: " << oneLine(n) << "\n";
  for (Group g : {Group::kTracked, Group::kHeap, Group::kSocket}) {
    Table t({g == Group::kTracked ? "tracked kind"
             : g == Group::kHeap  ? "heap site"
                                  : "socket group",
             "# New", "# Deleted", "# Delta", "Alloc. Size", "Freed Size", "Size Delta"});
    std::size_t shown = 0, total = 0;
    for (const CompareRow& r : c.rows) {
      if (r.group != g) continue;
      ++total;
      if (shown >= o.top) continue;
      ++shown;
      const bool sized = g != Group::kSocket;
      t.add({r.name, formatCount(r.new_count), formatCount(r.deleted_count),
             signedNum(r.delta_count), sized ? formatBytes(r.alloc_bytes) : "-",
             sized ? formatBytes(r.freed_bytes) : "-", sized ? signedBytes(r.delta_bytes) : "-"});
    }
    if (t.empty()) continue;
    out << "\n";
    t.print(out, o.width);
    if (total > shown) out << "  ... " << total - shown << " more (--top N)\n";
    if (g == Group::kHeap) {
      for (const CompareRow& r : c.rows) {
        if (r.group == g && r.basis == "net") {
          out << "  (sampled profile: # New/# Deleted are net changes)\n";
          break;
        }
      }
    }
  }
  renderClassComparison(out, c, o);
  out << "\n";
  printSuspects(out, c.suspects, symbols, c.chains);
}

json compareJson(const Comparison& c, const SymbolTable& symbols, const RenderOptions& o) {
  json j;
  j["command"] = "diff";
  j["base"] = c.base;
  j["target"] = c.target;
  j["interval_seconds"] = c.interval_seconds;
  j["same_process"] = c.same_process;
  j["notes"] = c.notes;
  json rows = json::array();
  std::map<Group, std::size_t> shown;
  for (const CompareRow& r : c.rows) {
    if (shown[r.group]++ >= o.top) continue;
    json row = {{"group", groupName(r.group)},
                {"name", r.name},
                {"new", whole(r.new_count)},
                {"deleted", whole(r.deleted_count)},
                {"delta", whole(r.delta_count)},
                {"alloc_bytes", whole(r.alloc_bytes)},
                {"freed_bytes", whole(r.freed_bytes)},
                {"delta_bytes", whole(r.delta_bytes)},
                {"base_objects", whole(r.base_count)},
                {"target_objects", whole(r.target_count)},
                {"base_bytes", whole(r.base_bytes)},
                {"target_bytes", whole(r.target_bytes)},
                {"basis", r.basis}};
    if (r.group == Group::kTracked && r.basis == "ids") {
      row["created"] = r.created;
      row["destroyed"] = r.destroyed;
    }
    if (r.retained_delta_bytes) row["retained_delta_bytes"] = whole(*r.retained_delta_bytes);
    if (r.stack) row["stack"] = stackJson(symbols, *r.stack);
    rows.push_back(std::move(row));
  }
  j["rows"] = rows;
  json suspects = json::array();
  for (const auto& s : c.suspects) suspects.push_back(suspectJson(s, symbols));
  j["suspects"] = suspects;
  j["chains"] = chainsJson(c.chains, c.suspects);
  return j;
}

// ---- trend --------------------------------------------------------------

namespace {

std::string rateText(const TrendGroup& g, bool timed) {
  const bool bytes =
      g.group == Group::kHeap ||
      ((g.group == Group::kTracked || g.group == Group::kClass) && g.bytes.back() != 0);
  std::string out;
  if (g.group != Group::kHeap) out += signedNum(g.growth_count_per_interval) + "/interval";
  if (bytes) {
    if (!out.empty()) out += ", ";
    out += signedBytes(g.growth_bytes_per_interval) + "/interval";
  }
  if (timed) {
    out += "; ";
    if (g.group != Group::kHeap) out += signedNum(g.growth_count_per_hour) + "/h";
    if (bytes) {
      if (g.group != Group::kHeap) out += ", ";
      out += signedBytes(g.growth_bytes_per_hour) + "/h";
    }
  }
  return out;
}

// A rate per hour fitted to a few seconds or a couple of snapshots is noise
// multiplied up: RSS moves in allocator-sized steps. Below both, the line is
// left out (the JSON keeps the figure with the span it came from).
constexpr double kRssTrendMinSeconds = 600;
constexpr std::size_t kRssTrendMinSnapshots = 5;

// The process' RSS per hour, said to be what it is: a straight line through
// the series, carried on.
void trendRss(std::ostream& out, const TrendResult& t) {
  if (!t.rss_growth_bytes_per_hour) return;
  if (t.span_seconds < kRssTrendMinSeconds && t.points.size() < kRssTrendMinSnapshots) return;
  out << "  RSS trend: " << signedBytes(*t.rss_growth_bytes_per_hour) << "/h (extrapolated from "
      << t.points.size() << " inputs over " << formatDuration(t.span_seconds) << ")";
  if (t.hours_to_limit)
    out << "; memory limit reached in ~" << formatDuration(*t.hours_to_limit * 3600);
  out << "\n";
}

// The limit the projections use and where it came from: an on-call engineer
// must see whether the snapshot's cgroup limit or a typed-in figure was used.
void trendMemoryLimit(std::ostream& out, const TrendResult& t) {
  if (!t.memory_limit) return;
  const MemoryLimitUsed& m = *t.memory_limit;
  out << "  Memory limit: " << formatBytes(m.bytes);
  if (m.from == "flag") {
    out << " (--memory-limit)";
  } else {
    out << " (recorded in the snapshot" << (m.source.empty() ? "" : ": " + printable(m.source))
        << ")";
  }
  const double rss = static_cast<double>(t.points.back().rss_bytes);
  if (rss > 0 && m.bytes > 0) {
    out << "; last RSS " << static_cast<long long>(std::lround(100 * rss / m.bytes)) << "% of it";
  }
  out << "\n";
}

// The inputs in time order, the notes and the process' RSS trend.
void trendInputs(std::ostream& out, const TrendResult& t) {
  out << "Trend over " << t.points.size() << " inputs, " << formatDuration(t.span_seconds)
      << " (in time order):\n";
  for (std::size_t i = 0; i < t.points.size(); ++i) {
    const auto& p = t.points[i];
    out << "  " << i + 1 << ". " << printable(shortPath(p.path));
    if (!p.utc.empty()) out << "  " << printable(p.utc);
    if (p.rss_bytes > 0) out << "  RSS " << formatBytes(static_cast<double>(p.rss_bytes));
    if (p.heap_inuse_bytes > 0) out << "  heap " << formatBytes(p.heap_inuse_bytes);
    out << "\n";
  }
  for (const auto& n : t.notes) out << "  note: " << oneLine(n) << "\n";
  trendRss(out, t);
  trendMemoryLimit(out, t);
  out << "\n";
}

// The first few survivors (--survivors; the JSON has more), oldest first.
void trendSurvivors(std::ostream& out, const TrendGroup& g, const RenderOptions& o) {
  out << "     survivors (alive in every snapshot): " << g.survivor_count << "\n";
  const std::size_t rows =
      o.survivors == 0 ? g.survivors.size() : std::min(o.survivors, g.survivors.size());
  Table st({"id", "age", "label", "bytes", "socket"});
  st.lastColumnLeft();
  for (std::size_t i = 0; i < rows; ++i) {
    const Survivor& s = g.survivors[i];
    // V8 ids are written as DevTools writes them; a V8 object's age is not known.
    const bool v8 = g.group == Group::kClass;
    st.add({(v8 ? "@" : "#") + std::to_string(s.id), v8 ? "-" : formatDuration(s.age_seconds),
            s.label.empty() ? "-" : s.label, formatBytes(static_cast<double>(s.bytes)),
            s.socket.empty() ? "-" : s.socket});
  }
  st.print(out, o.width, "       ");
  if (g.survivor_count > rows) {
    out << "       \u2026 " << g.survivor_count - rows << " more (--survivors N)\n";
  }
  // What holds the survivors, up to a root: each distinct chain once.
  std::vector<std::pair<std::string, std::size_t>> chains;
  for (std::size_t i = 0; i < rows; ++i) {
    const std::string& c = g.survivors[i].chain;
    if (c.empty()) continue;
    auto it =
        std::find_if(chains.begin(), chains.end(), [&](const auto& e) { return e.first == c; });
    if (it == chains.end()) {
      chains.emplace_back(c, 1);
    } else {
      ++it->second;
    }
  }
  for (const auto& [chain, n] : chains) {
    out << "       " << n << " of " << rows << " held by " << oneLine(chain) << "\n";
  }
}

std::size_t countVerdict(const TrendResult& t, Verdict v) {
  return static_cast<std::size_t>(std::count_if(
      t.groups.begin(), t.groups.end(), [v](const TrendGroup& g) { return g.verdict == v; }));
}

// The groups that grew steadily: the leak suspects, with their rates.
void trendSuspects(std::ostream& out, const TrendResult& t, const SymbolTable& symbols,
                   const RenderOptions& o) {
  const bool timed = t.span_seconds > 0;
  std::size_t index = 0;
  if (t.suspects.empty() && countVerdict(t, Verdict::kUncertain) > 0) {
    out << "No steady growth beyond sampling error; some heap sites are uncertain (below).\n";
  } else if (t.suspects.empty()) {
    out << "No steady growth: no leak suspected.\n";
  } else {
    out << "Leak suspects — steady growth (" << t.suspects.size() << "):\n";
  }
  std::vector<const TrendGroup*> steady;  // t.suspects[i] is *steady[i]
  for (const TrendGroup& g : t.groups) {
    if (g.verdict == Verdict::kSteady) steady.push_back(&g);
  }
  forEachChainMember(out, t.chains, steady.size(), [&](std::size_t i, std::size_t depth) {
    const TrendGroup& g = *steady[i];
    out << chainMemberHeader(++index, depth, g.group, g.name) << "\n";
    out << "     " << oneLine(g.reason) << "\n";
    out << "     growth " << rateText(g, timed) << "\n";
    if (g.stack) out << "     at " << oneLine(describeStack(symbols, *g.stack, 6)) << "\n";
    if (g.hours_to_limit) {
      out << "     at this rate the memory limit is reached in ~"
          << formatDuration(*g.hours_to_limit * 3600) << "\n";
    }
    if (g.survivor_count > 0) trendSurvivors(out, g, o);
    if (!g.retainers.empty()) {
      out << (g.group == Group::kClass ? "     retained by (shortest paths from the GC roots):\n"
                                       : "     held by (declared owners, from the root):\n");
      renderRetainerPaths(out, g.retainers, g.survivor_count, "       ");
    }
  });
}

// Growth that did not persist: freed later, levelled off, or only in the
// last interval.
bool notPersisted(Verdict v) {
  return v == Verdict::kTransient || v == Verdict::kRecent || v == Verdict::kBounded;
}

void trendNotLeaks(std::ostream& out, const TrendResult& t, const RenderOptions& o) {
  std::size_t others = 0;
  for (const TrendGroup& g : t.groups) {
    if (notPersisted(g.verdict)) ++others;
  }
  if (others == 0) return;
  out << "\nNot leaks (growth that did not persist):\n";
  std::size_t shown = 0;
  for (const TrendGroup& g : t.groups) {
    if (!notPersisted(g.verdict)) continue;
    if (shown++ >= o.top) {
      out << "  ... " << others - o.top << " more\n";
      break;
    }
    out << "  - " << verdictName(g.verdict) << " [" << groupName(g.group) << "] " << oneLine(g.name)
        << ": " << oneLine(g.reason) << "\n";
  }
}

// Sampled sites whose growth is within sampling error: neither suspects nor
// all-clear, so they get their own section, before the reassuring ones.
void trendUncertain(std::ostream& out, const TrendResult& t, const RenderOptions& o) {
  const std::size_t count = countVerdict(t, Verdict::kUncertain);
  if (count == 0) return;
  out << "\nUncertain — growth within sampling error (" << count
      << "): take more snapshots or lower the sampling period:\n";
  std::size_t shown = 0;
  for (const TrendGroup& g : t.groups) {
    if (g.verdict != Verdict::kUncertain) continue;
    if (shown++ >= o.top) {
      out << "  ... " << count - o.top << " more\n";
      break;
    }
    out << "  - [" << groupName(g.group) << "] " << oneLine(g.name) << ": " << oneLine(g.reason)
        << "\n";
  }
}

}  // namespace

static void renderTrendText(std::ostream& out, const TrendResult& t, const SymbolTable& symbols,
                            const RenderOptions& o) {
  trendInputs(out, t);
  trendSuspects(out, t, symbols, o);
  trendUncertain(out, t, o);
  trendNotLeaks(out, t, o);
}

// The limit the projections used, and whether the snapshots or the flag gave it.
static void addMemoryLimitJson(json& j, const TrendResult& t) {
  if (!t.memory_limit) return;
  j["memory_limit_bytes"] = std::llround(t.memory_limit->bytes);
  j["memory_limit_from"] = t.memory_limit->from;
  if (!t.memory_limit->source.empty()) j["memory_limit_source"] = t.memory_limit->source;
}

json pointsJson(const std::vector<SeriesPoint>& points) {
  json inputs = json::array();
  for (const auto& p : points) {
    inputs.push_back({{"path", p.path},
                      {"sequence", p.sequence},
                      {"taken_unix_ns", p.taken_unix_ns},
                      {"utc", p.utc},
                      {"pid", p.pid},
                      {"rss_bytes", p.rss_bytes},
                      {"heap_inuse_bytes", whole(p.heap_inuse_bytes)},
                      {"open_fds", p.open_fds}});
  }
  return inputs;
}

// What a sampled site's verdict was checked against (analysis.h).
static json samplingJson(const SamplingCheck& c) {
  json x = {{"claim", c.claim}, {"margin_bytes", c.margin_bytes}, {"error_bytes", c.error_bytes}};
  if (c.trend_p) x["trend_p"] = *c.trend_p;
  return x;
}

// Tracked kinds and V8 classes: their survivors; classes also their
// retained sizes and paths.
static void addObjectFacts(json& x, const TrendGroup& g) {
  if (g.group == Group::kClass) {
    x["retained_bytes"] = whole(g.retained);
    x["engine"] = g.engine;
    x["retainers"] = retainersJson(g.retainers);
    x["added_retained_bytes"] = whole(g.added_retained_bytes);
  }
  if (g.group != Group::kTracked && g.group != Group::kClass) return;
  if (g.group == Group::kTracked) x["retainers"] = retainersJson(g.retainers);
  x["survivor_count"] = g.survivor_count;
  json sv = json::array();
  for (const Survivor& s : g.survivors) {
    json e = {{"id", s.id}, {"age_seconds", s.age_seconds}, {"label", s.label}, {"bytes", s.bytes}};
    e["fd"] = s.fd >= 0 ? json(s.fd) : json(nullptr);
    if (!s.socket.empty()) e["socket"] = s.socket;
    if (g.group == Group::kTracked) e["chain"] = s.chain;
    sv.push_back(std::move(e));
  }
  x["survivors"] = sv;
}

json trendJson(const TrendResult& t, const SymbolTable& symbols, const RenderOptions& o) {
  json j;
  j["command"] = "trend";
  j["inputs"] = pointsJson(t.points);
  j["span_seconds"] = t.span_seconds;
  j["notes"] = t.notes;
  if (t.rss_growth_bytes_per_hour) j["rss_growth_bytes_per_hour"] = *t.rss_growth_bytes_per_hour;
  if (t.hours_to_limit) j["hours_to_memory_limit"] = *t.hours_to_limit;
  addMemoryLimitJson(j, t);
  auto groupJson = [&](const TrendGroup& g) {
    json x = {{"group", groupName(g.group)},
              {"name", g.name},
              {"verdict", verdictName(g.verdict)},
              {"reason", g.reason},
              {"objects", whole(g.counts)},
              {"bytes", whole(g.bytes)},
              {"delta_objects", whole(g.counts.back() - g.counts.front())},
              {"delta_bytes", whole(g.bytes.back() - g.bytes.front())},
              {"growing_intervals", g.growing_intervals},
              {"growth_objects_per_interval", g.growth_count_per_interval},
              {"growth_bytes_per_interval", g.growth_bytes_per_interval},
              {"growth_objects_per_hour", g.growth_count_per_hour},
              {"growth_bytes_per_hour", g.growth_bytes_per_hour},
              {"accelerating", g.accelerating}};
    if (g.hours_to_limit) x["hours_to_memory_limit"] = *g.hours_to_limit;
    if (g.stack) x["stack"] = stackJson(symbols, *g.stack);
    if (g.verdict == Verdict::kTransient) x["peak_input"] = t.points[g.peak_index].path;
    if (g.sampling) x["sampling"] = samplingJson(*g.sampling);
    addObjectFacts(x, g);
    return x;
  };
  json suspects = json::array();
  json uncertain = json::array();  // sampled sites: neither suspects nor all-clear
  json others = json::array();
  std::size_t shown = 0;
  for (const TrendGroup& g : t.groups) {
    if (g.verdict == Verdict::kSteady || g.verdict == Verdict::kUncertain) {
      (g.verdict == Verdict::kSteady ? suspects : uncertain).push_back(groupJson(g));
    } else if (g.verdict != Verdict::kFlat && shown++ < std::max<std::size_t>(o.top, 50)) {
      others.push_back(groupJson(g));
    }
  }
  j["suspects"] = suspects;
  j["chains"] = chainsJson(t.chains, t.suspects);
  j["uncertain"] = uncertain;
  j["not_suspects"] = others;
  return j;
}

// ---- sockets ------------------------------------------------------------

static void renderSocketsText(std::ostream& out, const SocketsResult& s, const RenderOptions& o) {
  out << "Sockets in " << s.points.size() << " input(s)";
  if (!s.points.empty()) out << "; last: " << oneLine(shortPath(s.points.back().path));
  out << "\n\n";
  std::vector<std::string> header = {"remote / group", "state", "proto"};
  for (std::size_t i = 0; i < s.points.size(); ++i) header.push_back("#" + std::to_string(i + 1));
  header.push_back("owned");
  header.push_back("unowned");
  header.push_back("owners");
  Table t(header);
  t.lastColumnLeft();
  for (std::size_t i = 0; i < s.rows.size() && i < o.top; ++i) {
    const SocketRow& r = s.rows[i];
    std::vector<std::string> row = {r.name, r.state, r.protocol};
    for (auto c : r.counts) row.push_back(std::to_string(c));
    row.push_back(std::to_string(r.owned));
    row.push_back(std::to_string(r.unowned));
    std::string owners;
    for (std::size_t k = 0; k < r.owners.size() && k < 2; ++k)
      owners += (k ? ", " : "") + r.owners[k];
    if (r.owned > 2) owners += ", ...";
    row.push_back(owners.empty() ? "-" : owners);
    t.add(row);
  }
  t.print(out, o.width);
  if (s.rows.size() > o.top) out << "  ... " << s.rows.size() - o.top << " more groups (--top N)\n";
  out << "\n";
  if (s.flags.empty())
    out << "No unowned connections, orphaned owners or CLOSE_WAIT accumulation.\n";
  for (const auto& note : s.notes) out << "Note: " << oneLine(note) << "\n";
  if (s.flags.empty() || !s.notes.empty()) out << "\n";
  // Every flag is a suspect: listed once, each with its reason, peer, state
  // and owners.
  printSuspects(out, s.suspects, SymbolTable{});
}

json socketsJson(const SocketsResult& s, const RenderOptions& o) {
  json j;
  j["command"] = "sockets";
  json inputs = json::array();
  for (const auto& p : s.points)
    inputs.push_back({{"path", p.path}, {"taken_unix_ns", p.taken_unix_ns}});
  j["inputs"] = inputs;
  json groups = json::array();
  for (const SocketRow& r : s.rows) {
    groups.push_back({{"name", r.name},
                      {"peer", r.peer},
                      {"state", r.state},
                      {"protocol", r.protocol},
                      {"counts", r.counts},
                      {"owned", r.owned},
                      {"unowned", r.unowned},
                      {"owners", r.owners}});
  }
  j["groups"] = groups;
  json last = json::array();
  std::size_t shown = 0;
  for (const SocketDetail& d : s.last) {
    if (shown++ >= std::max<std::size_t>(o.top, 1000)) break;
    last.push_back({{"fd", d.socket.fd},
                    {"protocol", d.socket.protocol},
                    {"local", d.socket.local},
                    {"remote", d.socket.remote},
                    {"state", d.socket.state},
                    {"group", d.group},
                    {"peer", d.peer},
                    {"owner", d.owner.empty() ? json(nullptr) : json(d.owner)}});
  }
  j["sockets"] = last;
  json flags = json::array();
  for (const auto& f : s.flags)
    flags.push_back({{"flag", f.what}, {"name", f.name}, {"reason", f.reason}});
  j["flags"] = flags;
  j["notes"] = s.notes;
  json suspects = json::array();
  const SymbolTable none;
  for (const auto& x : s.suspects) suspects.push_back(suspectJson(x, none));
  j["suspects"] = suspects;
  return j;
}

}  // namespace leakscope::analysis

namespace leakscope::analysis {

// Every text view is built first and written escaped: names, labels, paths
// and reasons quoting them all come from the inputs; fitted to the width
// after escaping, which makes lines longer.
namespace {
void emit(std::ostream& out, const std::ostringstream& text, const RenderOptions& o) {
  out << fitText(text.str(), o.width);
}
}  // namespace

void renderShow(std::ostream& out, const Snapshot& s, const SocketsResult& sockets,
                const SymbolTable& symbols, const RenderOptions& o) {
  std::ostringstream text;
  renderShowText(text, s, sockets, symbols, o);
  emit(out, text, o);
}

void renderCompare(std::ostream& out, const Comparison& c, const SymbolTable& symbols,
                   const RenderOptions& o) {
  std::ostringstream text;
  renderCompareText(text, c, symbols, o);
  emit(out, text, o);
}

void renderTrend(std::ostream& out, const TrendResult& t, const SymbolTable& symbols,
                 const RenderOptions& o) {
  std::ostringstream text;
  renderTrendText(text, t, symbols, o);
  emit(out, text, o);
}

void renderSockets(std::ostream& out, const SocketsResult& s, const RenderOptions& o) {
  std::ostringstream text;
  renderSocketsText(text, s, o);
  emit(out, text, o);
}

}  // namespace leakscope::analysis
