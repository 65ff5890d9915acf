#include "flame_graph.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <sstream>
#include <unordered_map>

#include "html.h"
#include "leakscope/analysis/units.h"

namespace leakscope::analysis {
namespace {

// ---- the tree ---------------------------------------------------------------

// Every stack of one side merged into a trie, innermost frame first: the
// whole tree, before the cap decides what is drawn.
class Trie {
 public:
  struct Node {
    StringId frame = 0;
    double bytes = 0;
    std::size_t parent = 0;
    std::size_t depth = 0;
    std::size_t subtree = 1;  // itself and everything under it
    std::unordered_map<StringId, std::size_t> children;
  };

  Trie() : nodes_(1) {}

  void add(const std::vector<StringId>& stack, double bytes) {
    std::size_t at = 0;
    nodes_[0].bytes += bytes;
    for (StringId f : stack) {
      at = child(at, f);
      nodes_[at].bytes += bytes;
    }
  }

  // Subtree sizes, bottom up: a child is always added after its parent.
  void count() {
    for (std::size_t i = nodes_.size(); i-- > 1;)
      nodes_[nodes_[i].parent].subtree += nodes_[i].subtree;
  }

  const std::vector<Node>& nodes() const { return nodes_; }

 private:
  std::size_t child(std::size_t parent, StringId f) {
    const auto found = nodes_[parent].children.find(f);
    if (found != nodes_[parent].children.end()) return found->second;
    const std::size_t id = nodes_.size();
    nodes_[parent].children.emplace(f, id);
    Node n;
    n.frame = f;
    n.parent = parent;
    n.depth = nodes_[parent].depth + 1;
    nodes_.push_back(std::move(n));
    return id;
  }

  std::vector<Node> nodes_;  // [0]: the root
};

// Which frames are drawn: the widest `max_frames` of those at least
// `min_share` of the total, and only under a drawn parent (a parent is never
// narrower than its child, and wins ties by being shallower).
std::vector<bool> keptFrames(const Trie& t, const FlameOptions& o) {
  const auto& n = t.nodes();
  const double floor = n[0].bytes * o.min_share;
  std::vector<std::size_t> order;
  for (std::size_t i = 1; i < n.size(); ++i) {
    if (n[i].bytes > 0 && n[i].bytes >= floor) order.push_back(i);
  }
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (n[a].bytes != n[b].bytes) return n[a].bytes > n[b].bytes;
    return n[a].depth != n[b].depth ? n[a].depth < n[b].depth : a < b;
  });
  std::vector<bool> kept(n.size(), false);
  kept[0] = true;
  std::size_t drawn = 0;
  for (std::size_t i : order) {
    if (drawn == o.max_frames) break;
    if (!kept[n[i].parent]) continue;
    kept[i] = true;
    ++drawn;
  }
  return kept;
}

// Writes the kept part of a trie as a FlameTree in pre-order, children
// widest first (ties by name, so the page is the same on every run), each
// parent's cut children folded into one "other" frame after them.
class TreeWriter {
 public:
  TreeWriter(const Trie& t, const std::vector<bool>& kept, const SymbolTable& symbols)
      : nodes_(t.nodes()), kept_(kept), symbols_(symbols) {}

  FlameTree write() {
    FlameFrame root;
    root.bytes = nodes_[0].bytes;
    tree_.frames.push_back(root);
    // (trie node, its frame in the tree): frames are placed when pushed.
    std::vector<std::pair<std::size_t, std::size_t>> todo = {{0, 0}};
    while (!todo.empty()) {
      const auto [node, at] = todo.back();
      todo.pop_back();
      const std::vector<std::size_t> placed = placeChildren(node, at);
      for (auto it = placed.rbegin(); it != placed.rend(); ++it) {
        if (!tree_.frames[*it].other()) todo.emplace_back(trie_of_[*it], *it);
      }
    }
    renumber();
    return std::move(tree_);
  }

