// leakscope — the offline snapshot analyser. A thin main: parse the command
// line, load inputs, run one analysis, render it. Exit codes like diff(1):
// 0 nothing flagged, 1 leak suspected, 2 usage or input error.
#include <malloc.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "export_pprof.h"
#include "leakscope/analysis/analysis.h"
#include "leakscope/analysis/chains.h"
#include "leakscope/analysis/input.h"
#include "leakscope/analysis/join.h"
#include "leakscope/analysis/runs.h"
#include "leakscope/core/cli11.h"
#include "output_file.h"
#include "process_commands.h"
#include "render.h"

namespace la = leakscope::analysis;

namespace {

constexpr int kExitClean = 0;
constexpr int kExitSuspect = 1;
constexpr int kExitError = 2;

struct UsageError {
  std::string message;
};

const char* kMainHelp = R"(leakscope — find what grows in a long-running process, from its snapshots

Usage: leakscope COMMAND [OPTIONS] INPUT...

Commands:
  show       one snapshot: totals, top tracked kinds or classes, heap sites,
             sockets
  diff       Comparison view of two inputs: # New, # Deleted, # Delta, sizes
  trend      three or more inputs: steady growth (leaks) vs transient spikes
  sockets    netstat-like view of sockets across inputs, with their owners
  report     one self-contained HTML page with charts (--html OUT.html)
  retainers  how the objects of a V8 class (--class NAME) or of a tracked
             kind (--kind NAME) are held
  export     a heap profile for go tool pprof, Pyroscope or Parca
             (--format pprof OUT.pb.gz INPUT [--base BASE])
  run        start a program with the preload agent: snapshots of a daemon
             that was never rebuilt (leakscope run -- CMD ARGS...)
  capture    snapshot a running process from the outside (PID): sockets,
             fds, RSS; --signal USR2 --wait GLOB also gets its heap snapshot

Inputs are leakscope snapshots (.lsnap, written on kill -USR2), raw
gperftools heap profiles (heapprofile or heap_v2) or V8 heap snapshots
(.heapsnapshot from Node.js or Chrome DevTools, docs/node.md), recognised
by content, plain or gzip. A directory stands for its snapshot files
(*.lsnap, *.heapsnapshot), - for standard input; the same file twice is
refused.

Exit status: 0 nothing flagged, 1 leak suspected, 2 usage or input error.
Run 'leakscope COMMAND --help' for a command's options and an example.
)";

const char* kCommonOptions = R"(
Common options:
  --json            machine-readable output (schema: docs/cli.md); always has
                    a top-level "suspects" array
  --top N           rows per table (default 20)
  --width N         columns the text fits in (default: the terminal's, else
                    $COLUMNS, else 100); 0 = unlimited. Long stacks wrap;
                    --json always has them whole
  --binary PATH     for raw profiles whose mapped files are not on this
                    machine: the executable to symbolize with
  -h, --help        this help
)";

const char* kShowHelp = R"(Usage: leakscope show [OPTIONS] INPUT

Summarises one snapshot or heap profile: process figures, tracked kinds by
live bytes, the top heap allocation sites, and sockets grouped by remote name
and state with their owners. Flags CLOSE_WAIT sockets, connections no tracked
object owns and objects whose socket is gone (exit 1 when any is found).

A V8 heap snapshot shows its classes (DevTools' Summary): objects, self
size, retained size and distance from the GC roots, by retained size.

Example:
  leakscope show /var/lib/pushdaemon/snapshots/pushdaemon.000012.lsnap
)";

const char* kDiffHelp = R"(Usage: leakscope diff [OPTIONS] BASE TARGET

The Comparison view between two inputs, per group — a tracked kind, a heap
site (symbolic stack), a socket group (remote name + state):
  # New, # Deleted   objects in TARGET not in BASE and the reverse (tracked
                     kinds: exact, by object id; heap: the profile's counters,
                     or the net change for sampled profiles; sockets: inodes)
  # Delta            change in live count
  Alloc. Size, Freed Size, Size Delta
Rows are sorted by growth. A group that grew past the thresholds is a
suspect (exit 1); two points cannot tell a leak from a spike: use trend.
V8 heap snapshots compare classes by object id, as DevTools' Comparison
does (self sizes), plus each class's retained-size change; a class of the
program counts by objects, V8's own ((array), (string), (compiled code) ...)
by bytes.

Options:
  --min-objects N   growth in objects/sockets that counts (default 1)
  --min-bytes SIZE  heap or retained-bytes growth that counts (default 1MiB)

Example:
  leakscope diff app.000003.lsnap app.000007.lsnap --top 10
)";

const char* kTrendHelp = R"(Usage: leakscope trend [OPTIONS] INPUT INPUT INPUT...

Reads three or more inputs, in the order they were taken (not argument
order), one at a time. A group is a suspect when it grows across the series:
its floor (the lowest value from each point on) rises in most intervals and
still at the end. A spike freed later is reported as transient, growth that
levels off as bounded, growth in the last interval only as recent — none of
them are suspects. A sampled heap site whose verdict is within sampling error
is uncertain, listed on its own: take more snapshots or lower the sampling
period. For each suspect: growth per interval and per hour,
whether it accelerates, the time to the memory limit (the one the snapshots
recorded, or --memory-limit), and for tracked kinds and V8 classes the
survivors: object ids alive in every snapshot (with age, label and socket
for tracked kinds); for a V8 class also the shortest retaining paths of its
survivors in the last input, by shape.

