#include "capture_command.h"

#include <glob.h>
#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "leakscope/analysis/text.h"
#include "leakscope/core/cli11.h"
#include "leakscope/core/signal_names.h"
#include "leakscope/diag/capture.h"
#include "process_commands.h"

namespace leakscope::cli {

const char* const kCaptureSummary =
    "a snapshot of any running process from the outside: sockets, fds, RSS";

const char* const kCaptureHelp =
    R"(Usage: leakscope capture PID [--out DIR] [--signal SIG --wait GLOB [--timeout S]] [--json]

Takes a snapshot of process PID from the outside, in any language, without
its cooperation: its sockets with TCP states and owning fds (/proc/PID/fd
joined with its network namespace's tables), open fds, RSS, threads, CPU
time and the memory limit of its cgroup (v2 or v1). The file is an ordinary
leakscope snapshot (trigger "capture", no heap profile or tracked objects),
DIR/<comm>.<pid>.<seq>.lsnap, so show, diff, trend, sockets and report read
it. Prints the path of what it wrote.

Options:
  --out DIR         where to write (default: the current directory, where
                    Node also writes its heap snapshots); created 0700 if
                    missing; must be yours and not writable by others
  --signal SIG      first send PID its own dump signal (USR2, SIGUSR2, 12)
  --wait GLOB       with --signal: the file that signal makes (quote it),
                    e.g. 'Heap.*.heapsnapshot' in the process's working
                    directory. Waits for a new match that PID no longer holds
                    open and whose size is stable, then captures, so both
                    files describe the same moment
  --timeout S       give up waiting after S seconds (default 120)
  --json            print {"capture": PATH, "pid": N, "sockets": N,
                    "heap_snapshot": PATH or null}
  -h, --help        this help

Capturing needs the process's own user, or root (CAP_SYS_PTRACE).

Example (Node started with --heapsnapshot-signal=SIGUSR2, in /srv/app):
  leakscope capture 4242 --out /srv/app --signal USR2 \
      --wait '/srv/app/Heap.*.heapsnapshot'
  leakscope trend /srv/app

Exit status: 0 written, 2 usage or process error (one line on stderr).
)";

namespace {

namespace fs = std::filesystem;

struct CaptureArgs {
  int pid = 0;
  std::string out = ".";
  std::string signal;
  std::string wait;
  double timeout_seconds = 120;
  bool json = false;
};

// A reason to stop, said in one line.
struct CaptureFailure {
  std::string message;
};

// The files matching `pattern` now, each with its size.
std::map<std::string, std::uint64_t> matching(const std::string& pattern) {
  std::map<std::string, std::uint64_t> out;
  glob_t g{};
  const int rc = ::glob(pattern.c_str(), GLOB_NOSORT, nullptr, &g);
  if (rc == 0) {
    for (std::size_t i = 0; i < g.gl_pathc; ++i) {
      struct stat st {};
      if (::stat(g.gl_pathv[i], &st) == 0 && S_ISREG(st.st_mode)) {
        out[g.gl_pathv[i]] = static_cast<std::uint64_t>(st.st_size);
      }
    }
  }
  globfree(&g);
  if (rc == GLOB_NOSPACE || rc == GLOB_ABORTED) {
    throw CaptureFailure{"--wait '" + pattern + "': cannot search for it (" +
                         (rc == GLOB_NOSPACE ? "out of memory" : "a directory cannot be read") +
                         ")"};
  }
  return out;
}

// The wait protocol: note what GLOB matches, send the signal, and wait for
// a new match that is complete. V8 writes a heap snapshot in place, so
// "complete" is: the process holds no fd to it any more, and its size is the
// same on two looks a poll apart (a writer that closes and reopens, or
// another process writing, would still be seen growing).
class DumpWait {
 public:
  DumpWait(const diag::Capture& target, const CaptureArgs& a, int sig)
      : target_(target), pattern_(a.wait), sig_(sig), timeout_(a.timeout_seconds) {}