 private:
  // The kept children of `node` (and its "other") as frames under `at`.
  std::vector<std::size_t> placeChildren(std::size_t node, std::size_t at) {
    std::vector<std::size_t> kids;
    FlameFrame other;
    for (const auto& [f, c] : nodes_[node].children) {
      if (kept_[c]) {
        kids.push_back(c);
      } else {
        other.bytes += nodes_[c].bytes;
        other.folded += nodes_[c].subtree;
      }
    }
    std::sort(kids.begin(), kids.end(), [&](std::size_t a, std::size_t b) {
      if (nodes_[a].bytes != nodes_[b].bytes) return nodes_[a].bytes > nodes_[b].bytes;
      return symbols_.str(nodes_[a].frame) < symbols_.str(nodes_[b].frame);
    });
    std::vector<std::size_t> placed;
    double x = tree_.frames[at].x;
    for (std::size_t c : kids) {
      FlameFrame f;
      f.frame = nodes_[c].frame;
      f.bytes = nodes_[c].bytes;
      placed.push_back(place(std::move(f), at, x, c));
      x += nodes_[c].bytes;
    }
    if (other.folded > 0 && other.bytes > 0) {
      tree_.folded += other.folded;
      placed.push_back(place(std::move(other), at, x, 0));
    }
    return placed;
  }

  std::size_t place(FlameFrame f, std::size_t parent, double x, std::size_t trie_node) {
    f.x = x;
    f.parent = parent;
    f.depth = tree_.frames[parent].depth + 1;
    tree_.depth = std::max(tree_.depth, f.depth);
    const std::size_t id = tree_.frames.size();
    tree_.frames[parent].children.push_back(id);
    tree_.frames.push_back(std::move(f));
    trie_of_.resize(id + 1);
    trie_of_[id] = trie_node;
    return id;
  }

  // Frames were appended breadth-wise per parent; the tree promises
  // pre-order (a frame's subtree follows it), which the page's ids and the
  // tests rely on.
  void renumber() {
    std::vector<std::size_t> order, todo = {0};
    while (!todo.empty()) {
      const std::size_t i = todo.back();
      todo.pop_back();
      order.push_back(i);
      const auto& ch = tree_.frames[i].children;
      for (auto it = ch.rbegin(); it != ch.rend(); ++it) todo.push_back(*it);
    }
    std::vector<std::size_t> index(order.size());
    for (std::size_t k = 0; k < order.size(); ++k) index[order[k]] = k;
    std::vector<FlameFrame> frames;
    frames.reserve(order.size());
    for (std::size_t old : order) {
      FlameFrame f = std::move(tree_.frames[old]);
      f.parent = index[f.parent];
      for (std::size_t& c : f.children) c = index[c];
      frames.push_back(std::move(f));
    }
    tree_.frames = std::move(frames);
  }

  const std::vector<Trie::Node>& nodes_;
  const std::vector<bool>& kept_;
  const SymbolTable& symbols_;
  FlameTree tree_;
  std::vector<std::size_t> trie_of_ = {0};  // per frame, its trie node
};

// ---- the page -----------------------------------------------------------------

constexpr double kWidth = 1200;   // the SVG's width in pixels
constexpr double kRow = 18;       // one frame's row
constexpr double kCharWidth = 7;  // the frames' font, generously

