// Raw gperftools heap profiles: `heap profile: ... @ heapprofile` (the full
// profiler's dumps) and `@ heap_v2/R` (tcmalloc's sampled heap). Addresses are
// symbolized offline from the profile's MAPPED_LIBRARIES section (the
// /proc/PID/maps of the profiled process) with libdwfl, so stacks compare by
// function name across files and restarts.
#include <elfutils/libdwfl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <unordered_map>

#include "leakscope/core/heap_profile_text.h"
#include "readers.h"
#include "safe_open.h"

namespace leakscope::analysis {
namespace {

std::string baseName(std::string_view path) {
  const auto slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

struct Mapping {
  std::uint64_t start = 0;
  std::uint64_t end = 0;
  std::uint64_t offset = 0;
  bool executable = false;
  std::string path;
};

bool parseHex(std::string_view s, std::uint64_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, 16);
  return ec == std::errc() && p == s.data() + s.size();
}

// /proc/PID/maps lines: "start-end perms offset dev inode [path]".
std::vector<Mapping> parseMappings(std::string_view text) {
  std::vector<Mapping> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    std::vector<std::string_view> f;
    std::size_t i = 0;
    while (f.size() < 5 && i < line.size()) {
      while (i < line.size() && line[i] == ' ') ++i;
      const std::size_t b = i;
      while (i < line.size() && line[i] != ' ') ++i;
      if (i > b) f.push_back(line.substr(b, i - b));
    }
    while (i < line.size() && line[i] == ' ') ++i;
    if (f.size() < 5) continue;
    Mapping m;
    const auto dash = f[0].find('-');
    if (dash == std::string_view::npos || !parseHex(f[0].substr(0, dash), m.start) ||
        !parseHex(f[0].substr(dash + 1), m.end) || !parseHex(f[2], m.offset)) {
      continue;
    }
    m.executable = f[1].size() >= 3 && f[1][2] == 'x';
    m.path = std::string(line.substr(i));
    if (m.path.empty() || m.path.front() != '/') continue;  // [heap], anonymous, ...
    if (auto d = m.path.find(" (deleted)"); d != std::string::npos) m.path.resize(d);
    out.push_back(std::move(m));
  }
  return out;
}

// Only ELF files go to libdwfl: it would also inflate gzip/bzip2/xz
// "ELF" files into memory, which a profile must not be able to ask for.
bool isElf(int fd) {
  char magic[4];
  return ::pread(fd, magic, sizeof magic, 0) == 4 && std::memcmp(magic,
                                                                 "\x7f"
                                                                 "ELF",
                                                                 4) == 0;
}

int noElf(Dwfl_Module*, void**, const char*, Dwarf_Addr, char**, Elf** elf) {
  *elf = nullptr;
  return -1;
}

int noDebuginfo(Dwfl_Module*, void**, const char*, Dwarf_Addr, const char*, const char*, GElf_Word,
                char**) {
  return -1;
}

// libdwfl over the files a profile's process had mapped, at the addresses
// they had. Files that do not exist here leave their frames unnamed
// (module+offset), which still match across profiles of the same build.
class OfflineSymbolizer {
 public:
  OfflineSymbolizer(const std::vector<Mapping>& maps, const std::string& binary) {
    // Every module is reported with its file already open; libdwfl must not
    // go looking for others (by build id, under debuginfo paths).
    callbacks_.find_elf = noElf;
    callbacks_.find_debuginfo = noDebuginfo;
    callbacks_.section_address = dwfl_offline_section_address;
    callbacks_.debuginfo_path = &debuginfo_path_;
    dwfl_.reset(dwfl_begin(&callbacks_));
    // One module per file, loaded where its offset-0 page was mapped.
    std::map<std::string, std::uint64_t> base;
    std::string main_path;
    for (const Mapping& m : maps) {
      if (main_path.empty()) main_path = m.path;
      auto [it, added] = base.emplace(m.path, m.start - m.offset);
      if (!added && m.offset == 0) it->second = m.start;
      modules_.push_back({m.start, m.end, m.path});
    }
    main_path_ = main_path;
    base_ = base;
    if (dwfl_ == nullptr) return;
    dwfl_report_begin(dwfl_.get());
    for (const auto& [path, b] : base) {
      // The user's --binary stands in for the main program when its file is
      // not here (or has the same name); it may be a symlink.
      const bool use_binary =
          !binary.empty() && (baseName(path) == baseName(binary) ||
                              (path == main_path && !openRegularFile(path, FollowLinks::kNo)));
      auto fd = use_binary ? openRegularFile(binary, FollowLinks::kYes)
                           : openRegularFile(path, FollowLinks::kNo);
      if (!fd || !isElf(fd->get())) continue;
      // libdwfl reads the descriptor it is given and owns it once the module
      // is reported; it never opens the path itself.
      const std::string& file = use_binary ? binary : path;
      Dwfl_Module* dm =
          dwfl_report_elf(dwfl_.get(), path.c_str(), file.c_str(), fd->get(), b, false);
      if (dm != nullptr) {
        (void)fd->release();
        build_ids_[path] = buildId(dm);
      }
    }
    dwfl_report_end(dwfl_.get(), nullptr, nullptr);
    std::sort(modules_.begin(), modules_.end(),
              [](const Module& a, const Module& b) { return a.start < b.start; });
  }

