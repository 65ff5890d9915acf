// `leakscope capture PID`, end to end on real processes of other languages:
// a Node process holding TLS sockets and a Python one holding TCP sockets
// (one in CLOSE_WAIT) are captured, and the capture's sockets must be
// exactly what `ss -tanp` says that pid holds; with --signal USR2 --wait, a
// Node --heapsnapshot-signal process yields both files; a process in a
// memory cgroup this test creates reports that cgroup's limit; bad input is
// one line and exit 2.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "memory_cgroup.h"
#include "test_support.h"

namespace leakscope {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Child;
using testing::MemoryCgroup;
using testing::readFile;
using testing::TempDir;
using testing::writeFile;

const std::string kLeakscope = std::string(LEAKSCOPE_BIN_DIR) + "/leakscope";

struct Outcome {
  int status = -1;
  std::string out;
  std::string err;
};

Outcome run(std::vector<std::string> argv, int timeout_ms = 60000) {
  Child c(std::move(argv));
  Outcome r;
  r.status = c.wait(timeout_ms);
  r.out = c.out();
  r.err = c.err();
  return r;
}

Outcome capture(const std::vector<std::string>& args) {
  std::vector<std::string> argv{kLeakscope, "capture"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

bool onPath(const std::string& tool) {
  return run({"/bin/sh", "-c", "command -v " + tool}).status == 0;
}

// One TCP socket as both sides spell it: local, remote ("" when listening),
// state (the kernel's names as leakscope writes them), fd.
using SocketRow = std::tuple<std::string, std::string, std::string, int>;

// ss's state names -> the kernel's (tcpStateName).
std::string kernelState(const std::string& ss) {
  static const std::map<std::string, std::string> kNames = {
      {"ESTAB", "ESTABLISHED"},    {"LISTEN", "LISTEN"},       {"CLOSE-WAIT", "CLOSE_WAIT"},
      {"SYN-SENT", "SYN_SENT"},    {"SYN-RECV", "SYN_RECV"},   {"FIN-WAIT-1", "FIN_WAIT1"},
      {"FIN-WAIT-2", "FIN_WAIT2"}, {"TIME-WAIT", "TIME_WAIT"}, {"LAST-ACK", "LAST_ACK"},
      {"CLOSING", "CLOSING"},      {"UNCONN", "CLOSE"}};
  const auto it = kNames.find(ss);
  return it == kNames.end() ? "?" + ss : it->second;
}

// The TCP sockets `ss -tanp` shows for `pid`, one row per fd of that pid.
std::set<SocketRow> ssSockets(int pid) {
  const Outcome ss = run({"/usr/bin/ss", "-tanpH"});
  EXPECT_EQ(ss.status, 0) << ss.err;
  std::set<SocketRow> out;
  std::istringstream in(ss.out);
  std::string line;
  const std::regex owner("pid=" + std::to_string(pid) + ",fd=([0-9]+)");
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string state, recvq, sendq, local, remote;
    f >> state >> recvq >> sendq >> local >> remote;
    // A listener's peer is "0.0.0.0:*", "[::]:*" or "*:*": no remote.
    if (remote.ends_with(":*")) remote.clear();
    for (auto m = std::sregex_iterator(line.begin(), line.end(), owner);
         m != std::sregex_iterator(); ++m) {
      out.emplace(local, remote, kernelState(state), std::stoi((*m)[1]));
    }
  }
  return out;
}

// The TCP sockets of a capture.
std::set<SocketRow> capturedSockets(const json& doc) {
  std::set<SocketRow> out;
  for (const auto& s : doc["sockets"]) {
    if (s["protocol"] != "tcp" && s["protocol"] != "tcp6") continue;
    out.emplace(s["local"], s["remote"], s["state"], s["fd"].get<int>());
  }
  return out;
}

std::string show(const std::set<SocketRow>& rows) {
  std::ostringstream o;
  for (const auto& [l, r, s, fd] : rows)
    o << "  fd " << fd << " " << l << " -> " << r << " " << s << "\n";
  return o.str();
}

json readJson(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in, nullptr, false);
}

// A field of /proc/PID/status ("Threads", "VmRSS"), as a number.
std::uint64_t statusField(int pid, const std::string& key) {
  std::istringstream in(readFile("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stoull(line.substr(key.size() + 1));
  }
  return 0;
}

std::uint64_t fdCount(int pid) {
  std::uint64_t n = 0;
  for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    (void)e;
    ++n;
  }
  return n;
}

// Captures `pid` into `dir` and checks the file against the process as the
// system's own tools see it at the same moment.
json captureAndCompare(int pid, const std::string& dir) {
  const Outcome r = capture({std::to_string(pid), "--out", dir});
  EXPECT_EQ(r.status, 0) << r.err;
  const std::string path = r.out.substr(0, r.out.find('\n'));
  const std::set<SocketRow> ss = ssSockets(pid);
  const std::uint64_t fds = fdCount(pid);
  const std::uint64_t threads = statusField(pid, "Threads");
  const std::uint64_t rss_kib = statusField(pid, "VmRSS");
  const json doc = readJson(path);
  EXPECT_FALSE(doc.is_discarded()) << path;
  if (doc.is_discarded()) return doc;
  EXPECT_EQ(doc["trigger"]["reason"], "capture");
  EXPECT_EQ(doc["process"]["pid"], pid);
  const std::set<SocketRow> captured = capturedSockets(doc);
  EXPECT_EQ(captured, ss) << "capture:\n" << show(captured) << "ss -tanp:\n" << show(ss);
  EXPECT_EQ(doc["process"]["open_fds"], fds);
  EXPECT_EQ(doc["process"]["threads"], threads);
  const double rss = doc["process"]["rss_bytes"].get<double>();
  EXPECT_NEAR(rss, static_cast<double>(rss_kib) * 1024, 0.1 * static_cast<double>(rss_kib) * 1024);
  return doc;
}

// A throwaway self-signed certificate for the Node TLS server.
bool makeCert(const std::string& dir) {
  return run({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
              "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", dir + "/key.pem", "-out",
              dir + "/cert.pem", "-days", "1", "-subj", "/CN=localhost"})
             .status == 0;
}

// A TLS server on 127.0.0.1:0 and N of its own clients, every handshake done
// before it prints "ready PORT"; then it only holds them.
const char* kNodeTls = R"JS(
const tls = require('tls'), fs = require('fs');
const [dir, n] = [process.argv[2], Number(process.argv[3])];
const held = [];
const server = tls.createServer(
    {key: fs.readFileSync(dir + '/key.pem'), cert: fs.readFileSync(dir + '/cert.pem')},
    (s) => { held.push(s); s.on('error', () => {}); });
server.listen(0, '127.0.0.1', () => {
  const port = server.address().port;
  let done = 0;
  for (let i = 0; i < n; i++) {
    const c = tls.connect({port, host: '127.0.0.1', rejectUnauthorized: false}, () => {
      if (++done === n) setTimeout(() => console.log('ready ' + port), 200);
    });
    c.on('error', (e) => console.error(e));
    held.push(c);
  }
});
setInterval(() => {}, 1 << 30);
)JS";

