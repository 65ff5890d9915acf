#include "export_pprof.h"

#include <profile.pb.h>
#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <map>
#include <unordered_map>
#include <utility>
#include <vector>

#include "leakscope/analysis/text.h"

namespace leakscope::analysis {
namespace {

namespace pp = perftools::profiles;
using core::Errc;
using core::Error;
using core::Result;

// Which values each sample carries, in the order of the sample types.
struct ValueLayout {
  bool alloc = false;    // full profiles count every allocation
  bool tracked = false;  // leakscope snapshots have tracked kinds
  std::size_t size() const { return 2u + (alloc ? 2u : 0u) + (tracked ? 2u : 0u); }
  std::size_t trackedAt() const { return alloc ? 4u : 2u; }
};

// Values are held within +-2^62 so that a growth profile's difference of two
// can never overflow int64; the readers allow figures up to 2^63, far past
// any real heap.
constexpr std::int64_t kMaxValue = std::int64_t{1} << 62;

// Whole units, as profile.proto's int64 values; the model's figures are
// doubles because sampled ones are estimates.
std::int64_t whole(double v) {
  if (!(v > -static_cast<double>(kMaxValue))) return -kMaxValue;  // NaN too
  if (v > static_cast<double>(kMaxValue)) return kMaxValue;
  return std::llround(v);
}

// A heap site's values, or a stack's change between two inputs.
std::vector<std::int64_t> siteValues(const HeapSite& s, const ValueLayout& layout) {
  std::vector<std::int64_t> v(layout.size(), 0);
  v[0] = whole(s.inuse_objects);
  v[1] = whole(s.inuse_bytes);
  if (layout.alloc) {
    v[2] = whole(s.alloc_objects);
    v[3] = whole(s.alloc_bytes);
  }
  return v;
}

std::vector<std::int64_t> minus(std::vector<std::int64_t> a, const std::vector<std::int64_t>& b) {
  for (std::size_t i = 0; i < a.size(); ++i) a[i] -= b[i];
  return a;
}

bool allZero(const std::vector<std::int64_t>& v) {
  for (std::int64_t x : v) {
    if (x != 0) return false;
  }
  return true;
}

// The two sides of one stack (or kind) in a growth profile; a side that
// lacks it counts as zero.
template <typename T>
struct Pair {
  const T* target = nullptr;
  const T* base = nullptr;
};

// Builds one Profile message: the string table, functions, locations and
// mappings are interned as samples need them (ids start at 1; 0 means none
// in profile.proto).
class ProfileBuilder {
 public:
  ProfileBuilder(const SymbolTable& symbols, const Snapshot& target)
      : symbols_(symbols), target_(target) {
    profile_.add_string_table("");  // string_table[0] must be ""
    layout_.alloc = target.heap.exact();
    layout_.tracked = target.source == SourceKind::kSnapshot;
  }

  // Sample types, period and the profile's own facts.
  void header(const Snapshot* base) {
    addType("inuse_objects", "count");
    addType("inuse_space", "bytes");
    if (layout_.alloc) {
      addType("alloc_objects", "count");
      addType("alloc_space", "bytes");
    }
    if (layout_.tracked) {
      addType("tracked_objects", "count");
      addType("tracked_space", "bytes");
    }
    profile_.set_default_sample_type(str("inuse_space"));
    pp::ValueType* period = profile_.mutable_period_type();
    period->set_type(str("space"));
    period->set_unit(str("bytes"));
    profile_.set_period(target_.heap.sample_period);
    profile_.set_time_nanos(target_.taken_unix_ns);
    if (base != nullptr && target_.taken_unix_ns > base->taken_unix_ns) {
      profile_.set_duration_nanos(target_.taken_unix_ns - base->taken_unix_ns);
    }
    profile_.add_comment(
        str(target_.heap.exact()
                ? "leakscope: full heap profile, exact figures"
                : "leakscope: sampled heap profile, figures unsampled (estimates), period " +
                      std::to_string(target_.heap.sample_period) + " bytes"));
    if (base != nullptr) profile_.add_comment(str("leakscope: growth since " + base->path));
    addMappings(target_.heap.modules);
    if (base != nullptr) addMappings(base->heap.modules);
  }

