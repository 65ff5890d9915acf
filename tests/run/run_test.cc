// `leakscope run` end to end: small C programs that never linked leakscope
// (tests/run/programs), started under the real CLI with the real agent, real
// signals, sockets, fork and exec; the snapshots read back by the CLI.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "test_support.h"

namespace leakscope {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Child;
using testing::eventually;
using testing::TempDir;

const std::string kLeakscope = std::string(LEAKSCOPE_BIN_DIR) + "/leakscope";
std::string program(const std::string& name) {
  return std::string(LEAKSCOPE_RUN_PROGRAMS) + "/" + name;
}

// "name pid=12 listen=..." -> 12 (or -1).
int pidIn(const std::optional<std::string>& line) {
  if (!line) return -1;
  std::smatch m;
  return std::regex_search(*line, m, std::regex("pid=(\\d+)")) ? std::stoi(m[1]) : -1;
}

// leakscope run OPTIONS -- PROGRAM ARGS
std::unique_ptr<Child> runUnder(const std::vector<std::string>& options, const std::string& name,
                                const std::vector<std::string>& args = {}) {
  std::vector<std::string> argv = {kLeakscope, "run"};
  argv.insert(argv.end(), options.begin(), options.end());
  argv.push_back("--");
  argv.push_back(program(name));
  argv.insert(argv.end(), args.begin(), args.end());
  return std::make_unique<Child>(argv);
}

json load(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

// Snapshot files in `dir` whose name starts with `prefix`.
std::vector<std::string> snapshotsOf(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> out;
  for (const std::string& f : testing::lsnapFiles(dir)) {
    if (fs::path(f).filename().string().starts_with(prefix)) out.push_back(f);
  }
  return out;
}

// The libraries mapped into `pid` that are allocators (by file name).
std::set<std::string> mappedAllocators(int pid) {
  std::set<std::string> out;
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  const std::regex allocator("/(lib(tcmalloc|jemalloc|mimalloc)[^/ ]*)$");
  std::smatch m;
  while (std::getline(maps, line)) {
    if (std::regex_search(line, m, allocator)) out.insert(m[1]);
  }
  return out;
}

struct Ran {
  int status = -1;
  std::string out;
  std::string err;
};

Ran leakscope(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {kLeakscope};
  argv.insert(argv.end(), args.begin(), args.end());
  Child c(argv);
  Ran r;
  r.status = c.wait(60000);
  r.out = c.out();
  r.err = c.err();
  return r;
}

TEST(RunPrograms, AreNotLinkedWithLeakscope) {
  for (const char* name : {"leaky_server", "prefork_server", "own_handler", "allocating",
                           "allocating_jemalloc", "allocating_tcmalloc"}) {
    Child ldd({"/usr/bin/ldd", program(name)});
    ASSERT_EQ(ldd.wait(), 0) << name;
    EXPECT_EQ(ldd.out().find("leakscope"), std::string::npos) << name << ":\n" << ldd.out();
    EXPECT_NE(ldd.out().find("libc.so"), std::string::npos) << name;
  }
}

// The first must-show: three snapshots of an unmodified program that
// leaks connection structs with their sockets, and a spike in between.
TEST(Run, TrendOverThreeSignalsNamesTheLeakingFunctionAndSocketsNotTheSpike) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/snaps";
  auto child = runUnder({"--snapshot-dir", dir, "--sample-period", "65536"}, "leaky_server");
  const int pid = pidIn(child->waitForLine("leaky_server "));
  ASSERT_GT(pid, 0) << child->err();
  for (std::size_t step = 1; step <= 3; ++step) {
    ASSERT_TRUE(child->waitForLine("step " + std::to_string(step))) << child->err();
    kill(pid, SIGUSR2);
    ASSERT_TRUE(eventually([&] { return testing::lsnapFiles(dir).size() >= step; }))
        << child->err();
    kill(pid, SIGUSR1);
  }
  ASSERT_TRUE(child->waitForLine("done")) << child->err();
  const auto files = testing::lsnapFiles(dir);
  ASSERT_EQ(files.size(), 3u);
  // Named by program and pid.
  EXPECT_EQ(fs::path(files[0]).filename().string(),
            "leaky_server." + std::to_string(pid) + ".000001.lsnap");

  const Ran trend = leakscope({"trend", dir, "--json"});
  ASSERT_EQ(trend.status, 1) << trend.err << trend.out;
  const json report = json::parse(trend.out);
  bool leak_named = false;
  bool sockets_named = false;
  for (const json& s : report["suspects"]) {
    const std::string text = s.dump();
    EXPECT_EQ(text.find("make_spike"), std::string::npos) << "the spike is a suspect: " << text;
    if (s["group"] == "heap" && text.find("open_connection") != std::string::npos &&
        text.find("leaky_server.c") != std::string::npos && s["stack"][0].contains("line")) {
      leak_named = true;
    }
    if (s["group"] == "socket" && text.find("ESTABLISHED") != std::string::npos) {
      sockets_named = true;
    }
  }
  EXPECT_TRUE(leak_named) << trend.out;
  EXPECT_TRUE(sockets_named) << trend.out;
}

// Parent, three workers and a child that execs cat /proc/self/maps: each
// worker answers its own signal with its own series; the exec'd cat carries
// the agent only with --follow-exec.
struct Prefork {
  TempDir tmp;
  std::string dir = tmp.path() + "/snaps";
  std::unique_ptr<Child> child;
  std::vector<int> workers;