std::string num(double v, int digits = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// What a frame is called on the page: the function (or module+offset, its
// key), and where the inputs say it is.
std::string frameLabel(const SymbolTable& symbols, const FlameFrame& f) {
  if (!f.frame) return f.depth == 0 ? "all" : "other";
  std::string label = symbols.str(*f.frame);
  const FrameInfo& info = symbols.frame(*f.frame);
  if (!info.file.empty()) {
    const std::size_t slash = info.file.rfind('/');
    label += " (" + info.file.substr(slash == std::string::npos ? 0 : slash + 1);
    label += info.line > 0 ? ":" + std::to_string(info.line) + ")" : ")";
  }
  return label;
}

// The label cut to what fits in `pixels` ("" when not even three letters do).
std::string fitted(const std::string& label, double pixels) {
  const auto chars = static_cast<std::size_t>(std::max(0.0, (pixels - 6) / kCharWidth));
  if (chars < 3) return "";
  if (label.size() <= chars) return label;
  std::string cut = label.substr(0, chars - 1);
  // Never half a UTF-8 character.
  while (!cut.empty() && (static_cast<unsigned char>(cut.back()) & 0xc0) == 0x80) cut.pop_back();
  if (!cut.empty() && (static_cast<unsigned char>(cut.back()) & 0x80) != 0) cut.pop_back();
  return cut + "\u2026";
}

// Warm shades for growth, cool for what shrank; the name picks the shade so
// that neighbours differ and a function keeps its colour on every run.
std::string fill(const std::string& label, const FlameFrame& f, FlameSide side) {
  if (f.depth == 0) return "#c9ccd6";
  if (f.other()) return "#d9dbe2";
  std::uint32_t h = 2166136261u;
  for (char c : label) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  const int hue =
      side == FlameSide::kGrown ? static_cast<int>(h % 30) : 200 + static_cast<int>(h % 30);
  const int light = 55 + static_cast<int>((h >> 8) % 20);
  return "hsl(" + std::to_string(hue) + ",75%," + std::to_string(light) + "%)";
}

// One tree as an SVG: a <g class="fr"> per frame, its position as fractions
// of the total in data-x/data-w (what the script zooms with) and drawn at
// that position, so the graph reads without the script too.
class FlameSvg {
 public:
  FlameSvg(const FlameTree& t, const SymbolTable& symbols, FlameSide side, std::string id)
      : t_(t), symbols_(symbols), side_(side), id_(std::move(id)) {}

  std::string svg() const {
    std::ostringstream o;
    const double height = static_cast<double>(t_.depth + 1) * kRow;
    o << "<svg class=\"flame\" id=\"" << id_ << "\" data-root=\"" << frameId(0)
      << "\" data-total=\"" << num(t_.total(), 0) << "\" width=\"" << kWidth << "\" height=\""
      << height << "\" viewBox=\"0 0 " << kWidth << " " << height << "\">";
    for (std::size_t i = 0; i < t_.frames.size(); ++i) frame(o, i);
    o << "</svg>";
    return o.str();
  }

 private:
  std::string frameId(std::size_t i) const { return id_ + "-" + std::to_string(i); }

  void frame(std::ostream& o, std::size_t i) const {
    const FlameFrame& f = t_.frames[i];
    const double total = t_.total();
    const double x = f.x / total, w = f.bytes / total;
    const std::string label = frameLabel(symbols_, f);
    o << "<g class=\"fr" << (i == 0 ? " root" : "") << "\" id=\"" << frameId(i) << "\" data-p=\""
      << (i == 0 ? "" : frameId(f.parent)) << "\" data-b=\"" << num(f.bytes, 0) << "\" data-x=\""
      << num(x, 9) << "\" data-w=\"" << num(w, 9) << "\" data-n=\"" << htmlText(label)
      << "\"><title>" << htmlText(tooltip(label, f), true) << "</title>";
    o << "<rect x=\"" << num(x * kWidth) << "\" y=\"" << num(static_cast<double>(f.depth) * kRow)
      << "\" width=\"" << num(std::max(0.0, w * kWidth - 0.5)) << "\" height=\"" << kRow - 1
      << "\" fill=\"" << fill(label, f, side_) << "\"/><text x=\"" << num(x * kWidth + 3)
      << "\" y=\"" << num(static_cast<double>(f.depth) * kRow + 13) << "\">"
      << htmlText(fitted(label, w * kWidth)) << "</text></g>";
  }

  std::string tooltip(const std::string& label, const FlameFrame& f) const {
    const bool grown = side_ == FlameSide::kGrown;
    std::string tip = label;
    if (f.frame) {
      const FrameInfo& info = symbols_.frame(*f.frame);
      if (!info.file.empty()) tip += "\n" + info.file;
      if (!info.module.empty()) tip += "\nin " + info.module;
    }
    if (f.other()) tip += "\n" + std::to_string(f.folded) + " small frame(s) folded together";
    tip += std::string("\n") + (grown ? "+" : "-") + formatBytes(f.bytes) + ", " +
           num(100 * f.bytes / t_.total()) + " % of " + (grown ? "the growth" : "what shrank");
    return tip;
  }

  const FlameTree& t_;
  const SymbolTable& symbols_;
  FlameSide side_;
  std::string id_;
};

// Search (a substring of the label, any case; the share matched counts each
// stack once), click-to-zoom (the clicked frame fills the width, its callers
// above it span it, the rest hides) and a reset. The URL fragment drives both
// (#search=TEXT&zoom=FRAME-ID), so a link can show a view and a headless
// browser can test one. Labels are only ever set as text, never as markup.
constexpr const char* kScript = R"JS(<script>(function(){
var W=1200;
function frames(svg){return Array.prototype.slice.call(svg.querySelectorAll('g.fr'));}
function byId(id){return id?document.getElementById(id):null;}
function under(g,top){for(var p=g;p;p=byId(p.getAttribute('data-p'))){if(p===top)return true;}return false;}
function bytes(v){var u=['B','KiB','MiB','GiB','TiB'],i=0;while(v>=1024&&i<4){v/=1024;i++;}
return i?v.toFixed(1)+' '+u[i]:Math.round(v)+' B';}
function place(g,x,w){var r=g.querySelector('rect'),t=g.querySelector('text'),px=w*W;
r.setAttribute('x',(x*W).toFixed(1));r.setAttribute('width',Math.max(0,px-0.5).toFixed(1));
t.setAttribute('x',(x*W+3).toFixed(1));var n=g.getAttribute('data-n'),c=Math.floor((px-6)/7);
t.textContent=c<3?'':(n.length<=c?n:n.slice(0,c-1)+'\u2026');}
function zoom(id){var z=byId(id);if(!z||!z.classList.contains('fr'))return;
var svg=z.ownerSVGElement,zx=+z.getAttribute('data-x'),zw=+z.getAttribute('data-w');
frames(svg).forEach(function(g){var above=under(z,g)&&g!==z;
if(above){place(g,0,1);g.style.display='';g.classList.add('above');return;}
g.classList.remove('above');if(!under(g,z)){g.style.display='none';return;}
g.style.display='';place(g,(+g.getAttribute('data-x')-zx)/zw,+g.getAttribute('data-w')/zw);});
svg.setAttribute('data-zoom',id);}
function search(q){q=q.toLowerCase();document.querySelectorAll('svg.flame').forEach(function(svg){
var all=frames(svg),total=+svg.getAttribute('data-total'),hit=0;
all.forEach(function(g){g.classList.toggle('match',q!==''&&!g.classList.contains('root')&&
g.getAttribute('data-n').toLowerCase().indexOf(q)>=0);});
all.forEach(function(g){if(!g.classList.contains('match'))return;
for(var p=byId(g.getAttribute('data-p'));p;p=byId(p.getAttribute('data-p'))){if(p.classList.contains('match'))return;}
hit+=+g.getAttribute('data-b');});
svg.setAttribute('data-matched-bytes',String(hit));var out=byId(svg.id+'-matched');
if(out)out.textContent=q===''?'':'Matched: '+bytes(hit)+' of '+bytes(total)+' ('+
(total>0?(100*hit/total).toFixed(1):'0.0')+' %)';});}
function fromHash(){location.hash.replace(/^#/,'').split('&').forEach(function(kv){
var i=kv.indexOf('='),k=kv.slice(0,i),v;try{v=decodeURIComponent(kv.slice(i+1));}catch(e){return;}
if(k==='search'){byId('flame-search').value=v;search(v);}
if(k==='zoom')zoom(v);});}
document.querySelectorAll('svg.flame').forEach(function(svg){svg.addEventListener('click',function(e){
var g=e.target.closest('g.fr');if(g)zoom(g.id);});});
byId('flame-search').addEventListener('input',function(e){search(e.target.value);});
byId('flame-reset').addEventListener('click',function(){document.querySelectorAll('svg.flame').forEach(
function(svg){zoom(svg.getAttribute('data-root'));});});
window.addEventListener('hashchange',fromHash);fromHash();
document.body.setAttribute('data-flame-ready','1');})();</script>)JS";

