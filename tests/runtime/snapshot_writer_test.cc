#include "leakscope/diag/snapshot_writer.h"

#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "leakscope/diag/process.h"
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
  EXPECT_EQ(j["version"], 2);
  EXPECT_EQ(j["trigger"]["reason"], "api");
  EXPECT_EQ(j["trigger"]["detail"], "unit test");
  EXPECT_EQ(j["process"]["pid"], getpid());
  EXPECT_GT(j["process"]["rss_bytes"].get<std::uint64_t>(), 0u);
  EXPECT_GT(j["process"]["threads"].get<int>(), 0);
  EXPECT_FALSE(j["process"]["exe"].get<std::string>().empty());
  EXPECT_FALSE(j["process"]["host"].get<std::string>().empty());
  // The memory limit the runtime knows (issue #13 item 9), so that trend can
  // project time-to-limit from the snapshots alone.
  const auto limit = leakscope::diag::readMemoryLimit();
  ASSERT_TRUE(limit.ok());
  EXPECT_EQ(j["process"]["memory_limit_bytes"].get<std::uint64_t>(), limit->bytes);
  EXPECT_EQ(j["process"]["memory_limit_source"],
            leakscope::diag::memoryLimitSourceName(limit->source));
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

TEST_F(SnapshotWriterTest, WritesEachObjectsOwnerOrNull) {
  Tracked pool(kind("snaptest.chain.pool"), "pool");
  Tracked conn(kind("snaptest.chain.connection"), pool, "apns");
  auto gone = std::make_unique<Tracked>(kind("snaptest.chain.pool"), "gone");
  Tracked orphan(kind("snaptest.chain.connection"), *gone, "orphan");
  const std::uint64_t gone_id = gone->id().value;
  gone.reset();
  SnapshotWriter w(options());
  auto info = w.write(Trigger::kApi);
  ASSERT_TRUE(info.ok()) << info.error().message;
  const auto j = load(info->path);
  std::map<std::uint64_t, nlohmann::json> owner_of;
  for (const auto& k : j["tracked"]) {
    for (const auto& o : k["objects"]) owner_of[o["id"].get<std::uint64_t>()] = o["owner"];
  }
  ASSERT_EQ(owner_of.count(pool.id().value), 1u);
  EXPECT_TRUE(owner_of[pool.id().value].is_null());
  EXPECT_EQ(owner_of[conn.id().value], pool.id().value);
  // The owner was released first: its id stays, naming no live object.
  EXPECT_EQ(owner_of[orphan.id().value], gone_id);
  EXPECT_EQ(owner_of.count(gone_id), 0u);
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

TEST_F(SnapshotWriterTest, AnEntryItDidNotWriteIsAWarningAndDoesNotStopRotation) {
  SnapshotOptions o = options();
  o.keep = 2;
  SnapshotWriter w(o);
  ASSERT_TRUE(w.write(Trigger::kApi).ok());
  // Something that is not a snapshot file where the oldest snapshot was.
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
  // The entry stays and does not count; the writer's own files are rotated.
  EXPECT_EQ(files(), (std::vector<std::string>{"unit.000001.lsnap", "unit.000004.lsnap",
                                               "unit.000005.lsnap"}));
  EXPECT_TRUE(fs::exists(dir_ + "/unit.000001.lsnap/keep"));
}

// ---- the directory rules: nobody else can steer the writer (issue #11) -----

mode_t modeOf(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

bool isLink(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

std::string readAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void makeDir(const std::string& path, mode_t mode) {
  ASSERT_EQ(mkdir(path.c_str(), 0700), 0) << path;
  ASSERT_EQ(chmod(path.c_str(), mode), 0) << path;  // whatever the umask
}

// Creates the link `link` -> `target` as another local user would: as
// "nobody" (setpriv) when this test runs as root, else as this user.
void plantLink(const std::string& target, const std::string& link) {
  if (geteuid() == 0) {
    leakscope::testing::Child c({"/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup",
                                 "--clear-groups", "/bin/ln", "-s", target, link});
    ASSERT_EQ(c.wait(), 0) << c.err();
  } else {
    ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0) << link;
  }
  ASSERT_TRUE(isLink(link));
}

// The temp name the writer used before issue #11 for sequence 1: predictable.
std::string oldTempName(const std::string& dir, pid_t pid) {
  return dir + "/.unit.000001." + std::to_string(pid) + ".tmp";
}

constexpr const char* kPrecious = "precious, not a snapshot\n";

TEST_F(SnapshotWriterTest, ADirectoryOthersCanWriteIsRefusedNamingItAndTheReasonNotChmodded) {
  for (mode_t mode : {mode_t{0770}, mode_t{0775}, mode_t{0777}, mode_t{01777}}) {
    SCOPED_TRACE(mode);
    fs::remove_all(dir_);
    makeDir(dir_, mode);
    SnapshotWriter w(options());
    auto r = w.prepareDir();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::kPermission);
    EXPECT_NE(r.error().message.find("snapshot dir " + dir_ + ": mode "), std::string::npos)
        << r.error().message;
    EXPECT_NE(r.error().message.find("lets group or others write"), std::string::npos)
        << r.error().message;
    EXPECT_FALSE(w.write(Trigger::kApi).ok());
    EXPECT_EQ(modeOf(dir_), mode);  // never chmodded
    EXPECT_TRUE(files().empty());
  }
}

TEST_F(SnapshotWriterTest, ADirectoryOwnedByAnotherUserIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give a directory to another user";
  const passwd* nobody = getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  makeDir(dir_, 0755);
  ASSERT_EQ(chown(dir_.c_str(), nobody->pw_uid, nobody->pw_gid), 0);
  SnapshotWriter w(options());
  auto r = w.prepareDir();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(dir_), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("owned by uid " + std::to_string(nobody->pw_uid)),
            std::string::npos)
      << r.error().message;
  EXPECT_FALSE(w.write(Trigger::kApi).ok());
  EXPECT_TRUE(files().empty());
}