  explicit Prefork(std::vector<std::string> options) {
    options.insert(options.begin(), {"--snapshot-dir", dir});
    child = runUnder(options, "prefork_server");
    if (!child->waitForLine("workers ready")) return;
    std::istringstream lines(child->out());
    std::string line;
    while (std::getline(lines, line)) {
      if (line.starts_with("worker ")) workers.push_back(pidIn(line));
    }
  }
  // What cat printed: the maps of the exec'd program.
  std::string execMaps() const {
    const std::string out = child->out();
    const std::size_t begin = out.find("exec begin");
    const std::size_t end = out.find("exec end");
    return begin == std::string::npos || end == std::string::npos ? ""
                                                                  : out.substr(begin, end - begin);
  }
};

TEST(Run, ForkedWorkersEachWriteTheirOwnSnapshotsAndExecDropsTheAgent) {
  Prefork server({});
  ASSERT_EQ(server.workers.size(), 3u) << server.child->out() << server.child->err();
  for (int pid : server.workers) kill(pid, SIGUSR2);
  for (int pid : server.workers) {
    const std::string prefix = "prefork_server." + std::to_string(pid) + ".";
    ASSERT_TRUE(eventually([&] { return snapshotsOf(server.dir, prefix).size() == 1; }))
        << "no snapshot of worker " << pid << "\n"
        << server.child->err();
    const json snap = load(snapshotsOf(server.dir, prefix)[0]);
    EXPECT_EQ(snap["process"]["pid"], pid);
    EXPECT_TRUE(snap["heap"]["available"].get<bool>()) << snap["heap"].dump();
    const Ran show = leakscope({"show", snapshotsOf(server.dir, prefix)[0], "--json"});
    EXPECT_NE(show.status, 2) << show.err;
  }
  // The parent was not signalled: no series of its own yet.
  EXPECT_TRUE(snapshotsOf(server.dir, "prefork_server." + std::to_string(server.child->pid()) + ".")
                  .empty());
  const std::string maps = server.execMaps();
  ASSERT_NE(maps.find("/cat"), std::string::npos) << server.child->out();
  EXPECT_EQ(maps.find("libleakscope-preload"), std::string::npos) << maps;
  EXPECT_EQ(maps.find("libtcmalloc"), std::string::npos) << maps;
}

TEST(Run, FollowExecKeepsTheAgentInExecedPrograms) {
  Prefork server({"--follow-exec"});
  ASSERT_EQ(server.workers.size(), 3u) << server.child->err();
  const std::string maps = server.execMaps();
  ASSERT_NE(maps.find("/cat"), std::string::npos) << server.child->out();
  EXPECT_NE(maps.find("libleakscope-preload.so"), std::string::npos) << maps;
}

// The program's own SIGUSR2 handler: said once, left alone, still called.
void expectHandlerLeftAlone(const std::vector<std::string>& args) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/snaps";
  auto child = runUnder({"--snapshot-dir", dir}, "own_handler", args);
  const int pid = pidIn(child->waitForLine("own_handler "));
  ASSERT_GT(pid, 0) << child->err();
  EXPECT_NE(child->err().find("own_handler (pid " + std::to_string(pid) +
                              ") installs its own SIGUSR2 handler: leaving its handler alone"),
            std::string::npos)
      << child->err();
  EXPECT_NE(child->err().find("pick another --signal"), std::string::npos);
  kill(pid, SIGUSR2);
  ASSERT_TRUE(child->waitForLine("got USR2")) << child->err();
  EXPECT_TRUE(child->alive());
  EXPECT_TRUE(testing::lsnapFiles(dir).empty());
}