  // The mapped files, main program first (the first file mapping of
  // /proc/PID/maps), with the build id of the file symbolized from.
  std::vector<HeapModule> heapModules() const {
    std::vector<HeapModule> out;
    for (const auto& [path, b] : base_) {
      HeapModule h{baseName(path), path, b, 0, ""};
      for (const Module& m : modules_) {
        if (m.path == path) h.limit = std::max(h.limit, m.end);
      }
      if (auto it = build_ids_.find(path); it != build_ids_.end()) h.build_id = it->second;
      out.push_back(std::move(h));
    }
    auto main = std::find_if(out.begin(), out.end(),
                             [&](const HeapModule& h) { return h.path == main_path_; });
    if (main != out.end()) std::rotate(out.begin(), main, main + 1);
    return out;
  }

  // `with_line`: also look up file:line (the costly part; callers ask only
  // for the first address of each function, which is what gets displayed).
  FrameInfo lookup(std::uint64_t address, bool is_return_address, bool with_line) {
    FrameInfo f;
    const std::uint64_t pc = is_return_address && address > 0 ? address - 1 : address;
    auto m = std::upper_bound(modules_.begin(), modules_.end(), pc,
                              [](std::uint64_t v, const Module& mm) { return v < mm.start; });
    if (m != modules_.begin() && pc < std::prev(m)->end) {
      const std::string& path = std::prev(m)->path;
      f.module = baseName(path);
    }
    Dwfl_Module* dm = dwfl_ == nullptr ? nullptr : dwfl_addrmodule(dwfl_.get(), pc);
    if (dm != nullptr) {
      Dwarf_Addr start = 0;
      const char* name =
          dwfl_module_info(dm, nullptr, &start, nullptr, nullptr, nullptr, nullptr, nullptr);
      if (name != nullptr) f.module = baseName(name);
      f.module_offset = address - start;
      if (const std::string* fn = functionAt(dm, pc)) f.function = *fn;
      if (!with_line) {
        // file:line left empty
      } else if (Dwfl_Line* line = dwfl_module_getsrc(dm, pc)) {
        int lineno = 0;
        const char* src = dwfl_lineinfo(line, nullptr, &lineno, nullptr, nullptr, nullptr);
        if (src != nullptr) {
          f.file = src;
          f.line = lineno;
        }
      }
    } else if (m != modules_.begin() && pc < std::prev(m)->end) {
      // Not readable here: name the frame by module and offset from the
      // module's lowest mapping, which is stable for one build.
      std::uint64_t low = std::prev(m)->start;
      for (const Module& mm : modules_) {
        if (mm.path == std::prev(m)->path) low = std::min(low, mm.start);
      }
      f.module_offset = address - low;
    } else {
      f.module_offset = address;
    }
    return f;
  }

