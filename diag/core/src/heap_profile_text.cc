// gperftools' text heap profile format: the parser and unsampling, with no
// dependency on tcmalloc itself (the analysis library and the fuzzers link
// only this, through leakscope::core).
#include <cxxabi.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string>

#include "leakscope/core/heap_profile_text.h"

namespace leakscope::core {
namespace {

constexpr std::string_view kMappedLibraries = "MAPPED_LIBRARIES:";

// A cursor over one line; each take*() skips leading spaces.
struct Cursor {
  std::string_view s;
  void skipSpaces() {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  }
  bool take(char c) {
    skipSpaces();
    if (s.empty() || s.front() != c) return false;
    s.remove_prefix(1);
    return true;
  }
  bool takeWord(std::string_view w) {
    skipSpaces();
    if (s.substr(0, w.size()) != w) return false;
    s.remove_prefix(w.size());
    return true;
  }
  bool takeInt(std::int64_t& out) {
    skipSpaces();
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec != std::errc()) return false;
    s.remove_prefix(static_cast<std::size_t>(p - s.data()));
    return true;
  }
  bool takeAddress(std::uint64_t& out) {
    skipSpaces();
    if (s.size() < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) return false;
    auto [p, ec] = std::from_chars(s.data() + 2, s.data() + s.size(), out, 16);
    if (ec != std::errc()) return false;
    s.remove_prefix(static_cast<std::size_t>(p - s.data()));
    return true;
  }
  bool atEnd() {
    skipSpaces();
    return s.empty() || s == "\r";
  }
};

// "N: B [N: B]". Numbers past int64 fail to parse (from_chars reports the
// overflow); negative ones are refused: gperftools never writes them, and a
// negative size would turn into nonsense (or nan) downstream.
bool takeCounts(Cursor& c, HeapRecord& r) {
  return c.takeInt(r.inuse_objects) && c.take(':') && c.takeInt(r.inuse_bytes) && c.take('[') &&
         c.takeInt(r.alloc_objects) && c.take(':') && c.takeInt(r.alloc_bytes) && c.take(']') &&
         r.inuse_objects >= 0 && r.inuse_bytes >= 0 && r.alloc_objects >= 0 && r.alloc_bytes >= 0;
}

// At most 40 bytes of the rest of a line, for an error message.
std::string quoted(std::string_view s) {
  return s.size() <= 40 ? std::string(s) : std::string(s.substr(0, 40)) + "...";
}

Error lineError(std::size_t line_no, const std::string& what) {
  return Error{Errc::kParse, "line " + std::to_string(line_no) + ": " + what};
}

// The first data line, into the totals, format and sampling period of `p`:
// heap profile:  N:  B [  N:  B] @ heap_v2/524288   |   ... @ heapprofile
Status parseHeader(Cursor& c, std::size_t line_no, RawHeapProfile& p) {
  if (!c.takeWord("heap profile:")) {
    return lineError(line_no, "expected 'heap profile:' (not a gperftools heap profile)");
  }
  if (!takeCounts(c, p.totals)) {
    return lineError(line_no, "malformed totals 'N: B [N: B]' (non-negative integers)");
  }
  if (!c.take('@')) return lineError(line_no, "expected '@' after the totals");
  c.skipSpaces();
  if (c.takeWord("heap_v2/")) {
    p.format = "heap_v2";
    if (!c.takeInt(p.sample_period) || p.sample_period <= 0) {
      return lineError(line_no, "heap_v2 without a positive sampling period");
    }
  } else if (c.takeWord("heapprofile")) {
    p.format = "heapprofile";
  } else {
    return lineError(
        line_no, "unknown profile type '" + quoted(c.s) + "' (expected heap_v2/R or heapprofile)");
  }
  return Ok{};
}

// Every later data line: "N: B [N: B] @ 0xADDR 0xADDR ...".
Result<HeapRecord> parseRecord(Cursor& c, std::size_t line_no) {
  HeapRecord r;
  if (!takeCounts(c, r)) {
    return lineError(line_no, "malformed record 'N: B [N: B] @ ...' (non-negative integers)");
  }
  if (!c.take('@')) return lineError(line_no, "expected '@' before the stack");
  while (!c.atEnd()) {
    std::uint64_t a = 0;
    if (!c.takeAddress(a)) return lineError(line_no, "malformed stack address");
    r.stack.push_back(a);
  }
  return r;
}

}  // namespace

Result<RawHeapProfile> parseHeapProfile(std::string_view text) {
  RawHeapProfile p;
  std::size_t line_no = 0;
  std::size_t pos = 0;
  bool header = false;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view line = text.substr(pos, nl - pos);
    ++line_no;
    pos = nl + 1;
    // "%warn ..." lines are gperftools' own remarks, not data.
    if (line.empty() || line.front() == '%') continue;
    if (line.substr(0, kMappedLibraries.size()) == kMappedLibraries) {
      p.mapped_libraries = std::string(text.substr(std::min(pos, text.size())));
      break;
    }
    Cursor c{line};
    if (!header) {
      if (Status s = parseHeader(c, line_no, p); !s.ok()) return s.error();
      header = true;
      continue;
    }
    auto r = parseRecord(c, line_no);
    if (!r.ok()) return r.error();
    p.records.push_back(std::move(*r));
  }
  if (!header) return lineError(line_no, "empty input: no 'heap profile:' header");
  return p;
}

bool isAllocatorFrame(std::string_view module, std::string_view function) {
  const auto slash = module.rfind('/');
  const std::string_view base = slash == std::string_view::npos ? module : module.substr(slash + 1);
  if (base.substr(0, 11) == "libtcmalloc") return true;
  static constexpr std::string_view kFunctions[] = {"malloc",   "calloc",         "realloc",
                                                    "memalign", "posix_memalign", "aligned_alloc",
                                                    "valloc",   "pvalloc"};
  for (std::string_view fn : kFunctions) {
    if (function == fn) return true;
  }
  return function.substr(0, 12) == "operator new";
}

std::string demangleSymbol(const char* name) {
  if (name == nullptr) return {};
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  if (status != 0 || d == nullptr) return name;
  std::string out(d);
  std::free(d);
  return out;
}

Estimate unsample(std::int64_t objects, std::int64_t bytes, std::int64_t period) {
  // No size, no estimate (pprof does the same): 1/(1-exp(0)) is infinite.
  if (objects <= 0 || bytes <= 0 || period <= 0) {
    return Estimate{static_cast<double>(objects), static_cast<double>(bytes)};
  }
  const double avg = static_cast<double>(bytes) / static_cast<double>(objects);
  // -expm1(-x) rather than 1-exp(-x): for the tiny x of many objects of a
  // few bytes the latter rounds to 0 and the scale to infinity.
  const double scale = 1.0 / -std::expm1(-avg / static_cast<double>(period));
  return Estimate{static_cast<double>(objects) * scale, static_cast<double>(bytes) * scale};
}

}  // namespace leakscope::core
