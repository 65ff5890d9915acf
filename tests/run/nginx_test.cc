// `leakscope run` on a daemon nobody here wrote that runs on the allocator
// run gives it: Debian's nginx (nginx-light; it links OpenSSL, pcre2 and zlib
// but no allocator of its own, and exports its ngx_* functions). A master
// and two fork()ed workers under h2load's traffic: each worker answers the
// snapshot signal with a snapshot named by its pid while every request
// succeeds, and the heap sites name functions of nginx and of its libraries.
// nginx uses USR1 and USR2 itself (log reopening, binary upgrade), so the
// snapshot signal is RTMIN+3; with the default the clash is said.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "test_support.h"
#include "third_party.h"

namespace leakscope {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Child;
using testing::eventually;
using testing::TempDir;

const std::string kLeakscope = std::string(LEAKSCOPE_BIN_DIR) + "/leakscope";

// `nginx -V` lists what it was built with on stderr.
bool nginxHasTlsAndHttp2() {
  Child v({"/usr/sbin/nginx", "-V"});
  if (v.wait() != 0) return false;
  const std::string built = v.err();
  return built.find("--with-http_ssl_module") != std::string::npos &&
         built.find("--with-http_v2_module") != std::string::npos;
}

std::string replaceAll(std::string text, const std::map<std::string, std::string>& values) {
  for (const auto& [key, value] : values) {
    for (std::size_t at = text.find(key); at != std::string::npos;
         at = text.find(key, at + value.size())) {
      text.replace(at, key.size(), value);
    }
  }
  return text;
}

// A temp dir with nginx's configuration (tests/run/nginx/nginx.conf.in), a
// 4 KiB page to serve and, where nginx has them, TLS and HTTP/2.
struct NginxSite {
  TempDir tmp;
  std::string conf = tmp.path() + "/nginx.conf";
  std::string snaps = tmp.path() + "/snaps";
  int port = testing::freePort();
  bool h2 = nginxHasTlsAndHttp2();
  bool ready = false;

  NginxSite() {
    fs::create_directories(tmp.path() + "/htdocs");
    testing::writeFile(tmp.path() + "/htdocs/index.html", std::string(4096, 'x'));
    if (port <= 0 || (h2 && !testing::makeCert(tmp.path()))) return;
    const std::string tls = "ssl_certificate " + tmp.path() + "/cert.pem; ssl_certificate_key " +
                            tmp.path() + "/key.pem;";
    testing::writeFile(conf, replaceAll(testing::readFile(LEAKSCOPE_NGINX_CONF),
                                        {{"@DIR@", tmp.path()},
                                         {"@PORT@", std::to_string(port)},
                                         {"@WORKERS@", "2"},
                                         {"@USER@", geteuid() == 0 ? "user root root;" : ""},
                                         {"@LISTEN@", h2 ? " ssl http2" : ""},
                                         {"@TLS@", h2 ? tls : ""}}));
    ready = true;
  }
  std::string url() const {
    return std::string(h2 ? "https" : "http") + "://127.0.0.1:" + std::to_string(port) +
           "/index.html";
  }
  // h2load over HTTP/2 with TLS, or HTTP/1.1 without.
  std::vector<std::string> h2load(int requests, int clients, int streams) const {
    std::vector<std::string> argv = {"/usr/bin/h2load",       "-n", std::to_string(requests), "-c",
                                     std::to_string(clients), "-m", std::to_string(streams)};
    if (!h2) argv.push_back("--h1");
    argv.push_back(url());
    return argv;
  }
  std::string errorLog() const { return testing::readFile(tmp.path() + "/error.log"); }
};

// The pids whose parent is `pid` (nginx's workers).
std::vector<int> childrenOf(int pid) {
  std::vector<int> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = testing::readFile(e.path().string() + "/stat");
    const std::size_t rp = stat.rfind(')');
    if (rp == std::string::npos) continue;
    std::istringstream rest(stat.substr(rp + 2));
    std::string state;
    int ppid = 0;
    if (rest >> state >> ppid && ppid == pid) out.push_back(std::stoi(name));
  }
  return out;
}

// nginx's master under `leakscope run OPTIONS`. The destructor stops it with
// SIGTERM (the master stops its workers; a SIGKILL would leave them serving
// the port), then kills any worker still there.
class NginxUnderRun {
 public:
  NginxUnderRun(const NginxSite& site, const std::vector<std::string>& options) {
    std::vector<std::string> argv = {kLeakscope, "run", "--snapshot-dir", site.snaps};
    argv.insert(argv.end(), options.begin(), options.end());
    const std::vector<std::string> command = {
        "--", "/usr/sbin/nginx", "-p", site.tmp.path(),
        "-c", site.conf,         "-e", site.tmp.path() + "/error.log"};
    argv.insert(argv.end(), command.begin(), command.end());
    master_ = std::make_unique<Child>(argv);
  }
  ~NginxUnderRun() {
    const std::vector<int> workers = childrenOf(master_->pid());
    master_->terminate(20000);
    for (int w : workers) kill(w, SIGKILL);
  }
  NginxUnderRun(const NginxUnderRun&) = delete;
  NginxUnderRun& operator=(const NginxUnderRun&) = delete;

