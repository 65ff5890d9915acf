#include "leakscope/diag/process.h"

#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "leakscope/core/unique_fd.h"

namespace leakscope::diag {
namespace {

// The node name: which machine a snapshot comes from, once files from several
// hosts meet in one ticket.
std::string hostName() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return {};
  return name;
}

std::optional<std::string> readIfPresent(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string_view::npos ? s.npos : p - start));
    if (p == std::string_view::npos) return out;
    start = p + 1;
  }
}

// A cgroup hierarchy as /proc/self/mountinfo shows it: the path inside the
// hierarchy that is mounted (field 4) and where (field 5).
struct CgroupMount {
  std::string root;
  std::string mount_point;
};

// The first mount of fstype `cgroup2`, or of `cgroup` with the memory
// controller among its super options.
std::optional<CgroupMount> findCgroupMount(std::string_view mountinfo, bool v2) {
  for (std::string_view line : split(mountinfo, '\n')) {
    const std::size_t dash = line.find(" - ");
    if (dash == std::string_view::npos) continue;
    std::vector<std::string_view> before = split(line.substr(0, dash), ' ');
    std::vector<std::string_view> after = split(line.substr(dash + 3), ' ');
    if (before.size() < 5 || after.size() < 3) continue;
    if (v2 ? after[0] != "cgroup2" : after[0] != "cgroup") continue;
    if (!v2) {
      bool memory = false;
      for (std::string_view opt : split(after[2], ',')) memory = memory || opt == "memory";
      if (!memory) continue;
    }
    return CgroupMount{std::string(before[3]), std::string(before[4])};
  }
  return std::nullopt;
}

// The smallest limit in `file` from the process's cgroup directory up to
// the mount point (a child cannot use more than an ancestor allows).
std::optional<std::uint64_t> smallestLimit(const std::string& root, const CgroupMount& m,
                                           std::string cgroup_path, const char* file) {
  namespace fs = std::filesystem;
  // With a cgroup namespace or a bind mount the mounted root is a prefix of
  // (or unrelated to) the path the kernel reports.
  if (m.root != "/" && cgroup_path.starts_with(m.root)) cgroup_path.erase(0, m.root.size());
  while (cgroup_path.starts_with('/')) cgroup_path.erase(0, 1);
  while (cgroup_path.ends_with('/')) cgroup_path.pop_back();
  const fs::path top = fs::path(root + m.mount_point).lexically_normal();
  fs::path dir = cgroup_path.empty() ? top : (top / cgroup_path).lexically_normal();
  std::error_code ec;
  // A path not visible here (another cgroup namespace) means the mount is
  // our cgroup; a path leading out of the mount ("..") is not followed.
  if (!fs::is_directory(dir, ec) || !dir.string().starts_with(top.string())) dir = top;
  std::optional<std::uint64_t> best;
  for (;;) {
    if (auto text = readIfPresent((dir / file).string())) {
      if (auto v = parseCgroupMemoryLimit(*text); v && (!best || *v < *best)) best = v;
    }
    if (dir == top || dir.string().size() <= top.string().size()) break;
    dir = dir.parent_path();
  }
  return best;
}

std::uint64_t countDirEntries(const char* path) {
  const core::UniqueDir d(opendir(path));
  if (d == nullptr) return 0;
  std::uint64_t n = 0;
  while (dirent* e = readdir(d.get())) {
    if (e->d_name[0] != '.') ++n;
  }
  return n;
}

// The hex GNU build id in the ELF notes [p, end); "" if none is there.
std::string buildIdInNotes(const char* p, const char* end) {
  while (p + sizeof(ElfW(Nhdr)) <= end) {
    ElfW(Nhdr) nh;
    std::memcpy(&nh, p, sizeof nh);
    const char* name = p + sizeof nh;
    const char* desc = name + ((nh.n_namesz + 3) & ~3u);
    if (desc > end || nh.n_descsz > static_cast<std::size_t>(end - desc)) break;
    if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0) {
      static const char kHex[] = "0123456789abcdef";
      std::string out;
      for (std::uint32_t k = 0; k < nh.n_descsz; ++k) {
        const auto b = static_cast<unsigned char>(desc[k]);
        out.push_back(kHex[b >> 4]);
        out.push_back(kHex[b & 15]);
      }
      return out;
    }
    p = desc + ((nh.n_descsz + 3) & ~3u);
  }
  return {};
}

int findBuildId(dl_phdr_info* info, size_t, void* data) {
  auto* out = static_cast<std::string*>(data);
  // The first object dl_iterate_phdr reports is the main program.
  for (int i = 0; i < info->dlpi_phnum && out->empty(); ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_NOTE) continue;
    const char* p = reinterpret_cast<const char*>(info->dlpi_addr + ph.p_vaddr);
    *out = buildIdInNotes(p, p + ph.p_memsz);
  }
  return 1;  // only the main program
}