  // One sample per heap stack: its values, or with a base their change.
  void heap(const Snapshot* base) {
    std::map<StackId, Pair<HeapSite>> stacks;
    for (const HeapSite& s : target_.heap.sites) stacks[s.stack].target = &s;
    if (base != nullptr) {
      for (const HeapSite& s : base->heap.sites) stacks[s.stack].base = &s;
    }
    const std::vector<std::int64_t> none(layout_.size(), 0);
    for (const auto& [stack, p] : stacks) {
      const auto t = p.target != nullptr ? siteValues(*p.target, layout_) : none;
      const auto values = p.base != nullptr ? minus(t, siteValues(*p.base, layout_)) : t;
      if (allZero(values)) continue;
      pp::Sample* s = profile_.add_sample();
      for (StringId frame : symbols_.stack(stack)) s->add_location_id(frameLocation(frame));
      for (std::int64_t v : values) s->add_value(v);
    }
  }

  // One sample per tracked kind, under a frame of its own and labelled
  // kind=NAME; its values only in the tracked_* types.
  void tracked(const Snapshot* base) {
    if (!layout_.tracked) return;
    std::map<std::string, Pair<TrackedKind>> kinds;
    for (const TrackedKind& k : target_.kinds) kinds[k.name].target = &k;
    if (base != nullptr) {
      for (const TrackedKind& k : base->kinds) kinds[k.name].base = &k;
    }
    for (const auto& [name, p] : kinds) {
      std::vector<std::int64_t> values(layout_.size(), 0);
      const std::size_t at = layout_.trackedAt();
      for (const auto& [k, sign] : {std::pair{p.target, 1}, std::pair{p.base, -1}}) {
        if (k == nullptr) continue;
        values[at] += sign * whole(static_cast<double>(k->objects.size()));
        values[at + 1] += sign * std::clamp(k->live_bytes, -kMaxValue, kMaxValue);
      }
      if (allZero(values)) continue;
      pp::Sample* s = profile_.add_sample();
      s->add_location_id(syntheticLocation("[tracked] " + name));
      for (std::int64_t v : values) s->add_value(v);
      pp::Label* label = s->add_label();
      label->set_key(str("kind"));
      label->set_str(str(name));
    }
  }

  const pp::Profile& profile() const { return profile_; }

 private:
  // profile.proto's strings are proto3 `string`s: UTF-8 only, which names
  // and paths read from an input need not be.
  std::int64_t str(const std::string& s) {
    auto [it, added] = strings_.try_emplace(s, profile_.string_table_size());
    if (added) profile_.add_string_table(validUtf8(s));
    return it->second;
  }

  void addType(const char* type, const char* unit) {
    pp::ValueType* t = profile_.add_sample_type();
    t->set_type(str(type));
    t->set_unit(str(unit));
  }

  // Mappings for the files the input names, in its order (the main
  // executable first: pprof takes the first mapping for the program).
  void addMappings(const std::vector<HeapModule>& modules) {
    for (const HeapModule& m : modules) {
      if (mappings_.count(m.name) != 0) continue;
      pp::Mapping* out = profile_.add_mapping();
      out->set_id(static_cast<std::uint64_t>(profile_.mapping_size()));
      out->set_memory_start(m.start);
      out->set_memory_limit(std::max(m.limit, m.start));
      out->set_filename(str(m.path));
      if (!m.build_id.empty()) out->set_build_id(str(m.build_id));
      // The frames come symbolized: pprof must not look the addresses up
      // again in whatever file has that name on the reading machine.
      out->set_has_functions(true);
      mappings_.emplace(m.name, Mapped{out->id(), m.start});
    }
  }

  // A frame of the model: one function and one location per frame key
  // (what leakscope groups by), named as leakscope names it.
  std::uint64_t frameLocation(StringId key) {
    if (auto it = locations_.find(key); it != locations_.end()) return it->second;
    const FrameInfo& f = symbols_.frame(key);
    pp::Location* loc = newLocation();
    auto m = f.module.empty() ? mappings_.end() : mappings_.find(f.module);
    if (m == mappings_.end() && !f.module.empty()) {
      addMappings({HeapModule{f.module, f.module, 0, 0, ""}});
      m = mappings_.find(f.module);
    }
    if (m != mappings_.end()) {
      loc->set_mapping_id(m->second.id);
      loc->set_address(m->second.start + f.module_offset);
      if (!f.file.empty()) markFiles(m->second.id, f.line > 0);
    }
    pp::Line* line = loc->add_line();
    line->set_function_id(function(symbols_.str(key), f.file));
    line->set_line(f.line);
    locations_.emplace(key, loc->id());
    return loc->id();
  }

