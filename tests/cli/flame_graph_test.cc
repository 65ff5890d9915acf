// The report's flame graph (diag/cli/src/flame_graph.cc): the trees built
// from a comparison's heap rows, their caps, and names escaped on the page.
#include "flame_graph.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace {

namespace la = leakscope::analysis;

constexpr double kMiB = 1024.0 * 1024.0;

// A comparison of heap rows built by hand: each stack (innermost first, by
// function name) with its change in bytes.
struct Fixture {
  la::SymbolTable symbols;
  la::Comparison c;

  void row(const std::vector<std::string>& functions, double delta_bytes,
           const std::string& file = "") {
    std::vector<la::StringId> frames;
    for (const std::string& fn : functions) {
      la::FrameInfo f;
      f.function = fn;
      f.file = file;
      f.line = file.empty() ? 0 : 42;
      frames.push_back(symbols.internFrame(f));
    }
    la::CompareRow r;
    r.group = la::Group::kHeap;
    r.stack = symbols.internStack(frames);
    r.delta_bytes = delta_bytes;
    c.rows.push_back(r);
  }

  std::string name(const la::FlameTree& t, std::size_t i) const {
    const la::FlameFrame& f = t.frames[i];
    return f.frame ? symbols.str(*f.frame) : (f.other() ? "other" : "root");
  }

  // The child of frame `at` named `fn` (-1: none).
  long child(const la::FlameTree& t, std::size_t at, const std::string& fn) const {
    for (std::size_t k : t.frames[at].children) {
      if (name(t, k) == fn) return static_cast<long>(k);
    }
    return -1;
  }
};

// Frames drawn with a name (not the root, not "other").
std::size_t named(const la::FlameTree& t) {
  return static_cast<std::size_t>(
      std::count_if(t.frames.begin(), t.frames.end(),
                    [](const la::FlameFrame& f) { return f.frame.has_value(); }));
}

TEST(FlameTree, WidthIsTheGrowthOfTheStacksThroughAFrameAllocatingFunctionFirst) {
  Fixture x;
  x.row({"leaky", "serve", "main"}, 3 * kMiB);
  x.row({"leaky", "retry", "main"}, 2 * kMiB);
  x.row({"cache", "serve", "main"}, 1 * kMiB);
  const la::FlameTree t = buildFlameTree(x.c, x.symbols, la::FlameSide::kGrown);
  EXPECT_DOUBLE_EQ(t.total(), 6 * kMiB);
  ASSERT_EQ(t.frames[0].children.size(), 2u);
  // Widest first: the allocating function `leaky` holds both its stacks.
  const std::size_t leaky = t.frames[0].children[0];
  EXPECT_EQ(x.name(t, leaky), "leaky");
  EXPECT_DOUBLE_EQ(t.frames[leaky].bytes, 5 * kMiB);
  EXPECT_DOUBLE_EQ(t.frames[leaky].x, 0);
  const std::size_t cache = t.frames[0].children[1];
  EXPECT_EQ(x.name(t, cache), "cache");
  EXPECT_DOUBLE_EQ(t.frames[cache].x, 5 * kMiB);  // placed after leaky
  // Below leaky, its callers, widest first, placed side by side.
  const long serve = x.child(t, leaky, "serve"), retry = x.child(t, leaky, "retry");
  ASSERT_GE(serve, 0);
  ASSERT_GE(retry, 0);
  EXPECT_EQ(t.frames[leaky].children.front(), static_cast<std::size_t>(serve));
  EXPECT_DOUBLE_EQ(t.frames[static_cast<std::size_t>(serve)].bytes, 3 * kMiB);
  EXPECT_DOUBLE_EQ(t.frames[static_cast<std::size_t>(retry)].x, 3 * kMiB);
  EXPECT_EQ(t.depth, 3u);
  // Pre-order: a frame's parent comes before it, and every frame's subtree
  // follows it (the page's ids and the zoom rely on this).
  for (std::size_t i = 1; i < t.frames.size(); ++i) {
    EXPECT_LT(t.frames[i].parent, i);
    EXPECT_EQ(t.frames[i].depth, t.frames[t.frames[i].parent].depth + 1);
  }
}

TEST(FlameTree, StacksThatShrankAreATreeApartNeverNettedIntoTheGrowth) {
  Fixture x;
  x.row({"leaky", "main"}, 4 * kMiB);
  x.row({"spike", "main"}, -3 * kMiB);
  x.row({"other_site", "main"}, 0);  // unchanged: in neither
  const la::FlameTree grown = buildFlameTree(x.c, x.symbols, la::FlameSide::kGrown);
  const la::FlameTree shrunk = buildFlameTree(x.c, x.symbols, la::FlameSide::kShrunk);
  EXPECT_DOUBLE_EQ(grown.total(), 4 * kMiB);
  ASSERT_EQ(grown.frames[0].children.size(), 1u);
  EXPECT_EQ(x.name(grown, grown.frames[0].children[0]), "leaky");
  // main is on both: 4 MiB grew through it, 3 MiB shrank, shown as such
  // rather than as +1 MiB.
  const std::size_t main_grown = grown.frames[grown.frames[0].children[0]].children[0];
  EXPECT_DOUBLE_EQ(grown.frames[main_grown].bytes, 4 * kMiB);
  EXPECT_DOUBLE_EQ(shrunk.total(), 3 * kMiB);
  ASSERT_EQ(shrunk.frames[0].children.size(), 1u);
  const std::size_t spike = shrunk.frames[0].children[0];
  EXPECT_EQ(x.name(shrunk, spike), "spike");
  EXPECT_DOUBLE_EQ(shrunk.frames[shrunk.frames[spike].children[0]].bytes, 3 * kMiB);
}

