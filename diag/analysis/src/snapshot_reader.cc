// Streaming reader of leakscope snapshots (docs/snapshot-format.md).
//
// A SAX handler builds small JSON values and hands them over as they
// complete: the top-level keys one by one, and the elements of the big arrays
// (tracked[].objects, sockets, heap.frames, heap.sites) one element at a time,
// so memory follows the model, not the file.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "char_source.h"
#include "leakscope/analysis/text.h"
#include "readers.h"

namespace leakscope::analysis {
namespace {

using json = nlohmann::json;

constexpr std::size_t kMaxDepth = 64;
// The largest heap figure (bytes or objects) a site may carry: 2^63. Any
// number of them adds up to a finite double, so no view prints inf or nan.
constexpr double kMaxFigure = 9223372036854775808.0;
// How much of an offending token or key an error message quotes.
constexpr std::size_t kMaxQuoted = 100;

// At most kMaxQuoted bytes of `s`, marked when cut.
std::string clip(std::string_view s) {
  if (s.size() <= kMaxQuoted) return std::string(s);
  return std::string(s.substr(0, kMaxQuoted)) + "...(" + std::to_string(s.size()) + " bytes)";
}

std::string baseName(std::string_view path) {
  const auto slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

// Typed access to the fields of one JSON object, remembering the first error
// with the JSON path it happened at.
class Fields {
 public:
  Fields(const json& object, std::string where, std::string& error)
      : object_(object), where_(std::move(where)), error_(error) {
    if (!object_.is_object() && error_.empty()) error_ = where_ + ": expected an object";
  }
  std::int64_t i64(const char* key, std::int64_t fallback = 0) const {
    const json* v = get(key);
    if (v == nullptr || v->is_null()) return fallback;
    if (v->is_number_unsigned()) {
      const auto u = v->get<std::uint64_t>();
      if (u <= static_cast<std::uint64_t>(INT64_MAX)) return static_cast<std::int64_t>(u);
    } else if (v->is_number_integer()) {
      return v->get<std::int64_t>();
    } else if (v->is_number_float()) {
      const double d = v->get<double>();
      if (d >= -9.2e18 && d <= 9.2e18) return static_cast<std::int64_t>(d);
    }
    fail(key, "expected an integer");
    return fallback;
  }
  std::uint64_t u64(const char* key) const {
    const json* v = get(key);
    if (v != nullptr && v->is_number_unsigned()) return v->get<std::uint64_t>();
    if (v != nullptr && v->is_number_integer() && v->get<std::int64_t>() >= 0) {
      return static_cast<std::uint64_t>(v->get<std::int64_t>());
    }
    fail(key, v == nullptr ? "missing" : "expected a non-negative integer");
    return 0;
  }
  // Sizes, counts and times: integers from 0 to INT64_MAX.
  std::int64_t count(const char* key) const {
    const std::int64_t v = i64(key);
    if (v >= 0) return v;
    fail(key, "must not be negative");
    return 0;
  }
  // Heap figures: numbers from 0 to kMaxFigure.
  double figure(const char* key) const {
    const double v = f64(key);
    if (v >= 0 && v <= kMaxFigure) return v;
    fail(key, "must be a number from 0 to 2^63");
    return 0;
  }
  double f64(const char* key, double fallback = 0) const {
    const json* v = get(key);
    if (v == nullptr || v->is_null()) return fallback;
    if (v->is_number()) return v->get<double>();
    fail(key, "expected a number");
    return fallback;
  }
  std::string str(const char* key) const {
    const json* v = get(key);
    if (v == nullptr || v->is_null()) return {};
    if (v->is_string()) return v->get<std::string>();
    fail(key, "expected a string");
    return {};
  }
  bool boolean(const char* key, bool fallback) const {
    const json* v = get(key);
    if (v == nullptr || v->is_null()) return fallback;
    if (v->is_boolean()) return v->get<bool>();
    fail(key, "expected true or false");
    return fallback;
  }
  bool has(const char* key) const { return get(key) != nullptr; }
  // Hex address or integer ("0x55d0c0de1234" or 1234).
  std::uint64_t hex(const char* key) const {
    const json* v = get(key);
    if (v == nullptr || v->is_null()) return 0;
    if (v->is_number_unsigned()) return v->get<std::uint64_t>();
    if (v->is_string()) {
      const auto& s = v->get_ref<const std::string&>();
      std::size_t i = (s.rfind("0x", 0) == 0) ? 2 : 0;
      std::uint64_t out = 0;
      if (i == s.size() || s.size() - i > 16) return fail(key, "expected a hex number"), 0;
      for (; i < s.size(); ++i) {
        const char c = s[i];
        int d = -1;
        if (c >= '0' && c <= '9') d = c - '0';
        if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        if (d < 0) return fail(key, "expected a hex number"), 0;
        out = out * 16 + static_cast<std::uint64_t>(d);
      }
      return out;
    }
    fail(key, "expected a hex number");
    return 0;
  }

 private:
  const json* get(const char* key) const {
    if (!object_.is_object()) return nullptr;
    auto it = object_.find(key);
    return it == object_.end() ? nullptr : &*it;
  }
  void fail(const char* key, const char* what) const {
    if (error_.empty()) error_ = where_ + "." + key + ": " + what;
  }
  const json& object_;
  std::string where_;
  std::string& error_;
};

// Turns the handed-over values into a Snapshot.
class Builder {
 public:
  Builder(Snapshot& s, SymbolTable& symbols) : s_(s), symbols_(symbols) {}

  std::string error;  // first semantic error (JSON path: reason)
  bool saw_format = false;
  // Header mode: stop as soon as format, sequence and taken are known.
  bool header_only = false;
  bool header_done = false;

  bool topLevel(const std::string& key, json&& v) {
    if (!readTopLevel(key, v)) return false;
    if (key == "sequence") saw_sequence_ = true;
    if (key == "taken") saw_taken_ = true;
    if (header_only && saw_format && saw_sequence_ && saw_taken_ && error.empty()) {
      header_done = true;
      return false;
    }
    return error.empty();
  }

  // An element of one of the streamed arrays. `outer` is the index of the
  // enclosing tracked[] entry for objects.
  bool element(const std::string& array, std::size_t outer, std::size_t index, json&& v) {
    if (array == "tracked/#/objects") return addObject(outer, index, v);
    if (array == "sockets") return addSocket(index, v);
    if (array == "heap/frames") return addFrame(index, v);
    if (array == "heap/sites") return addSite(index, v);
    return error.empty();
  }

  // Resolves sites against frames (either order in the file works).
  bool finish() {
    if (!saw_format) {
      error = "not a leakscope snapshot (no \"format\" key)";
      return false;
    }
    if (!heap_seen_) {
      s_.heap.available = false;
      s_.heap.reason = "no heap section";
    }
    std::unordered_map<StackId, std::size_t> index;
    std::vector<StringId> keys;
    for (std::size_t i = 0; i < raw_sites_.size(); ++i) {
      const RawSite& r = raw_sites_[i];
      keys.clear();
      for (std::uint64_t id : r.frames) {
        if (id >= frames_.size()) {
          error = "heap.sites[" + std::to_string(i) + "].stack: frame " + std::to_string(id) +
                  " is not in heap.frames";
          return false;
        }
        keys.push_back(frames_[id]);
      }
      const StackId stack = symbols_.internStack(keys);
      auto [it, added] = index.emplace(stack, s_.heap.sites.size());
      if (added) s_.heap.sites.push_back(HeapSite{stack, 0, 0, 0, 0});
      HeapSite& site = s_.heap.sites[it->second];
      site.inuse_objects += r.inuse_objects;
      site.inuse_bytes += r.inuse_bytes;
      site.alloc_objects += r.alloc_objects;
      site.alloc_bytes += r.alloc_bytes;
    }
    finishHeap(s_.heap);
    markMainModule(s_.heap, s_.process.exe, s_.process.build_id);
    std::sort(s_.kinds.begin(), s_.kinds.end(),
              [](const TrackedKind& a, const TrackedKind& b) { return a.name < b.name; });
    return true;
  }

 private:
  // false: stop reading (the error is set). Unknown keys are ignored: a
  // reader of version N reads any file of version N or older.
  bool readTopLevel(const std::string& key, json& v) {
    if (key == "format") return readFormat(v);
    if (key == "version") return readVersion(v);
    if (key == "sequence") return readSequence(v);
    if (key == "name") {
      if (!v.is_string()) return fail("name: expected a string");
      s_.name = v.get<std::string>();
    } else if (key == "taken") {
      readTaken(v);
    } else if (key == "trigger") {
      readTrigger(v);
    } else if (key == "process") {
      readProcess(v);
    } else if (key == "allocator") {
      readAllocator(v);
    } else if (key == "tracked") {
      return readTracked(v);
    } else if (key == "sockets_error") {
      if (v.is_string()) s_.sockets_error = v.get<std::string>();
    } else if (key == "heap") {
      readHeap(v);
    }
    return true;
  }

  bool readFormat(const json& v) {
    if (!v.is_string() || v.get<std::string>() != core::kSnapshotFormat) {
      error = "not a leakscope snapshot (format is " + clip(dumpJson(v)) + ")";
      return false;
    }
    saw_format = true;
    return true;
  }

  bool readVersion(const json& v) {
    if (!v.is_number_integer()) {
      error = "version: expected an integer";
      return false;
    }
    const bool huge = v.is_number_unsigned() && v.get<std::uint64_t>() > std::uint64_t{INT64_MAX};
    const auto version = huge ? INT64_MAX : v.get<std::int64_t>();
    if (version > core::kSnapshotVersion) {
      error = "snapshot version " + dumpJson(v) + " is newer than this leakscope reads (version " +
              std::to_string(core::kSnapshotVersion) + "); use a newer leakscope";
      return false;
    }
    if (version < 1) {
      error = "snapshot version " + std::to_string(version) + " is not valid";
      return false;
    }
    return true;
  }

  bool readSequence(const json& v) {
    if (!v.is_number_integer() ||
        (v.is_number_unsigned() && v.get<std::uint64_t>() > std::uint64_t{INT64_MAX})) {
      return fail("sequence: expected an integer");
    }
    s_.sequence = v.get<std::int64_t>();
    return true;
  }

  void readTaken(const json& v) {
    Fields f(v, "taken", error);
    s_.taken_unix_ns = f.count("unix_ns");
    s_.utc = f.str("utc");
  }

  void readTrigger(const json& v) {
    Fields f(v, "trigger", error);
    s_.trigger = f.str("reason");
    const std::string detail = f.str("detail");
    if (!detail.empty()) s_.trigger += " (" + detail + ")";
    s_.heap_snapshot_file = f.str("heap_snapshot");
  }

  void readProcess(const json& v) {
    Fields f(v, "process", error);
    s_.process.pid = f.count("pid");
    s_.process.exe = f.str("exe");
    s_.process.host = f.str("host");
    s_.process.build_id = f.str("build_id");
    s_.process.start_time_unix = f.figure("start_time_unix");
    s_.process.rss_bytes = f.count("rss_bytes");
    s_.process.virtual_bytes = f.count("virtual_bytes");
    s_.process.open_fds = f.count("open_fds");
    s_.process.max_fds = f.count("max_fds");
    s_.process.threads = f.count("threads");
    // Optional (added within version 1): absent in older files.
    s_.process.memory_limit_bytes = f.count("memory_limit_bytes");
    s_.process.memory_limit_source = f.str("memory_limit_source");
  }

  void readAllocator(const json& v) {
    Fields f(v, "allocator", error);
    s_.allocator_available = f.boolean("available", false);
    s_.allocated_bytes = f.count("allocated_bytes");
    s_.heap_bytes = f.count("heap_bytes");
  }

  // The kinds' objects came before, streamed (tracked/#/objects).
  bool readTracked(const json& v) {
    if (!v.is_array()) return fail("tracked: expected an array");
    for (std::size_t i = 0; i < v.size(); ++i) {
      const std::string where = "tracked[" + std::to_string(i) + "]";
      Fields f(v[i], where, error);
      TrackedKind k;
      k.name = f.str("kind");
      if (k.name.empty() && error.empty()) error = where + ".kind: missing";
      k.live = f.count("live");
      k.live_bytes = f.count("live_bytes");
      k.created_total = f.count("created_total");
      k.destroyed_total = f.count("destroyed_total");
      if (i < pending_objects_.size()) k.objects = std::move(pending_objects_[i]);
      std::sort(k.objects.begin(), k.objects.end(),
                [](const TrackedObject& a, const TrackedObject& b) { return a.id < b.id; });
      s_.kinds.push_back(std::move(k));
    }
    pending_objects_.clear();
    return true;
  }

  void readHeap(const json& v) {
    Fields f(v, "heap", error);
    heap_seen_ = true;
    s_.heap.available = f.boolean("available", true);
    s_.heap.reason = f.str("reason");
    s_.heap.mode = f.str("mode");
    s_.heap.format = f.str("format");
    s_.heap.sample_period = f.count("sample_period");
  }

  bool addObject(std::size_t outer, std::size_t index, const json& v) {
    Fields f(v, "tracked[" + std::to_string(outer) + "].objects[" + std::to_string(index) + "]",
             error);
    TrackedObject o;
    o.id = f.u64("id");
    o.birth_unix_ns = f.count("birth_unix_ns");
    o.bytes = f.count("bytes");
    o.label = symbols_.intern(f.str("label"));
    o.fd = static_cast<std::int32_t>(std::clamp<std::int64_t>(f.i64("fd", -1), -1, INT32_MAX));
    // Version 2; absent (version 1) or null: no owner declared.
    if (f.has("owner") && !v["owner"].is_null()) o.owner = f.u64("owner");
    if (outer >= pending_objects_.size()) pending_objects_.resize(outer + 1);
    pending_objects_[outer].push_back(o);
    return error.empty();
  }

  bool addSocket(std::size_t index, json& v) {
    Fields f(v, "sockets[" + std::to_string(index) + "]", error);
    Socket k;
    k.fd = static_cast<std::int32_t>(std::clamp<std::int64_t>(f.i64("fd", -1), -1, INT32_MAX));
    k.inode = static_cast<std::uint64_t>(f.count("inode"));
    k.protocol = f.str("protocol");
    k.local = f.str("local");
    k.remote = f.str("remote");
    k.state = f.str("state");
    k.path = f.str("path");
    k.peer = f.str("peer");
    if (f.has("owner") && !v["owner"].is_null()) k.owner = f.u64("owner");
    s_.sockets.push_back(std::move(k));
    return error.empty();
  }

  bool addFrame(std::size_t index, const json& v) {
    Fields f(v, "heap.frames[" + std::to_string(index) + "]", error);
    // The format says a frame's id is its index; holding it to that keeps
    // the table as big as the file made it, whatever ids it names.
    const std::int64_t id = f.i64("id", static_cast<std::int64_t>(index));
    FrameInfo fi;
    fi.function = f.str("function");
    fi.file = f.str("file");
    fi.line = static_cast<int>(std::clamp<std::int64_t>(f.i64("line"), 0, INT32_MAX));
    const std::string module = f.str("module");
    fi.module = baseName(module);
    fi.module_offset = f.hex("module_offset");
    noteModule(module, f.hex("address"), fi.module_offset);
    if (!error.empty()) return false;
    if (id < 0 || static_cast<std::uint64_t>(id) != index) {
      return fail("heap.frames[" + std::to_string(index) + "].id: " + std::to_string(id) +
                  " is not the frame's index " + std::to_string(index));
    }
    frames_.push_back(symbols_.internFrame(fi));
    return error.empty();
  }

  bool addSite(std::size_t index, json& v) {
    const std::string where = "heap.sites[" + std::to_string(index) + "]";
    Fields f(v, where, error);
    RawSite r;
    const bool estimated = f.has("estimated_inuse_bytes");
    r.inuse_objects = estimated ? f.figure("estimated_inuse_objects") : f.figure("inuse_objects");
    r.inuse_bytes = estimated ? f.figure("estimated_inuse_bytes") : f.figure("inuse_bytes");
    r.alloc_objects = f.figure("alloc_objects");
    r.alloc_bytes = f.figure("alloc_bytes");
    if (estimated && f.figure("inuse_bytes") > 0) {
      // Scale alloc figures like in-use ones (a sample carries live objects).
      const double scale = r.inuse_bytes / f.figure("inuse_bytes");
      r.alloc_objects *= scale;
      r.alloc_bytes *= scale;
      if (!(r.alloc_objects <= kMaxFigure && r.alloc_bytes <= kMaxFigure)) {
        return fail(where + ".estimated_inuse_bytes: scales alloc figures past 2^63");
      }
    }
    const json* stack = v.is_object() && v.contains("stack") ? &v["stack"] : nullptr;
    if (stack == nullptr || !stack->is_array()) return fail(where + ".stack: expected an array");
    for (const auto& id : *stack) {
      if (!id.is_number_unsigned()) return fail(where + ".stack: expected frame ids");
      r.frames.push_back(id.get<std::uint64_t>());
    }
    raw_sites_.push_back(std::move(r));
    return error.empty();
  }

  // The frames' modules, for pprof mappings: where each was loaded (a
  // frame's address minus its offset) and how far its frames reach.
  void noteModule(const std::string& path, std::uint64_t address, std::uint64_t offset) {
    if (path.empty()) return;
    auto [it, added] = module_index_.try_emplace(path, s_.heap.modules.size());
    if (added) s_.heap.modules.push_back(HeapModule{baseName(path), path, 0, 0, ""});
    HeapModule& m = s_.heap.modules[it->second];
    if (m.start == 0 && address >= offset) m.start = address - offset;
    if (address < UINT64_MAX) m.limit = std::max(m.limit, address + 1);
  }

  struct RawSite {
    double inuse_objects = 0, inuse_bytes = 0, alloc_objects = 0, alloc_bytes = 0;
    std::vector<std::uint64_t> frames;
  };
  bool fail(std::string message) {
    if (error.empty()) error = std::move(message);
    return false;
  }

  Snapshot& s_;
  SymbolTable& symbols_;
  bool heap_seen_ = false;
  bool saw_sequence_ = false;
  bool saw_taken_ = false;
  std::vector<std::vector<TrackedObject>> pending_objects_;
  std::vector<StringId> frames_;
  std::vector<RawSite> raw_sites_;
  std::unordered_map<std::string, std::size_t> module_index_;  // path -> heap.modules
};

// SAX events → small JSON values → Builder.
class Sax : public nlohmann::json_sax<json> {
 public:
  Sax(Builder& b, CharSource& src) : b_(b), src_(src) {}

  std::string syntax_error;
  bool stopped_by_builder = false;

  bool null() override { return add(json(nullptr)); }
  bool boolean(bool v) override { return add(json(v)); }
  bool number_integer(number_integer_t v) override { return add(json(v)); }
  bool number_unsigned(number_unsigned_t v) override { return add(json(v)); }
  bool number_float(number_float_t v, const string_t&) override { return add(json(v)); }
  bool string(string_t& v) override { return add(json(std::move(v))); }
  bool binary(binary_t&) override { return add(json(nullptr)); }
  bool start_object(std::size_t) override { return open(false); }
  bool key(string_t& k) override {
    Level& top = stack_.back();
    // JSON leaves duplicate keys undefined and readers disagree on which one
    // wins; a snapshot never has them.
    const bool seen = top.skip             ? false
                      : stack_.size() == 1 ? !top_keys_.insert(k).second
                                           : top.value.contains(k);
    if (seen) {
      syntax_error = "byte " + std::to_string(src_.offset()) + " (line " +
                     std::to_string(src_.line()) + "): duplicate key \"" + clip(k) + "\"";
      return false;
    }
    top.key = std::move(k);
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(true); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    // nlohmann's message: "[json.exception.parse_error.101] parse error at line 1,
    // column 2: syntax error while parsing value - invalid literal; last read: 'x'"
    std::string what = ex.what();
    const auto colon = what.find("error while parsing");
    if (colon != std::string::npos)
      what = what.substr(colon);
    else if (auto p = what.find("] "); p != std::string::npos)
      what = what.substr(p + 2);
    // The token nlohmann quotes can be the rest of the file.
    constexpr std::string_view kLastRead = "last read: '";
    if (auto t = what.find(kLastRead); t != std::string::npos) {
      const std::size_t from = t + kLastRead.size();
      std::size_t to = what.rfind("'; expected ");
      if (to == std::string::npos || to < from) to = what.size() - (what.back() == '\'' ? 1 : 0);
      what = what.substr(0, from) + clip(std::string_view(what).substr(from, to - from)) +
             (to < what.size() ? what.substr(to) : "'");
    }
    if (!src_.readError().empty()) {
      what = src_.readError();
    } else if (src_.reachedEnd()) {
      what = "the file ends early (truncated?): " + what;
    }
    syntax_error =
        "byte " + std::to_string(position) + " (line " + std::to_string(src_.line()) + "): " + what;
    return false;
  }

 private:
  struct Level {
    bool is_array = false;
    bool streamed = false;
    bool skip = false;  // an unknown top-level key's value: parsed, not kept
    std::string name;   // key in the parent; "#" for an array element
    std::string key;    // objects: the key of the value being read
    std::size_t count = 0;
    json value;
  };

  // "tracked/#/objects": the names of the open levels below the root, then `leaf`.
  std::string pathOf(const std::string& leaf) const {
    std::string p;
    for (std::size_t i = 1; i < stack_.size(); ++i) p += (p.empty() ? "" : "/") + stack_[i].name;
    if (!leaf.empty()) p += (p.empty() ? "" : "/") + leaf;
    return p;
  }

  bool open(bool is_array) {
    if (stack_.size() >= kMaxDepth) {
      syntax_error = "byte " + std::to_string(src_.offset()) + ": nesting deeper than " +
                     std::to_string(kMaxDepth) + " levels";
      return false;
    }
    Level l;
    l.is_array = is_array;
    if (!stack_.empty()) l.name = stack_.back().is_array ? "#" : stack_.back().key;
    if (!stack_.empty()) {
      l.skip = stack_.back().skip || (stack_.size() == 1 && !isKnownTopLevel(l.name));
    }
    if (l.skip) {
      stack_.push_back(std::move(l));
      return true;
    }
    if (stack_.empty() && is_array) {
      syntax_error = "byte 0: not a leakscope snapshot (a JSON array, not an object)";
      return false;
    }
    if (is_array) {
      const std::string p = pathOf(l.name);
      l.streamed =
          p == "tracked/#/objects" || p == "sockets" || p == "heap/frames" || p == "heap/sites";
      if (!l.streamed) l.value = json::array();
    } else {
      l.value = json::object();
    }
    stack_.push_back(std::move(l));
    return true;
  }

  bool close() {
    Level l = std::move(stack_.back());
    stack_.pop_back();
    if (stack_.empty()) return true;  // the document's end
    if (l.streamed) return true;      // its elements went to the builder already
    if (l.skip) return true;
    return add(std::move(l.value));
  }

  bool add(json&& v) {
    if (stack_.empty()) {
      syntax_error = "byte 0: not a leakscope snapshot (a JSON value, not an object)";
      return false;
    }
    Level& top = stack_.back();
    if (top.skip) return true;
    bool ok = true;
    if (top.is_array) {
      if (top.streamed) {
        // tracked/#/objects: the tracked entry's index is its array's count.
        const std::size_t outer = stack_.size() >= 3 ? stack_[stack_.size() - 3].count : 0;
        ok = b_.element(pathOf(""), outer, top.count, std::move(v));
      } else {
        top.value.push_back(std::move(v));
      }
      ++top.count;
    } else if (stack_.size() == 1) {
      ok = b_.topLevel(top.key, std::move(v));
    } else {
      top.value[top.key] = std::move(v);
    }
    if (!ok) stopped_by_builder = true;
    return ok;
  }

  // Values of unknown keys (a newer writer's additions) are skipped without
  // building them: memory follows what the model keeps.
  static bool isKnownTopLevel(const std::string& key) {
    static const char* const kKnown[] = {"format",  "version", "sequence",      "name",
                                         "taken",   "trigger", "process",       "allocator",
                                         "tracked", "sockets", "sockets_error", "heap"};
    for (const char* k : kKnown) {
      if (key == k) return true;
    }
    return false;
  }

  Builder& b_;
  CharSource& src_;
  std::vector<Level> stack_;
  std::set<std::string> top_keys_;
};

}  // namespace

Result<Snapshot> readSnapshot(CharSource& src, const std::string& path, SymbolTable& symbols) {
  Snapshot s;
  s.path = path;
  s.source = SourceKind::kSnapshot;
  Builder builder(s, symbols);
  Sax sax(builder, src);
  const bool ok = json::sax_parse(src.begin(), CharSource::end(), &sax);
  if (!ok || !builder.error.empty()) {
    if (!sax.syntax_error.empty()) return Error{Errc::kParse, path + ": " + sax.syntax_error};
    return Error{Errc::kParse,
                 path + ": " + (builder.error.empty() ? "parse failed" : builder.error)};
  }
  if (!builder.finish()) return Error{Errc::kParse, path + ": " + builder.error};
  return s;
}

Result<InputHeader> readSnapshotHeader(CharSource& src, const std::string& path) {
  // The writer puts format, sequence and taken first, so ordering a series
  // reads a few hundred bytes per file.
  Snapshot s;
  SymbolTable scratch;
  Builder builder(s, scratch);
  builder.header_only = true;
  Sax sax(builder, src);
  (void)json::sax_parse(src.begin(), CharSource::end(), &sax);
  if (!builder.header_done) {
    if (!sax.syntax_error.empty()) return Error{Errc::kParse, path + ": " + sax.syntax_error};
    if (!builder.error.empty()) return Error{Errc::kParse, path + ": " + builder.error};
    if (!builder.saw_format) {
      return Error{Errc::kParse, path + ": not a leakscope snapshot (no \"format\" key)"};
    }
  }
  InputHeader h;
  h.path = path;
  h.source = SourceKind::kSnapshot;
  h.taken_unix_ns = s.taken_unix_ns;
  h.sequence = s.sequence;
  return h;
}

}  // namespace leakscope::analysis