 private:
  struct DwflDeleter {
    void operator()(Dwfl* d) const { dwfl_end(d); }
  };
  struct Module {
    std::uint64_t start, end;
    std::string path;
  };
  char* debuginfo_path_ = nullptr;
  Dwfl_Callbacks callbacks_{};
  std::unique_ptr<Dwfl, DwflDeleter> dwfl_;
  std::vector<Module> modules_;
  std::string main_path_;
  std::map<std::string, std::uint64_t> base_;               // path -> load address
  std::unordered_map<std::string, std::string> build_ids_;  // path -> hex, files read here

  static std::string buildId(Dwfl_Module* dm) {
    const unsigned char* bits = nullptr;
    GElf_Addr vaddr = 0;
    const int n = dwfl_module_build_id(dm, &bits, &vaddr);
    std::string hex;
    static constexpr char kDigits[] = "0123456789abcdef";
    for (int i = 0; i < n; ++i) {
      hex += kDigits[bits[i] >> 4];
      hex += kDigits[bits[i] & 15];
    }
    return hex;
  }

  struct Symbol {
    std::uint64_t start = 0;
    std::uint64_t size = 0;
    const char* name = nullptr;  // libdw's string, alive as long as dwfl_
    std::string demangled;       // filled on first use
  };

  // The function symbol covering `pc`: libdwfl's own lookup scans the symbol
  // table on every call, so each module's function symbols are read once,
  // sorted, and searched here.
  const std::string* functionAt(Dwfl_Module* dm, std::uint64_t pc) {
    auto [it, added] = symbols_.try_emplace(dm);
    std::vector<Symbol>& table = it->second;
    if (added) {
      const int n = dwfl_module_getsymtab(dm);
      for (int i = 1; i < n; ++i) {
        GElf_Sym sym{};
        GElf_Addr addr = 0;
        GElf_Word shndx = 0;
        const char* name = dwfl_module_getsym_info(dm, i, &sym, &addr, &shndx, nullptr, nullptr);
        const int type = GELF_ST_TYPE(sym.st_info);
        if (name == nullptr || *name == '\0' || shndx == SHN_UNDEF ||
            (type != STT_FUNC && type != STT_GNU_IFUNC)) {
          continue;
        }
        table.push_back({addr, sym.st_size, name, {}});
      }
      std::sort(table.begin(), table.end(),
                [](const Symbol& a, const Symbol& b) { return a.start < b.start; });
    }
    auto s = std::upper_bound(table.begin(), table.end(), pc,
                              [](std::uint64_t v, const Symbol& x) { return v < x.start; });
    if (s == table.begin()) return nullptr;
    Symbol& sym = *std::prev(s);
    // An address past the end of the nearest symbol belongs to an unnamed
    // function; naming it after its neighbour would mislead.
    if (sym.size != 0 && pc >= sym.start + sym.size) return nullptr;
    if (sym.demangled.empty()) sym.demangled = core::demangleSymbol(sym.name);
    return &sym.demangled;
  }
  std::unordered_map<Dwfl_Module*, std::vector<Symbol>> symbols_;
};

std::size_t countLines(std::string_view text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) +
         (text.empty() || text.back() == '\n' ? 0 : 1);
}

// A record's addresses as a symbolic stack. Each distinct address is
// symbolized once and becomes a frame key.
class StackInterner {
 public:
  StackInterner(OfflineSymbolizer& sym, SymbolTable& symbols) : sym_(sym), symbols_(symbols) {}

  // The stack from its first frame that is not the allocator's (the whole
  // stack when every frame is), so sites group by their caller.
  StackId intern(const std::vector<std::uint64_t>& stack) {
    frames_.clear();
    for (std::size_t i = 0; i < stack.size(); ++i) frames_.push_back(keyOf(stack[i], i > 0));
    std::size_t first = 0;
    while (first < frames_.size() && allocator_frame_[frames_[first]]) ++first;
    if (first == frames_.size()) first = 0;
    keys_.assign(frames_.begin() + static_cast<std::ptrdiff_t>(first), frames_.end());
    return symbols_.internStack(keys_);
  }

