// `leakscope report --html`: one page with no external resources. Charts are
// inline SVG drawn here, so the page works offline, in a mail attachment and
// with scripts disabled; the one small script only marks which charts the
// browser laid out (the headless-browser test reads it).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <iterator>
#include <sstream>

#include "flame_graph.h"
#include "html.h"
#include "render.h"

namespace leakscope::analysis {
namespace {

// The page's one escaping rule (html.h), under the short name the writers use.
std::string esc(const std::string& raw) { return htmlText(raw); }

std::string fixed(double v, int digits = 1) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// `unix_ns` as a UTC calendar time (the epoch if it cannot be converted).
std::tm utc(std::int64_t unix_ns) {
  const auto secs = static_cast<std::time_t>(unix_ns / 1'000'000'000);
  std::tm tm{};
  if (gmtime_r(&secs, &tm) == nullptr) tm = std::tm{};
  return tm;
}

// How much of a time a label shows: the time of day within a day, the day
// and minute within a year, the date beyond.
enum class Clock { kTime, kDayTime, kDate };

// Seconds from the first to the last point (0 for none).
double spanSeconds(const std::vector<SeriesPoint>& points) {
  return points.empty()
             ? 0.0
             : static_cast<double>(points.back().taken_unix_ns - points.front().taken_unix_ns) /
                   1e9;
}

Clock clockFor(double span_seconds) {
  return span_seconds < 86400         ? Clock::kTime
         : span_seconds < 366 * 86400 ? Clock::kDayTime
                                      : Clock::kDate;
}

// "14:32:57", "11-24 14:32" or "2026-11-24", in UTC.
std::string clockLabel(std::int64_t unix_ns, Clock c) {
  const std::tm tm = utc(unix_ns);
  char buf[32];
  std::strftime(buf, sizeof buf,
                c == Clock::kTime      ? "%H:%M:%S"
                : c == Clock::kDayTime ? "%m-%d %H:%M"
                                       : "%Y-%m-%d",
                &tm);
  return buf;
}

// "2026-11-24 14:32 UTC": a moment the reader can put in a ticket.
std::string utcMinute(std::int64_t unix_ns) {
  const std::tm tm = utc(unix_ns);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

struct Tick {
  double at = 0;  // 0..1 across the plot
  std::string label;
};

// The charts' shared x axis: each snapshot placed by its wall-clock time
// (irregular intervals show as such), with round UTC times as ticks.
struct TimeAxis {
  std::vector<double> at;         // per point, 0..1 across the plot
  std::vector<std::string> when;  // per point, its full UTC time (tooltips)
  std::vector<Tick> ticks;
};

// The first round step (seconds) that cuts `span` into at most 4 parts.
std::int64_t timeStep(double span_seconds) {
  static constexpr std::int64_t kSteps[] = {1,     2,     5,     10,    15,     30,    60,
                                            120,   300,   600,   900,   1800,   3600,  7200,
                                            10800, 21600, 43200, 86400, 172800, 604800};
  for (std::int64_t step : kSteps) {
    if (static_cast<double>(step) * 4 >= span_seconds) return step;
  }
  return static_cast<std::int64_t>(std::ceil(span_seconds / 4 / 86400)) * 86400;
}

// Ticks at the multiples of a round step between the first and last point;
// when fewer than two fall inside, the first and last points' own times.
std::vector<Tick> timeTicks(const std::vector<SeriesPoint>& points, const std::vector<double>& at) {
  const std::int64_t t0 = points.front().taken_unix_ns, t1 = points.back().taken_unix_ns;
  const double span = spanSeconds(points);
  std::vector<Tick> ticks;
  if (span > 0) {
    const std::int64_t step_ns = timeStep(span) * 1'000'000'000;
    const Clock clock = clockFor(span);
    // By multiple, not by adding steps: a time near INT64_MAX must not overflow.
    for (std::int64_t k = t0 / step_ns + (t0 % step_ns > 0 ? 1 : 0); k <= t1 / step_ns; ++k) {
      const std::int64_t t = k * step_ns;
      ticks.push_back({static_cast<double>(t - t0) / 1e9 / span, clockLabel(t, clock)});
    }
  }
  if (ticks.size() >= 2) return ticks;
  ticks = {{at.front(), clockLabel(t0, Clock::kTime)}};
  if (const std::string last = clockLabel(t1, Clock::kTime); last != ticks.front().label) {
    ticks.push_back({at.back(), last});
  }
  return ticks;
}

TimeAxis timeAxis(const std::vector<SeriesPoint>& points) {
  TimeAxis x;
  if (points.empty()) return x;
  const std::int64_t t0 = points.front().taken_unix_ns;
  const double span = spanSeconds(points);
  const std::size_t n = points.size();
  for (std::size_t i = 0; i < n; ++i) {
    const SeriesPoint& p = points[i];
    // Without a time span (one snapshot, or equal times) points are spread evenly.
    x.at.push_back(span > 0 ? static_cast<double>(p.taken_unix_ns - t0) / 1e9 / span
                   : n > 1  ? static_cast<double>(i) / static_cast<double>(n - 1)
                            : 0.0);
    x.when.push_back(p.utc.empty() ? utcMinute(p.taken_unix_ns) : p.utc);
  }
  x.ticks = timeTicks(points, x.at);
  return x;
}

// A y axis from 0 to a round top. Steps are whole objects (1, 2, 5 × 10^k)
// or powers of two bytes, so every tick's label differs from the others, and
// a series that stays at zero still gets an axis (0 and 1).
struct ValueAxis {
  double top = 1;
  std::vector<double> ticks;
};

ValueAxis valueAxis(double hi, bool bytes) {
  const double raw = std::max(hi, 1.0) / 4;  // at most 4 steps above 0
  double step = 1;
  if (bytes) {
    while (step < raw) step *= 2;
  } else {
    for (double decade = 1;; decade *= 10) {
      const double candidates[] = {decade, 2 * decade, 5 * decade};
      const double* fit = std::find_if(std::begin(candidates), std::end(candidates),
                                       [raw](double c) { return c >= raw; });
      if (fit != std::end(candidates)) {
        step = *fit;
        break;
      }
    }
  }
  ValueAxis y;
  y.top = std::max(step, std::ceil(hi / step) * step);
  for (double v = 0; v <= y.top + step / 2; v += step) y.ticks.push_back(v);
  return y;
}

// "64 KiB" rather than "64.0 KiB" on an axis of round steps.
std::string axisBytes(double v) {
  std::string s = formatBytes(v);
  if (const auto dot = s.find(".0 "); dot != std::string::npos) s.erase(dot, 2);
  return s;
}

// A line chart of `ys` (one value per snapshot) over the shared time axis.
// `bytes` formats the values as bytes.
class Chart {
 public:
  Chart(const TimeAxis& x, const std::vector<double>& ys, bool bytes) : x_(x), bytes_(bytes) {
    double hi = 0;
    for (double v : ys) {
      ys_.push_back(std::isfinite(v) ? v : 0.0);  // never NaN into the SVG
      hi = std::max(hi, ys_.back());
    }
    y_ = valueAxis(hi, bytes);
  }

  std::string svg(const std::string& id, const std::string& title, const char* color) const {
    std::ostringstream o;
    o << "<svg class=\"chart\" id=\"" << esc(id) << "\" width=\"" << kW << "\" height=\"" << kH
      << "\" viewBox=\"0 0 " << kW << " " << kH << "\" role=\"img\" aria-label=\"" << esc(title)
      << "\">";
    o << "<text x=\"" << kLeft << "\" y=\"14\" class=\"ct\">" << esc(title) << "</text>";
    valueTicks(o);
    timeTicks(o);
    line(o, color);
    o << "</svg>";
    return o.str();
  }

 private:
  static constexpr double kW = 420, kH = 180, kLeft = 70, kRight = 26, kTop = 24, kBottom = 28;

  double x(double at) const { return kLeft + (kW - kLeft - kRight) * at; }
  double y(double v) const { return kTop + (kH - kTop - kBottom) * (1 - v / y_.top); }
  std::string label(double v) const { return bytes_ ? axisBytes(v) : fixed(v, 0); }

  void valueTicks(std::ostream& o) const {
    for (double v : y_.ticks) {
      o << "<line x1=\"" << kLeft << "\" x2=\"" << kW - kRight << "\" y1=\"" << fixed(y(v))
        << "\" y2=\"" << fixed(y(v)) << "\" class=\"grid\"/>";
      o << "<text x=\"" << kLeft - 6 << "\" y=\"" << fixed(y(v) + 4)
        << "\" class=\"ax\" text-anchor=\"end\">" << esc(label(v)) << "</text>";
    }
  }

  void timeTicks(std::ostream& o) const {
    for (const Tick& t : x_.ticks) {
      o << "<text x=\"" << fixed(x(t.at)) << "\" y=\"" << kH - 10
        << "\" class=\"ax\" text-anchor=\"middle\">" << esc(t.label) << "</text>";
    }
  }

  void line(std::ostream& o, const char* color) const {
    const std::size_t n = std::min(ys_.size(), x_.at.size());
    o << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"2.5\" points=\"";
    for (std::size_t i = 0; i < n; ++i) o << fixed(x(x_.at[i])) << "," << fixed(y(ys_[i])) << " ";
    o << "\"/>";
    for (std::size_t i = 0; i < n; ++i) {
      o << "<circle cx=\"" << fixed(x(x_.at[i])) << "\" cy=\"" << fixed(y(ys_[i]))
        << "\" r=\"3.5\" fill=\"" << color << "\"><title>" << esc(x_.when[i]) << ": "
        << esc(bytes_ ? formatBytes(ys_[i]) : fixed(ys_[i], 0)) << "</title></circle>";
    }
  }

  const TimeAxis& x_;
  bool bytes_;
  std::vector<double> ys_;
  ValueAxis y_;
};

// One row across a cut table: how many rows were left out and how to see them.
void moreRow(std::ostream& h, std::size_t more, std::size_t columns, const char* how) {
  h << "<tr class=\"more\"><td colspan=\"" << columns << "\" class=\"muted\">… " << more
    << " more (" << how << ")</td></tr>";
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
    << "code{font:12px ui-monospace,monospace}.muted{color:#777}td.t{white-space:nowrap}"
    << "</style></head><body>\n";
}

// The one run a series of one run has, when trend judged it: the page then
// reads as it always did.
const TrendResult* soleTrend(const RunsResult& r) {
  return r.single() && r.runs.front().method == RunMethod::kTrend ? &r.runs.front().trend : nullptr;
}

void writeTrendVerdict(std::ostream& h, const TrendResult& t) {
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
    h << "<div class=\"verdict bad\" id=\"verdict\">";
    // The first line: the top of the chain that holds other suspects.
    if (!t.chains.empty() && (t.chains[0].members.size() > 1 || !t.chains[0].held_by.empty())) {
      h << "<span class=\"chain-top\">" << esc(t.chains[0].summary) << "</span><br>";
    }
    h << t.suspects.size() << " leak suspect(s) with steady growth: ";
    for (std::size_t i = 0; i < t.suspects.size() && i < 5; ++i) {
      h << (i ? ", " : "") << esc(t.suspects[i].name);
    }
    h << "</div>\n";
  }
  for (const auto& n : t.notes) h << "<p class=\"muted\">Note: " << esc(n) << "</p>\n";
}

// Which process the snapshots come from: one row per run of consecutive
// snapshots of the same process (a restart starts a new row).
void writeProcess(std::ostream& h, const std::vector<SeriesPoint>& points) {
  auto same = [](const SeriesPoint& a, const SeriesPoint& b) {
    return a.pid == b.pid && a.exe == b.exe && a.host == b.host && a.build_id == b.build_id;
  };
  auto known = [](const std::string& v, const char* otherwise) {
    return v.empty() ? std::string("<span class=\"muted\">") + otherwise + "</span>"
                     : "<code>" + esc(v) + "</code>";
  };
  h << "<h2>Process</h2><table id=\"process\"><tr><th>pid</th><th>executable</th><th>host</th>"
    << "<th>build id</th><th>snapshots</th><th>first (UTC)</th><th>last (UTC)</th></tr>";
  for (std::size_t i = 0; i < points.size();) {
    std::size_t end = i + 1;
    while (end < points.size() && same(points[end], points[i])) ++end;
    const SeriesPoint& p = points[i];
    h << "<tr><td class=\"n\">" << (p.pid > 0 ? std::to_string(p.pid) : "-") << "</td><td>"
      << known(p.exe, "not recorded") << "</td><td>" << known(p.host, "not recorded") << "</td><td>"
      << known(p.build_id, "none") << "</td><td class=\"n\">" << end - i << "</td><td class=\"t\">"
      << esc(p.utc) << "</td><td class=\"t\">" << esc(points[end - 1].utc) << "</td></tr>";
    i = end;
  }
  h << "</table><p class=\"muted\">Times are UTC, on the charts too.</p>\n";
}

// The memory limit, the last RSS against it and when the RSS trend reaches it.
void writeMemoryLimit(std::ostream& h, const TrendResult& t) {
  h << "<p id=\"memory-limit\">";
  if (!t.memory_limit) {
    h << "Memory limit: not known; give <code>--memory-limit SIZE</code> to project when it is "
         "reached.</p>";
    return;
  }
  const double limit = t.memory_limit->bytes;
  const SeriesPoint& last = t.points.back();
  h << "Memory limit " << esc(formatBytes(limit));
  if (last.rss_bytes > 0 && limit > 0) {
    h << "; last RSS " << esc(formatBytes(static_cast<double>(last.rss_bytes))) << " ("
      << fixed(100.0 * static_cast<double>(last.rss_bytes) / limit, 0) << " % of it)";
  }
  if (t.hours_to_limit) {
    const double seconds = *t.hours_to_limit * 3600;
    h << "; at the RSS trend it is reached in about " << esc(formatDuration(seconds));
    // A date further out than a year says nothing (and could overflow).
    const double when_ns = static_cast<double>(last.taken_unix_ns) + seconds * 1e9;
    if (seconds < 366.0 * 86400 && when_ns < 9e18) {
      h << ", around " << esc(utcMinute(static_cast<std::int64_t>(when_ns)));
    }
  } else if (t.rss_growth_bytes_per_hour) {
    h << "; RSS is not growing, so it is not projected to reach it";
  }
  h << ".</p>";
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
// trend and the memory limit's projection only for one run judged by trend.
void writeMemory(std::ostream& h, const RunsResult& r, const TimeAxis& x) {
  std::vector<double> rss, heap;
  for (const auto& p : r.points) {
    rss.push_back(static_cast<double>(p.rss_bytes));
    heap.push_back(p.heap_inuse_bytes);
  }
  h << "<h2>Process memory</h2><div class=\"charts\">";
  if (r.points.back().rss_bytes > 0) h << Chart(x, rss, true).svg("chart-rss", "RSS", "#5b6b8c");
  h << Chart(x, heap, true).svg("chart-heap", "Heap in use (profile)", "#8c6b5b") << "</div>";
  const TrendResult* sole = soleTrend(r);
  if (sole == nullptr) return;
  const TrendResult& t = *sole;
  if (t.rss_growth_bytes_per_hour) {
    h << "<p>RSS trend " << esc(formatBytes(*t.rss_growth_bytes_per_hour)) << "/h.</p>";
  }
  writeMemoryLimit(h, t);
}

void writeSurvivors(std::ostream& h, const TrendGroup& g) {
  h << "<p>" << g.survivor_count << " object(s) alive in every snapshot (oldest first):</p>"
    << "<table><tr><th>id</th><th>age</th><th>label</th><th>bytes</th><th>socket</th></tr>";
  // V8 ids as DevTools writes them; a V8 object's age is not known.
  const bool v8 = g.group == Group::kClass;
  for (const Survivor& sv : g.survivors) {
    h << "<tr><td>" << (v8 ? "@" : "#") << sv.id << "</td><td>"
      << esc(v8 ? "-" : formatDuration(sv.age_seconds)) << "</td><td>" << esc(sv.label)
      << "</td><td class=\"n\">" << esc(formatBytes(static_cast<double>(sv.bytes)))
      << "</td><td><code>" << esc(sv.socket.empty() ? "-" : sv.socket) << "</code></td></tr>";
  }
  if (g.survivor_count > g.survivors.size()) {
    moreRow(h, g.survivor_count - g.survivors.size(), 5, "--survivors N shows more");
  }
  h << "</table>";
}

// One suspect (the `idx`th): why (`reason`: the trend's, or the
// comparison's for a short run), where, its charts on its run's time axis
// `x`, and its survivors.
void writeSuspect(std::ostream& h, const TrendGroup& g, const std::string& reason, std::size_t idx,
                  const SymbolTable& symbols, const TimeAxis& x) {
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
    h << Chart(x, g.counts, false)
             .svg(slug(g, idx) + "-objects",
                  g.group == Group::kSocket ? "open sockets" : "live objects", "#c0392b");
  }
  if (charted && g.group != Group::kSocket) {
    h << Chart(x, g.bytes, true)
             .svg(slug(g, idx) + "-bytes",
                  g.group == Group::kHeap    ? "bytes in use"
                  : g.group == Group::kClass ? "self size"
                                             : "retained bytes",
                  "#d35400");
  }
  if (charted && g.retained.size() == g.counts.size()) {
    h << Chart(x, g.retained, true).svg(slug(g, idx) + "-retained", "retained size", "#8e44ad");
  }
  h << "</div>";
  if (g.survivor_count > 0) writeSurvivors(h, g);
  if (!g.retainers.empty()) {
    h << "<p>Retained by (shortest paths from the GC roots, by shape):</p><ul class=\"paths\">";
    for (const RetainerPath& p : g.retainers) {
      h << "<li>" << p.count << ": <code>" << esc(p.path) << "</code></li>";
    }
    h << "</ul>";
  }
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
  const TimeAxis x = timeAxis(run.trend.points);
  if (run.method == RunMethod::kTrend) {
    for (const TrendGroup& g : run.trend.groups) {
      if (g.verdict != Verdict::kSteady) continue;
      writeSuspect(h, g, g.reason, idx++, symbols, x);
    }
  } else {
    for (const Suspect& s : run.suspects)
      writeSuspect(h, seriesOf(run, s), s.reason, idx++, symbols, x);
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

// Growth within sampling error: neither a suspect nor growth that did not
// persist, so listed on its own.
void writeUncertain(std::ostream& h, const RunsResult& r) {
  bool any = false;
  for (const RunVerdict& run : r.runs) {
    if (run.method != RunMethod::kTrend) continue;
    for (const TrendGroup& g : run.trend.groups) {
      if (g.verdict != Verdict::kUncertain) continue;
      if (!any) h << "<h2>Uncertain: growth within sampling error</h2><ul>";
      any = true;
      h << "<li>[" << groupName(g.group) << "] " << esc(g.name) << ": " << esc(g.reason) << "</li>";
    }
  }
  if (any) h << "</ul>\n";
}

// Transient, bounded and recent growth of the runs trend judged: listed, not
// charted.
void writeNotPersisted(std::ostream& h, const RunsResult& r) {
  bool any_other = false;
  for (const RunVerdict& run : r.runs) {
    if (run.method != RunMethod::kTrend) continue;
    for (const TrendGroup& g : run.trend.groups) {
      if (g.verdict == Verdict::kSteady || g.verdict == Verdict::kFlat ||
          g.verdict == Verdict::kUncertain) {
        continue;
      }
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
  std::size_t cut = 0;
  for (const CompareRow& r : c.rows) {
    if (shown[r.group]++ >= o.top) {
      ++cut;
      continue;
    }
    const bool sized = r.group != Group::kSocket;
    h << "<tr><td>" << groupName(r.group) << "</td><td>" << esc(r.name) << "</td><td class=\"n\">"
      << fixed(r.new_count, 0) << "</td><td class=\"n\">" << fixed(r.deleted_count, 0)
      << "</td><td class=\"n\">" << (r.delta_count > 0 ? "+" : "") << fixed(r.delta_count, 0)
      << "</td><td class=\"n\">" << (sized ? esc(formatBytes(r.alloc_bytes)) : "-")
      << "</td><td class=\"n\">" << (sized ? esc(formatBytes(r.freed_bytes)) : "-")
      << "</td><td class=\"n\">" << (sized ? esc(formatBytes(r.delta_bytes)) : "-") << "</td></tr>";
  }
  if (cut > 0) moreRow(h, cut, 8, "--top N shows more per group");
  h << "</table>\n";
}

void writeSockets(std::ostream& h, const SocketsResult& s, const RenderOptions& o) {
  h << "<h2>Sockets</h2><table id=\"sockets\"><tr><th>remote / "
       "group</th><th>state</th><th>proto</th>";
  const Clock clock = clockFor(spanSeconds(s.points));
  for (std::size_t i = 0; i < s.points.size(); ++i) {
    h << "<th title=\"#" << i + 1 << " " << esc(s.points[i].utc) << "\">"
      << esc(clockLabel(s.points[i].taken_unix_ns, clock)) << "</th>";
  }
  h << "<th>owned</th><th>unowned</th><th>owners</th></tr>";
  const std::size_t rows = std::min(s.rows.size(), std::max<std::size_t>(o.top, 50));
  for (std::size_t i = 0; i < rows; ++i) {
    const SocketRow& r = s.rows[i];
    h << "<tr><td>" << esc(r.name) << "</td><td>" << esc(r.state) << "</td><td>" << esc(r.protocol)
      << "</td>";
    for (auto n : r.counts) h << "<td class=\"n\">" << n << "</td>";
    h << "<td class=\"n\">" << r.owned << "</td><td class=\"n\">" << r.unowned << "</td><td>";
    for (std::size_t k = 0; k < r.owners.size() && k < 3; ++k)
      h << (k ? ", " : "") << esc(r.owners[k]);
    h << "</td></tr>";
  }
  if (s.rows.size() > rows) moreRow(h, s.rows.size() - rows, 6 + s.points.size(), "--top N");
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

// A mixed series: under the heap snapshots' verdict, the captures' and the
// last pair's line (what the reader checks first).
void writeMixedVerdict(std::ostream& h, const MixedResult& m) {
  h << "<div class=\"verdict " << (m.captures.suspects.empty() ? "good" : "bad")
    << "\" id=\"captures-verdict\">Captures: " << esc(m.captures.summary) << "</div>\n";
  if (m.join.pairs.empty()) return;
  const JoinPair& p = m.join.pairs.back();
  h << "<p id=\"join-line\"><b>Heap and kernel</b> (pid " << p.pid << "): " << esc(p.line);
  for (const std::string& d : p.disagreements) h << "; but " << esc(d);
  h << "</p>\n";
}

// Each heap snapshot beside the capture of its pid nearest in time.
void writeJoin(std::ostream& h, const JoinResult& j) {
  h << "<h2>Heap snapshots and captures</h2><table id=\"join\"><tr><th>heap snapshot</th>"
       "<th>capture</th><th>apart</th><th>socket objects</th><th>TCP sockets</th><th>"
       "agree</th></tr>\n";
  for (const JoinPair& p : j.pairs) {
    std::string classes, groups;
    for (const HeapSocketClass& c : p.classes) {
      classes += (classes.empty() ? "" : ", ") + std::to_string(c.objects) + " " + c.name;
    }
    for (const JoinSocketGroup& g : p.groups) {
      groups +=
          (groups.empty() ? "" : ", ") + std::to_string(g.count) + " " + g.state + " " + g.name;
    }
    h << "<tr><td><code>" << esc(shortPath(p.heap_path)) << "</code></td><td><code>"
      << esc(shortPath(p.capture_path)) << "</code></td><td>"
      << esc(formatDuration(std::abs(p.seconds_apart))) << "</td><td>" << esc(classes)
      << "</td><td>" << esc(groups) << "</td><td>"
      << (p.disagreements.empty() ? "yes" : esc(p.disagreements.front())) << "</td></tr>\n";
  }
  h << "</table>\n";
  for (const std::string& n : j.notes) h << "<p class=\"muted\">" << esc(n) << "</p>\n";
}

}  // namespace

std::string renderHtmlReport(const RunsResult& r, const Comparison& c, const SocketsResult& s,
                             const SymbolTable& symbols, const RenderOptions& o,
                             const MixedResult* mixed) {
  std::ostringstream h;
  writeHead(h);
  writeSummary(h, r);
  if (mixed != nullptr) writeMixedVerdict(h, *mixed);
  writeProcess(h, r.points);
  writeMemory(h, r, timeAxis(r.points));
  writeSuspects(h, r, symbols);
  writeUncertain(h, r);
  writeNotPersisted(h, r);
  h << renderFlameSection(c, symbols);
  writeComparison(h, c, o);
  if (mixed != nullptr) writeJoin(h, mixed->join);
  writeSockets(h, s, o);
  writeFoot(h);
  return h.str();
}

}  // namespace leakscope::analysis
