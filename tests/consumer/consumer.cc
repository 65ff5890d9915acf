// A small daemon outside the leakscope tree: it tracks the connections it
// opens, keeps some of them (the leak), and writes a snapshot through the
// installed library. tests/consumer/run.sh reads that snapshot with the CLI.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "leakscope/diag/runtime.h"
#include "leakscope/diag/tracked.h"

namespace diag = leakscope::diag;

namespace {

diag::Kind& kSession = diag::kind("consumer.session");

class Session {
 public:
  explicit Session(std::string peer) : buffer_(4096, 'x'), tracked_(kSession, std::move(peer)) {
    tracked_.setBytes(buffer_.size());
  }

 private:
  std::string buffer_;
  diag::Tracked tracked_;  // last member: deregisters first
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s SNAPSHOT_DIR\n", argv[0]);
    return 2;
  }
  diag::Config config;
  config.snapshot_dir = argv[1];
  config.snapshot_name = "consumer";
  config.metrics_address = "";  // nothing to scrape here
  diag::Runtime runtime(config);

  std::vector<std::unique_ptr<Session>> kept;
  for (int i = 0; i < 10; ++i) {
    auto s = std::make_unique<Session>("peer-" + std::to_string(i));
    if (i % 2 == 0) kept.push_back(std::move(s));  // every other one is never closed
  }
  const diag::Result<diag::SnapshotInfo> written = runtime.snapshot();
  if (!written.ok()) {
    std::fprintf(stderr, "consumer: %s\n", written.error().message.c_str());
    return 1;
  }
  std::printf("consumer: %zu sessions alive, snapshot %s\n", kept.size(), written->path.c_str());
  return 0;
}
