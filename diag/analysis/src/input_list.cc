// Resolving the inputs named on a command line (input.h: resolveInputs).
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <utility>

#include "leakscope/analysis/input.h"
#include "leakscope/core/unique_fd.h"

namespace leakscope::analysis {
namespace {

// A snapshot file's name split for ordering: "app.000012.lsnap.gz" is
// ("app", "000012").
struct SnapshotName {
  std::string file;
  std::string name;
  std::string sequence;

  // By name, then by sequence as a number (the writer pads it to six digits
  // at least, so 1000000 follows 999999), then by file name.
  bool operator<(const SnapshotName& o) const {
    if (name != o.name) return name < o.name;
    if (sequence.size() != o.sequence.size()) return sequence.size() < o.sequence.size();
    if (sequence != o.sequence) return sequence < o.sequence;
    return file < o.file;
  }
};

std::optional<SnapshotName> snapshotName(std::string_view file) {
  if (file.starts_with(".")) return std::nullopt;  // the writer's temp files
  std::string_view stem = file;
  if (stem.ends_with(".gz")) stem.remove_suffix(3);
  if (stem.ends_with(".lsnap")) {
    stem.remove_suffix(6);
  } else if (stem.ends_with(".heapsnapshot")) {
    stem.remove_suffix(13);
  } else {
    return std::nullopt;
  }
  SnapshotName n{std::string(file), std::string(stem), ""};
  const auto dot = stem.rfind('.');
  const std::string_view seq = dot == std::string_view::npos ? "" : stem.substr(dot + 1);
  if (!seq.empty() &&
      std::all_of(seq.begin(), seq.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    n.name = std::string(stem.substr(0, dot));
    n.sequence = std::string(seq);
  }
  return n;
}

// The snapshot files of `dir`: regular files (not followed through links)
// named like snapshots (leakscope's or V8's), plain or gzip.
Result<std::vector<std::string>> snapshotFiles(const std::string& dir) {
  core::UniqueDir d(::opendir(dir.c_str()));
  if (!d) return Error{Errc::kIo, dir + ": " + std::strerror(errno)};
  std::vector<SnapshotName> names;
  errno = 0;
  while (const dirent* e = ::readdir(d.get())) {
    auto n = snapshotName(e->d_name);
    struct stat st {};
    if (!n || ::fstatat(::dirfd(d.get()), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISREG(st.st_mode)) names.push_back(std::move(*n));
  }
  if (errno != 0) return Error{Errc::kIo, dir + ": " + std::strerror(errno)};
  if (names.empty()) {
    return Error{
        Errc::kInvalidArgument,
        dir + ": a directory without snapshot files (*.lsnap, *.heapsnapshot, plain or .gz)"};
  }
  std::sort(names.begin(), names.end());
  const std::string prefix = dir.ends_with("/") ? dir : dir + "/";
  std::vector<std::string> out;
  for (const auto& n : names) out.push_back(prefix + n.file);
  return out;
}

// Refuses an input named twice: it would count as two points of a series
// (or a diff of a file with itself).
class SameFileCheck {
 public:
  Status add(const std::string& path) {
    if (path == "-" && std::exchange(stdin_seen_, true)) {
      return Error{Errc::kInvalidArgument, "-: standard input named twice (it can be read once)"};
    }
    struct stat st {};
    const int rc = path == "-" ? ::fstat(STDIN_FILENO, &st) : ::stat(path.c_str(), &st);
    if (rc != 0) return core::Ok{};  // reading it will name the error
    auto [it, added] = seen_.emplace(std::make_pair(st.st_dev, st.st_ino), path);
    if (added) return core::Ok{};
    return Error{Errc::kInvalidArgument,
                 it->second + " and " + path + " are the same file: name each input once"};
  }

 private:
  std::map<std::pair<dev_t, ino_t>, std::string> seen_;
  bool stdin_seen_ = false;
};

}  // namespace

Result<ResolvedInputs> resolveInputs(const std::vector<std::string>& names) {
  ResolvedInputs r;
  SameFileCheck check;
  for (const std::string& name : names) {
    struct stat st {};
    std::vector<std::string> files;
    if (name != "-" && ::stat(name.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      auto listed = snapshotFiles(name);
      if (!listed) return listed.error();
      files = std::move(*listed);
      r.from_directory = true;
    } else {
      files.push_back(name);
    }
    for (std::string& f : files) {
      if (auto ok = check.add(f); !ok) return ok.error();
      r.paths.push_back(std::move(f));
    }
  }
  return r;
}

}  // namespace leakscope::analysis
