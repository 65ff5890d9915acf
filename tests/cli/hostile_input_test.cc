// The leakscope CLI against hostile inputs (issue #11): every file of
// tests/data/hostile/ plus the ones only a running test can make (a FIFO, a
// non-UTF-8 file name, a profile naming a FIFO as a library, a sparse file).
// Each run has an address-space bound and a deadline: a rejected input exits
// 2 with exactly one line on stderr; an accepted one is shown with nothing
// that a terminal would act on.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using leakscope::testing::readFile;
using leakscope::testing::TempDir;
using leakscope::testing::writeFile;

const std::string kBin = std::string(LEAKSCOPE_BIN_DIR) + "/leakscope";
const std::string kHostile = std::string(LEAKSCOPE_TEST_DATA) + "/hostile";
const std::string kGood =
    std::string(LEAKSCOPE_TEST_DATA) + "/snapshots/leak/leakscope-example.000001.lsnap";
// A second good input: the same file twice is refused (issue #13 item 10).
const std::string kGood2 =
    std::string(LEAKSCOPE_TEST_DATA) + "/snapshots/leak/leakscope-example.000002.lsnap";

// The bound every run stays under: address space (RLIMIT_AS) and peak RSS.
constexpr rlim_t kMemoryBound = rlim_t{512} << 20;
// Generous: a run takes milliseconds; only a hang comes near it.
constexpr int kDeadlineMs = 20000;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif
#else
constexpr bool kAsan = false;
#endif

struct CliRun {
  int status = -1;  // exit status; 128+N for signal N; -1 when it hit the deadline
  std::string out, err;
  long max_rss_kib = 0;
};

// Runs leakscope with `args` under the memory bound (ASan reserves terabytes
// of address space, so a sanitizer build gets the RSS check only) and the
// deadline, killing it when the deadline passes. Its standard input is
// `stdin_path`.
CliRun leakscope(const std::vector<std::string>& args, int deadline_ms = kDeadlineMs,
                 const std::string& stdin_path = "/dev/null") {
  TempDir dir;
  const std::string out_path = dir.path() + "/out", err_path = dir.path() + "/err";
  std::vector<std::string> argv = {kBin};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (!kAsan) {
      const rlimit lim{kMemoryBound, kMemoryBound};
      ::setrlimit(RLIMIT_AS, &lim);
    }
    const int in = ::open(stdin_path.c_str(), O_RDONLY);
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0 || err < 0) ::_exit(126);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::execv(cargv[0], cargv.data());
    ::_exit(127);
  }
  CliRun r;
  if (pid < 0) return r;
  int status = 0;
  rusage usage{};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(deadline_ms);
  pid_t done = 0;
  while ((done = ::wait4(pid, &status, WNOHANG, &usage)) == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (done == 0) {
    ::kill(pid, SIGKILL);
    ::wait4(pid, &status, 0, &usage);
  } else if (WIFEXITED(status)) {
    r.status = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.status = 128 + WTERMSIG(status);
  }
  r.max_rss_kib = usage.ru_maxrss;
  r.out = readFile(out_path);
  r.err = readFile(err_path);
  return r;
}

// Bytes a terminal would act on: C0 controls but '\n', DEL, and anything that
// is not UTF-8 (which includes raw C1 bytes). Returns the first offset or npos.
std::size_t firstUnsafeByte(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\n') || c == 0x7f) return i;
      ++i;
      continue;
    }
    const std::size_t len = (c & 0xe0) == 0xc0   ? 2
                            : (c & 0xf0) == 0xe0 ? 3
                            : (c & 0xf8) == 0xf0 ? 4
                                                 : 0;
    if (len == 0 || i + len > s.size()) return i;
    for (std::size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return i;
    }
    // U+0080..U+009F (C1 controls, "\xc2\x80".."\xc2\x9f") and U+202A..U+202E.
    if (c == 0xc2 && static_cast<unsigned char>(s[i + 1]) < 0xa0) return i;
    if (s.compare(i, 2, "\xe2\x80") == 0 && static_cast<unsigned char>(s[i + 2]) >= 0xaa &&
        static_cast<unsigned char>(s[i + 2]) <= 0xae)
      return i;
    i += len;
  }
  return std::string::npos;
}