// Three connected pairs and one accepted socket whose client closed its end
// (CLOSE_WAIT: the server never closes it).
const char* kPythonTcp = R"PY(
import socket, time
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(16)
held = []
for i in range(3):
    c = socket.create_connection(s.getsockname()); a, _ = s.accept(); held += [c, a]
c = socket.create_connection(s.getsockname()); a, _ = s.accept(); held.append(a); c.close()
time.sleep(0.3)
print('ready', flush=True)
time.sleep(600)
)PY";

TEST(CaptureCommand, NodeTlsSocketsMatchSs) {
  if (!onPath("node") || !onPath("openssl")) GTEST_SKIP() << "needs node and openssl";
  TempDir tmp;
  ASSERT_TRUE(makeCert(tmp.path()));
  writeFile(tmp.path() + "/tls.js", kNodeTls);
  Child node({"/usr/bin/env", "node", tmp.path() + "/tls.js", tmp.path(), "5"});
  ASSERT_TRUE(node.waitForLine("ready", 30000).has_value()) << node.err();
  const json doc = captureAndCompare(node.pid(), tmp.path() + "/out");
  // 1 listener + 5 clients + 5 accepted ends.
  EXPECT_EQ(capturedSockets(doc).size(), 11u);
}

TEST(CaptureCommand, PythonTcpSocketsWithCloseWaitMatchSs) {
  TempDir tmp;
  writeFile(tmp.path() + "/tcp.py", kPythonTcp);
  Child py({"/usr/bin/env", "python3", tmp.path() + "/tcp.py"});
  ASSERT_TRUE(py.waitForLine("ready", 30000).has_value()) << py.err();
  const json doc = captureAndCompare(py.pid(), tmp.path() + "/out");
  int close_wait = 0;
  for (const auto& row : capturedSockets(doc)) close_wait += std::get<2>(row) == "CLOSE_WAIT";
  EXPECT_EQ(close_wait, 1);
  EXPECT_EQ(capturedSockets(doc).size(), 8u);
}