Suspects come in retainer chains: a tracked kind or socket group mostly held
by another suspect's objects (owners the program declared, sockets by the
fd their owner declared) is listed under it, and the chain's first line
names its top with what it holds: "apns.provider +1 per interval, never
destroyed, holds 3 apns.connection each -> 3 ESTABLISHED sockets each".
Survivors say what holds them, up to a root (docs/cli.md, Retainer chains).

Snapshots of several runs of the process (a restart: another pid or start
time, or V8 object ids that go backwards) are judged run by run: a leak in any run is a suspect, a run of two
inputs gets their comparison's suspects, and a last line says what the
restarts mean (near the memory limit each time: OOM kills).

V8 heap snapshots may come with captures of the same process (leakscope
capture PID): each kind is judged as a series of its own, one verdict, and
each heap snapshot is joined with the capture of its pid nearest in time:
"36 TLSSocket alive in the heap, 36 ESTABLISHED sockets to 127.0.0.1:8443"
(docs/run-and-capture.md). Any other mix with a V8 heap snapshot is refused.

Options:
  --memory-limit SIZE  project when the process reaches SIZE instead of the
                       limit the snapshots recorded (2G = 2GiB = 2*2^30;
                       2GB is refused as ambiguous)
  --min-objects N      total growth in objects/sockets that counts (default 1)
  --min-bytes SIZE     total heap/retained growth that counts (default 1MiB)
  --survivors N        survivors listed per suspect (default 5 in the text,
                       20 in --json; 0 = all)
  --skip-bad           leave out an input that cannot be read, with a warning
                       (default: stop with exit 2, naming it)

Example:
  leakscope trend snapshots/pushdaemon.*.lsnap --memory-limit 2GiB
)";

const char* kSocketsHelp = R"(Usage: leakscope sockets [OPTIONS] INPUT...

netstat for snapshots: sockets grouped by remote name and TCP state, with the
count in each input and the tracked objects that own them. Flags connected
TCP sockets with no owner (in programs that declare owners), owners whose
socket is gone, CLOSE_WAIT accumulation, and connected groups that keep
growing across three or more inputs (exit 1 when any is flagged).

Options:
  --skip-bad        leave out an input that cannot be read, with a warning

Example:
  leakscope sockets app.000001.lsnap app.000005.lsnap app.000009.lsnap
)";

const char* kReportHelp = R"(Usage: leakscope report --html OUT.html [OPTIONS] INPUT INPUT...

Writes one self-contained HTML page (no network, no CDN): the verdict, a
chart of each suspect's growth across the series, the process' memory, the
comparison of the first and last input, and the socket view. Takes trend's
options (--memory-limit, --min-objects, --min-bytes, --survivors, --skip-bad).
Exit status as for trend. With two inputs (of a run) the verdict is their
comparison's, as diff gives it: a trend needs three. V8 heap snapshots with
captures of the same process: both verdicts and a table of their join.