TEST_F(SnapshotWriterTest, ADirectoryGivenAsASymlinkIsRefused) {
  const std::string real = root_ + "/real";
  makeDir(real, 0700);
  ASSERT_EQ(symlink(real.c_str(), dir_.c_str()), 0);
  for (const std::string& given : {dir_, dir_ + "/", dir_ + "//"}) {
    SCOPED_TRACE(given);
    SnapshotOptions o = options();
    o.dir = given;
    SnapshotWriter w(o);
    auto r = w.write(Trigger::kApi);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("snapshot dir " + dir_), std::string::npos)
        << r.error().message;
    EXPECT_NE(r.error().message.find("symbolic link"), std::string::npos) << r.error().message;
  }
  EXPECT_TRUE(fs::is_empty(real));
}

TEST_F(SnapshotWriterTest, AnExistingDirectoryOfItsOwnKeepsItsMode) {
  for (mode_t mode : {mode_t{0700}, mode_t{0750}, mode_t{0755}, mode_t{0711}}) {
    SCOPED_TRACE(mode);
    fs::remove_all(dir_);
    makeDir(dir_, mode);
    SnapshotWriter w(options());
    ASSERT_TRUE(w.prepareDir().ok());
    auto info = w.write(Trigger::kApi);
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(modeOf(dir_), mode);
    EXPECT_EQ(modeOf(info->path), 0600u);
  }
}

TEST_F(SnapshotWriterTest, MissingParentsAreCreated0700AndExistingOnesLeftAsTheyAre) {
  ASSERT_EQ(chmod(root_.c_str(), 0755), 0);
  SnapshotOptions o = options();
  o.dir = root_ + "/a/b/snaps";
  SnapshotWriter w(o);
  auto info = w.write(Trigger::kApi);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(modeOf(root_), 0755u);
  EXPECT_EQ(modeOf(root_ + "/a"), 0700u);
  EXPECT_EQ(modeOf(root_ + "/a/b"), 0700u);
  EXPECT_EQ(modeOf(o.dir), 0700u);
}

// The attack of issue #11: another user plants the predictable temp name as a
// link to a file of ours in a directory they can write (like /tmp); one
// snapshot used to overwrite that file with the snapshot.
TEST_F(SnapshotWriterTest, ALinkPlantedByAnotherUserInASharedDirectoryIsNeverWrittenThrough) {
  ASSERT_EQ(chmod(root_.c_str(), 0755), 0);  // let the other user reach dir_
  makeDir(dir_, 01777);
  const std::string victim = root_ + "/victim";
  std::ofstream(victim) << kPrecious;
  ASSERT_EQ(chmod(victim.c_str(), 0600), 0);
  plantLink(victim, oldTempName(dir_, getpid()));

  SnapshotWriter w(options());
  auto r = w.write(Trigger::kSignal, "SIGUSR2");
  EXPECT_EQ(readAll(victim), kPrecious);
  EXPECT_EQ(modeOf(victim), 0600u);
  EXPECT_FALSE(fs::exists(fs::symlink_status(dir_ + "/unit.000001.lsnap")));
  ASSERT_FALSE(r.ok());  // the shared directory is refused outright
  EXPECT_NE(r.error().message.find(dir_), std::string::npos) << r.error().message;
}