  std::uint64_t syntheticLocation(const std::string& name) {
    pp::Location* loc = newLocation();
    loc->add_line()->set_function_id(function(name, ""));
    return loc->id();
  }

  pp::Location* newLocation() {
    pp::Location* loc = profile_.add_location();
    loc->set_id(static_cast<std::uint64_t>(profile_.location_size()));
    return loc;
  }

  std::uint64_t function(const std::string& name, const std::string& file) {
    pp::Function* fn = profile_.add_function();
    fn->set_id(static_cast<std::uint64_t>(profile_.function_size()));
    fn->set_name(str(name));
    fn->set_system_name(str(name));
    fn->set_filename(str(file));
    return fn->id();
  }

  void markFiles(std::uint64_t mapping_id, bool lines) {
    pp::Mapping* m = profile_.mutable_mapping(static_cast<int>(mapping_id - 1));
    m->set_has_filenames(true);
    if (lines) m->set_has_line_numbers(true);
  }

  struct Mapped {
    std::uint64_t id;
    std::uint64_t start;
  };
  const SymbolTable& symbols_;
  const Snapshot& target_;
  ValueLayout layout_;
  pp::Profile profile_;
  std::unordered_map<std::string, std::int64_t> strings_;
  std::unordered_map<std::string, Mapped> mappings_;  // by module base name
  std::unordered_map<StringId, std::uint64_t> locations_;
};

// gzip framing (16 + MAX_WBITS), as pprof and Pyroscope expect a .pb.gz.
Result<std::string> gzip(const std::string& raw) {
  z_stream z{};
  if (::deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
    return Error{Errc::kIo, "gzip: cannot start zlib"};
  }
  std::string out(::deflateBound(&z, static_cast<uLong>(raw.size())), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  z.avail_in = static_cast<uInt>(raw.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = ::deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  ::deflateEnd(&z);
  if (rc != Z_STREAM_END) return Error{Errc::kIo, "gzip: compression failed"};
  return out;
}

// Why `s` cannot be exported, or "" when it can.
std::string unexportable(const Snapshot& s) {
  if (s.source == SourceKind::kV8HeapSnapshot) {
    return s.path + ": a V8 heap snapshot has no native heap profile to export";
  }
  if (!s.heap.available) {
    return s.path + ": no heap profile to export (" +
           (s.heap.reason.empty() ? std::string("heap profiling was off") : s.heap.reason) + ")";
  }
  return "";
}

std::string kindOf(const Snapshot& s) {
  return std::string(sourceName(s.source)) + " with a " + s.heap.mode + " heap profile";
}

}  // namespace

Result<std::string> exportPprof(const Snapshot& target, const Snapshot* base,
                                const SymbolTable& symbols) {
  for (const Snapshot* s : {&target, base}) {
    if (s == nullptr) continue;
    if (std::string why = unexportable(*s); !why.empty()) {
      return Error{Errc::kInvalidArgument, why};
    }
  }
  if (base != nullptr && (base->source != target.source || base->heap.mode != target.heap.mode)) {
    return Error{Errc::kInvalidArgument, "--base " + base->path + " is a " + kindOf(*base) + ", " +
                                             target.path + " a " + kindOf(target) +
                                             ": a growth profile needs two of the same kind"};
  }
  ProfileBuilder b(symbols, target);
  b.header(base);
  b.heap(base);
  b.tracked(base);
  // protobuf's own limit for one message.
  if (b.profile().ByteSizeLong() > static_cast<std::size_t>(INT_MAX)) {
    return Error{Errc::kInvalidArgument, target.path + ": the profile would exceed 2 GiB"};
  }
  std::string raw;
  if (!b.profile().SerializeToString(&raw)) return Error{Errc::kIo, "cannot serialize the profile"};
  return gzip(raw);
}

}  // namespace leakscope::analysis