// The contract for an input the CLI must refuse.
void expectRejected(const std::vector<std::string>& args, const std::string& what,
                    const std::string& stdin_path = "/dev/null") {
  const CliRun r = leakscope(args, kDeadlineMs, stdin_path);
  EXPECT_EQ(r.status, 2) << what << "\nstderr: " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << what << ": " << r.err;
  EXPECT_TRUE(r.err.ends_with("\n")) << what;
  EXPECT_EQ(r.err.rfind("leakscope: ", 0), 0u) << what << ": " << r.err;
  EXPECT_EQ(firstUnsafeByte(r.err), std::string::npos) << what << ": " << r.err;
  // The message quotes at most ~100 bytes of any token: a line stays short.
  EXPECT_LT(r.err.size(), 600u) << what;
  EXPECT_TRUE(r.out.empty()) << what << ": " << r.out;
  EXPECT_LT(static_cast<rlim_t>(r.max_rss_kib) * 1024, kMemoryBound) << what;
}

// The contract for an input the CLI reads: exit 0 or 1, nothing on stderr,
// text a terminal shows as is, JSON that parses.
void expectShownSafely(const std::string& file, const std::string& what) {
  TempDir dir;
  const std::string copy = dir.path() + "/copy-" + fs::path(file).filename().string();
  writeFile(copy, readFile(file));
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"show", file}, {"diff", file, copy}, {"sockets", file}}) {
    const CliRun r = leakscope(args);
    EXPECT_TRUE(r.status == 0 || r.status == 1)
        << what << " " << args[0] << ": " << r.status << "\n"
        << r.err;
    EXPECT_TRUE(r.err.empty()) << what << ": " << r.err;
    EXPECT_EQ(firstUnsafeByte(r.out), std::string::npos) << what << " " << args[0] << ":\n"
                                                         << r.out;
    EXPECT_LT(static_cast<rlim_t>(r.max_rss_kib) * 1024, kMemoryBound) << what;
  }
  const CliRun j = leakscope({"show", "--json", file});
  EXPECT_TRUE(j.status == 0 || j.status == 1) << what << " --json: " << j.status << "\n" << j.err;
  EXPECT_TRUE(json::accept(j.out)) << what << ": " << j.out;
}

std::vector<std::string> filesIn(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file()) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A gperftools profile with one record at 0x555500001234 inside a mapping of
// `library` (the main program's mapping).
std::string profileNaming(const std::string& library) {
  return "heap profile:    1:   100 [     1:   100] @ heapprofile\n"
         "     1:   100 [     1:   100] @ 0x0000555500001234\n"
         "\nMAPPED_LIBRARIES:\n"
         "555500000000-555500010000 r-xp 00000000 08:01 1234 " +
         library + "\n";
}

// ---- the committed corpus --------------------------------------------------

TEST(HostileCorpus, EveryRejectFileExitsTwoWithOneLineInEveryCommand) {
  const auto files = filesIn(kHostile + "/reject");
  ASSERT_GE(files.size(), 30u);
  for (const std::string& f : files) {
    expectRejected({"show", f}, f);
    expectRejected({"show", "--json", f}, f + " --json");
    expectRejected({"diff", kGood, f}, f + " as diff TARGET");
    // trend reads each input's header first to order the series.
    expectRejected({"trend", kGood, kGood2, f}, f + " in a trend");
  }
}

TEST(HostileCorpus, EveryAcceptFileIsShownWithoutControlCharacters) {
  const auto files = filesIn(kHostile + "/accept");
  ASSERT_GE(files.size(), 4u);
  for (const std::string& f : files) expectShownSafely(f, f);
}

TEST(HostileCorpus, TheReadmeListsEveryFile) {
  const std::string readme = readFile(kHostile + "/README.md");
  for (const char* sub : {"reject", "accept", "proc", "http"}) {
    for (const std::string& f : filesIn(kHostile + "/" + sub)) {
      const std::string name = fs::path(f).filename().string();
      EXPECT_NE(readme.find("`" + name + "`"), std::string::npos) << sub << "/" << name;
    }
  }
}