Example:
  leakscope report --html leak.html snapshots/*.lsnap
)";

const char* kRetainersHelp =
    R"(Usage: leakscope retainers (--class NAME | --kind NAME) [OPTIONS] INPUT

--kind, for a leakscope snapshot: how the objects of tracked kind NAME are
held, by the owners the program declared (Tracked::setOwner, snapshot
version 2). Each object's owners up to a root, by kind, grouped by shape,
most shared first, in the same notation:
  pushdaemon.leak_drill → apns.provider → apns.connection
(gone) starts a path whose owner was released before the object, (owner
loop) one whose owners loop back.

--class, for a V8 heap snapshot: how the objects of class NAME are held. Each
object's shortest path from the GC roots (over strong edges), grouped by
shape (paths that differ only in array indexes are one), most shared first,
with how many objects share it, in DevTools' notation:
  (GC roots) → (Global handles) → … → Endpoint._socket → TLSSocket
.name is a property, [i] an element, ->name a closure's context variable,
{name} an internal or hidden reference (docs/v8-graph.md). A long path
is shown as its first step, "…" and its last six (--json has it whole).

Options:
  --class NAME      the class, as show lists it (e.g. TLSSocket, (array))
  --kind NAME       the tracked kind, as show lists it (e.g. apns.connection)

Examples:
  leakscope retainers Heap.20261130.031502.4242.0.007.heapsnapshot --class ClientHttp2Session
  leakscope retainers --kind apns.connection snapshots/pushdaemon.000005.lsnap
)";

const char* kExportHelp = R"(Usage: leakscope export --format pprof OUT.pb.gz INPUT [--base BASE]

Writes the heap profile of INPUT (a leakscope snapshot with a heap section,
or a raw gperftools profile, symbolized as show does) as pprof's gzipped
profile.proto, for go tool pprof, Grafana Pyroscope or Parca. Sample types
inuse_objects and inuse_space (the default), plus alloc_objects and
alloc_space for full profiles; a sampled profile's values are unsampled
estimates, as show prints them. A snapshot's tracked kinds are samples of
their own types, tracked_objects and tracked_space, labelled kind=NAME.
With --base, the growth from BASE to INPUT per stack (negative where it
shrank): the same as `go tool pprof -base BASE.pb.gz INPUT.pb.gz` and as
leakscope diff BASE INPUT.

Options:
  --format pprof    the output format (pprof is the one there is)
  --base BASE       write the growth since BASE (of the same kind as INPUT)

Example:
  leakscope export --format pprof heap.pb.gz app.000007.lsnap
  go tool pprof -top heap.pb.gz
)";

// Binary units only, as the snapshots, the metrics and systemd's MemoryMax=
// count: K = KiB = 1024. "GB" is refused rather than guessed: it means 10^9
// to some (Kubernetes, disk vendors) and 2^30 to others, and a limit 7% off
// moves the projected time to it by as much.
double sizeUnit(const std::string& flag, const std::string& v, const std::string& unit) {
  constexpr const char* kPrefixes = "kmgt";
  if (unit.empty() || unit == "b") return 1;
  const char* p = unit.size() <= 3 ? std::strchr(kPrefixes, unit[0]) : nullptr;
  if (p != nullptr && (unit.size() == 1 || unit.substr(1) == "ib")) {
    return std::ldexp(1.0, 10 * static_cast<int>(p - kPrefixes + 1));
  }
  if (p != nullptr && unit.substr(1) == "b") {
    const std::string binary = v.substr(0, v.size() - 1) + "iB";
    throw UsageError{flag + ": '" + v + "' is ambiguous (" + v.substr(v.size() - unit.size()) +
                     " means powers of 1000 " + "to some and of 1024 to others); write '" + binary +
                     "' (powers of 1024) or the number of bytes"};
  }
  throw UsageError{flag + ": unknown unit '" + unit + "' in '" + v +
                   "' (use B, K or KiB, M or MiB, G or GiB, T or TiB)"};
}

double parseSize(const std::string& flag, const std::string& v) {
  std::size_t pos = 0;
  double n = 0;
  try {
    n = std::stod(v, &pos);
  } catch (...) {
    throw UsageError{flag + ": '" + v + "' is not a size (e.g. 512MiB, 2GiB, 1048576)"};
  }
  std::string unit = v.substr(pos);
  std::transform(unit.begin(), unit.end(), unit.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const double mult = sizeUnit(flag, v, unit);
  // "1e308TiB" is finite until multiplied.
  if (n < 0 || !std::isfinite(n * mult)) {
    throw UsageError{flag + ": '" + v + "' must be a positive size"};
  }
  return n * mult;
}

long long parseCount(const std::string& flag, const std::string& v, long long min) {
  char* end = nullptr;
  errno = 0;
  const long long n = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno != 0 || n < min) {
    throw UsageError{flag + ": '" + v + "' is not a whole number >= " + std::to_string(min)};
  }
  return n;
}

struct Args {
  std::string command;
  std::string html;
  std::string binary;
  bool json = false;
  std::optional<std::size_t> width;  // --width; else the terminal's
  bool skip_bad = false;
  std::string class_name;  // retainers --class
  std::string kind_name;   // retainers --kind
  std::string format;      // export --format
  std::string output;      // export: OUT, its first positional argument
  std::string base;        // export --base
  la::RenderOptions render;
  la::TrendOptions trend;
  std::vector<std::string> inputs;
};

struct Session;
int runShow(Session& session);
int runDiff(Session& session);
int runTrend(Session& session);
int runSockets(Session& session);
int runReport(Session& session);
int runRetainers(Session& session);
int runExport(Session& session);

// One entry per command: the name CLI11 registers it under (in this order),
// its help text, how many inputs it takes (`inputs` names that in the usage
// error) and what it runs.
struct Command {
  const char* name;
  const char* help;
  std::size_t min_inputs;
  std::size_t max_inputs;
  const char* inputs;
  int (*run)(Session&);
};

const Command kCommands[] = {
    {"show", kShowHelp, 1, 1, "one input", runShow},
    {"diff", kDiffHelp, 2, 2, "two inputs, BASE and TARGET", runDiff},
    {"trend", kTrendHelp, 3, SIZE_MAX, "three or more inputs", runTrend},
    {"sockets", kSocketsHelp, 1, SIZE_MAX, "one or more inputs", runSockets},
    {"report", kReportHelp, 2, SIZE_MAX, "two or more inputs", runReport},
    {"retainers", kRetainersHelp, 1, 1, "one input", runRetainers},
    {"export", kExportHelp, 1, 1, "OUT.pb.gz and one input", runExport}};

constexpr const char* kCommandList = "(show, diff, trend, sockets, report, retainers, export)";

const Command* findCommand(const std::string& name) {
  for (const Command& c : kCommands) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

// The options each command takes, as CLI11 sees them. Values are converted
// by our own functions so that a bad one is named in our words (the unit
// list, the minimum), one line.
void addOptions(CLI::App& cmd, Args& a) {
  const std::string name = cmd.get_name();
  const bool thresholds = name != "show" && name != "retainers" && name != "export";
  const bool series = name == "trend" || name == "report";
  cmd.add_flag("--json", a.json);
  if (series || name == "sockets") cmd.add_flag("--skip-bad", a.skip_bad);
  cmd.add_option_function<std::string>("--top", [&a](const std::string& v) {
    a.render.top = static_cast<std::size_t>(parseCount("--top", v, 1));
  });
  cmd.add_option_function<std::string>("--width", [&a](const std::string& v) {
    a.width = static_cast<std::size_t>(parseCount("--width", v, 0));
  });
  cmd.add_option("--binary", a.binary);
  if (name == "report") cmd.add_option("--html", a.html);
  if (name == "retainers") {
    cmd.add_option("--class", a.class_name);
    cmd.add_option("--kind", a.kind_name);
  }
  if (name == "export") {
    cmd.add_option("--format", a.format);
    cmd.add_option("--base", a.base);
  }
  if (thresholds) {
    cmd.add_option_function<std::string>("--min-objects", [&a](const std::string& v) {
      a.trend.thresholds.min_objects = parseCount("--min-objects", v, 1);
    });
    cmd.add_option_function<std::string>("--min-bytes", [&a](const std::string& v) {
      const double b = parseSize("--min-bytes", v);
      a.trend.thresholds.min_heap_bytes = b;
      a.trend.thresholds.min_tracked_bytes = b;
    });
  }
  if (series) {
    cmd.add_option_function<std::string>("--memory-limit", [&a](const std::string& v) {
      a.trend.memory_limit_bytes = parseSize("--memory-limit", v);
    });
    cmd.add_option_function<std::string>("--survivors", [&a](const std::string& v) {
      const auto n = static_cast<std::size_t>(parseCount("--survivors", v, 0));
      a.render.survivors = n;
      a.trend.max_survivors = n == 0 ? SIZE_MAX : n;
    });
  }
  cmd.add_option("INPUT", a.inputs);
  // Unknown options are reported below in our words, naming the command.
  cmd.allow_extras();
}

// The width the text views fit: the terminal's when stdout is one, else
// $COLUMNS (a shell that does not export it, a pager), else 100 — wide
// enough for the tables, narrow enough for a ticket or a mail.
std::size_t viewWidth() {
  winsize ws{};
  if (::isatty(STDOUT_FILENO) != 0 && ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 &&
      ws.ws_col > 0) {
    return ws.ws_col;
  }
  if (const char* columns = std::getenv("COLUMNS"); columns != nullptr) {
    char* end = nullptr;
    const unsigned long n = std::strtoul(columns, &end, 10);
    if (end != columns && *end == '\0' && n > 0 && n < 100000) return n;
  }
  return 100;
}

// The result of reading the command line: what to run, or what to print
// and the exit code (help, version).
struct Parsed {
  Args args;
  std::string print;  // non-empty: print this to stdout and exit 0
};

std::string helpText(const std::string& command) {
  if (const auto* pc = leakscope::cli::findProcessCommand(command); pc != nullptr) return pc->help;
  const Command* c = findCommand(command);
  return c != nullptr ? std::string(c->help) + kCommonOptions : kMainHelp;
}

// What a command requires beyond its options, said before the count of
// inputs is checked (in run). export's OUT is its first positional
// argument; the inputs follow.
void commandArgs(Args& a) {
  if (a.command == "report" && a.html.empty()) throw UsageError{"report needs --html OUT.html"};
  if (a.command == "retainers" && a.class_name.empty() == a.kind_name.empty()) {
    throw UsageError{
        "retainers needs --class NAME (a V8 class) or --kind NAME (a tracked kind), one of them, "
        "as 'leakscope show' lists them"};
  }
  if (a.command != "export") return;
  if (a.format.empty()) throw UsageError{"export needs --format pprof"};
  if (a.format != "pprof") {
    throw UsageError{"export: unknown --format '" + a.format + "' (pprof is the one there is)"};
  }
  if (a.inputs.empty()) throw UsageError{"export needs OUT.pb.gz and INPUT; see --help"};
  a.output = a.inputs.front();
  a.inputs.erase(a.inputs.begin());
}

Parsed parse(int argc, char** argv) {
  Parsed p;
  Args& a = p.args;
  CLI::App app("leakscope", "leakscope");
  // At most one command: an input named like a command stays an input.
  app.require_subcommand(0, 1);
  app.allow_extras();
  bool version = false;
  app.add_flag("--version", version);
  CLI::App* help = app.add_subcommand("help");
  std::string topic;
  help->add_option("COMMAND", topic);
  help->allow_extras();
  for (const Command& c : kCommands) addOptions(*app.add_subcommand(c.name), a);

  auto unknownCommand = [&app]() {
    const std::vector<std::string> extra = app.remaining();
    const std::string what = extra.empty() ? std::string() : extra.front();
    return UsageError{"unknown command '" + what + "' " + kCommandList + "; see --help"};
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    if (!app.remaining().empty()) throw unknownCommand();
    const auto subs = app.get_subcommands();
    p.print = helpText(subs.empty() ? std::string() : subs.front()->get_name());
    return p;
  }
  if (version) {
    p.print = std::string("leakscope ") + LEAKSCOPE_VERSION +
              " (reads snapshot format versions 1 to " +
              std::to_string(leakscope::core::kSnapshotVersion) + ")\n";
    return p;
  }
  if (help->parsed()) {
    p.print = helpText(topic);
    return p;
  }
  if (!app.remaining().empty()) throw unknownCommand();
  const auto subs = app.get_subcommands();
  if (subs.empty())
    throw UsageError{std::string("no command given ") + kCommandList + "; see --help"};
  a.command = subs.front()->get_name();
  // CLI11 keeps a "--" among the extras; it only ended the options.
  for (const std::string& extra : subs.front()->remaining()) {
    if (extra == "--") continue;
    throw UsageError{"unknown option '" + extra + "' for '" + a.command + "'; see leakscope " +
                     a.command + " --help"};
  }
  a.render.width = a.width.has_value() ? *a.width : viewWidth();
  commandArgs(a);
  return p;
}

// Progress on stderr, only when it is a terminal and a file takes more than
// a second.
class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled) {}
  ~Progress() { clear(); }
  std::function<void(std::uint64_t, std::uint64_t)> forFile(const std::string& path,
                                                            std::size_t index, std::size_t count) {
    if (!enabled_) return nullptr;
    clear();
    start_ = std::chrono::steady_clock::now();
    name_ = la::printable(path);
    index_ = index;
    count_ = count;
    return [this](std::uint64_t done, std::uint64_t total) { update(done, total); };
  }
  // The step after reading (a V8 graph's dominators can take as long).
  std::function<void(const char*)> phaseFor() {
    if (!enabled_) return nullptr;
    return [this](const char* what) {
      if (std::chrono::steady_clock::now() - start_ < std::chrono::seconds(1)) return;
      std::fprintf(stderr, "\r\033[Kleakscope: analysing %zu/%zu %s: %s", index_ + 1, count_,
                   name_.c_str(), what);
      shown_ = true;
    };
  }
  void clear() {
    if (shown_) std::fprintf(stderr, "\r\033[K");
    shown_ = false;
  }

 private:
  void update(std::uint64_t done, std::uint64_t total) {
    const auto now = std::chrono::steady_clock::now();
    if (now - start_ < std::chrono::seconds(1)) return;
    const int pct =
        total > 0 ? static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(total))
                  : 0;
    std::fprintf(stderr, "\r\033[Kleakscope: reading %zu/%zu %s %d%% (%.0f/%.0f MB)", index_ + 1,
                 count_, name_.c_str(), pct, static_cast<double>(done) / 1e6,
                 static_cast<double>(total) / 1e6);
    shown_ = true;
  }
  bool enabled_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point start_;
  std::string name_;
  std::size_t index_ = 0, count_ = 0;
};

struct InputFailure {
  std::string message;
};

la::Snapshot loadOrThrow(const std::string& path, la::SymbolTable& symbols, const Args& a,
                         Progress& progress, std::size_t index, std::size_t count,
                         bool keep_graph) {
  la::LoadOptions lo;
  lo.binary = a.binary;
  lo.keep_graph = keep_graph;
  lo.progress = progress.forFile(path, index, count);
  lo.phase = progress.phaseFor();
  auto s = la::load(path, symbols, lo);
  progress.clear();
  if (!s) throw InputFailure{s.error().message};
  return std::move(*s);
}

// With --skip-bad, an input that cannot be read is named on stderr and left
// out of the series; without, it ends the run (exit 2).
void skipOrThrow(const Args& a, const la::Error& e) {
  if (!a.skip_bad) throw InputFailure{e.message};
  std::cerr << "leakscope: warning: skipped (--skip-bad): " << la::printable(e.message) << "\n";
}

std::vector<std::string> timeOrder(const Args& a, const std::vector<std::string>& inputs) {
  std::vector<la::InputHeader> headers;
  for (const auto& p : inputs) {
    auto h = la::readHeader(p);
    if (!h) {
      skipOrThrow(a, h.error());
      continue;
    }
    headers.push_back(*h);
  }
  std::stable_sort(headers.begin(), headers.end(),
                   [](const la::InputHeader& x, const la::InputHeader& y) {
                     if (x.taken_unix_ns != y.taken_unix_ns)
                       return x.taken_unix_ns < y.taken_unix_ns;
                     if (x.sequence != y.sequence) return x.sequence < y.sequence;
                     return x.path < y.path;
                   });
  std::vector<std::string> out;
  for (const auto& h : headers) out.push_back(h.path);
  return out;
}

// The inputs as named, directories replaced by their snapshot files.
la::ResolvedInputs resolve(const Args& a, const Command& c) {
  auto r = la::resolveInputs(a.inputs);
  if (!r) throw InputFailure{r.error().message};
  const std::size_t n = r->paths.size();
  if (n < c.min_inputs || n > c.max_inputs) {
    throw UsageError{std::string("'") + a.command + "' takes " + c.inputs + " (got " +
                     std::to_string(n) +
                     (r->from_directory ? ", counting a directory's files" : "") +
                     "); see leakscope " + a.command + " --help"};
  }
  return std::move(*r);
}

// Keeps what the socket view needs of a snapshot other than the last.
la::Snapshot socketsOnly(la::Snapshot&& s) {
  la::Snapshot k;
  k.path = std::move(s.path);
  k.sequence = s.sequence;
  k.taken_unix_ns = s.taken_unix_ns;
  k.utc = std::move(s.utc);
  k.process = s.process;
  k.sockets = std::move(s.sockets);
  return k;
}

// What the run of a command works with: its arguments, one symbol table for
// all its inputs (so that groups match across them) and the progress line.
struct Session {
  Session(const Args& args, const Command& c)
      : a(args), command(c), inputs(resolve(args, c)), progress(::isatty(STDERR_FILENO) != 0) {}

  // `keep_graph`: keep a V8 snapshot's graph for retaining paths.
  la::Snapshot load(const std::string& path, std::size_t index, std::size_t count,
                    bool keep_graph = false) {
    return loadOrThrow(path, symbols, a, progress, index, count, keep_graph);
  }
  // Loads the inputs in the order they were taken, one at a time, and hands
  // each to `use(snapshot, index, count)` (`index` counts the inputs read;
  // `count` those whose header could be read). The last one keeps its V8
  // graph (retaining paths are printed for it); one graph at a time.
  template <typename Use>
  void loadSeries(Use&& use) {
    const std::vector<std::string> ordered = timeOrder(a, inputs.paths);
    std::size_t loaded = 0;
    for (std::size_t i = 0; i < ordered.size(); ++i) {
      std::optional<la::Snapshot> s;
      try {
        s = load(ordered[i], i, ordered.size(), i + 1 == ordered.size());
      } catch (const InputFailure& e) {
        skipOrThrow(a, la::Error{la::Errc::kParse, e.message});
        continue;
      }
      use(std::move(*s), loaded++, ordered.size());
      s.reset();
      // What an input's analysis freed goes back to the system before the
      // next is read: glibc keeps freed heap memory otherwise, and a series
      // of big V8 snapshots would add each one's leftovers to the next's peak.
      ::malloc_trim(0);
    }
    if (loaded < command.min_inputs) {
      throw InputFailure{"only " + std::to_string(loaded) + " of " +
                         std::to_string(inputs.paths.size()) + " inputs could be read; '" +
                         a.command + "' takes " + command.inputs};
    }
  }

  const Args& a;
  const Command& command;
  const la::ResolvedInputs inputs;
  Progress progress;
  la::SymbolTable symbols;
};

// The inputs of a socket view: the last one whole, the others cut down to
// what the view needs of them.
struct SocketSeries {
  std::vector<la::Snapshot> earlier;
  la::Snapshot last;

  // The last one is known only when the series ends (--skip-bad may drop
  // any input), so each is kept whole until the next arrives.
  void add(la::Snapshot&& s) {
    if (any_) earlier.push_back(socketsOnly(std::move(last)));
    last = std::move(s);
    any_ = true;
  }
  std::vector<const la::Snapshot*> views() const {
    std::vector<const la::Snapshot*> v;
    for (const auto& s : earlier) v.push_back(&s);
    v.push_back(&last);
    return v;
  }

 private:
  bool any_ = false;
};

// What trend and report judge a series with. V8 heap snapshots and captures
// (`leakscope capture`) may come in one series: each kind is then a series
// of its own, judged on its own, and the heap snapshots are joined with the
// captures (join.h). Any other mix is refused: a heap snapshot beside a
// program's own snapshots or profiles has nothing to be judged with.
class SeriesJudge {
 public:
  SeriesJudge(const la::SymbolTable& symbols, const la::TrendOptions& options)
      : heap_(symbols, options), others_(symbols, options) {}

  // Loads are in time order, so a refused mix is found at its second kind.
  // `S`: a snapshot to copy from, or to move from (trend).
  template <typename S>
  void add(S&& s) {
    const bool v8 = s.source == la::SourceKind::kV8HeapSnapshot;
    if (!v8 && !la::isCapture(s) && other_.empty()) {
      other_ = s.path + (s.source == la::SourceKind::kSnapshot
                             ? " (a snapshot the program wrote itself, not a capture)"
                             : std::string(" (a ") + la::sourceName(s.source) + ")");
    }
    if (v8 && v8_.empty()) v8_ = s.path + " (a V8 heap snapshot)";
    if (!v8_.empty() && !other_.empty()) {
      throw InputFailure{other_ + " and " + v8_ +
                         " in one series: V8 heap snapshots mix only with captures (leakscope "
                         "capture PID)"};
    }
    join_.add(s);
    (v8 ? heap_ : others_).add(std::forward<S>(s));
    (v8 ? heap_inputs_ : other_inputs_)++;
  }
  bool mixed() const { return heap_inputs_ > 0 && other_inputs_ > 0; }
  // One kind of input: its runs.
  la::RunsResult finishSingle() { return heap_inputs_ > 0 ? heap_.finish() : others_.finish(); }
  la::MixedResult finishMixed() { return {heap_.finish(), others_.finish(), join_.finish()}; }

 private:
  la::RunsBuilder heap_, others_;  // V8 heap snapshots; everything else
  la::JoinBuilder join_;
  std::size_t heap_inputs_ = 0, other_inputs_ = 0;
  // The first input of each kind that must not mix, named with its kind.
  std::string v8_, other_;
};

// Writes a command's result, as JSON with --json or else as its text view,
// and returns the exit code: 1 when it has suspects.
template <typename ToJson, typename RenderText>
int present(const Args& a, bool suspects, ToJson&& toJson, RenderText&& renderText) {
  if (a.json) {
    std::cout << la::dumpJson(toJson(), 2) << "\n";
  } else {
    renderText(std::cout);
  }
  return suspects ? kExitSuspect : kExitClean;
}

int runShow(Session& session) {
  const Args& a = session.a;
  const la::Snapshot s = session.load(session.inputs.paths[0], 0, 1);
  const la::SocketsResult sockets = la::analyseSockets({&s}, session.symbols, a.trend.thresholds);
  return present(
      a, !sockets.suspects.empty(),
      [&] { return la::showJson(s, sockets, session.symbols, a.render); },
      [&](std::ostream& out) { la::renderShow(out, s, sockets, session.symbols, a.render); });
}

int runDiff(Session& session) {
  const Args& a = session.a;
  // BASE and TARGET in the order given; a directory's two files in the
  // order they were taken.
  const std::vector<std::string> in =
      session.inputs.from_directory ? timeOrder(a, session.inputs.paths) : session.inputs.paths;
  const la::Snapshot base = session.load(in[0], 0, 2);
  const la::Snapshot target = session.load(in[1], 1, 2);
  const la::Comparison c = la::compare(base, target, session.symbols, a.trend.thresholds);
  return present(
      a, !c.suspects.empty(), [&] { return la::compareJson(c, session.symbols, a.render); },
      [&](std::ostream& out) { la::renderCompare(out, c, session.symbols, a.render); });
}

// One input in memory at a time: the builder keeps each group's series, not
// the snapshots. Each run of the process (pid + start time) is judged on its
// own; a leak in any run is a suspect. Heap snapshots beside captures are
// two series and their join.
int runTrend(Session& session) {
  const Args& a = session.a;
  SeriesJudge judge(session.symbols, a.trend);
  session.loadSeries([&](la::Snapshot&& s, std::size_t, std::size_t) { judge.add(std::move(s)); });
  if (judge.mixed()) {
    const la::MixedResult m = judge.finishMixed();
    return present(
        a, m.suspect(), [&] { return la::mixedJson(m, session.symbols, a.render); },
        [&](std::ostream& out) { la::renderMixed(out, m, session.symbols, a.render); });
  }
  const la::RunsResult r = judge.finishSingle();
  return present(
      a, !r.suspects.empty(), [&] { return la::runsJson(r, session.symbols, a.render); },
      [&](std::ostream& out) { la::renderRuns(out, r, session.symbols, a.render); });
}

// The last input whole, the others only their sockets (SocketSeries).
int runSockets(Session& session) {
  const Args& a = session.a;
  SocketSeries series;
  session.loadSeries([&](la::Snapshot&& s, std::size_t, std::size_t) { series.add(std::move(s)); });
  const la::SocketsResult r =
      la::analyseSockets(series.views(), session.symbols, a.trend.thresholds);
  return present(
      a, !r.suspects.empty(), [&] { return la::socketsJson(r, a.render); },
      [&](std::ostream& out) { la::renderSockets(out, r, a.render); });
}

// What a report keeps of one kind of input: its first whole (for the
// comparison of first and last) and its socket view.
struct ReportSeries {
  la::Snapshot first;
  SocketSeries sockets;
  std::size_t count = 0;

  void add(la::Snapshot&& s) {
    if (count++ == 0) first = s;
    sockets.add(std::move(s));
  }
};

// Writes the page and says so (or prints its JSON); the exit code as
// trend's. `mixed`: heap snapshots beside captures, `r` then the heap
// snapshots' runs.
int writeReport(const Session& session, const la::RunsResult& r, const la::Comparison& c,
                const la::SocketsResult& sockets, const la::MixedResult* mixed) {
  const Args& a = session.a;
  const std::string html = la::renderHtmlReport(r, c, sockets, session.symbols, a.render, mixed);
  if (auto written = la::writeFileReplacing(a.html, html); !written.ok()) {
    throw InputFailure{written.error().message};
  }
  auto toJson = [&] {
    auto j = mixed != nullptr ? la::mixedJson(*mixed, session.symbols, a.render)
                              : la::runsJson(r, session.symbols, a.render);
    j["command"] = "report";
    j["html"] = a.html;
    return j;
  };
  const bool suspect = mixed != nullptr ? mixed->suspect() : !r.suspects.empty();
  return present(a, suspect, toJson, [&](std::ostream& out) {
    if (mixed != nullptr) {
      out << "wrote " << la::printable(a.html) << ": " << mixed->heap.points.size()
          << " heap snapshots and " << mixed->captures.points.size() << " captures; "
          << la::printable(mixed->summary()) << "\n";
      la::renderJoin(out, mixed->join);
      return;
    }
    out << "wrote " << la::printable(a.html) << ": " << r.suspects.size() << " suspect(s) over "
        << r.points.size() << " inputs";
    if (!r.single() || r.runs.front().method != la::RunMethod::kTrend) {
      out << "; " << la::printable(r.summary);
    }
    out << "\n";
  });
}

// The verdict of each run of the series (a trend, or for two inputs their
// comparison), and from the same single read the comparison of its first and
// last input and its socket view; written as one HTML page. Heap snapshots
// beside captures: the comparison is the heap snapshots', the socket view
// the captures'.
int runReport(Session& session) {
  const Args& a = session.a;
  SeriesJudge judge(session.symbols, a.trend);
  ReportSeries heap, other;
  session.loadSeries([&](la::Snapshot&& s, std::size_t, std::size_t) {
    judge.add(s);
    (s.source == la::SourceKind::kV8HeapSnapshot ? heap : other).add(std::move(s));
  });
  const auto& th = a.trend.thresholds;
  if (!judge.mixed()) {
    const ReportSeries& only = heap.count > 0 ? heap : other;
    const la::RunsResult r = judge.finishSingle();
    const la::Comparison c = la::compare(only.first, only.sockets.last, session.symbols, th);
    const auto sockets = la::analyseSockets(only.sockets.views(), session.symbols, th);
    return writeReport(session, r, c, sockets, nullptr);
  }
  const la::MixedResult m = judge.finishMixed();
  const la::Comparison c = la::compare(heap.first, heap.sockets.last, session.symbols, th);
  const auto sockets = la::analyseSockets(other.sockets.views(), session.symbols, th);
  return writeReport(session, m.heap, c, sockets, &m);
}

// retainers --kind: a leakscope snapshot's tracked kind, by declared owners.
int runKindRetainers(Session& session, const la::Snapshot& s) {
  const Args& a = session.a;
  if (s.source != la::SourceKind::kSnapshot) {
    throw InputFailure{s.path + ": retainers --kind reads leakscope snapshots; this is a " +
                       la::sourceName(s.source) +
                       (s.source == la::SourceKind::kV8HeapSnapshot ? " (use --class NAME)" : "")};
  }
  if (s.kind(a.kind_name) == nullptr) {
    throw InputFailure{s.path + ": no tracked kind '" + a.kind_name +
                       "' (names are as 'leakscope show' lists them, case-sensitive)"};
  }
  const la::Ownership owners(s, session.symbols);
  const std::size_t objects = owners.objectCount(a.kind_name);
  const auto paths = owners.retainers(a.kind_name, {}, a.render.top);
  return present(
      a, false, [&] { return la::kindRetainersJson(s, a.kind_name, objects, paths); },
      [&](std::ostream& out) {
        la::renderKindRetainers(out, s, a.kind_name, objects, paths, a.render);
      });
}

int runRetainers(Session& session) {
  const Args& a = session.a;
  const la::Snapshot s = session.load(session.inputs.paths[0], 0, 1, true);
  if (!a.kind_name.empty()) return runKindRetainers(session, s);
  if (s.source != la::SourceKind::kV8HeapSnapshot) {
    throw InputFailure{s.path + ": retainers --class reads V8 heap snapshots (.heapsnapshot); " +
                       "this is a " + la::sourceName(s.source) +
                       (s.source == la::SourceKind::kSnapshot ? " (use --kind NAME)" : "")};
  }
  if (s.objectClass(a.class_name) == nullptr) {
    throw InputFailure{s.path + ": no object of class '" + a.class_name +
                       "' (names are as 'leakscope show' lists them, case-sensitive)"};
  }
  const auto paths = la::classRetainers(s, a.class_name, {}, a.render.top);
  return present(
      a, false, [&] { return la::retainersCommandJson(s, a.class_name, paths); },
      [&](std::ostream& out) { la::renderRetainers(out, s, a.class_name, paths, a.render); });
}

// The heap profile of one input (minus --base's) as a gzipped
// profile.proto, written whole or not at all (writeFileReplacing).
int runExport(Session& session) {
  const Args& a = session.a;
  const la::Snapshot target = session.load(session.inputs.paths[0], 0, a.base.empty() ? 1 : 2);
  std::optional<la::Snapshot> base;
  if (!a.base.empty()) base = session.load(a.base, 1, 2);
  auto pb = la::exportPprof(target, base ? &*base : nullptr, session.symbols);
  if (!pb) throw InputFailure{pb.error().message};
  if (auto written = la::writeFileReplacing(a.output, *pb); !written.ok()) {
    throw InputFailure{written.error().message};
  }
  const std::string what = std::string(target.heap.exact() ? "full" : "sampled") + " heap profile" +
                           (base ? ", growth since " + a.base : "");
  return present(
      a, false,
      [&] {
        return nlohmann::json{{"command", "export"},
                              {"format", "pprof"},
                              {"output", a.output},
                              {"input", target.path},
                              {"base", base ? nlohmann::json(a.base) : nlohmann::json()},
                              {"suspects", nlohmann::json::array()}};
      },
      [&](std::ostream& out) {
        out << "wrote " << la::printable(a.output) << " (pprof, " << la::printable(what) << ")\n";
      });
}

int run(const Args& a) {
  const Command* c = findCommand(a.command);
  if (c == nullptr) {
    throw UsageError{"unknown command '" + a.command + "' " + kCommandList + "; see --help"};
  }
  Session session(a, *c);
  return c->run(session);
}

// One line on stderr, whatever the message quotes (paths and tokens from
// the inputs may hold newlines or escape sequences).
int fail(const std::string& message) {
  std::cerr << "leakscope: " << la::printable(message) << "\n";
  return kExitError;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    // run and capture take their own command lines (process_commands.h).
    if (argc > 1) {
      if (const auto* pc = leakscope::cli::findProcessCommand(argv[1]); pc != nullptr) {
        return pc->main(std::vector<std::string>(argv + 2, argv + argc));
      }
    }
    const Parsed p = parse(argc, argv);
    if (!p.print.empty()) {
      std::cout << p.print;
      return kExitClean;
    }
    return run(p.args);
  } catch (const UsageError& e) {
    return fail(e.message);
  } catch (const CLI::ParseError& e) {
    // CLI11's own findings (a missing value, an unknown option before the
    // command): its message, on our one line.
    return fail(std::string(e.what()) + "; see --help");
  } catch (const InputFailure& e) {
    return fail(e.message);
  } catch (const std::bad_alloc&) {
    return fail("out of memory");
  } catch (const std::exception& e) {
    // Nothing else is expected to throw; if it does, it is still one line
    // and exit 2, never an abort.
    return fail(std::string("internal error: ") + e.what());
  }
}
