#include "leakscope/diag/process.h"

#include <dirent.h>
#include <elf.h>
#include <link.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#ifdef LEAKSCOPE_WITH_TCMALLOC
#include <gperftools/malloc_extension.h>
#endif

namespace leakscope::diag {
namespace {

std::string readFile(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::uint64_t countDirEntries(const char* path) {
  DIR* d = opendir(path);
  if (d == nullptr) return 0;
  std::uint64_t n = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n;
}

int findBuildId(dl_phdr_info* info, size_t, void* data) {
  auto* out = static_cast<std::string*>(data);
  // The first object dl_iterate_phdr reports is the main program.
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_NOTE) continue;
    const char* p = reinterpret_cast<const char*>(info->dlpi_addr + ph.p_vaddr);
    const char* end = p + ph.p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      ElfW(Nhdr) nh;
      std::memcpy(&nh, p, sizeof nh);
      const char* name = p + sizeof nh;
      const char* desc = name + ((nh.n_namesz + 3) & ~3u);
      if (desc + nh.n_descsz > end) break;
      if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0) {
        static const char kHex[] = "0123456789abcdef";
        for (std::uint32_t k = 0; k < nh.n_descsz; ++k) {
          const auto b = static_cast<unsigned char>(desc[k]);
          out->push_back(kHex[b >> 4]);
          out->push_back(kHex[b & 15]);
        }
        return 1;
      }
      p = desc + ((nh.n_descsz + 3) & ~3u);
    }
  }
  return 1;  // only the main program
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

Result<ProcessStats> readProcessStats() {
  ProcessStats s;
  s.pid = getpid();
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) s.exe.assign(exe, static_cast<std::size_t>(n));
  s.build_id = mainBuildId();

  const std::string stat = readFile("/proc/self/stat");
  // Fields after the command name, which is in parentheses and may hold spaces.
  const std::size_t rp = stat.rfind(')');
  if (rp == std::string::npos) {
    return Error{Errc::kParse, "/proc/self/stat: no ')' after the command name"};
  }
  std::istringstream rest(stat.substr(rp + 2));
  std::string field;
  std::vector<std::string> f;  // f[0] is field 3 (state)
  while (rest >> field) f.push_back(field);
  if (f.size() < 22) return Error{Errc::kParse, "/proc/self/stat: fewer than 24 fields"};
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const auto page = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  s.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / ticks;  // utime, stime
  s.threads = std::stoull(f[17]);
  const double start_ticks = std::stod(f[19]);
  s.virtual_bytes = std::stoull(f[20]);
  s.rss_bytes = std::stoull(f[21]) * page;

  const std::string pstat = readFile("/proc/stat");
  const std::size_t bt = pstat.find("\nbtime ");
  if (bt != std::string::npos) {
    s.start_time_unix = std::stod(pstat.substr(bt + 7)) + start_ticks / ticks;
  }
  s.open_fds = countDirEntries("/proc/self/fd");
  if (s.open_fds > 0) --s.open_fds;  // the directory handle opendir itself held
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) s.max_fds = rl.rlim_cur;
  return s;
}

AllocatorStats readAllocatorStats() {
  AllocatorStats a;
#ifdef LEAKSCOPE_WITH_TCMALLOC
  MallocExtension* m = MallocExtension::instance();
  std::size_t v = 0;
  if (!m->GetNumericProperty("generic.current_allocated_bytes", &v)) return a;
  a.available = true;
  a.name = "tcmalloc";
  a.allocated_bytes = v;
  auto get = [m](const char* name) -> std::uint64_t {
    std::size_t x = 0;
    return m->GetNumericProperty(name, &x) ? x : 0;
  };
  a.heap_bytes = get("generic.heap_size");
  a.pageheap_free_bytes = get("tcmalloc.pageheap_free_bytes");
  a.pageheap_unmapped_bytes = get("tcmalloc.pageheap_unmapped_bytes");
  a.central_cache_free_bytes = get("tcmalloc.central_cache_free_bytes");
  a.transfer_cache_free_bytes = get("tcmalloc.transfer_cache_free_bytes");
  a.thread_cache_free_bytes = get("tcmalloc.thread_cache_free_bytes");
#endif
  return a;
}

}  // namespace leakscope::diag