// ---- inputs made at test time ------------------------------------------------

TEST(HostileInput, AFifoIsRefusedWithoutBlocking) {
  TempDir dir;
  const std::string fifo = dir.path() + "/snap.lsnap";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  expectRejected({"show", fifo}, "fifo");
  expectRejected({"trend", kGood, kGood2, fifo}, "fifo in a trend");
  const CliRun r = leakscope({"show", fifo});
  EXPECT_NE(r.err.find("not a regular file (a FIFO)"), std::string::npos) << r.err;
  // Through a symlink too: the link is followed, the FIFO still refused.
  const std::string link = dir.path() + "/link.lsnap";
  ASSERT_EQ(::symlink(fifo.c_str(), link.c_str()), 0);
  expectRejected({"show", link}, "symlink to a fifo");
  // Nor are devices or kernel files read.
  expectRejected({"show", "/dev/zero"}, "/dev/zero");
  expectRejected({"show", "/proc/self/status"}, "/proc/self/status");
}

TEST(HostileInput, ASymlinkToASnapshotNamedOnTheCommandLineIsRead) {
  TempDir dir;
  const std::string link = dir.path() + "/link.lsnap";
  ASSERT_EQ(::symlink(kGood.c_str(), link.c_str()), 0);
  const CliRun r = leakscope({"show", "--json", link});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["input"], link);
}

TEST(HostileInput, AProfileNamingAFifoAsALibraryDoesNotBlock) {
  TempDir dir;
  const std::string fifo = dir.path() + "/libevil.so";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  writeFile(dir.path() + "/p.heap", profileNaming(fifo));
  const CliRun r = leakscope({"show", "--json", dir.path() + "/p.heap"});
  ASSERT_EQ(r.status, 0) << "status " << r.status << " (-1: blocked)\n" << r.err;
  // The mapping is named, not read.
  const json j = json::parse(r.out);
  EXPECT_EQ(j["heap"]["top_sites"][0]["name"], "libevil.so+0x1234") << r.out;
}

TEST(HostileInput, NonUtf8AndControlCharactersInAFileName) {
  TempDir dir;
  const std::string name = dir.path() + "/snap\xff\xfe\x1b]0;t\x07\n.lsnap";
  writeFile(name, readFile(kGood));
  // Read fine; JSON replaces what is not UTF-8, text escapes it.
  const CliRun j = leakscope({"show", "--json", name});
  ASSERT_EQ(j.status, 0) << j.status << " " << j.err;
  const std::string input = json::parse(j.out)["input"];
  EXPECT_EQ(input, dir.path() + "/snap\xef\xbf\xbd\xef\xbf\xbd\x1b]0;t\x07\n.lsnap");
  const CliRun t = leakscope({"show", name});
  EXPECT_EQ(t.status, 0);
  EXPECT_EQ(firstUnsafeByte(t.out), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("/snap\\xff\\xfe\\x1b]0;t\\x07\\x0a.lsnap"), std::string::npos) << t.out;
  // Refused: still one line.
  const std::string bad = dir.path() + "/bad\xff\n\x1b[2J.lsnap";
  writeFile(bad, "{");
  expectRejected({"show", bad}, "bad file with a hostile name");
  expectRejected({"show", "--json", bad}, "bad file with a hostile name, --json");
}

TEST(HostileInput, AHugeTokenIsQuotedShort) {
  TempDir dir;
  const std::string f = dir.path() + "/token.lsnap";
  writeFile(f, "{\"format\":\"leakscope-snapshot\",\"name\":\"" + std::string(1 << 20, 'A'));
  expectRejected({"show", f}, "1 MiB unterminated string");
  writeFile(f, "{\"format\":\"leakscope-snapshot\",\"" + std::string(1 << 20, 'k') + "\":1,\"" +
                   std::string(1 << 20, 'k') + "\":2}");
  expectRejected({"show", f}, "1 MiB duplicate key");
}

