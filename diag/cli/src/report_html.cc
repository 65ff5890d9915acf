// `leakscope report --html`: one page with no external resources. Charts are
// inline SVG drawn here, so the page works offline, in a mail attachment and
// with scripts disabled; the one small script only marks which charts the
// browser laid out (the headless-browser test reads it).
#include <cmath>
#include <cstdio>
#include <sstream>

#include "render.h"

namespace leakscope::analysis {
namespace {

// Text for HTML: control characters and invalid UTF-8 shown escaped (as in
// the terminal views), then the HTML metacharacters as entities.
std::string esc(const std::string& raw) {
  const std::string s = printable(raw);
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&#39;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

std::string fixed(double v, int digits = 1) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string shortPath(const std::string& p) {
  const auto slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

// A line chart of `ys` over the series; x is the input's position (labels
// say which snapshot). `bytes` formats the axis in bytes.
std::string chart(const std::string& id, const std::string& title, const std::vector<double>& ys,
                  bool bytes, const char* color) {
  const double w = 420, h = 180, left = 70, right = 12, top = 24, bottom = 28;
  double lo = 0, hi = 0;
  for (double y : ys) hi = std::max(hi, y);
  if (hi <= lo) hi = lo + 1;
  auto X = [&](std::size_t i) {
    return ys.size() < 2 ? left
                         : left + (w - left - right) * static_cast<double>(i) /
                                      static_cast<double>(ys.size() - 1);
  };
  auto Y = [&](double v) { return top + (h - top - bottom) * (1 - (v - lo) / (hi - lo)); };
  auto label = [&](double v) { return bytes ? formatBytes(v) : fixed(v, 0); };
  std::ostringstream o;
  o << "<svg class=\"chart\" id=\"" << esc(id) << "\" width=\"" << w << "\" height=\"" << h
    << "\" viewBox=\"0 0 " << w << " " << h << "\" role=\"img\" aria-label=\"" << esc(title)
    << "\">";
  o << "<text x=\"" << left << "\" y=\"14\" class=\"ct\">" << esc(title) << "</text>";
  for (int k = 0; k <= 4; ++k) {
    const double v = lo + (hi - lo) * k / 4.0;
    o << "<line x1=\"" << left << "\" x2=\"" << w - right << "\" y1=\"" << fixed(Y(v)) << "\" y2=\""
      << fixed(Y(v)) << "\" class=\"grid\"/>";
    o << "<text x=\"" << left - 6 << "\" y=\"" << fixed(Y(v) + 4)
      << "\" class=\"ax\" text-anchor=\"end\">" << esc(label(v)) << "</text>";
  }
  for (std::size_t i = 0; i < ys.size(); ++i) {
    o << "<text x=\"" << fixed(X(i)) << "\" y=\"" << h - 10
      << "\" class=\"ax\" text-anchor=\"middle\">#" << i + 1 << "</text>";
  }
  o << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"2.5\" points=\"";
  for (std::size_t i = 0; i < ys.size(); ++i) o << fixed(X(i)) << "," << fixed(Y(ys[i])) << " ";
  o << "\"/>";
  for (std::size_t i = 0; i < ys.size(); ++i) {
    o << "<circle cx=\"" << fixed(X(i)) << "\" cy=\"" << fixed(Y(ys[i])) << "\" r=\"3.5\" fill=\""
      << color << "\"><title>#" << i + 1 << ": " << esc(label(ys[i])) << "</title></circle>";
  }
  o << "</svg>";
  return o.str();
}

std::string slug(const TrendGroup& g, std::size_t i) {
  return std::string("chart-") + groupName(g.group) + "-" + std::to_string(i);
}

void writeHead(std::ostream& h) {
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    << "<title>leakscope report</title><style>"
    << "body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2330;background:#fff}"
    << "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px "
       "solid #dde}"
    << ".verdict{padding:10px 14px;border-radius:6px;font-weight:600;margin:12px 0}"
    << ".bad{background:#fde8e8;color:#8a1c1c}.good{background:#e6f6ea;color:#1b5e2a}"
    << ".warn{background:#fff4d6;color:#6b4e00}"
    << ".suspect{border:1px solid #e3e6ee;border-radius:8px;padding:12px;margin:12px 0}"
    << ".suspect h3{margin:0 0 6px;font-size:15px}.why{color:#444;margin:4px 0}"
    << ".charts{display:flex;flex-wrap:wrap;gap:12px}"
    << ".chart .ct{font-weight:600;font-size:12px;fill:#333}.chart .ax{font-size:10px;fill:#666}"
    << ".chart .grid{stroke:#eceef3}"
    << "table{border-collapse:collapse;margin:6px 0}td,th{padding:3px 10px;border-bottom:1px solid "
       "#eef}"
    << "th{text-align:left;background:#f5f6fa}td.n{text-align:right;font-variant-numeric:tabular-"
       "nums}"
    << "code{font:12px ui-monospace,monospace}.muted{color:#777}"
    << "</style></head><body>\n";
}

// The one run a series of one run has, when trend judged it: the page then
// reads as it always did.
const TrendResult* soleTrend(const RunsResult& r) {
  return r.single() && r.runs.front().method == RunMethod::kTrend ? &r.runs.front().trend : nullptr;
}

void writeTrendVerdict(std::ostream& h, const TrendResult& t) {
  if (t.suspects.empty()) {
    h << "<div class=\"verdict good\" id=\"verdict\">No steady growth: no leak suspected.</div>\n";
  } else {
    h << "<div class=\"verdict bad\" id=\"verdict\">" << t.suspects.size()
      << " leak suspect(s) with steady growth: ";
    for (std::size_t i = 0; i < t.suspects.size() && i < 5; ++i) {
      h << (i ? ", " : "") << esc(t.suspects[i].name);
    }
    h << "</div>\n";
  }
  for (const auto& n : t.notes) h << "<p class=\"muted\">Note: " << esc(n) << "</p>\n";
}

// A series of two inputs: what their comparison found, and why it is not a
// trend's verdict. Never green: two points cannot clear a process.
void writeShortVerdict(std::ostream& h, const RunVerdict& run) {
  if (run.suspects.empty()) {
    h << "<div class=\"verdict warn\" id=\"verdict\">Nothing grew between the two inputs; a "
         "trend needs three to tell a leak from a spike.</div>\n";
    return;
  }
  h << "<div class=\"verdict bad\" id=\"verdict\">" << run.suspects.size()
    << " suspect(s) grew between the two inputs: ";
  for (std::size_t i = 0; i < run.suspects.size() && i < 5; ++i) {
    h << (i ? ", " : "") << esc(run.suspects[i].name);
  }
  h << ". A trend needs three inputs to tell a leak from a spike.</div>\n";
}

// The inputs and the verdict: the trend's, the comparison's for two inputs,
// or what the runs say together.
void writeSummary(std::ostream& h, const RunsResult& r) {
  const double span =
      static_cast<double>(r.points.back().taken_unix_ns - r.points.front().taken_unix_ns) / 1e9;
  h << "<h1>leakscope report</h1><div class=\"muted\">" << r.points.size() << " inputs over "
    << esc(formatDuration(span)) << ": ";
  for (std::size_t i = 0; i < r.points.size(); ++i) {
    h << (i ? ", " : "") << "#" << i + 1 << " <code>" << esc(shortPath(r.points[i].path))
      << "</code>";
  }
  h << "</div>\n";
  if (const TrendResult* t = soleTrend(r)) {
    writeTrendVerdict(h, *t);
  } else if (r.single()) {
    writeShortVerdict(h, r.runs.front());
  } else {
    h << "<div class=\"verdict " << (r.suspects.empty() ? "good" : "bad") << "\" id=\"verdict\">"
      << esc(r.summary) << "</div>\n";
  }
}

// Process memory across the series (across restarts, a saw-tooth); the RSS
// trend only for one run judged by trend.
void writeMemory(std::ostream& h, const RunsResult& r) {
  std::vector<double> rss, heap;
  for (const auto& p : r.points) {
    rss.push_back(static_cast<double>(p.rss_bytes));
    heap.push_back(p.heap_inuse_bytes);
  }
  h << "<h2>Process memory</h2><div class=\"charts\">";
  if (r.points.back().rss_bytes > 0) h << chart("chart-rss", "RSS", rss, true, "#5b6b8c");
  h << chart("chart-heap", "Heap in use (profile)", heap, true, "#8c6b5b") << "</div>";
  const TrendResult* sole = soleTrend(r);
  if (sole == nullptr) return;
  const TrendResult& t = *sole;
  if (t.rss_growth_bytes_per_hour) {
    h << "<p>RSS trend " << esc(formatBytes(*t.rss_growth_bytes_per_hour)) << "/h";
    if (t.hours_to_limit)
      h << "; memory limit reached in about " << esc(formatDuration(*t.hours_to_limit * 3600));
    h << ".</p>";
  }
}

void writeSurvivors(std::ostream& h, const TrendGroup& g) {
  h << "<p>" << g.survivor_count << " object(s) alive in every snapshot (oldest first):</p>"
    << "<table><tr><th>id</th><th>age</th><th>label</th><th>bytes</th><th>socket</th></tr>";
  for (const Survivor& sv : g.survivors) {
    h << "<tr><td>#" << sv.id << "</td><td>" << esc(formatDuration(sv.age_seconds)) << "</td><td>"
      << esc(sv.label) << "</td><td class=\"n\">" << esc(formatBytes(static_cast<double>(sv.bytes)))
      << "</td><td><code>" << esc(sv.socket.empty() ? "-" : sv.socket) << "</code></td></tr>";
  }
  h << "</table>";
}

// One suspect (the `idx`th): why (`reason`: the trend's, or the
// comparison's for a short run), where, its charts and its survivors.
void writeSuspect(std::ostream& h, const TrendGroup& g, const std::string& reason, std::size_t idx,
                  const SymbolTable& symbols) {
  h << "<div class=\"suspect\" data-group=\"" << groupName(g.group) << "\" data-name=\""
    << esc(g.name) << "\"><h3>[" << groupName(g.group) << "] " << esc(g.name) << "</h3>";
  h << "<div class=\"why\">" << esc(reason) << "</div>";
  if (g.stack)
    h << "<div class=\"why\"><code>" << esc(describeStack(symbols, *g.stack, 8)) << "</code></div>";
  if (g.hours_to_limit) {
    h << "<div class=\"why\">At this rate the memory limit is reached in about "
      << esc(formatDuration(*g.hours_to_limit * 3600)) << ".</div>";
  }
  // A suspect without a series of its run (none is expected) gets no charts.
  const bool charted = !g.counts.empty();
  h << "<div class=\"charts\">";
  if (charted && g.group != Group::kHeap) {
    h << chart(slug(g, idx) + "-objects",
               g.group == Group::kSocket ? "open sockets" : "live objects", g.counts, false,
               "#c0392b");
  }
  if (charted && g.group != Group::kSocket) {
    h << chart(slug(g, idx) + "-bytes", g.group == Group::kHeap ? "bytes in use" : "retained bytes",
               g.bytes, true, "#d35400");
  }
  h << "</div>";
  if (g.survivor_count > 0) writeSurvivors(h, g);
  h << "</div>\n";
}

// The run's series of a suspect the comparison found (for its charts); a
// group without one when the run has no such series.
TrendGroup seriesOf(const RunVerdict& run, const Suspect& s) {
  for (const TrendGroup& g : run.trend.groups) {
    if (g.group == s.group && (s.stack ? g.stack == s.stack : g.name == s.name)) return g;
  }
  TrendGroup none;
  none.group = s.group;
  none.name = s.name;
  none.stack = s.stack;
  return none;
}

// A run's suspects; `idx` numbers the charts across runs.
void writeRunSuspects(std::ostream& h, const RunVerdict& run, std::size_t& idx,
                      const SymbolTable& symbols) {
  const std::size_t before = idx;
  if (run.method == RunMethod::kTrend) {
    for (const TrendGroup& g : run.trend.groups) {
      if (g.verdict != Verdict::kSteady) continue;
      writeSuspect(h, g, g.reason, idx++, symbols);
    }
  } else {
    for (const Suspect& s : run.suspects)
      writeSuspect(h, seriesOf(run, s), s.reason, idx++, symbols);
  }
  if (idx == before) h << "<p>None.</p>\n";
}

void writeSuspects(std::ostream& h, const RunsResult& r, const SymbolTable& symbols) {
  std::size_t idx = 0;
  if (r.single()) {
    h << "<h2>Suspects</h2>\n";
    writeRunSuspects(h, r.runs.front(), idx, symbols);
    return;
  }
  for (std::size_t i = 0; i < r.runs.size(); ++i) {
    const RunVerdict& run = r.runs[i];
    h << "<h2>Run " << i + 1 << " of " << r.runs.size() << ": pid " << run.id.pid << ", inputs #"
      << run.first_input + 1 << "–#" << run.first_input + run.inputs << "</h2>\n<p class=\"why\">"
      << esc(run.reason) << "</p>\n";
    writeRunSuspects(h, run, idx, symbols);
  }
}

// Transient, bounded and recent growth of the runs trend judged: listed, not
// charted.
void writeNotPersisted(std::ostream& h, const RunsResult& r) {
  bool any_other = false;
  for (const RunVerdict& run : r.runs) {
    if (run.method != RunMethod::kTrend) continue;
    for (const TrendGroup& g : run.trend.groups) {
      if (g.verdict == Verdict::kSteady || g.verdict == Verdict::kFlat) continue;
      if (!any_other) h << "<h2>Growth that did not persist</h2><ul>";
      any_other = true;
      h << "<li><b>" << verdictName(g.verdict) << "</b> [" << groupName(g.group) << "] "
        << esc(g.name) << ": " << esc(g.reason) << "</li>";
    }
  }
  if (any_other) h << "</ul>\n";
}

void writeComparison(std::ostream& h, const Comparison& c, const RenderOptions& o) {
  h << "<h2>Comparison: first → last</h2><p class=\"muted\"><code>" << esc(shortPath(c.base))
    << "</code> → <code>" << esc(shortPath(c.target)) << "</code></p>"
    << "<table id=\"comparison\"><tr><th>group</th><th>name</th><th># New</th><th># Deleted</th>"
    << "<th># Delta</th><th>Alloc. Size</th><th>Freed Size</th><th>Size Delta</th></tr>";
  std::map<Group, std::size_t> shown;
  for (const CompareRow& r : c.rows) {
    if (shown[r.group]++ >= o.top) continue;
    const bool sized = r.group != Group::kSocket;
    h << "<tr><td>" << groupName(r.group) << "</td><td>" << esc(r.name) << "</td><td class=\"n\">"
      << fixed(r.new_count, 0) << "</td><td class=\"n\">" << fixed(r.deleted_count, 0)
      << "</td><td class=\"n\">" << (r.delta_count > 0 ? "+" : "") << fixed(r.delta_count, 0)
      << "</td><td class=\"n\">" << (sized ? esc(formatBytes(r.alloc_bytes)) : "-")
      << "</td><td class=\"n\">" << (sized ? esc(formatBytes(r.freed_bytes)) : "-")
      << "</td><td class=\"n\">" << (sized ? esc(formatBytes(r.delta_bytes)) : "-") << "</td></tr>";
  }
  h << "</table>\n";
}

void writeSockets(std::ostream& h, const SocketsResult& s, const RenderOptions& o) {
  h << "<h2>Sockets</h2><table id=\"sockets\"><tr><th>remote / "
       "group</th><th>state</th><th>proto</th>";
  for (std::size_t i = 0; i < s.points.size(); ++i) h << "<th>#" << i + 1 << "</th>";
  h << "<th>owned</th><th>unowned</th><th>owners</th></tr>";
  for (std::size_t i = 0; i < s.rows.size() && i < std::max<std::size_t>(o.top, 50); ++i) {
    const SocketRow& r = s.rows[i];
    h << "<tr><td>" << esc(r.name) << "</td><td>" << esc(r.state) << "</td><td>" << esc(r.protocol)
      << "</td>";
    for (auto n : r.counts) h << "<td class=\"n\">" << n << "</td>";
    h << "<td class=\"n\">" << r.owned << "</td><td class=\"n\">" << r.unowned << "</td><td>";
    for (std::size_t k = 0; k < r.owners.size() && k < 3; ++k)
      h << (k ? ", " : "") << esc(r.owners[k]);
    h << "</td></tr>";
  }
  h << "</table>";
  if (!s.flags.empty()) {
    h << "<ul>";
    for (const auto& f : s.flags)
      h << "<li><b>" << esc(f.what) << "</b> " << esc(f.name) << ": " << esc(f.reason) << "</li>";
    h << "</ul>";
  }
}

void writeFoot(std::ostream& h) {
  h << "\n<p class=\"muted\">Generated by leakscope. Steady growth = the series' floor rose in "
       "most "
       "intervals and at the end; a spike freed later is transient.</p>\n";
  // Marks the charts the browser laid out with a non-empty box (read by the
  // headless-browser test; harmless elsewhere).
  h << "<script>window.addEventListener('load',function(){var n=0;"
       "document.querySelectorAll('svg.chart polyline').forEach(function(p){var b=p.getBBox();"
       "if(b.width>0)n++;});document.body.setAttribute('data-charts-rendered',String(n));});"
       "</script>\n</body></html>\n";
}

}  // namespace

std::string renderHtmlReport(const RunsResult& r, const Comparison& c, const SocketsResult& s,
                             const SymbolTable& symbols, const RenderOptions& o) {
  std::ostringstream h;
  writeHead(h);
  writeSummary(h, r);
  writeMemory(h, r);
  writeSuspects(h, r, symbols);
  writeNotPersisted(h, r);
  writeComparison(h, c, o);
  writeSockets(h, s, o);
  writeFoot(h);
  return h.str();
}

}  // namespace leakscope::analysis
