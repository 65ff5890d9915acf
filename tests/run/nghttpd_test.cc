// `leakscope run` on a daemon nobody here wrote: Debian's nghttpd (HTTP/2
// over TLS, on nghttp2, libev and OpenSSL) under h2load's traffic. Snapshots
// are written on the signal while it serves and every request succeeds.
// Debian builds nghttpd with jemalloc: the allocator clash, for real — run
// says so, adds no tcmalloc, and the heap section says why it is empty.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_support.h"
#include "third_party.h"

namespace leakscope {
namespace {

using nlohmann::json;
using testing::Child;
using testing::eventually;
using testing::makeCert;
using testing::onPath;
using testing::TempDir;

const std::string kLeakscope = std::string(LEAKSCOPE_BIN_DIR) + "/leakscope";

TEST(RunNghttpd, ServesH2loadTrafficWithSnapshotsOnItsOwnAllocator) {
  if (!onPath("nghttpd") || !onPath("h2load")) {
    GTEST_SKIP() << "nghttpd or h2load not installed (scripts/setup.sh: nghttp2-server, "
                    "nghttp2-client)";
  }
  TempDir tmp;
  ASSERT_TRUE(makeCert(tmp.path()));
  const std::string docs = tmp.path() + "/htdocs";
  std::filesystem::create_directories(docs);
  testing::writeFile(docs + "/index.html", std::string(4096, 'x'));
  const std::string snaps = tmp.path() + "/snaps";
  const int port = testing::freePort();
  ASSERT_GT(port, 0);
  Child daemon({kLeakscope, "run", "--snapshot-dir", snaps, "--sample-period", "4096", "--",
                "nghttpd", "-d", docs, std::to_string(port), tmp.path() + "/key.pem",
                tmp.path() + "/cert.pem"});
  const std::string url = "https://127.0.0.1:" + std::to_string(port) + "/index.html";
  ASSERT_TRUE(eventually([&] {
    Child probe({"/usr/bin/h2load", "-n", "1", url});
    return probe.wait() == 0 && probe.out().find("1 succeeded") != std::string::npos;
  })) << daemon.err();

  Child load({"/usr/bin/h2load", "-n", "20000", "-c", "8", "-m", "10", url});
  // Snapshots while it serves.
  for (std::size_t n = 1; n <= 3; ++n) {
    kill(daemon.pid(), SIGUSR2);
    ASSERT_TRUE(eventually([&] { return testing::lsnapFiles(snaps).size() >= n; })) << daemon.err();
  }
  ASSERT_EQ(load.wait(120000), 0) << load.err();
  EXPECT_NE(load.out().find("20000 succeeded, 0 failed"), std::string::npos) << load.out();
  EXPECT_TRUE(daemon.alive()) << daemon.err();

  const auto files = testing::lsnapFiles(snaps);
  ASSERT_EQ(files.size(), 3u);
  std::ifstream in(files.back());
  const json snap = json::parse(in);
  EXPECT_NE(daemon.err().find("nghttpd links another allocator (libjemalloc.so.2)"),
            std::string::npos)
      << daemon.err();
  EXPECT_FALSE(snap["heap"]["available"].get<bool>());
  EXPECT_NE(snap["heap"]["reason"].get<std::string>().find("libjemalloc"), std::string::npos);
  // One allocator in the process: jemalloc, no tcmalloc beside it.
  const std::string maps = testing::readFile("/proc/" + std::to_string(daemon.pid()) + "/maps");
  EXPECT_NE(maps.find("libjemalloc.so"), std::string::npos);
  EXPECT_EQ(maps.find("libtcmalloc"), std::string::npos);
  // Its listening socket and clients' connections are in the snapshot too.
  EXPECT_FALSE(snap["sockets"].empty());
}

}  // namespace
}  // namespace leakscope