TEST(HostileInput, ASparseProfileIsRefusedBeforeItIsRead) {
  TempDir dir;
  const std::string f = dir.path() + "/sparse.heap";
  writeFile(f, "heap profile:    1:   100 [     1:   100] @ heapprofile\n");
  ASSERT_EQ(::truncate(f.c_str(), off_t{4} << 30), 0);
  expectRejected({"show", f}, "4 GiB sparse profile");
  const CliRun r = leakscope({"show", f});
  EXPECT_NE(r.err.find("larger than 1 GiB"), std::string::npos) << r.err;
}

TEST(HostileInput, DeepNestingIsRefusedAtAnyDepth) {
  TempDir dir;
  const std::string f = dir.path() + "/deep.lsnap";
  writeFile(f, "{\"format\":\"leakscope-snapshot\",\"x\":" + std::string(1 << 20, '['));
  expectRejected({"show", f}, "a million open brackets");
}

TEST(HostileInput, HugeFiguresCannotMakeDiffPrintNan) {
  // Two sites of 1e308 bytes summed to inf; inf - inf printed "nan", exit 0.
  const std::string f = kHostile + "/reject/huge-figure-1e308.lsnap";
  TempDir dir;
  writeFile(dir.path() + "/copy.lsnap", readFile(f));
  const CliRun r = leakscope({"diff", f, dir.path() + "/copy.lsnap"});
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_EQ(r.out.find("nan"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("heap.sites[0].inuse_bytes: must be a number from 0 to 2^63"),
            std::string::npos)
      << r.err;
}

TEST(HostileInput, AHugeFrameIdCostsNoMemory) {
  // 286 bytes that named frame 50000000 made a 200 MB frame table.
  const CliRun r = leakscope({"show", kHostile + "/reject/huge-frame-id.lsnap"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("heap.frames[0].id: 50000000 is not the frame's index 0"), std::string::npos)
      << r.err;
  // Well under the 200 MB it took (with room for a sanitizer build's overhead).
  EXPECT_LT(r.max_rss_kib, 100 * 1024);
}

TEST(HostileInput, ControlCharactersFromTheInputReachNoTerminalOrReport) {
  const std::string f = kHostile + "/accept/control-chars-everywhere.lsnap";
  // Unlimited width: at 100 columns the table would shorten the kind.
  const CliRun r = leakscope({"show", "--width", "0", f});
  EXPECT_EQ(firstUnsafeByte(r.out), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("k\\x1b]0;PWNED\\x07\\x1b[2J\\u009b31m\\u202eevil\\x0aline"),
            std::string::npos)
      << r.out;
  // The JSON keeps the text as it was (JSON escapes it itself).
  const CliRun j = leakscope({"show", "--json", f});
  EXPECT_EQ(json::parse(j.out)["tracked"][0]["kind"],
            "k\x1b]0;PWNED\x07\x1b[2J\xc2\x9b"
            "31m\xe2\x80\xae"
            "evil\nline");
  // The HTML report escapes it like the terminal views, then as HTML.
  TempDir dir;
  const std::string html = dir.path() + "/r.html";
  const CliRun h = leakscope({"report", "--html", html, f, kGood});
  EXPECT_TRUE(h.status == 0 || h.status == 1) << h.err;
  const std::string page = readFile(html);
  EXPECT_EQ(firstUnsafeByte(page), std::string::npos);
  EXPECT_EQ(page.find('\x1b'), std::string::npos);
}

// The address of a function of this very binary, and the lines of
// /proc/self/maps that map the binary: a real profile of this process.
extern "C" __attribute__((noinline)) int leakscopeHostileMarker(int x) { return x * 3 + 1; }

std::string selfProfile(const std::string& exe_as) {
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return {};
  const std::string self(exe, static_cast<std::size_t>(n));
  std::string maps;
  std::istringstream in(readFile("/proc/self/maps"));
  for (std::string line; std::getline(in, line);) {
    if (line.size() > self.size() && line.ends_with(" " + self)) {
      maps += line.substr(0, line.size() - self.size()) + exe_as + "\n";
    }
  }
  char addr[32];
  std::snprintf(addr, sizeof addr, "0x%016llx",
                static_cast<unsigned long long>(
                    reinterpret_cast<std::uintptr_t>(&leakscopeHostileMarker) + 4));
  return "heap profile:    1:   100 [     1:   100] @ heapprofile\n"
         "     1:   100 [     1:   100] @ " +
         std::string(addr) + "\n\nMAPPED_LIBRARIES:\n" + maps;
}

TEST(HostileInput, MappedLibrariesAreReadByTheirOwnPathNotThroughSymlinks) {
  ASSERT_EQ(leakscopeHostileMarker(1), 4);
  TempDir dir;
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  ASSERT_GT(n, 0);
  const std::string self(exe, static_cast<std::size_t>(n));
  // By its own path the function is named: the profile is real.
  writeFile(dir.path() + "/real.heap", selfProfile(self));
  const CliRun real = leakscope({"show", "--json", dir.path() + "/real.heap"});
  ASSERT_EQ(real.status, 0) << real.err;
  EXPECT_EQ(json::parse(real.out)["heap"]["top_sites"][0]["name"], "leakscopeHostileMarker")
      << real.out;
  // Through a symlink the file is not opened: the frame stays module+offset.
  const std::string link = dir.path() + "/libdecoy.so";
  ASSERT_EQ(::symlink(self.c_str(), link.c_str()), 0);
  writeFile(dir.path() + "/link.heap", selfProfile(link));
  const CliRun linked = leakscope({"show", "--json", dir.path() + "/link.heap"});
  ASSERT_EQ(linked.status, 0) << linked.err;
  const std::string name = json::parse(linked.out)["heap"]["top_sites"][0]["name"];
  EXPECT_EQ(name.rfind("libdecoy.so+0x", 0), 0u) << name;
}

// A small file that inflates without end stops at the inflate limit (100
// times the file, at least 16 MiB), from a file and from standard input, in
// memory and time like a plain file of that size (issue #13 item 10).
TEST(HostileInput, AGzipBombStopsAtTheInflateLimit) {
  const std::string bomb = kHostile + "/reject/gzip-bomb.lsnap.gz";
  for (const std::string& input : {bomb, std::string("-")}) {
    expectRejected({"show", input}, "gzip bomb " + input, bomb);
    const CliRun r = leakscope({"show", input}, kDeadlineMs, bomb);
    EXPECT_NE(r.err.find(": gzip data inflates past 16.0 MiB"), std::string::npos) << r.err;
  }
  // Standard input is kept in memory (up to 1 GiB); an endless stream that
  // is no input is refused from its first bytes, before it is kept.
  expectRejected({"show", "-"}, "/dev/zero on stdin", "/dev/zero");
  const CliRun endless = leakscope({"show", "-"}, kDeadlineMs, "/dev/zero");
  EXPECT_NE(endless.err.find("leakscope: -: byte 0: not a leakscope snapshot"), std::string::npos)
      << endless.err;
}

// A directory is read for its snapshot files only: a FIFO, a symlink, a
// subdirectory or a device node named like a snapshot is never opened.
TEST(HostileInput, ADirectoryYieldsOnlyItsRegularSnapshotFiles) {
  TempDir dir;
  writeFile(dir.path() + "/a.000001.lsnap", readFile(kGood));
  ASSERT_EQ(::mkfifo((dir.path() + "/a.000002.lsnap").c_str(), 0600), 0);
  ASSERT_EQ(::symlink("/dev/zero", (dir.path() + "/a.000003.lsnap").c_str()), 0);
  ASSERT_EQ(::mkdir((dir.path() + "/a.000004.lsnap").c_str(), 0700), 0);
  const CliRun r = leakscope({"show", "--json", dir.path()});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["input"], dir.path() + "/a.000001.lsnap");
}

TEST(HostileInput, ASizeOptionThatOverflowsIsAUsageError) {
  // 1e308 is a finite double; times 2^40 it was inf, and thresholds of inf.
  const CliRun r = leakscope({"trend", "--min-bytes", "1e308TiB", kGood, kGood2, kGood});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--min-bytes: '1e308TiB' must be a positive size"), std::string::npos)
      << r.err;
}

}  // namespace