constexpr const char* kStyle =
    "<style>svg.flame{display:block;margin:6px 0 12px}svg.flame g.fr{cursor:pointer}"
    "svg.flame text{font:11px ui-monospace,monospace;fill:#1d2330;pointer-events:none}"
    "svg.flame g.fr:hover rect{stroke:#1d2330;stroke-width:.8}"
    "svg.flame g.match rect{fill:#d633c5}svg.flame g.above rect{opacity:.55}"
    "#flame-controls{margin:8px 0}#flame-controls input{width:22em}</style>";

bool hasHeapRows(const Comparison& c) {
  return std::any_of(c.rows.begin(), c.rows.end(),
                     [](const CompareRow& r) { return r.group == Group::kHeap; });
}

// One side's graph with its heading and the line the search fills in.
void writeSide(std::ostream& h, const FlameTree& t, const SymbolTable& symbols, FlameSide side) {
  const bool grown = side == FlameSide::kGrown;
  const std::string id = grown ? "flame-grown" : "flame-shrunk";
  h << "<h3>" << (grown ? "Grew" : "Shrank, shown apart") << ": "
    << htmlText(formatBytes(t.total())) << "</h3>";
  if (t.frames.size() < 2) {
    h << "<p class=\"muted\" id=\"" << id << "-none\">No heap site " << (grown ? "grew" : "shrank")
      << ".</p>";
    return;
  }
  h << FlameSvg(t, symbols, side, id).svg() << "<p class=\"muted\" id=\"" << id
    << "-matched\"></p>";
  if (t.folded > 0) {
    h << "<p class=\"muted\">" << t.folded
      << " small frame(s) folded into \"other\" (under 0.1 % of the graph, or beyond its widest "
         "frames).</p>";
  }
}

}  // namespace

