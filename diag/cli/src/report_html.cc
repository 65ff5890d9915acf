// `leakscope report --html`: one page with no external resources. Charts are
// inline SVG drawn here, so the page works offline, in a mail attachment and
// with scripts disabled; the one small script only marks which charts the
// browser laid out (the headless-browser test reads it).
#include <algorithm>
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
    << ".unsure{background:#fdf3e1;color:#7a4b00}"
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

// The inputs, the verdict and the trend's notes.
void writeSummary(std::ostream& h, const TrendResult& t) {
  h << "<h1>leakscope report</h1><div class=\"muted\">" << t.points.size() << " inputs over "
    << esc(formatDuration(t.span_seconds)) << ": ";
  for (std::size_t i = 0; i < t.points.size(); ++i) {
    h << (i ? ", " : "") << "#" << i + 1 << " <code>" << esc(shortPath(t.points[i].path))
      << "</code>";
  }
  h << "</div>\n";
  const auto uncertain = std::count_if(t.groups.begin(), t.groups.end(), [](const TrendGroup& g) {
    return g.verdict == Verdict::kUncertain;
  });
  if (t.suspects.empty() && uncertain > 0) {
    h << "<div class=\"verdict unsure\" id=\"verdict\">No steady growth beyond sampling error; "
      << uncertain << " heap site(s) uncertain: take more snapshots or lower the sampling "
      << "period.</div>\n";
  } else if (t.suspects.empty()) {
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

// Process memory across the series.
void writeMemory(std::ostream& h, const TrendResult& t) {
  std::vector<double> rss, heap;
  for (const auto& p : t.points) {
    rss.push_back(static_cast<double>(p.rss_bytes));
    heap.push_back(p.heap_inuse_bytes);
  }
  h << "<h2>Process memory</h2><div class=\"charts\">";
  if (t.points.back().rss_bytes > 0) h << chart("chart-rss", "RSS", rss, true, "#5b6b8c");
  h << chart("chart-heap", "Heap in use (profile)", heap, true, "#8c6b5b") << "</div>";
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

// One suspect (the `idx`th): why, where, its charts and its survivors.
void writeSuspect(std::ostream& h, const TrendGroup& g, std::size_t idx,
                  const SymbolTable& symbols) {
  h << "<div class=\"suspect\" data-group=\"" << groupName(g.group) << "\" data-name=\""
    << esc(g.name) << "\"><h3>[" << groupName(g.group) << "] " << esc(g.name) << "</h3>";
  h << "<div class=\"why\">" << esc(g.reason) << "</div>";
  if (g.stack)
    h << "<div class=\"why\"><code>" << esc(describeStack(symbols, *g.stack, 8)) << "</code></div>";
  if (g.hours_to_limit) {
    h << "<div class=\"why\">At this rate the memory limit is reached in about "
      << esc(formatDuration(*g.hours_to_limit * 3600)) << ".</div>";
  }
  h << "<div class=\"charts\">";
  if (g.group != Group::kHeap) {
    h << chart(slug(g, idx) + "-objects",
               g.group == Group::kSocket ? "open sockets" : "live objects", g.counts, false,
               "#c0392b");
  }
  if (g.group != Group::kSocket) {
    h << chart(slug(g, idx) + "-bytes", g.group == Group::kHeap ? "bytes in use" : "retained bytes",
               g.bytes, true, "#d35400");
  }
  h << "</div>";
  if (g.survivor_count > 0) writeSurvivors(h, g);
  h << "</div>\n";
}

void writeSuspects(std::ostream& h, const TrendResult& t, const SymbolTable& symbols) {
  h << "<h2>Suspects</h2>\n";
  std::size_t idx = 0;
  for (const TrendGroup& g : t.groups) {
    if (g.verdict != Verdict::kSteady) continue;
    writeSuspect(h, g, idx, symbols);
    ++idx;
  }
  if (idx == 0) h << "<p>None.</p>\n";
}

// Growth within sampling error: neither a suspect nor growth that did not
// persist, so listed on its own.
void writeUncertain(std::ostream& h, const TrendResult& t) {
  bool any = false;
  for (const TrendGroup& g : t.groups) {
    if (g.verdict != Verdict::kUncertain) continue;
    if (!any) h << "<h2>Uncertain: growth within sampling error</h2><ul>";
    any = true;
    h << "<li>[" << groupName(g.group) << "] " << esc(g.name) << ": " << esc(g.reason) << "</li>";
  }
  if (any) h << "</ul>\n";
}

// Transient, bounded and recent growth: listed, not charted.
void writeNotPersisted(std::ostream& h, const TrendResult& t) {
  bool any_other = false;
  for (const TrendGroup& g : t.groups) {
    if (g.verdict == Verdict::kSteady || g.verdict == Verdict::kFlat ||
        g.verdict == Verdict::kUncertain) {
      continue;
    }
    if (!any_other) h << "<h2>Growth that did not persist</h2><ul>";
    any_other = true;
    h << "<li><b>" << verdictName(g.verdict) << "</b> [" << groupName(g.group) << "] "
      << esc(g.name) << ": " << esc(g.reason) << "</li>";
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

std::string renderHtmlReport(const TrendResult& t, const Comparison& c, const SocketsResult& s,
                             const SymbolTable& symbols, const RenderOptions& o) {
  std::ostringstream h;
  writeHead(h);
  writeSummary(h, t);
  writeMemory(h, t);
  writeSuspects(h, t, symbols);
  writeUncertain(h, t);
  writeNotPersisted(h, t);
  writeComparison(h, c, o);
  writeSockets(h, s, o);
  writeFoot(h);
  return h.str();
}

}  // namespace leakscope::analysis
