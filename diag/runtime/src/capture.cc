#include "leakscope/diag/capture.h"

#include <dirent.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "json_writer.h"
#include "leakscope/core/unique_fd.h"
#include "leakscope/diag/process.h"
#include "leakscope/diag/sockets.h"
#include "snapshot_files.h"
#include "snapshot_sections.h"

namespace leakscope::diag {
namespace {

std::string readSmallFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The process's /proc/PID/stat, parsed; nullopt when the process is gone.
std::optional<ProcStat> statOf(int pid) {
  const std::string text = readSmallFile(procDir(pid) + "/stat");
  if (text.empty()) return std::nullopt;
  auto st = parseProcStat(text);
  if (!st.ok()) return std::nullopt;
  return *st;
}

bool exited(const ProcStat& st) { return st.state == 'Z' || st.state == 'X'; }

// comm as a file name part: no '/', no leading '.', nothing a shell or a
// terminal would read as more than a name.
std::string fileNameOf(int pid) {
  std::string comm = readSmallFile(procDir(pid) + "/comm");
  while (!comm.empty() && comm.back() == '\n') comm.pop_back();
  for (char& c : comm) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '_';
    if (!plain) c = '_';
  }
  return (comm.empty() ? std::string("process") : comm) + "." + std::to_string(pid);
}

std::string exitedMessage(int pid) {
  return "process " + std::to_string(pid) + " exited during the capture; nothing was written";
}

// The error of reading /proc/PID/fd, said for a person: who may capture.
Error accessError(int pid, const Error& e) {
  if (e.code != Errc::kPermission) return e;
  return Error{Errc::kPermission,
               "pid " + std::to_string(pid) + ": " + e.message +
                   ": capturing a process needs its own user, or root (CAP_SYS_PTRACE)"};
}

// The parts of the document a process cannot give from the outside.
void writeUnavailableParts(JsonWriter& w) {
  w.key("allocator").beginObject().field("available", false).endObject();
  w.key("tracked").beginArray().endArray();
}

void writeNoHeap(JsonWriter& w) {
  w.key("heap")
      .beginObject()
      .field("mode", "off")
      .field("available", false)
      .field("reason", "captured from outside the process: no heap profile")
      .endObject();
}

}  // namespace

Result<Capture> Capture::open(int pid) {
  if (pid <= 0) return Error{Errc::kInvalidArgument, "pid " + std::to_string(pid) + ": not a pid"};
  const auto st = statOf(pid);
  if (!st) return Error{Errc::kInvalidArgument, "no process with pid " + std::to_string(pid)};
  if (exited(*st)) {
    return Error{Errc::kInvalidArgument,
                 "process " + std::to_string(pid) + " has exited (a zombie, not yet reaped)"};
  }
  const std::string fd_dir = procDir(pid) + "/fd";
  const core::UniqueDir d(opendir(fd_dir.c_str()));
  if (d == nullptr) {
    const int err = errno;
    if (err == ENOENT)
      return Error{Errc::kInvalidArgument, "no process with pid " + std::to_string(pid)};
    const Errc code = err == EACCES || err == EPERM ? Errc::kPermission : Errc::kIo;
    return accessError(pid, Error{code, "cannot read " + fd_dir + " (" + std::strerror(err) + ")"});
  }
  return Capture(pid, st->start_ticks, fileNameOf(pid));
}

bool Capture::alive() const {
  const auto st = statOf(pid_);
  return st && !exited(*st) && st->start_ticks == start_ticks_;
}

Result<bool> Capture::holdsOpen(const std::string& path) const {
  struct stat file {};
  if (::stat(path.c_str(), &file) != 0) {
    const int err = errno;
    return Error{Errc::kIo, path + ": " + std::strerror(err)};
  }
  const std::string fd_dir = procDir(pid_) + "/fd";
  const core::UniqueDir d(opendir(fd_dir.c_str()));
  if (d == nullptr) {
    const int err = errno;
    return accessError(pid_, Error{err == EACCES ? Errc::kPermission : Errc::kIo,
                                   "cannot read " + fd_dir + " (" + std::strerror(err) + ")"});
  }
  while (dirent* e = readdir(d.get())) {
    if (e->d_name[0] == '.') continue;
    struct stat fd {};
    // stat follows the magic link to the open file itself.
    if (::stat((fd_dir + "/" + e->d_name).c_str(), &fd) != 0) continue;
    if (fd.st_dev == file.st_dev && fd.st_ino == file.st_ino) return true;
  }
  return false;
}

Result<SnapshotInfo> Capture::write(const std::string& dir, std::string_view detail,
                                    std::string_view heap_snapshot) const {
  const std::size_t slash = heap_snapshot.rfind('/');
  const std::string_view heap_file =
      slash == std::string_view::npos ? heap_snapshot : heap_snapshot.substr(slash + 1);
  SnapshotFiles files(dir, name_, 0, 0);
  const auto t0 = std::chrono::steady_clock::now();
  return files.write([&](JsonWriter& w, SnapshotInfo& info) -> Status {
    // Sockets first: the one part that needs the process's permission, and
    // the one a capture is for, so a failure is the capture's failure.
    auto sockets = listProcessSockets(pid_);
    if (!sockets.ok())
      return alive() ? accessError(pid_, sockets.error()) : Error{Errc::kIo, exitedMessage(pid_)};
    auto stats = readProcessStats(pid_);
    if (!stats.ok() || !alive()) return Error{Errc::kIo, exitedMessage(pid_)};
    writeHead(w, info.sequence, name_, kCaptureReason, detail, heap_file);
    writeProcess(w, stats, pid_);
    writeUnavailableParts(w);
    info.sockets = writeSockets(w, sockets, PeerNames{}, {});
    writeNoHeap(w);
    writeTail(w, t0);
    // Everything read must describe one process: checked last, before the
    // file is renamed into place.
    if (!alive()) return Error{Errc::kIo, exitedMessage(pid_)};
    return Ok{};
  });
}

}  // namespace leakscope::diag