// The ELF class of this machine's word size, which ElfW() spells.
constexpr unsigned char kElfClass = sizeof(void*) == 8 ? ELFCLASS64 : ELFCLASS32;

// Reads exactly `n` bytes at `offset`; false on a short read or an error.
bool preadAll(int fd, void* buf, std::size_t n, std::uint64_t offset) {
  const ssize_t got = pread(fd, buf, n, static_cast<off_t>(offset));
  return got >= 0 && static_cast<std::size_t>(got) == n;
}

}  // namespace

std::string mainBuildId() {
  static const std::string id = [] {
    std::string s;
    dl_iterate_phdr(findBuildId, &s);
    return s;
  }();
  return id;
}

std::string fileBuildId(const std::string& path) {
  const core::UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  ElfW(Ehdr) eh{};
  if (!fd.valid() || !preadAll(fd.get(), &eh, sizeof eh, 0)) return {};
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != kElfClass ||
      eh.e_phentsize != sizeof(ElfW(Phdr))) {
    return {};
  }
  for (ElfW(Half) i = 0; i < eh.e_phnum; ++i) {
    ElfW(Phdr) ph{};
    if (!preadAll(fd.get(), &ph, sizeof ph, eh.e_phoff + std::uint64_t{i} * sizeof ph)) return {};
    // The build id note is a few dozen bytes; a huge "note" is not one.
    if (ph.p_type != PT_NOTE || ph.p_filesz > (64u << 10)) continue;
    std::string notes(ph.p_filesz, '\0');
    if (!preadAll(fd.get(), notes.data(), notes.size(), ph.p_offset)) continue;
    if (std::string id = buildIdInNotes(notes.data(), notes.data() + notes.size()); !id.empty()) {
      return id;
    }
  }
  return {};
}

std::string procDir(int pid) { return pid == 0 ? "/proc/self" : "/proc/" + std::to_string(pid); }

std::optional<std::uint64_t> parseMaxOpenFiles(std::string_view limits) {
  // "Max open files            1024                 1048576              files"
  constexpr std::string_view kName = "Max open files";
  for (std::string_view line : split(limits, '\n')) {
    if (!line.starts_with(kName)) continue;
    line.remove_prefix(kName.size());
    while (line.starts_with(' ')) line.remove_prefix(1);
    const std::string_view soft = line.substr(0, line.find(' '));
    if (soft == "unlimited") return RLIM_INFINITY;
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(soft.data(), soft.data() + soft.size(), v);
    if (soft.empty() || ec != std::errc() || end != soft.data() + soft.size()) return std::nullopt;
    return v;
  }
  return std::nullopt;
}

const char* memoryLimitSourceName(MemoryLimitSource s) {
  switch (s) {
    case MemoryLimitSource::kCgroup2:
      return "cgroup2";
    case MemoryLimitSource::kCgroup1:
      return "cgroup1";
    case MemoryLimitSource::kMemTotal:
      return "meminfo";
  }
  return "meminfo";
}

std::optional<std::uint64_t> parseCgroupMemoryLimit(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  if (text.empty()) return std::nullopt;
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;  // "max", junk
  return v;
}

std::optional<std::uint64_t> parseMemTotal(std::string_view meminfo) {
  for (std::string_view line : split(meminfo, '\n')) {
    if (!line.starts_with("MemTotal:")) continue;
    line.remove_prefix(9);
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    std::uint64_t kib = 0;
    const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), kib);
    if (ec != std::errc() || std::string_view(end, line.data() + line.size()) != " kB") {
      return std::nullopt;
    }
    return kib * 1024;
  }
  return std::nullopt;
}

Result<MemoryLimit> readMemoryLimit(const std::string& root, int pid) {
  const std::string meminfo_path = root + "/proc/meminfo";
  const auto meminfo = readIfPresent(meminfo_path);
  if (!meminfo) return Error{Errc::kIo, meminfo_path + ": cannot read"};
  const auto total = parseMemTotal(*meminfo);
  if (!total) return Error{Errc::kParse, meminfo_path + ": no 'MemTotal: N kB' line"};
  MemoryLimit best{*total, MemoryLimitSource::kMemTotal};

  // The cgroup paths are shown relative to the reader's cgroup namespace, so
  // they are looked up among the mounts this process sees.
  const std::string cgroups = readIfPresent(root + procDir(pid) + "/cgroup").value_or("");
  const std::string mountinfo = readIfPresent(root + "/proc/self/mountinfo").value_or("");
  // Lines "hierarchy-id:controllers:path"; cgroup v2 is "0::path".
  for (std::string_view line : split(cgroups, '\n')) {
    const std::size_t a = line.find(':');
    const std::size_t b = a == std::string_view::npos ? a : line.find(':', a + 1);
    if (b == std::string_view::npos) continue;
    const std::string_view controllers = line.substr(a + 1, b - a - 1);
    const std::string path(line.substr(b + 1));
    bool v1_memory = false;
    for (std::string_view c : split(controllers, ',')) v1_memory = v1_memory || c == "memory";
    const bool v2 = line.substr(0, a) == "0" && controllers.empty();
    if (!v2 && !v1_memory) continue;
    const auto mount = findCgroupMount(mountinfo, v2);
    if (!mount) continue;
    const auto limit =
        smallestLimit(root, *mount, path, v2 ? "memory.max" : "memory.limit_in_bytes");
    if (limit && *limit < best.bytes) {
      best = {*limit, v2 ? MemoryLimitSource::kCgroup2 : MemoryLimitSource::kCgroup1};
    }
  }
  return best;
}

