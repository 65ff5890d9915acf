#include "leakscope/diag/snapshot.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "leakscope/diag/tracked.h"
#include "test_support.h"

namespace leakscope::diag {
namespace {

namespace fs = std::filesystem;

class SnapshotWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/leakscope-snap-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/snaps";
  }
  void TearDown() override { fs::remove_all(root_); }

  SnapshotOptions options() {
    SnapshotOptions o;
    o.dir = dir_;
    o.name = "unit";
    o.heap_mode = HeapMode::kOff;
    return o;
  }
  static nlohmann::json load(const std::string& path) {
    std::ifstream in(path);
    return nlohmann::json::parse(in);
  }
  std::vector<std::string> files() {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
  }

  std::string root_;
  std::string dir_;
};

TEST_F(SnapshotWriterTest, WritesAVersionedSelfContainedDocument) {
  Kind& k = kind("snaptest.connection");
  Tracked a(k, "api.push.apple.com", 1234);
  Tracked b(k, "api.push.apple.com", 10);
  SnapshotWriter w(options());
  auto info = w.write(Trigger::kApi, "unit test");
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->path, dir_ + "/unit.000001.lsnap");
  EXPECT_EQ(info->sequence, 1u);

  const auto j = load(info->path);
  EXPECT_EQ(j["format"], "leakscope-snapshot");
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["trigger"]["reason"], "api");
  EXPECT_EQ(j["trigger"]["detail"], "unit test");
  EXPECT_EQ(j["process"]["pid"], getpid());
  EXPECT_GT(j["process"]["rss_bytes"].get<std::uint64_t>(), 0u);
  EXPECT_GT(j["process"]["threads"].get<int>(), 0);
  EXPECT_FALSE(j["process"]["exe"].get<std::string>().empty());
  EXPECT_GT(j["taken"]["unix_ns"].get<std::int64_t>(), 0);
  EXPECT_GT(j["taken"]["monotonic_ns"].get<std::int64_t>(), 0);
  EXPECT_EQ(j["heap"]["mode"], "off");
  EXPECT_FALSE(j["heap"]["available"].get<bool>());
  EXPECT_TRUE(j["allocator"].contains("available"));

  const nlohmann::json* kindj = nullptr;
  for (const auto& t : j["tracked"]) {
    if (t["kind"] == "snaptest.connection") kindj = &t;
  }
  ASSERT_NE(kindj, nullptr);
  EXPECT_EQ((*kindj)["live"], 2);
  EXPECT_EQ((*kindj)["live_bytes"], 1244);
  EXPECT_EQ((*kindj)["created_total"].get<std::uint64_t>() -
                (*kindj)["destroyed_total"].get<std::uint64_t>(),
            2u);
  std::set<std::uint64_t> ids;
  for (const auto& o : (*kindj)["objects"]) {
    ids.insert(o["id"].get<std::uint64_t>());
    EXPECT_EQ(o["label"], "api.push.apple.com");
    EXPECT_TRUE(o["fd"].is_null());
  }
  EXPECT_EQ(ids, (std::set<std::uint64_t>{a.id().value, b.id().value}));
}

TEST_F(SnapshotWriterTest, FilesAre0600InA0700DirectoryAndNoTempFileRemains) {
  SnapshotWriter w(options());
  auto info = w.write(Trigger::kSignal, "SIGUSR2");
  ASSERT_TRUE(info.ok()) << info.error().message;
  struct stat st {};
  ASSERT_EQ(stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(stat(info->path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(files(), std::vector<std::string>{"unit.000001.lsnap"});
}

TEST_F(SnapshotWriterTest, JoinsSocketsToTheirOwningObjects) {
  leakscope::testing::LoopbackConnection tcp;
  ASSERT_TRUE(tcp.ok());
  const int client = tcp.client;
  const std::string remote = tcp.address();

  Tracked conn(kind("snaptest.owner"), "apns");
  conn.setFd(client);
  SnapshotOptions o = options();
  o.peer_names.add(remote, "apns");
  SnapshotWriter w(o);
  auto info = w.write(Trigger::kApi);
  ASSERT_TRUE(info.ok()) << info.error().message;
  const auto j = load(info->path);
  bool found = false;
  for (const auto& s : j["sockets"]) {
    if (s["fd"] != client) continue;
    found = true;
    EXPECT_EQ(s["state"], "ESTABLISHED");
    EXPECT_EQ(s["remote"], remote);
    EXPECT_EQ(s["peer"], "apns");
    EXPECT_EQ(s["owner"], conn.id().value);
  }
  EXPECT_TRUE(found);
}

TEST_F(SnapshotWriterTest, SequenceContinuesAfterExistingFiles) {
  {
    SnapshotWriter w(options());
    ASSERT_TRUE(w.write(Trigger::kApi).ok());
    ASSERT_TRUE(w.write(Trigger::kApi).ok());
  }
  SnapshotWriter again(options());  // e.g. after a restart
  auto info = again.write(Trigger::kApi);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->sequence, 3u);
}

TEST_F(SnapshotWriterTest, RotationKeepsTheNewestN) {
  SnapshotOptions o = options();
  o.keep = 2;
  SnapshotWriter w(o);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(w.write(Trigger::kInterval).ok());
  EXPECT_EQ(files(), (std::vector<std::string>{"unit.000004.lsnap", "unit.000005.lsnap"}));
}

TEST_F(SnapshotWriterTest, RotationHonoursTheByteBudget) {
  SnapshotWriter probe(options());
  auto first = probe.write(Trigger::kApi);
  ASSERT_TRUE(first.ok());
  fs::remove(first->path);
  SnapshotOptions o = options();
  o.max_bytes = first->bytes * 2 + first->bytes / 2;  // room for two
  SnapshotWriter w(o);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(w.write(Trigger::kApi).ok());
  EXPECT_EQ(files().size(), 2u);
  EXPECT_EQ(files().back(), "unit.000004.lsnap");
}

TEST_F(SnapshotWriterTest, ASnapshotLargerThanTheWholeBudgetIsAClearError) {
  SnapshotOptions o = options();
  o.max_bytes = 100;
  SnapshotWriter w(o);
  auto r = w.write(Trigger::kApi);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kNoSpace);
  EXPECT_NE(r.error().message.find("byte budget (100)"), std::string::npos) << r.error().message;
  EXPECT_TRUE(files().empty());  // neither the file nor a temp file is left
}

TEST_F(SnapshotWriterTest, AnUnusableDirectoryIsAClearErrorNamingIt) {
  std::ofstream(root_ + "/file") << "x";
  SnapshotOptions o = options();
  o.dir = root_ + "/file/snaps";  // a path through a regular file
  SnapshotWriter w(o);
  auto r = w.write(Trigger::kApi);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(o.dir), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("Not a directory"), std::string::npos) << r.error().message;

  SnapshotOptions p = options();
  p.dir = "/proc/leakscope-cannot-exist";
  SnapshotWriter w2(p);
  auto r2 = w2.prepareDir();
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.error().message.find("cannot create"), std::string::npos) << r2.error().message;
}

