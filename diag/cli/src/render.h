// Output of the CLI's analyses: readable tables for people, JSON for
// machines (schema in docs/cli.md), and the self-contained HTML report.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "leakscope/analysis/analysis.h"
#include "leakscope/analysis/join.h"
#include "leakscope/analysis/model.h"
#include "leakscope/analysis/runs.h"
#include "leakscope/analysis/text.h"
#include "leakscope/analysis/units.h"

namespace leakscope::analysis {

struct RenderOptions {
  std::size_t top = 20;  // rows per table
  // Columns the text views fit in (0: unlimited). main picks the terminal's
  // width, $COLUMNS, or this default for pipes and files.
  std::size_t width = 100;
  std::size_t survivors = 5;  // survivor rows per suspect in text (0: all)
};

void renderShow(std::ostream& out, const Snapshot& s, const SocketsResult& sockets,
                const SymbolTable& symbols, const RenderOptions& o);
nlohmann::json showJson(const Snapshot& s, const SocketsResult& sockets, const SymbolTable& symbols,
                        const RenderOptions& o);

void renderCompare(std::ostream& out, const Comparison& c, const SymbolTable& symbols,
                   const RenderOptions& o);
nlohmann::json compareJson(const Comparison& c, const SymbolTable& symbols, const RenderOptions& o);

void renderTrend(std::ostream& out, const TrendResult& t, const SymbolTable& symbols,
                 const RenderOptions& o);
nlohmann::json trendJson(const TrendResult& t, const SymbolTable& symbols, const RenderOptions& o);

// A series across restarts: each run's verdict and what the runs say together.
// A series of one run reads exactly as renderTrend of that run.
void renderRuns(std::ostream& out, const RunsResult& r, const SymbolTable& symbols,
                const RenderOptions& o);
nlohmann::json runsJson(const RunsResult& r, const SymbolTable& symbols, const RenderOptions& o);

// "Leak suspects (N):" and one entry per suspect (as diff shows them), or
// "No leak suspected.". Names and reasons are escaped here.
void renderSuspects(std::ostream& out, const std::vector<Suspect>& suspects,
                    const SymbolTable& symbols);
// Suspects as diff's JSON lists them.
nlohmann::json suspectsJson(const std::vector<Suspect>& suspects, const SymbolTable& symbols);
// Suspects in chain order (render_chains.cc): each chain's top line (when
// it holds another suspect or a kind holds it), then `member(suspect,
// depth)` for each of its members; in suspect order when there are no
// chains.
void forEachChainMember(std::ostream& out, const std::vector<Chain>& chains, std::size_t suspects,
                        const std::function<void(std::size_t, std::size_t)>& member);
// "  2. ↳ [tracked] apns.connection": a suspect's first line, under its
// holder when `depth` > 0.
std::string chainMemberHeader(std::size_t number, std::size_t depth, Group g,
                              const std::string& name);
// trend's and diff's `chains[]`.
nlohmann::json chainsJson(const std::vector<Chain>& chains, const std::vector<Suspect>& suspects);
// `leakscope retainers --kind`: a tracked kind's chains, as the V8 view.
void renderKindRetainers(std::ostream& out, const Snapshot& s, const std::string& kind,
                         std::size_t objects, const std::vector<RetainerPath>& paths,
                         const RenderOptions& o);
nlohmann::json kindRetainersJson(const Snapshot& s, const std::string& kind, std::size_t objects,
                                 const std::vector<RetainerPath>& paths);
// The trend JSON's `inputs[]`.
nlohmann::json pointsJson(const std::vector<SeriesPoint>& points);

void renderSockets(std::ostream& out, const SocketsResult& s, const RenderOptions& o);
nlohmann::json socketsJson(const SocketsResult& s, const RenderOptions& o);

// trend and report over V8 heap snapshots beside captures of the same
// process (join.h): each series judged on its own, one verdict, the join.
struct MixedResult {
  RunsResult heap;      // the V8 heap snapshots
  RunsResult captures;  // the captures
  JoinResult join;
  bool suspect() const { return !heap.suspects.empty() || !captures.suspects.empty(); }
  // "heap snapshots: ...; captures: ..."
  std::string summary() const;
};
void renderMixed(std::ostream& out, const MixedResult& m, const SymbolTable& symbols,
                 const RenderOptions& o);
nlohmann::json mixedJson(const MixedResult& m, const SymbolTable& symbols, const RenderOptions& o);
// The last pair's line and where heap and kernel disagree, then the notes.
void renderJoin(std::ostream& out, const JoinResult& j);
nlohmann::json joinJson(const JoinResult& j);

// One HTML page, no external resources: the verdict of each run (the trend's
// suspects, or for a run of two inputs the comparison's) with charts of their
// growth, the comparison of the first and last input, the socket view. For
// a mixed series (`mixed`), `runs` are the heap snapshots' and the page adds
// the captures' verdict and the join.
std::string renderHtmlReport(const RunsResult& runs, const Comparison& comparison,
                             const SocketsResult& sockets, const SymbolTable& symbols,
                             const RenderOptions& o, const MixedResult* mixed = nullptr);

// ---- V8 heap snapshots (render_v8.cc) ----
void showV8Source(std::ostream& out, const Snapshot& s);
void showV8Classes(std::ostream& out, const Snapshot& s, const RenderOptions& o);
// show's `classes` and `v8` members.
nlohmann::json v8ShowJson(const Snapshot& s);
void renderClassComparison(std::ostream& out, const Comparison& c, const RenderOptions& o);
// One line per path: "  COUNT of OBJECTS: (GC roots) → … → Class".
void renderRetainerPaths(std::ostream& out, const std::vector<RetainerPath>& paths,
                         std::size_t objects, const std::string& indent);
nlohmann::json retainersJson(const std::vector<RetainerPath>& paths);
// `leakscope retainers`.
void renderRetainers(std::ostream& out, const Snapshot& s, const std::string& name,
                     const std::vector<RetainerPath>& paths, const RenderOptions& o);
nlohmann::json retainersCommandJson(const Snapshot& s, const std::string& name,
                                    const std::vector<RetainerPath>& paths);

// A change as the views write it: "+3", "-1.5 KiB" (no sign for zero).
std::string signedNum(double v);
std::string signedBytes(double v);

// The file name of `path`: what the views show of an input.
std::string shortPath(const std::string& path);

}  // namespace leakscope::analysis