Result<ProcStat> parseProcStat(std::string_view text) {
  // Fields after the command name, which is in parentheses and may hold spaces.
  const std::size_t rp = text.rfind(')');
  if (rp == std::string_view::npos) return Error{Errc::kParse, "no ')' after the command name"};
  std::vector<std::string_view> f;  // f[0] is field 3 (state)
  for (std::string_view word : split(text.substr(rp + 1), ' ')) {
    while (!word.empty() && word.back() == '\n') word.remove_suffix(1);
    if (!word.empty()) f.push_back(word);
  }
  if (f.size() < 22) return Error{Errc::kParse, "fewer than 24 fields"};
  // utime, stime, num_threads, starttime, vsize, rss (fields 14, 15, 20, 22-24).
  const std::size_t kFields[] = {11, 12, 17, 19, 20, 21};
  std::uint64_t v[6] = {};
  for (std::size_t i = 0; i < 6; ++i) {
    const std::string_view w = f[kFields[i]];
    const auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), v[i]);
    if (ec != std::errc() || end != w.data() + w.size()) {
      return Error{Errc::kParse,
                   "field " + std::to_string(kFields[i] + 3) + " is not a non-negative integer"};
    }
  }
  ProcStat st;
  st.state = f[0].front();
  // Tick counts are far below 2^63; saturate rather than wrap on nonsense.
  st.cpu_ticks = v[0] > UINT64_MAX - v[1] ? UINT64_MAX : v[0] + v[1];
  st.threads = v[2];
  st.start_ticks = v[3];
  st.virtual_bytes = v[4];
  st.rss_pages = v[5];
  return st;
}

std::optional<std::uint64_t> parseStatmResidentPages(std::string_view statm) {
  // "size resident shared text lib data dt\n", in pages.
  const std::size_t sp = statm.find(' ');
  if (sp == std::string_view::npos) return std::nullopt;
  std::string_view field = statm.substr(sp + 1);
  field = field.substr(0, field.find_first_of(" \n"));
  std::uint64_t pages = 0;
  const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), pages);
  if (field.empty() || ec != std::errc() || end != field.data() + field.size()) return std::nullopt;
  return pages;
}

std::optional<std::uint64_t> parseBootTime(std::string_view proc_stat) {
  for (std::string_view line : split(proc_stat, '\n')) {
    if (!line.starts_with("btime ")) continue;
    line.remove_prefix(6);
    std::uint64_t t = 0;
    const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), t);
    if (ec != std::errc() || end != line.data() + line.size()) return std::nullopt;
    return t;
  }
  return std::nullopt;
}

Result<ProcessStats> readProcessStats(int pid) {
  const std::string dir = procDir(pid);
  const auto stat_text = readIfPresent(dir + "/stat");
  if (!stat_text) return Error{Errc::kIo, dir + "/stat: cannot read (no such process?)"};
  const auto proc_stat = parseProcStat(*stat_text);
  if (!proc_stat) return Error{Errc::kParse, dir + "/stat: " + proc_stat.error().message};
  ProcessStats s;
  s.pid = pid == 0 ? getpid() : pid;
  char exe[4096];
  const ssize_t n = readlink((dir + "/exe").c_str(), exe, sizeof exe - 1);
  if (n > 0) s.exe.assign(exe, static_cast<std::size_t>(n));
  // Read from the file /proc/PID/exe opens (the running binary, even when
  // replaced on disk or in another mount namespace).
  s.build_id = pid == 0 ? mainBuildId() : fileBuildId(dir + "/exe");
  s.host = hostName();

  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const auto page = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  s.cpu_seconds = static_cast<double>(proc_stat->cpu_ticks) / ticks;
  s.threads = proc_stat->threads;
  s.virtual_bytes = proc_stat->virtual_bytes;
  s.rss_bytes = proc_stat->rss_pages * page;
  if (const auto boot = parseBootTime(readIfPresent("/proc/stat").value_or(""))) {
    s.start_time_unix =
        static_cast<double>(*boot) + static_cast<double>(proc_stat->start_ticks) / ticks;
  }
  s.open_fds = countDirEntries((dir + "/fd").c_str());
  // The directory handle opendir held was one of this process's own fds.
  if (pid == 0 && s.open_fds > 0) --s.open_fds;
  s.max_fds = parseMaxOpenFiles(readIfPresent(dir + "/limits").value_or("")).value_or(0);
  return s;
}

}  // namespace leakscope::diag