TEST_F(SnapshotWriterTest, ExistingDirectoryIsTightenedTo0700) {
  ASSERT_EQ(mkdir(dir_.c_str(), 0755), 0);
  SnapshotWriter w(options());
  ASSERT_TRUE(w.prepareDir().ok());
  struct stat st {};
  ASSERT_EQ(stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(SnapshotWriterTest, WritesLabelsThatAreNotUtf8AsValidJson) {
  Tracked t(kind("snaptest.binary"), std::string("peer\xff\xfe\n\"x\"", 10));
  SnapshotWriter w(options());
  auto info = w.write(Trigger::kApi);
  ASSERT_TRUE(info.ok());
  EXPECT_NO_THROW(load(info->path));
}

TEST_F(SnapshotWriterTest, StrayFilesInTheDirectoryAreIgnoredNotFatal) {
  ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0);
  // A sequence too large for 64 bits, and names that only look similar.
  for (const char* f : {"unit.123456789012345678901234.lsnap", "unit..lsnap", "unit.12x.lsnap",
                        ".unit.000009.notapid.tmp", "unit.000007.lsnap.bak"}) {
    std::ofstream(dir_ + "/" + f) << "x";
  }
  SnapshotWriter w(options());
  auto info = w.write(Trigger::kApi);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->sequence, 1u);
}

TEST_F(SnapshotWriterTest, TempFilesOfDeadWritersAreRemovedAndLiveOnesKept) {
  ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0);
  // pid 2^22+1 is above Linux's pid_max limit: certainly not running.
  const std::string dead = dir_ + "/.unit.000001.4194305.tmp";
  const std::string live = dir_ + "/.unit.000001." + std::to_string(getppid()) + ".tmp";
  std::ofstream(dead) << "{";
  std::ofstream(live) << "{";
  SnapshotWriter w(options());
  ASSERT_TRUE(w.write(Trigger::kApi).ok());
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(live));  // another process may be writing it
}

TEST_F(SnapshotWriterTest, TwoWritersSharingDirAndNameNeverOverwriteEachOther) {
  SnapshotWriter a(options());
  SnapshotWriter b(options());  // like a second process: its own sequence cache
  auto ra = a.write(Trigger::kApi, "from a");
  auto rb = b.write(Trigger::kApi, "from b");
  ASSERT_TRUE(ra.ok() && rb.ok());
  EXPECT_NE(ra->path, rb->path);
  EXPECT_EQ(load(ra->path)["trigger"]["detail"], "from a");
  EXPECT_EQ(load(rb->path)["trigger"]["detail"], "from b");
  EXPECT_EQ(files().size(), 2u);
}

TEST_F(SnapshotWriterTest, ARotationFailureIsAWarningAndDoesNotStopRotation) {
  SnapshotOptions o = options();
  o.keep = 2;
  SnapshotWriter w(o);
  ASSERT_TRUE(w.write(Trigger::kApi).ok());
  // Something that cannot be unlinked where the oldest snapshot was.
  fs::remove(dir_ + "/unit.000001.lsnap");
  fs::create_directory(dir_ + "/unit.000001.lsnap");
  std::ofstream(dir_ + "/unit.000001.lsnap/keep") << "x";
  for (int i = 0; i < 3; ++i) {
    auto r = w.write(Trigger::kApi);
    ASSERT_TRUE(r.ok()) << r.error().message;  // written, whatever rotation says
  }
  auto r = w.write(Trigger::kApi);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->warning.find("unit.000001.lsnap"), std::string::npos) << r->warning;
  // The stuck entry stays; the real files beyond it are still rotated.
  EXPECT_EQ(files(), (std::vector<std::string>{"unit.000001.lsnap", "unit.000005.lsnap"}));
}

}  // namespace
}  // namespace leakscope::diag
