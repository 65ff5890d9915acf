// The report's differential flame graph: heap growth between the first and
// the last input as an icicle (Brendan Gregg's differential flame graphs,
// pprof's -diff_base flame view), one SVG with an inline script for search
// and click-to-zoom, no network.
//
// Built from the comparison's heap rows (la::compare), so stacks are matched
// across inputs by symbol exactly as `diff` matches them, and sampled
// profiles give their unsampled estimates. Stacks that grew make one tree,
// stacks that shrank another: a frame on both is shown in both, never netted.
//
// The tree hangs from the allocating function (the site's name in `diff`)
// down to its callers: the first row under the root is "who allocated the
// growth", so the leaking function is the widest frame there, where a
// caller-first graph would put main() and the thread entry on top of every
// leak. Plain data and pure functions; not thread-safe to share while built.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "leakscope/analysis/analysis.h"
#include "leakscope/analysis/model.h"

namespace leakscope::analysis {

// How much of a tree is drawn: a profile of many thousand stacks must still
// make a small page.
struct FlameOptions {
  // Named frames drawn per tree, widest first (each parent may add one
  // "other" frame for what was cut beneath it).
  std::size_t max_frames = 1500;
  // Frames narrower than this share of the tree's total are folded into
  // their parent's "other" frame (0.1 %: about a pixel at the page's width).
  double min_share = 0.001;
};

// One box of the graph.
struct FlameFrame {
  // The frame's symbol key (SymbolTable::frame); none for the root and for
  // "other" frames.
  std::optional<StringId> frame;
  double bytes = 0;  // what the stacks through this frame grew (or shrank)
  double x = 0;      // bytes left of it on its row: its offset in the graph
  std::size_t depth = 0;
  std::size_t parent = 0;             // index; the root is its own parent
  std::vector<std::size_t> children;  // indices, widest first
  std::size_t folded = 0;             // "other": how many frames it stands for
  bool other() const { return depth > 0 && !frame; }
};

struct FlameTree {
  std::vector<FlameFrame> frames;  // pre-order: frames[0] is the root
  std::size_t folded = 0;          // frames folded into "other" frames
  std::size_t depth = 0;           // deepest row (0: the root alone)
  double total() const { return frames.empty() ? 0.0 : frames.front().bytes; }
};

enum class FlameSide { kGrown, kShrunk };

// The tree of the heap rows of `c` that grew (kGrown: width = bytes grown)
// or shrank (kShrunk: width = bytes freed). A root alone when none did.
FlameTree buildFlameTree(const Comparison& c, const SymbolTable& symbols, FlameSide side,
                         const FlameOptions& o = {});

// The report's section: both trees drawn, the search box, and the script.
// "" when `c` has no heap rows (no heap profile, V8 heap snapshots,
// captures): nothing to draw, nothing said.
std::string renderFlameSection(const Comparison& c, const SymbolTable& symbols,
                               const FlameOptions& o = {});

}  // namespace leakscope::analysis
