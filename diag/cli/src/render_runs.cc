// `trend` over a series that spans restarts: each run's verdict, as text and
// JSON. A series of one run keeps trend's own views unchanged, so scripts
// and goldens written for them still hold; JSON only gains `runs` and
// `summary`.
#include <ctime>
#include <sstream>

#include "render.h"

namespace leakscope::analysis {
namespace {

using json = nlohmann::json;

double spanSeconds(const std::vector<SeriesPoint>& points) {
  if (points.empty()) return 0;
  return static_cast<double>(points.back().taken_unix_ns - points.front().taken_unix_ns) / 1e9;
}

// "2026-11-30T17:55:58Z"; "" when not recorded.
std::string utcSeconds(double unix_seconds) {
  if (unix_seconds <= 0) return {};
  const auto t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) return {};
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// "Run 2 of 3: pid 6040, started 2026-11-30T17:55:59Z, inputs 4-6"
std::string runTitle(const RunVerdict& r, std::size_t index, std::size_t count) {
  std::string t = "Run " + std::to_string(index + 1) + " of " + std::to_string(count) + ": pid " +
                  std::to_string(r.id.pid);
  const std::string started = utcSeconds(r.id.start_time_unix);
  if (!started.empty()) t += ", started " + started;
  const std::string first = std::to_string(r.first_input + 1);
  t += r.inputs == 1 ? ", input " + first
                     : ", inputs " + first + "-" + std::to_string(r.first_input + r.inputs);
  return t;
}

void runText(std::ostream& out, const RunVerdict& r, const SymbolTable& symbols,
             const RenderOptions& o) {
  switch (r.method) {
    case RunMethod::kTrend:
      renderTrend(out, r.trend, symbols, o);
      return;
    case RunMethod::kDiff: {
      const Comparison& c = *r.comparison;
      out << "Two inputs (a trend needs three), compared first to last: " << shortPath(c.base)
          << " -> " << shortPath(c.target) << " (" << formatDuration(c.interval_seconds)
          << " apart; leakscope diff shows the table)\n";
      for (const auto& n : c.notes) out << "  note: " << n << "\n";
      renderSuspects(out, r.suspects, symbols);
      return;
    }
    case RunMethod::kSingle:
      break;
  }
  out << "One input (" << shortPath(r.trend.points.front().path) << "): nothing to compare.\n";
}

const char* runVerdictName(const RunVerdict& r) {
  if (!r.suspects.empty()) return "suspect";
  return r.method == RunMethod::kSingle ? "unjudged" : "clean";
}

json runJson(const RunVerdict& r, std::size_t index, const SymbolTable& symbols) {
  json j = {{"run", index + 1},
            {"pid", r.id.pid},
            {"start_time_unix", r.id.start_time_unix},
            {"first_input", r.first_input},
            {"inputs", r.inputs},
            {"method", runMethodName(r.method)},
            {"verdict", runVerdictName(r)},
            {"reason", r.reason},
            {"last_rss_bytes", r.last_rss_bytes},
            {"suspects", suspectsJson(r.suspects, symbols)}};
  if (r.last_rss_of_limit) j["last_rss_of_limit"] = *r.last_rss_of_limit;
  return j;
}

// `items` (suspect or group objects) of run `index`, each marked with it.
void appendMarked(json& to, const json& items, std::size_t index) {
  for (json item : items) {
    item["run"] = index + 1;
    to.push_back(std::move(item));
  }
}

// The top-level suspects and not_suspects of several runs: trend's groups for
// runs judged by trend, diff's suspects for runs of two inputs.
void unionOfRuns(json& j, const RunsResult& r, const SymbolTable& symbols, const RenderOptions& o) {
  json suspects = json::array(), others = json::array();
  for (std::size_t i = 0; i < r.runs.size(); ++i) {
    const RunVerdict& run = r.runs[i];
    if (run.method == RunMethod::kTrend) {
      const json t = trendJson(run.trend, symbols, o);
      appendMarked(suspects, t["suspects"], i);
      appendMarked(others, t["not_suspects"], i);
    } else {
      appendMarked(suspects, suspectsJson(run.suspects, symbols), i);
    }
  }
  j["suspects"] = suspects;
  j["not_suspects"] = others;
}

}  // namespace

void renderRuns(std::ostream& out, const RunsResult& r, const SymbolTable& symbols,
                const RenderOptions& o) {
  if (r.single() && r.runs.front().method == RunMethod::kTrend) {
    renderTrend(out, r.runs.front().trend, symbols, o);
    return;
  }
  std::ostringstream text;
  text << r.points.size() << " inputs over " << formatDuration(spanSeconds(r.points)) << " from "
       << r.runs.size() << (r.single() ? " run" : " runs")
       << " of the process (a new pid or start time is a new "
       << "run); each run is judged on its own.\nVerdict: " << r.summary << "\n";
  for (std::size_t i = 0; i < r.runs.size(); ++i) {
    text << "\n== " << runTitle(r.runs[i], i, r.runs.size()) << " ==\n";
    runText(text, r.runs[i], symbols, o);
  }
  text << "\nVerdict: " << r.summary << "\n";
  out << printable(text.str(), true);
}

json runsJson(const RunsResult& r, const SymbolTable& symbols, const RenderOptions& o) {
  json j;
  if (r.single() && r.runs.front().method == RunMethod::kTrend) {
    j = trendJson(r.runs.front().trend, symbols, o);
  } else {
    j["command"] = "trend";
    j["inputs"] = pointsJson(r.points);
    j["span_seconds"] = spanSeconds(r.points);
    j["notes"] = json::array();
    unionOfRuns(j, r, symbols, o);
  }
  json runs = json::array();
  for (std::size_t i = 0; i < r.runs.size(); ++i) runs.push_back(runJson(r.runs[i], i, symbols));
  j["runs"] = runs;
  j["summary"] = r.summary;
  return j;
}

}  // namespace leakscope::analysis