TEST(Run, ProgramsOwnSigactionHandlerIsLeftAloneAndSaidSo) { expectHandlerLeftAlone({}); }
TEST(Run, ProgramsOwnSignalHandlerIsLeftAloneAndSaidSo) { expectHandlerLeftAlone({"signal"}); }

TEST(Run, AnotherSignalWorksBesideTheProgramsOwnHandler) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/snaps";
  auto child = runUnder({"--snapshot-dir", dir, "--signal", "USR1"}, "own_handler");
  const int pid = pidIn(child->waitForLine("own_handler "));
  ASSERT_GT(pid, 0) << child->err();
  EXPECT_EQ(child->err().find("installs its own"), std::string::npos) << child->err();
  EXPECT_NE(child->err().find("on SIGUSR1 (kill -USR1 " + std::to_string(pid) + ")"),
            std::string::npos)
      << child->err();
  kill(pid, SIGUSR1);
  ASSERT_TRUE(eventually([&] { return testing::lsnapFiles(dir).size() == 1; })) << child->err();
  EXPECT_EQ(load(testing::lsnapFiles(dir)[0])["trigger"]["detail"], "SIGUSR1");
  kill(pid, SIGUSR2);
  EXPECT_TRUE(child->waitForLine("got USR2")) << child->err();
}

// Starts `name` under run, signals one snapshot; returns it with the maps'
// allocators and run's stderr.
struct AllocatorRun {
  json snapshot;
  std::set<std::string> allocators;
  std::string err;
};
AllocatorRun runAllocating(const std::string& name) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/snaps";
  auto child = runUnder({"--snapshot-dir", dir, "--sample-period", "65536"}, name);
  AllocatorRun r;
  const int pid = pidIn(child->waitForLine("allocating pid="));
  r.err = child->err();
  if (pid <= 0) return r;
  r.allocators = mappedAllocators(pid);
  kill(pid, SIGUSR2);
  if (eventually([&] { return testing::lsnapFiles(dir).size() == 1; })) {
    r.snapshot = load(testing::lsnapFiles(dir)[0]);
  }
  r.err = child->err();
  return r;
}

bool heapNames(const json& heap, const std::string& function) {
  for (const json& f : heap["frames"]) {
    if (f.value("function", "").find(function) != std::string::npos) return true;
  }
  return false;
}

TEST(Run, PlainProgramRunsOnTheTcmallocRunAddsAndHasAHeapProfile) {
  const AllocatorRun r = runAllocating("allocating");
  ASSERT_EQ(r.allocators.size(), 1u) << r.err;
  EXPECT_TRUE(r.allocators.begin()->starts_with("libtcmalloc.so.4")) << *r.allocators.begin();
  ASSERT_FALSE(r.snapshot.is_null()) << r.err;
  EXPECT_TRUE(r.snapshot["heap"]["available"].get<bool>());
  EXPECT_TRUE(heapNames(r.snapshot["heap"], "keep_some")) << r.snapshot["heap"].dump();
}