 private:
  StringId keyOf(std::uint64_t address, bool is_return) {
    auto [it, added] = address_keys_[is_return ? 1 : 0].try_emplace(address);
    if (!added) return it->second;
    FrameInfo f = sym_.lookup(address, is_return, false);
    if (!symbols_.hasFrame(SymbolTable::frameKey(f))) f = sym_.lookup(address, is_return, true);
    it->second = symbols_.internFrame(f);
    allocator_frame_.try_emplace(it->second, core::isAllocatorFrame(f.module, f.function));
    return it->second;
  }

  OfflineSymbolizer& sym_;
  SymbolTable& symbols_;
  // [0]: the innermost address, [1]: return addresses.
  std::unordered_map<std::uint64_t, StringId> address_keys_[2];
  std::unordered_map<StringId, bool> allocator_frame_;
  std::vector<StringId> frames_;  // reused between records
  std::vector<StringId> keys_;
};

// The snapshot a profile becomes, before its sites are added.
Snapshot profileSnapshot(const std::string& path, const core::RawHeapProfile& p) {
  Snapshot s;
  s.path = path;
  s.source = SourceKind::kHeapProfile;
  s.name = baseName(path);
  s.heap.available = true;
  s.heap.format = p.format;
  s.heap.mode = p.format == "heap_v2" ? "sampled" : "full";
  s.heap.sample_period = p.sample_period;
  return s;
}

// Adds a record's figures to its site; sampled profiles' figures are
// estimates of the whole heap.
void addRecord(HeapSite& site, const core::HeapRecord& r, const core::RawHeapProfile& p) {
  if (p.format == "heap_v2") {
    const core::Estimate in = core::unsample(r.inuse_objects, r.inuse_bytes, p.sample_period);
    const core::Estimate al = core::unsample(r.alloc_objects, r.alloc_bytes, p.sample_period);
    site.inuse_objects += in.objects;
    site.inuse_bytes += in.bytes;
    site.alloc_objects += al.objects;
    site.alloc_bytes += al.bytes;
  } else {
    site.inuse_objects += static_cast<double>(r.inuse_objects);
    site.inuse_bytes += static_cast<double>(r.inuse_bytes);
    site.alloc_objects += static_cast<double>(r.alloc_objects);
    site.alloc_bytes += static_cast<double>(r.alloc_bytes);
  }
}

}  // namespace

Result<Snapshot> parseProfileText(std::string_view text, const std::string& path,
                                  SymbolTable& symbols, const LoadOptions& options) {
  auto parsed = core::parseHeapProfile(text);
  if (!parsed) return Error{Errc::kParse, path + ": " + parsed.error().message};
  const core::RawHeapProfile& p = *parsed;
  const std::vector<Mapping> maps = parseMappings(p.mapped_libraries);
  if (maps.empty()) {
    return Error{Errc::kParse,
                 path + ": line " + std::to_string(countLines(text)) +
                     ": no MAPPED_LIBRARIES section (or no file mappings in it): the addresses "
                     "cannot be symbolized; the profile was cut or not written by gperftools"};
  }
  OfflineSymbolizer sym(maps, options.binary);
  StackInterner stacks(sym, symbols);

  Snapshot s = profileSnapshot(path, p);
  s.heap.modules = sym.heapModules();
  std::unordered_map<StackId, std::size_t> index;
  for (const core::HeapRecord& r : p.records) {
    const StackId stack = stacks.intern(r.stack);
    auto [it, added] = index.emplace(stack, s.heap.sites.size());
    if (added) s.heap.sites.push_back(HeapSite{stack, 0, 0, 0, 0});
    addRecord(s.heap.sites[it->second], r, p);
  }
  finishHeap(s.heap);
  return s;
}

}  // namespace leakscope::analysis