  // The path of the new complete file.
  std::string run() {
    checkPattern();
    const auto before = matching(pattern_);
    if (::kill(target_.pid(), sig_) != 0) {
      const int err = errno;
      throw CaptureFailure{"cannot send " + core::signalName(sig_) + " to pid " +
                           std::to_string(target_.pid()) + ": " + std::strerror(err)};
    }
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_);
    std::map<std::string, std::uint64_t> last_sizes;
    while (std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      if (auto done = completeNewFile(before, last_sizes)) return *done;
      if (!target_.alive()) {
        throw CaptureFailure{"process " + std::to_string(target_.pid()) + " exited after " +
                             core::signalName(sig_) + ", before a new '" + pattern_ +
                             "' was complete; nothing was written"};
      }
    }
    throw CaptureFailure{"timed out after " + secondsText() + " s waiting for a new complete '" +
                         pattern_ + "' after sending " + core::signalName(sig_) + " to pid " +
                         std::to_string(target_.pid()) + "; nothing was written"};
  }

 private:
  // A pattern whose fixed directory does not exist can never match: say so
  // now rather than after the timeout.
  void checkPattern() const {
    const fs::path parent = fs::path(pattern_).parent_path();
    const std::string dir = parent.empty() ? "." : parent.string();
    if (dir.find_first_of("*?[") != std::string::npos) return;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      throw CaptureFailure{"--wait '" + pattern_ + "': directory " + dir + " does not exist"};
    }
  }

  std::optional<std::string> completeNewFile(const std::map<std::string, std::uint64_t>& before,
                                             std::map<std::string, std::uint64_t>& last_sizes) {
    std::map<std::string, std::uint64_t> sizes;
    for (const auto& [path, size] : matching(pattern_)) {
      if (before.contains(path)) continue;
      sizes[path] = size;
      const auto last = last_sizes.find(path);
      if (last == last_sizes.end() || last->second != size || size == 0) continue;
      auto held = target_.holdsOpen(path);
      if (held.ok() && !*held) return path;
    }
    last_sizes = std::move(sizes);
    return std::nullopt;
  }

  std::string secondsText() const {
    std::ostringstream s;
    s << timeout_;
    return s.str();
  }

  const diag::Capture& target_;
  std::string pattern_;
  int sig_;
  double timeout_;
};

CaptureArgs parseArgs(const std::vector<std::string>& args) {
  CaptureArgs a;
  CLI::App app("leakscope capture", "leakscope capture");
  app.add_option("PID", a.pid)->required();
  app.add_option("--out", a.out);
  auto* sig = app.add_option("--signal", a.signal);
  auto* wait = app.add_option("--wait", a.wait);
  sig->needs(wait);
  wait->needs(sig);
  app.add_option("--timeout", a.timeout_seconds)->check(CLI::Range(0.001, 86400.0));
  app.add_flag("--json", a.json);
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11's order
  app.parse(reversed);
  return a;
}

void print(const CaptureArgs& a, const diag::SnapshotInfo& info, const std::string& heap) {
  if (a.json) {
    nlohmann::json j{{"capture", info.path},
                     {"pid", a.pid},
                     {"sockets", info.sockets},
                     {"heap_snapshot", nullptr}};
    if (!heap.empty()) j["heap_snapshot"] = heap;
    std::cout << analysis::dumpJson(j, 2) << "\n";
    return;
  }
  std::cout << analysis::printable(info.path) << "\n";
  if (!heap.empty()) std::cout << analysis::printable(heap) << "\n";
}

int capture(const CaptureArgs& a) {
  std::optional<int> sig;
  if (!a.signal.empty()) {
    sig = core::signalNumber(a.signal);
    if (!sig) throw CaptureFailure{"--signal '" + a.signal + "': not a signal name or number"};
  }
  auto target = diag::Capture::open(a.pid);
  if (!target.ok()) throw CaptureFailure{target.error().message};
  std::string heap;
  std::string detail = "leakscope capture";
  if (sig) {
    heap = DumpWait(*target, a, *sig).run();
    detail += ", sent " + core::signalName(*sig);
  }
  auto info = target->write(a.out, detail, heap);
  if (!info.ok()) throw CaptureFailure{info.error().message};
  print(a, *info, heap);
  return 0;
}

}  // namespace

int captureMain(const std::vector<std::string>& args) {
  try {
    return capture(parseArgs(args));
  } catch (const CLI::CallForHelp&) {
    std::cout << kCaptureHelp;
    return 0;
  } catch (const CLI::ParseError& e) {
    return failLine("capture", std::string(e.what()) + "; see leakscope capture --help");
  } catch (const CaptureFailure& e) {
    return failLine("capture", e.message);
  }
}

}  // namespace leakscope::cli