  Child& master() { return *master_; }
  // Serving: one request through h2load succeeds.
  bool serves(const NginxSite& site) {
    return eventually([&] {
      Child probe(site.h2load(1, 1, 1));
      return probe.wait() == 0 && probe.out().find("1 succeeded") != std::string::npos;
    });
  }

 private:
  std::unique_ptr<Child> master_;
};

// The shared libraries nginx links (their sonames), but libc: ldd's view.
std::set<std::string> nginxLibraries() {
  Child ldd({"/usr/bin/ldd", "/usr/sbin/nginx"});
  ldd.wait();
  std::set<std::string> out;
  const std::regex line(R"(^\s*(\S+\.so[.0-9]*) => )");
  std::istringstream lines(ldd.out());
  std::string l;
  std::smatch m;
  while (std::getline(lines, l)) {
    if (std::regex_search(l, m, line) && !std::string(m[1]).starts_with("libc.so")) {
      out.insert(m[1]);
    }
  }
  return out;
}

// The snapshot's heap frames that name a function, by module file name.
std::map<std::string, std::set<std::string>> namedFrames(const json& snap) {
  std::map<std::string, std::set<std::string>> out;
  for (const json& f : snap["heap"]["frames"]) {
    const std::string function = f.value("function", "");
    if (!function.empty()) out[fs::path(f.value("module", "")).filename()].insert(function);
  }
  return out;
}

std::string join(const std::set<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

class RunNginx : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::onPath("nginx") || !testing::onPath("h2load")) {
      GTEST_SKIP() << "nginx or h2load not installed (scripts/setup.sh: nginx-light, "
                      "nghttp2-client)";
    }
  }
};

TEST_F(RunNginx, EachWorkerWritesItsSnapshotWhileServingAndItsHeapNamesNginxAndItsLibraries) {
  NginxSite site;
  ASSERT_TRUE(site.ready);
  NginxUnderRun nginx(site, {"--signal", "RTMIN+3", "--sample-period", "4096"});
  ASSERT_TRUE(nginx.serves(site)) << nginx.master().err() << site.errorLog();
  std::vector<int> workers;
  ASSERT_TRUE(eventually([&] { return (workers = childrenOf(nginx.master().pid())).size() == 2; }));

  Child load(site.h2load(20000, 8, 10));
  // The signal goes to the workers (children of the master, by fork), while
  // they serve.
  for (int w : workers) ASSERT_EQ(kill(w, SIGRTMIN + 3), 0);
  std::vector<std::string> files;
  for (int w : workers) {
    const std::string file = site.snaps + "/nginx." + std::to_string(w) + ".000001.lsnap";
    ASSERT_TRUE(eventually([&] { return fs::exists(file); }))
        << "no snapshot of worker " << w << "\n"
        << nginx.master().err();
    files.push_back(file);
  }
  ASSERT_EQ(load.wait(120000), 0) << load.err();
  EXPECT_NE(load.out().find("20000 succeeded, 0 failed"), std::string::npos) << load.out();
  EXPECT_TRUE(nginx.master().alive()) << nginx.master().err() << site.errorLog();
  // Only the workers were signalled.
  EXPECT_EQ(testing::lsnapFiles(site.snaps).size(), 2u);

  const std::set<std::string> libraries = nginxLibraries();
  ASSERT_FALSE(libraries.empty());
  for (std::size_t i = 0; i < files.size(); ++i) {
    std::ifstream in(files[i]);
    const json snap = json::parse(in);
    EXPECT_EQ(snap["process"]["pid"], workers[i]);
    ASSERT_TRUE(snap["heap"]["available"].get<bool>()) << snap["heap"].dump();
    const auto named = namedFrames(snap);
    // nginx's own allocation functions (ngx_alloc, ngx_create_pool ...).
    const std::set<std::string> own =
        named.count("nginx") ? named.at("nginx") : std::set<std::string>{};
    EXPECT_TRUE(std::any_of(own.begin(), own.end(),
                            [](const std::string& f) { return f.starts_with("ngx_"); }))
        << "no ngx_* frame in " << files[i] << ": " << join(own);
    // And a function of one of the libraries it links (OpenSSL, pcre2, zlib).
    std::set<std::string> seen;
    for (const std::string& lib : libraries) {
      if (named.count(lib)) seen.insert(lib + ": " + *named.at(lib).begin());
    }
    EXPECT_FALSE(seen.empty()) << "no named frame of " << join(libraries) << " in " << files[i];
    Child show({kLeakscope, "show", files[i]});
    const int status = show.wait(60000);
    EXPECT_TRUE(status == 0 || status == 1) << status << ": " << show.err();
  }
}

TEST_F(RunNginx, WithTheDefaultSignalTheClashNamesNginxAndItKeepsServing) {
  NginxSite site;
  ASSERT_TRUE(site.ready);
  NginxUnderRun nginx(site, {});
  ASSERT_TRUE(nginx.serves(site)) << nginx.master().err() << site.errorLog();
  const std::string said = "leakscope: nginx (pid " + std::to_string(nginx.master().pid()) +
                           ") installs its own SIGUSR2 handler: leaving its handler alone, no "
                           "snapshots on SIGUSR2; pick another --signal";
  EXPECT_TRUE(eventually([&] { return nginx.master().err().find(said) != std::string::npos; }))
      << nginx.master().err();
}

}  // namespace
}  // namespace leakscope