FlameTree buildFlameTree(const Comparison& c, const SymbolTable& symbols, FlameSide side,
                         const FlameOptions& o) {
  Trie trie;
  for (const CompareRow& r : c.rows) {
    if (r.group != Group::kHeap || !r.stack) continue;
    const double bytes = side == FlameSide::kGrown ? r.delta_bytes : -r.delta_bytes;
    if (bytes > 0) trie.add(symbols.stack(*r.stack), bytes);
  }
  trie.count();
  const std::vector<bool> kept = keptFrames(trie, o);
  return TreeWriter(trie, kept, symbols).write();
}

std::string renderFlameSection(const Comparison& c, const SymbolTable& symbols,
                               const FlameOptions& o) {
  if (!hasHeapRows(c)) return "";
  std::ostringstream h;
  h << "<h2 id=\"flame\">Heap growth by stack: first → last</h2>" << kStyle
    << "<p class=\"muted\">Width is bytes in use that grew between the first and the last input, "
       "per stack as the comparison below counts them (sampled profiles: unsampled estimates). "
       "The top row is the allocating function; below each frame, its callers. Stacks that "
       "shrank are drawn apart, never netted. Click a frame to zoom; search highlights "
       "matching frames and shows their share.</p>"
    << "<div id=\"flame-controls\"><input id=\"flame-search\" type=\"search\" "
       "placeholder=\"search frames\" aria-label=\"search frames\"> <button id=\"flame-reset\" "
       "type=\"button\">Reset zoom</button></div>";
  writeSide(h, buildFlameTree(c, symbols, FlameSide::kGrown, o), symbols, FlameSide::kGrown);
  writeSide(h, buildFlameTree(c, symbols, FlameSide::kShrunk, o), symbols, FlameSide::kShrunk);
  h << kScript << "\n";
  return h.str();
}

}  // namespace leakscope::analysis
