#include "leakscope/diag/tracked.h"

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <thread>
#include <vector>

namespace leakscope::diag {
namespace {

std::vector<ObjectRecord> liveObjects(const Kind& k) {
  std::vector<ObjectRecord> out;
  for (int s = 0; s < Kind::kShards; ++s) k.copyShard(s, out);
  return out;
}

TEST(Tracked, CountsCreationAndDestructionPerKind) {
  Kind& k = kind("test.counts");
  const auto before = k.counts();
  {
    Tracked a(k, "peer-a", 100);
    Tracked b(k, "peer-b", 50);
    const auto during = k.counts();
    EXPECT_EQ(during.created - before.created, 2u);
    EXPECT_EQ(during.live, before.live + 2);
    EXPECT_EQ(k.liveBytes(), 150u);
  }
  const auto after = k.counts();
  EXPECT_EQ(after.destroyed - before.destroyed, 2u);
  EXPECT_EQ(after.live, before.live);
  EXPECT_EQ(after.live, after.created - after.destroyed);
  EXPECT_EQ(k.liveBytes(), 0u);
}

TEST(Tracked, KindIsInternedByName) {
  EXPECT_EQ(&kind("test.interned"), &kind("test.interned"));
  EXPECT_NE(&kind("test.interned"), &kind("test.interned2"));
}

TEST(Tracked, IdsAreUniqueIncreasingAndNeverReused) {
  Kind& k = kind("test.ids");
  std::uint64_t last = 0;
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    Tracked t(k);
    EXPECT_GT(t.id().value, last);
    last = t.id().value;
    EXPECT_TRUE(seen.insert(last).second);
  }
}

TEST(Tracked, ReleaseDeregistersExactlyOnce) {
  Kind& k = kind("test.release");
  const auto before = k.counts();
  {
    Tracked t(k, "x", 10);
    t.release();
    EXPECT_TRUE(t.released());
    t.release();  // idempotent
    EXPECT_EQ(k.counts().destroyed - before.destroyed, 1u);
    EXPECT_EQ(k.liveBytes(), 0u);
    EXPECT_TRUE(liveObjects(k).empty());
  }  // destructor after release: no second decrement
  EXPECT_EQ(k.counts().destroyed - before.destroyed, 1u);
  EXPECT_EQ(k.counts().live, before.live);
}

TEST(Tracked, RecordsCarryLabelBytesFdAndBirth) {
  Kind& k = kind("test.records");
  Tracked t(k, "api.push.apple.com", 4096);
  t.setFd(42);
  t.setBytes(8192);
  t.setLabel("api.sandbox.push.apple.com");
  const auto objs = liveObjects(k);
  ASSERT_EQ(objs.size(), 1u);
  EXPECT_EQ(objs[0].id, t.id());
  EXPECT_EQ(objs[0].label, "api.sandbox.push.apple.com");
  EXPECT_EQ(objs[0].bytes, 8192u);
  EXPECT_EQ(objs[0].fd, 42);
  EXPECT_GT(objs[0].birth_unix_ns, 1'600'000'000'000'000'000);
  EXPECT_EQ(k.liveBytes(), 8192u);
}

TEST(Tracked, OwnerIsSetAtConstructionChangedAndCleared) {
  Kind& pools = kind("test.owner.pool");
  Kind& conns = kind("test.owner.connection");
  Tracked pool_a(pools, "a");
  Tracked pool_b(pools, "b");
  Tracked c(conns, pool_a, "peer", 7);
  EXPECT_EQ(c.owner(), pool_a.id());
  ASSERT_EQ(liveObjects(conns).size(), 1u);
  EXPECT_EQ(liveObjects(conns)[0].owner, pool_a.id());
  EXPECT_EQ(liveObjects(conns)[0].label, "peer");
  EXPECT_EQ(liveObjects(conns)[0].bytes, 7u);
  c.setOwner(pool_b);  // moved to another owner
  EXPECT_EQ(liveObjects(conns)[0].owner, pool_b.id());
  c.setOwner(ObjectId{});  // cleared
  EXPECT_EQ(liveObjects(conns)[0].owner, ObjectId{});
  Tracked unowned(conns);
  EXPECT_EQ(unowned.owner(), ObjectId{});
}

TEST(Tracked, AnOwnerReleasedFirstLeavesADanglingId) {
  Kind& pools = kind("test.dangling.pool");
  Kind& conns = kind("test.dangling.connection");
  auto pool = std::make_unique<Tracked>(pools, "p");
  const ObjectId pool_id = pool->id();
  Tracked c(conns, *pool);
  pool.reset();
  EXPECT_TRUE(liveObjects(pools).empty());
  ASSERT_EQ(liveObjects(conns).size(), 1u);
  EXPECT_EQ(liveObjects(conns)[0].owner, pool_id);
}

TEST(Tracked, BytesCallbackIsAskedAtReadTimeAndOverridesSetBytes) {
  Kind& k = kind("test.callback");
  std::uint64_t buffered = 1000;
  Tracked t(k, "cb", 10);
  t.setBytesCallback([&buffered] { return buffered; });
  EXPECT_EQ(k.liveBytes(), 1000u);
  buffered = 5000;
  EXPECT_EQ(k.liveBytes(), 5000u);
  EXPECT_EQ(liveObjects(k)[0].bytes, 5000u);
  t.setBytesCallback(nullptr);
  EXPECT_EQ(k.liveBytes(), 10u);
}

TEST(Tracked, ConcurrentTrackUntrackKeepsTheInvariant) {
  Kind& k = kind("test.concurrent");
  const auto before = k.counts();
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  std::vector<std::thread> threads;
  std::atomic<bool> stop{false};
  // A reader checks the invariant while writers churn.
  std::thread reader([&] {
    while (!stop.load()) {
      const auto c = k.counts();
      // Never underflows: destroyed is read before created (a reader that is
      // descheduled in between may overstate created, never understate it).
      ASSERT_GE(c.created, c.destroyed);
      (void)liveObjects(k);
    }
  });
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&k] {
      std::vector<std::unique_ptr<Tracked>> held;
      for (int n = 0; n < kPerThread; ++n) {
        held.push_back(std::make_unique<Tracked>(k, "c", 1));
        if (held.size() > 64) held.erase(held.begin());
      }
    });
  }
  for (auto& t : threads) t.join();
  stop = true;
  reader.join();
  const auto after = k.counts();
  EXPECT_EQ(after.created - before.created, static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(after.live, before.live);
  EXPECT_EQ(k.liveBytes(), 0u);
  EXPECT_TRUE(liveObjects(k).empty());
}

TEST(Tracked, RacingReleasesAndSetBytesCountOnce) {
  Kind& k = kind("test.race");
  for (int round = 0; round < 2000; ++round) {
    const auto before = k.counts();
    auto neighbour = std::make_unique<Tracked>(k, "stays", 1);
    Tracked t(k, "x", 10);
    std::atomic<int> go{0};
    std::thread a([&] {
      ++go;
      while (go.load() < 3) {
      }
      t.release();
    });
    std::thread b([&] {
      ++go;
      while (go.load() < 3) {
      }
      t.release();
    });
    std::thread c([&] {
      ++go;
      while (go.load() < 3) {
      }
      t.setBytes(1000);
    });
    a.join();
    b.join();
    c.join();
    const auto after = k.counts();
    ASSERT_EQ(after.destroyed - before.destroyed, 1u) << "round " << round;
    ASSERT_EQ(k.liveBytes(), 1u) << "round " << round;  // only the neighbour's byte
    ASSERT_EQ(liveObjects(k).size(), 1u) << "the neighbour must stay listed";
  }
}

}  // namespace
}  // namespace leakscope::diag