// Defence in depth: even in a directory of our own, a name planted in advance
// (any sequence, any pid) is never opened through.
TEST_F(SnapshotWriterTest, PlantedTempNamesInItsOwnDirectoryAreNeverFollowed) {
  makeDir(dir_, 0700);
  const std::string victim = root_ + "/victim";
  std::ofstream(victim) << kPrecious;
  for (const char* seq : {"000001", "000002", "000003"}) {
    for (const pid_t pid : {getpid(), getpid() + 1, pid_t{4194305}}) {
      const std::string stem = dir_ + "/.unit." + seq + "." + std::to_string(pid);
      ASSERT_EQ(symlink(victim.c_str(), (stem + ".tmp").c_str()), 0);
      ASSERT_EQ(symlink(victim.c_str(), (stem + ".000000000000.tmp").c_str()), 0);
    }
  }
  SnapshotWriter w(options());
  auto info = w.write(Trigger::kApi, "planted");
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(readAll(victim), kPrecious);
  EXPECT_EQ(info->path, dir_ + "/unit.000001.lsnap");
  EXPECT_FALSE(isLink(info->path));
  EXPECT_EQ(modeOf(info->path), 0600u);
  const auto j = load(info->path);
  EXPECT_EQ(j["trigger"]["detail"], "planted");
  EXPECT_EQ(j["sequence"], 1);
  // Links are not the writer's to remove, even those named for dead pids.
  EXPECT_TRUE(isLink(dir_ + "/.unit.000001.4194305.tmp"));
}

TEST_F(SnapshotWriterTest, StaleTempRemovalRemovesOnlyItsOwnRegularFiles) {
  makeDir(dir_, 0700);
  const std::string victim = root_ + "/victim";
  std::ofstream(victim) << kPrecious;
  // pid 4194305 is above Linux's pid_max limit: certainly not running.
  const std::string own = dir_ + "/.unit.000001.4194305.0123456789ab.tmp";
  const std::string link = dir_ + "/.unit.000002.4194305.tmp";
  const std::string fifo = dir_ + "/.unit.000003.4194305.tmp";
  const std::string foreign = dir_ + "/.unit.000004.4194305.tmp";
  std::ofstream(own) << "{";
  ASSERT_EQ(symlink(victim.c_str(), link.c_str()), 0);
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  if (geteuid() == 0) {
    std::ofstream(foreign) << "{";
    ASSERT_EQ(chown(foreign.c_str(), 65534, 65534), 0);
  }
  SnapshotWriter w(options());
  ASSERT_TRUE(w.write(Trigger::kApi).ok());
  EXPECT_FALSE(fs::exists(own));
  EXPECT_TRUE(isLink(link));
  EXPECT_TRUE(fs::is_fifo(fifo));
  if (geteuid() == 0) {
    EXPECT_TRUE(fs::exists(foreign));
  }
  EXPECT_EQ(readAll(victim), kPrecious);
}

TEST_F(SnapshotWriterTest, RotationNeverRemovesOrFollowsEntriesItDidNotWrite) {
  makeDir(dir_, 0700);
  const std::string victim = root_ + "/victim";
  std::ofstream(victim) << kPrecious;
  ASSERT_EQ(symlink(victim.c_str(), (dir_ + "/unit.000001.lsnap").c_str()), 0);
  ASSERT_EQ(mkfifo((dir_ + "/unit.000002.lsnap").c_str(), 0600), 0);
  std::vector<std::string> expected = {"unit.000001.lsnap", "unit.000002.lsnap"};
  if (geteuid() == 0) {  // a regular file, but another user's
    std::ofstream(dir_ + "/unit.000003.lsnap") << "{}";
    ASSERT_EQ(chown((dir_ + "/unit.000003.lsnap").c_str(), 65534, 65534), 0);
    expected.push_back("unit.000003.lsnap");
  } else {
    std::ofstream(dir_ + "/unit.000003.lsnap") << "{}";  // then simply the oldest of ours
  }
  SnapshotOptions o = options();
  o.keep = 1;
  SnapshotWriter w(o);
  Result<SnapshotInfo> last = Error{Errc::kIo, "not written"};
  for (int i = 0; i < 3; ++i) {
    last = w.write(Trigger::kInterval);
    ASSERT_TRUE(last.ok()) << last.error().message;
  }
  EXPECT_NE(last->warning.find("unit.000001.lsnap"), std::string::npos) << last->warning;
  expected.push_back("unit.000006.lsnap");  // keep = 1 counts the writer's own files only
  EXPECT_EQ(files(), expected);
  EXPECT_TRUE(isLink(dir_ + "/unit.000001.lsnap"));
  EXPECT_EQ(readAll(victim), kPrecious);
}