TEST(Run, ProgramLinkedWithJemallocKeepsItAloneWithoutAHeapProfile) {
  const AllocatorRun r = runAllocating("allocating_jemalloc");
  EXPECT_NE(r.err.find("links another allocator (libjemalloc.so.2): no tcmalloc added"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.allocators, std::set<std::string>{"libjemalloc.so.2"});
  ASSERT_FALSE(r.snapshot.is_null()) << r.err;
  EXPECT_FALSE(r.snapshot["heap"]["available"].get<bool>());
  EXPECT_NE(r.snapshot["heap"]["reason"].get<std::string>().find("libjemalloc.so.2"),
            std::string::npos);
  // The rest of the snapshot is there.
  EXPECT_GT(r.snapshot["process"]["rss_bytes"].get<double>(), 0);
}

TEST(Run, ProgramLinkedWithTcmallocUsesItsOwn) {
  const AllocatorRun r = runAllocating("allocating_tcmalloc");
  EXPECT_NE(r.err.find("links tcmalloc ("), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("already: using it"), std::string::npos) << r.err;
  EXPECT_EQ(r.allocators.size(), 1u) << r.err;
  ASSERT_FALSE(r.snapshot.is_null()) << r.err;
  EXPECT_TRUE(r.snapshot["heap"]["available"].get<bool>());
  EXPECT_TRUE(heapNames(r.snapshot["heap"], "keep_some")) << r.snapshot["heap"].dump();
}

struct BadRun {
  std::vector<std::string> args;
  std::string says;
};

TEST(Run, BadInputIsOneLineAndExit2) {
  TempDir tmp;
  const std::string text = tmp.path() + "/not-executable";
  testing::writeFile(text, "x\n");
  const std::vector<BadRun> cases = {
      {{"--", "leakscope-no-such-command"}, "'leakscope-no-such-command': command not found"},
      {{"--", text}, "not executable"},
      {{"--", tmp.path()}, "not a regular file"},
      {{"--", program("static_program")}, "a static executable (no ELF interpreter)"},
      {{"--signal", "USR9", "--", program("allocating")}, "signal 'USR9': not a signal name"},
      {{"--signal", "KILL", "--", program("allocating")}, "SIGKILL cannot be a snapshot signal"},
      {{"--interval", "soon", "--", program("allocating")}, "duration 'soon'"},
      {{"--metrics", "9477", "--", program("allocating")}, "metrics address '9477'"},
      {{"--heap", "most", "--", program("allocating")}, "--heap"},
      {{"--sample-period", "0", "--", program("allocating")}, "--sample-period"},
      {{"--snapshot-dir", tmp.path()}, "command is required"},
  };
  for (const BadRun& c : cases) {
    std::vector<std::string> args = {"run"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const Ran r = leakscope(args);
    EXPECT_EQ(r.status, 2) << c.says << ": " << r.err;
    EXPECT_TRUE(r.err.starts_with("leakscope run: ")) << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

// The agent's variables set by hand (a systemd unit), one of them bad: one
// line on stderr naming the variable, and the program runs as if the agent
// were not there (no snapshot directory, no handler for the signal).
TEST(Agent, ABadVariableIsOneLineAndTheAgentStaysOff) {
  const std::string preload =
      std::string("libtcmalloc.so.4:") + LEAKSCOPE_BIN_DIR + "/../lib/libleakscope-preload.so";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"LEAKSCOPE_SIGNAL=USR9", "LEAKSCOPE_SIGNAL: signal 'USR9': not a signal name"},
      {"LEAKSCOPE_INTERVAL=soon", "LEAKSCOPE_INTERVAL: duration 'soon'"},
      {"LEAKSCOPE_KEEP=ten", "LEAKSCOPE_KEEP='ten': expected a whole number"},
      {"LEAKSCOPE_HEAP=most", "LEAKSCOPE_HEAP: heap mode 'most' is not one of"},
  };
  for (const auto& [bad, says] : cases) {
    TempDir tmp;
    const std::string dir = tmp.path() + "/snaps";
    Child child({program("allocating")},
                {"LD_PRELOAD=" + preload, "LEAKSCOPE_SNAPSHOT_DIR=" + dir, bad});
    const int pid = pidIn(child.waitForLine("allocating pid="));
    ASSERT_EQ(pid, child.pid()) << bad << ": " << child.err();
    const std::string err = child.err();
    EXPECT_TRUE(err.starts_with("leakscope: allocating (pid " + std::to_string(pid) + "): " + says))
        << err;
    EXPECT_TRUE(err.ends_with("; the agent stays off\n")) << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
    EXPECT_FALSE(fs::exists(dir)) << bad;
    // No handler for SIGUSR2: its default action ends the program.
    kill(pid, SIGUSR2);
    EXPECT_EQ(child.wait(), 128 + SIGUSR2) << bad;
  }
}

// The value of variable `name` in /proc/PID/environ, or nullopt.
std::optional<std::string> environOf(int pid, const std::string& name) {
  std::istringstream all(testing::readFile("/proc/" + std::to_string(pid) + "/environ"));
  std::string entry;
  while (std::getline(all, entry, '\0')) {
    if (entry.starts_with(name + "=")) return entry.substr(name.size() + 1);
  }
  return std::nullopt;
}

std::string commOf(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string comm;
  std::getline(in, comm);
  return comm;
}

// The PPid: line of /proc/PID/status.
int parentOf(int pid) {
  std::smatch m;
  const std::string status = testing::readFile("/proc/" + std::to_string(pid) + "/status");
  return std::regex_search(status, m, std::regex("\nPPid:\\s*(\\d+)")) ? std::stoi(m[1]) : -1;
}

// What /proc/PID/fd/FD links to ("pipe:[1234]"), or "".
std::string fdTarget(int pid, const std::string& fd) {
  std::error_code ec;
  return fs::read_symlink("/proc/" + std::to_string(pid) + "/fd/" + fd, ec).string();
}

TEST(Run, StartsTheWatcherBesideTheProgramAndItGoesWithIt) {
  TempDir tmp;
  auto child = runUnder({"--snapshot-dir", tmp.path() + "/snaps"}, "allocating");
  const int pid = pidIn(child->waitForLine("allocating pid="));
  ASSERT_GT(pid, 0) << child->err();
  const auto address = environOf(pid, "LEAKSCOPE_WATCHER");
  ASSERT_TRUE(address.has_value()) << child->err();
  std::smatch m;
  ASSERT_TRUE(std::regex_match(*address, m, std::regex("(\\d+):(\\d+)"))) << *address;
  const int watcher = std::stoi(m[1]);
  const std::string fd = m[2];
  EXPECT_EQ(commOf(watcher), "leakscope-watch");
  // Nobody's child in the program's tree, in a session of its own.
  EXPECT_NE(parentOf(watcher), pid);
  EXPECT_NE(parentOf(watcher), child->pid());
  EXPECT_NE(getsid(watcher), getsid(pid));
  // The program holds one end of the registration socket pair; the watcher
  // holds the other and nothing of the program's but stdio. Once the agent
  // has registered, the watcher watches it: a pidfd and its statm.
  const std::string own_end = fdTarget(pid, fd);
  EXPECT_TRUE(own_end.starts_with("socket:")) << own_end;
  auto heldByWatcher = [&] {
    std::multiset<std::string> held;
    for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(watcher) + "/fd")) {
      const std::string n = e.path().filename();
      const std::string target = fdTarget(watcher, n);
      if (n == "0" || n == "1" || n == "2") continue;
      held.insert(target.starts_with("socket:") && target != own_end ? "the other end" : target);
    }
    return held;
  };
  const std::multiset<std::string> expected = {"the other end", "anon_inode:[pidfd]",
                                               "/proc/" + std::to_string(pid) + "/statm"};
  EXPECT_TRUE(eventually([&] { return heldByWatcher() == expected; }))
      << ::testing::PrintToString(heldByWatcher());
  EXPECT_EQ(fdTarget(watcher, "0"), "/dev/null");
  kill(pid, SIGTERM);
  child->wait();
  EXPECT_TRUE(eventually([&] { return commOf(watcher) != "leakscope-watch"; }))
      << "the watcher outlived the program";
}

TEST(Run, NoWatcherWithMetricsAndNoInheritedAddress) {
  TempDir tmp;
  Child child({kLeakscope, "run", "--snapshot-dir", tmp.path() + "/snaps", "--metrics",
               "127.0.0.1:0", "--", program("allocating")},
              {"LEAKSCOPE_WATCHER=1:99"});
  const int pid = pidIn(child.waitForLine("allocating pid="));
  ASSERT_GT(pid, 0) << child.err();
  EXPECT_EQ(environOf(pid, "LEAKSCOPE_WATCHER"), std::nullopt);
  EXPECT_TRUE(environOf(pid, "LEAKSCOPE_METRICS").has_value());
}

TEST(Run, HelpExplainsWithAnExample) {
  const Ran r = leakscope({"run", "--help"});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("Usage: leakscope run [OPTIONS] -- CMD [ARGS...]"), std::string::npos);
  EXPECT_NE(r.out.find("Example:"), std::string::npos);
  EXPECT_NE(r.out.find("`leakscope-watch`"), std::string::npos);
  const Ran top = leakscope({"--help"});
  EXPECT_NE(top.out.find("  run "), std::string::npos);
}

}  // namespace
}  // namespace leakscope