TEST(CaptureCommand, SignalAndWaitYieldsACompleteNodeHeapSnapshotAndTheCapture) {
  if (!onPath("node")) GTEST_SKIP() << "needs node";
  TempDir tmp;
  writeFile(tmp.path() + "/idle.js",
            "const held = []; for (let i = 0; i < 1e5; i++) held.push({i});\n"
            "console.log('ready'); setInterval(() => {}, 1 << 30);\n");
  // cwd = the temp dir: Node writes Heap.*.heapsnapshot there.
  Child node({"/bin/sh", "-c", "cd \"$0\" && exec node --heapsnapshot-signal=SIGUSR2 idle.js",
              tmp.path()});
  ASSERT_TRUE(node.waitForLine("ready", 30000).has_value()) << node.err();
  const std::string out = tmp.path() + "/out";
  const Outcome r = capture({std::to_string(node.pid()), "--out", out, "--signal", "USR2", "--wait",
                             tmp.path() + "/Heap.*.heapsnapshot", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const json printed = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(printed.is_discarded()) << r.out;
  const std::string heap = printed["heap_snapshot"];
  const std::string lsnap = printed["capture"];
  EXPECT_TRUE(heap.ends_with(".heapsnapshot")) << heap;
  EXPECT_EQ(printed["pid"], node.pid());
  const json doc = readJson(lsnap);
  EXPECT_EQ(doc["trigger"]["detail"], "leakscope capture, sent SIGUSR2");
  // The file name that pairs the two in trend and report (join.h).
  EXPECT_EQ(doc["trigger"]["heap_snapshot"], heap.substr(heap.rfind('/') + 1));
  // Complete: the V8 reader takes it whole.
  const Outcome shown = run({kLeakscope, "show", heap});
  EXPECT_EQ(shown.status, 0) << shown.err;
  EXPECT_TRUE(node.alive());
}

TEST(CaptureCommand, TheMemoryLimitIsThatOfTheProcessCgroup) {
  constexpr std::uint64_t kLimit = 192ull << 20;
  std::string why;
  const auto cgroup = MemoryCgroup::create(kLimit, why);
  if (cgroup == nullptr) GTEST_SKIP() << "no memory cgroup for this test: " << why;
  TempDir tmp;
  // The shell joins the cgroup and becomes python (exec keeps the pid).
  Child py({"/bin/sh", "-c",
            "echo $$ > \"$0\" && exec python3 -c \"print('ready', flush=True); "
            "import time; time.sleep(600)\"",
            cgroup->dir() + "/cgroup.procs"});
  ASSERT_TRUE(py.waitForLine("ready", 30000).has_value()) << py.err();
  const Outcome r = capture({std::to_string(py.pid()), "--out", tmp.path()});
  ASSERT_EQ(r.status, 0) << r.err;
  const json doc = readJson(r.out.substr(0, r.out.find('\n')));
  EXPECT_EQ(doc["process"]["memory_limit_bytes"], kLimit);
  EXPECT_EQ(doc["process"]["memory_limit_source"], cgroup->v2() ? "cgroup2" : "cgroup1");
}

// capture links the runtime's tcmalloc-free half only (leakscope::collect):
// the CLI must not start running on tcmalloc by reaching for the runtime.
TEST(CaptureCommand, TheCliDoesNotRunOnTcmalloc) {
  const Outcome ldd = run({"/usr/bin/ldd", kLeakscope});
  ASSERT_EQ(ldd.status, 0) << ldd.err;
  EXPECT_EQ(ldd.out.find("tcmalloc"), std::string::npos) << ldd.out;
}

// Exit 2, nothing on stdout, and one line on stderr holding `what`.
void expectOneLineError(const Outcome& r, const std::string& what) {
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(r.err.starts_with("leakscope capture: ")) << r.err;
  EXPECT_NE(r.err.find(what), std::string::npos) << "want '" << what << "' in: " << r.err;
}

TEST(CaptureCommandBadInput, APidThatDoesNotExist) {
  int pid = 0;
  {
    Child gone({"/bin/true"});
    pid = gone.pid();
    gone.wait();
  }
  TempDir tmp;
  expectOneLineError(capture({std::to_string(pid), "--out", tmp.path()}),
                     "no process with pid " + std::to_string(pid));
  expectOneLineError(capture({"abc"}), "PID");
  expectOneLineError(capture({}), "PID");
  expectOneLineError(capture({"-5"}), "");
  EXPECT_TRUE(fs::is_empty(tmp.path()));
}

TEST(CaptureCommandBadInput, AProcessThatExitsOnTheSignalLeavesNoFile) {
  TempDir tmp;
  // No handler for SIGUSR2: its default action ends the process.
  Child py({"/usr/bin/env", "python3", "-c",
            "import time; print('ready', flush=True); time.sleep(600)"});
  ASSERT_TRUE(py.waitForLine("ready", 30000).has_value());
  const std::string out = tmp.path() + "/out";
  expectOneLineError(capture({std::to_string(py.pid()), "--out", out, "--signal", "USR2", "--wait",
                              tmp.path() + "/*.heapsnapshot"}),
                     "exited after SIGUSR2");
  EXPECT_FALSE(fs::exists(out) && !fs::is_empty(out));
}

TEST(CaptureCommandBadInput, NoPermissionSaysWhoMayCapture) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run the capture as nobody";
  if (!onPath("setpriv")) GTEST_SKIP() << "needs setpriv";
  TempDir tmp;
  const Outcome r =
      run({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", kLeakscope,
           "capture", std::to_string(getpid()), "--out", "/nonexistent/x"});
  expectOneLineError(r, "capturing a process needs its own user, or root (CAP_SYS_PTRACE)");
  EXPECT_NE(r.err.find("/proc/" + std::to_string(getpid()) + "/fd"), std::string::npos) << r.err;
}

TEST(CaptureCommandBadInput, OptionsThatCannotWork) {
  TempDir tmp;
  const std::string self = std::to_string(getpid());
  const std::string glob = tmp.path() + "/*.heapsnapshot";
  const std::string out = tmp.path() + "/out";
  expectOneLineError(capture({self, "--out", out, "--signal", "USR9", "--wait", glob}),
                     "--signal 'USR9': not a signal name or number");
  expectOneLineError(capture({self, "--out", out, "--signal", "USR2"}), "--signal requires --wait");
  expectOneLineError(capture({self, "--out", out, "--wait", glob}), "--wait requires --signal");
  expectOneLineError(
      capture({self, "--out", out, "--signal", "USR2", "--wait", glob, "--timeout", "-1"}),
      "--timeout");
  expectOneLineError(
      capture({self, "--out", out, "--signal", "USR2", "--wait", glob, "--timeout", "soon"}),
      "--timeout");
  expectOneLineError(
      capture({self, "--out", out, "--signal", "USR2", "--wait", "/nonexistent/dir/*.heap"}),
      "directory /nonexistent/dir does not exist");
  // Unwritable --out: a file, and a directory others can write.
  writeFile(tmp.path() + "/file", "x");
  expectOneLineError(capture({self, "--out", tmp.path() + "/file"}), "not a directory");
  fs::create_directories(tmp.path() + "/shared");
  fs::permissions(tmp.path() + "/shared", fs::perms::all);
  expectOneLineError(capture({self, "--out", tmp.path() + "/shared"}),
                     "lets group or others write");
  EXPECT_FALSE(fs::exists(out));
}

TEST(CaptureCommandBadInput, AFileThatNeverComesTimesOut) {
  TempDir tmp;
  // Handles SIGUSR2 and writes nothing.
  Child py({"/usr/bin/env", "python3", "-c",
            "import signal, time; signal.signal(signal.SIGUSR2, lambda *a: None); "
            "print('ready', flush=True); time.sleep(600)"});
  ASSERT_TRUE(py.waitForLine("ready", 30000).has_value());
  const std::string glob = tmp.path() + "/*.heapsnapshot";
  expectOneLineError(capture({std::to_string(py.pid()), "--out", tmp.path() + "/out", "--signal",
                              "SIGUSR2", "--wait", glob, "--timeout", "1"}),
                     "timed out after 1 s waiting for a new complete '" + glob + "'");
  EXPECT_TRUE(py.alive());
  EXPECT_FALSE(fs::exists(tmp.path() + "/out"));
}

}  // namespace
}  // namespace leakscope