TEST(FlameTree, TinyFramesAndFramesBeyondTheCapFoldIntoOtherPerParent) {
  Fixture x;
  x.row({"big", "main"}, 10 * kMiB);
  x.row({"medium", "main"}, 5 * kMiB);
  // 40 sites of 1 KiB each: under 0.1 % of the growth.
  for (int i = 0; i < 40; ++i) x.row({"tiny" + std::to_string(i), "main"}, 1024);
  const la::FlameTree t = buildFlameTree(x.c, x.symbols, la::FlameSide::kGrown);
  // big, medium and an "other" for the 40 tiny ones (and their 40 callers).
  ASSERT_EQ(t.frames[0].children.size(), 3u);
  const la::FlameFrame& other = t.frames[t.frames[0].children[2]];
  EXPECT_TRUE(other.other());
  EXPECT_DOUBLE_EQ(other.bytes, 40 * 1024);
  EXPECT_EQ(other.folded, 80u);
  EXPECT_EQ(t.folded, 80u);
  EXPECT_TRUE(other.children.empty());
  // Widths are kept: the root's children still add up to the root.
  double sum = 0;
  for (std::size_t c : t.frames[0].children) sum += t.frames[c].bytes;
  EXPECT_DOUBLE_EQ(sum, t.total());

  // A cap of three named frames: big, medium and big's caller (widest
  // first); medium's caller is folded into an "other" under medium.
  la::FlameOptions few;
  few.max_frames = 3;
  const la::FlameTree capped = buildFlameTree(x.c, x.symbols, la::FlameSide::kGrown, few);
  EXPECT_EQ(named(capped), 3u);
  const long medium = x.child(capped, 0, "medium");
  ASSERT_GE(medium, 0);
  const auto& under_medium = capped.frames[static_cast<std::size_t>(medium)].children;
  ASSERT_EQ(under_medium.size(), 1u);
  EXPECT_TRUE(capped.frames[under_medium[0]].other());
  EXPECT_DOUBLE_EQ(capped.frames[under_medium[0]].bytes, 5 * kMiB);
  EXPECT_EQ(capped.folded, 1u + 80u);
}

TEST(FlameTree, ManyStacksStayUnderTheCap) {
  Fixture x;
  for (std::size_t i = 0; i < 3000; ++i) {
    x.row({"site" + std::to_string(i), "caller" + std::to_string(i % 7), "main"},
          1000.0 + static_cast<double>(i));
  }
  // Every frame is wide enough to draw: only the cap cuts.
  la::FlameOptions all;
  all.min_share = 0;
  const la::FlameTree t = buildFlameTree(x.c, x.symbols, la::FlameSide::kGrown, all);
  EXPECT_EQ(named(t), all.max_frames);
  EXPECT_EQ(t.folded, 3 * 3000u - all.max_frames);
  const std::string page = renderFlameSection(x.c, x.symbols);
  EXPECT_LT(page.size(), 2'000'000u);
  EXPECT_NE(page.find("small frame(s) folded into \"other\""), std::string::npos);
}

TEST(FlameSection, NamesFromTheInputCannotBecomeMarkupOrScript) {
  Fixture x;
  const std::string script = "<script>document.title='pwned'</script>";
  const std::string img = "\"><img src=x onerror=alert(1)>";
  x.row({script, img, "main"}, 2 * kMiB, "/src/\"evil'<b>.cc");
  const std::string page = renderFlameSection(x.c, x.symbols);
  ASSERT_FALSE(page.empty());
  // The page's own script is the only one; no tag from a name survives.
  std::size_t scripts = 0;
  for (auto at = page.find("<script"); at != std::string::npos; at = page.find("<script", at + 1)) {
    ++scripts;
  }
  EXPECT_EQ(scripts, 1u);
  EXPECT_EQ(page.find("<img"), std::string::npos);
  EXPECT_EQ(page.find("<b>"), std::string::npos);
  EXPECT_NE(page.find("&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;"),
            std::string::npos);
  EXPECT_NE(page.find("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"), std::string::npos);
  EXPECT_NE(page.find("&quot;evil&#39;&lt;b&gt;.cc:42"), std::string::npos);
}

TEST(FlameSection, SaysNothingWithoutHeapRowsAndSaysWhenNothingShrank) {
  Fixture none;
  la::CompareRow tracked;
  tracked.group = la::Group::kTracked;
  tracked.name = "example.connection";
  tracked.delta_bytes = kMiB;
  none.c.rows.push_back(tracked);
  EXPECT_EQ(renderFlameSection(none.c, none.symbols), "");

  Fixture x;
  x.row({"leaky", "main"}, kMiB, "/src/leak.cc");
  const std::string page = renderFlameSection(x.c, x.symbols);
  EXPECT_NE(page.find("id=\"flame-grown\""), std::string::npos);
  EXPECT_NE(page.find("data-n=\"leaky (leak.cc:42)\""), std::string::npos);
  EXPECT_EQ(page.find("id=\"flame-shrunk\""), std::string::npos);
  EXPECT_NE(page.find("id=\"flame-shrunk-none\""), std::string::npos);
}

}  // namespace
