#include "memory_cgroup.h"

#include <linux/magic.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_support.h"

namespace leakscope::testing {
namespace {

namespace fs = std::filesystem;

bool isFs(const std::string& path, long magic) {
  struct statfs s {};
  return ::statfs(path.c_str(), &s) == 0 && static_cast<long>(s.f_type) == magic;
}

// Writes `text` to a cgroup control file; false with errno's text in `why`.
bool writeControl(const std::string& path, const std::string& text, std::string& why) {
  std::ofstream out(path);
  out << text;
  out.flush();
  if (out) return true;
  why = "cannot write '" + text + "' to " + path + ": " + std::strerror(errno);
  return false;
}

}  // namespace

std::unique_ptr<MemoryCgroup> MemoryCgroup::create(std::uint64_t limit, std::string& why) {
  if (::geteuid() != 0) {
    why = "creating a cgroup needs root (euid " + std::to_string(::geteuid()) + ")";
    return nullptr;
  }
  std::string parent;
  bool v2 = false;
  if (isFs("/sys/fs/cgroup", CGROUP2_SUPER_MAGIC)) {
    parent = "/sys/fs/cgroup";
    v2 = true;
    if (readFile(parent + "/cgroup.controllers").find("memory") == std::string::npos) {
      why = "cgroup v2 at /sys/fs/cgroup has no memory controller";
      return nullptr;
    }
    if (readFile(parent + "/cgroup.subtree_control").find("memory") == std::string::npos &&
        !writeControl(parent + "/cgroup.subtree_control", "+memory", why)) {
      return nullptr;
    }
  } else if (isFs("/sys/fs/cgroup/memory", CGROUP_SUPER_MAGIC)) {
    parent = "/sys/fs/cgroup/memory";
  } else {
    why = "neither cgroup v2 at /sys/fs/cgroup nor a v1 memory hierarchy at /sys/fs/cgroup/memory";
    return nullptr;
  }
  const std::string dir = parent + "/leakscope-test-" + std::to_string(::getpid());
  if (::mkdir(dir.c_str(), 0755) != 0) {
    why = "cannot create " + dir + ": " + std::strerror(errno);
    return nullptr;
  }
  std::unique_ptr<MemoryCgroup> g(new MemoryCgroup(dir, v2));
  if (!g->limit(limit, why)) return nullptr;  // the destructor removes it
  return g;
}

// A hard limit and no swap: with swap the leak would page out instead of
// meeting the OOM killer, and the test would take minutes.
bool MemoryCgroup::limit(std::uint64_t bytes, std::string& why) const {
  const std::string n = std::to_string(bytes);
  if (v2_) {
    if (!writeControl(dir_ + "/memory.max", n, why)) return false;
    return !fs::exists(dir_ + "/memory.swap.max") ||
           writeControl(dir_ + "/memory.swap.max", "0", why);
  }
  if (!writeControl(dir_ + "/memory.limit_in_bytes", n, why)) return false;
  // memory + swap, only where swap accounting is on; no swappiness either way.
  if (fs::exists(dir_ + "/memory.memsw.limit_in_bytes") &&
      !writeControl(dir_ + "/memory.memsw.limit_in_bytes", n, why)) {
    return false;
  }
  return writeControl(dir_ + "/memory.swappiness", "0", why);
}

std::vector<int> MemoryCgroup::pids() const {
  std::vector<int> out;
  std::istringstream in(readFile(dir_ + "/cgroup.procs"));
  int pid = 0;
  while (in >> pid) out.push_back(pid);
  return out;
}

std::uint64_t MemoryCgroup::oomKills() const {
  std::istringstream in(readFile(dir_ + (v2_ ? "/memory.events" : "/memory.oom_control")));
  std::string key;
  std::uint64_t value = 0;
  while (in >> key >> value) {
    if (key == "oom_kill") return value;
  }
  return 0;
}

MemoryCgroup::~MemoryCgroup() {
  // Only processes this test started can be in it: the cgroup is its own.
  for (int pid : pids()) ::kill(pid, SIGKILL);
  eventually([&] { return pids().empty(); }, 5000);
  eventually([&] { return ::rmdir(dir_.c_str()) == 0 || errno == ENOENT; }, 5000);
}

}  // namespace leakscope::testing