TEST_F(SnapshotWriterTest, ALinkToABigFileDoesNotCountAgainstTheByteBudget) {
  makeDir(dir_, 0700);
  const std::string big = root_ + "/big";
  std::ofstream(big) << std::string(1 << 20, 'x');
  ASSERT_EQ(symlink(big.c_str(), (dir_ + "/unit.000001.lsnap").c_str()), 0);
  SnapshotWriter probe(options());
  auto first = probe.write(Trigger::kApi);
  ASSERT_TRUE(first.ok()) << first.error().message;
  fs::remove(first->path);
  SnapshotOptions o = options();
  o.max_bytes = first->bytes * 3;  // room for two of ours, far from the linked megabyte
  SnapshotWriter w(o);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(w.write(Trigger::kApi).ok());
  EXPECT_EQ(files(), (std::vector<std::string>{"unit.000001.lsnap", "unit.000002.lsnap",
                                               "unit.000003.lsnap"}));
  EXPECT_EQ(fs::file_size(big), 1u << 20);
}

// Full mode's scratch directory for gperftools' own dumps is emptied after
// every snapshot: planted as a link, it used to empty another directory.
TEST_F(SnapshotWriterTest, FullModeNeverEmptiesADirectoryLinkedAsItsScratchDirectory) {
  makeDir(dir_, 0700);
  const std::string other = root_ + "/other";
  makeDir(other, 0700);
  std::ofstream(other + "/keep") << kPrecious;
  ASSERT_EQ(symlink(other.c_str(), (dir_ + "/.gperftools").c_str()), 0);
  SnapshotOptions o = options();
  o.heap_mode = HeapMode::kFull;
  auto info = [&] {
    SnapshotWriter w(o);
    return w.write(Trigger::kApi);
  }();
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(readAll(other + "/keep"), kPrecious);
  EXPECT_TRUE(isLink(dir_ + "/.gperftools"));
  const auto j = load(info->path);
  EXPECT_EQ(j["heap"]["mode"], "full");
  EXPECT_FALSE(j["heap"]["available"].get<bool>());
  const std::string reason = j["heap"]["reason"];
  EXPECT_NE(reason.find(dir_ + "/.gperftools: is a symbolic link"), std::string::npos) << reason;
}

TEST_F(SnapshotWriterTest, FullModeScratchDirectoryIsPrivateAndOnlyItsFilesAreRemoved) {
  SnapshotOptions o = options();
  o.heap_mode = HeapMode::kFull;
  SnapshotWriter w(o);
  const std::string scratch = dir_ + "/.gperftools";
  ASSERT_TRUE(fs::is_directory(fs::symlink_status(scratch)));
  EXPECT_EQ(modeOf(scratch), 0700u);
  const std::string victim = root_ + "/victim";
  std::ofstream(victim) << kPrecious;
  std::ofstream(scratch + "/heap.0001.heap") << "heap profile: dump";
  ASSERT_EQ(symlink(victim.c_str(), (scratch + "/heap.0002.heap").c_str()), 0);
  ASSERT_EQ(mkdir((scratch + "/sub").c_str(), 0700), 0);
  auto info = w.write(Trigger::kApi);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_FALSE(fs::exists(scratch + "/heap.0001.heap"));
  EXPECT_TRUE(isLink(scratch + "/heap.0002.heap"));
  EXPECT_TRUE(fs::is_directory(scratch + "/sub"));
  EXPECT_EQ(readAll(victim), kPrecious);
#ifdef LEAKSCOPE_WITH_TCMALLOC
  EXPECT_TRUE(load(info->path)["heap"]["available"].get<bool>());
#endif
}

}  // namespace
}  // namespace leakscope::diag
