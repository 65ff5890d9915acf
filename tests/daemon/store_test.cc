// The SQL that crash safety rests on, against a real MariaDB: claims are
// exclusive (SKIP LOCKED), expired leases are taken over with a new epoch,
// a stale owner writes nothing, a page committed twice is written once, and
// migrations are idempotent and refuse a newer schema.
#include "store.h"

#include "daemon_test_support.h"
#include "gtest/gtest.h"

namespace leakscope::testing {
namespace {

using leakscope::push::OutcomeKind;
using pushdaemon::ClaimedSchedule;
using pushdaemon::Lease;
using pushdaemon::Platform;
using pushdaemon::ResultRow;
using pushdaemon::WriteOutcome;

class Store : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(db_.ok()) << db_.error();
    a_ = db_.connect();
    b_ = db_.connect();
    ASSERT_TRUE(a_ && b_);
    auto v = pushdaemon::migrate(*a_);
    ASSERT_TRUE(v.ok()) << v.error().message;
    pushdaemon::AppRow app;
    app.name = "game";
    app_ = *pushdaemon::addApp(*a_, app);
  }
  std::uint64_t due() { return *pushdaemon::addSchedule(*a_, app_, R"({"fcm":{}})", -1); }
  MariaDbServer db_;
  std::unique_ptr<pushdaemon::DbConnection> a_, b_;
  std::uint64_t app_ = 0;
};

TEST_F(Store, MigrationsAreIdempotentAndANewerSchemaIsRefused) {
  auto again = pushdaemon::migrate(*b_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, pushdaemon::latestSchemaVersion());
  EXPECT_EQ(count(*a_, "SELECT COUNT(*) FROM schema_version"), 1u);
  ASSERT_TRUE(a_->exec("INSERT INTO schema_version (version, name) VALUES (99, 'future')").ok());
  auto newer = pushdaemon::migrate(*a_);
  ASSERT_FALSE(newer.ok());
  EXPECT_NE(newer.error().message.find("database schema version 99 is newer than this "
                                       "pushdaemon's 1"),
            std::string::npos)
      << newer.error().message;
}

TEST_F(Store, TwoConcurrentClaimsNeverGetTheSameSchedule) {
  const auto s1 = due();
  const auto s2 = due();
  // A holds its claim transaction open: B skips the locked row.
  ASSERT_TRUE(a_->exec("START TRANSACTION").ok());
  auto locked =
      a_->query("SELECT id FROM schedule WHERE id = " + std::to_string(s1) + " FOR UPDATE");
  ASSERT_TRUE(locked.ok());
  auto b = pushdaemon::claimSchedule(*b_, "b/1", std::chrono::seconds(30));
  ASSERT_TRUE(b.ok()) << b.error().message;
  ASSERT_TRUE(b->has_value());
  EXPECT_EQ((*b)->id, s2);
  ASSERT_TRUE(a_->exec("COMMIT").ok());
  auto a = pushdaemon::claimSchedule(*a_, "a/1", std::chrono::seconds(30));
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ((*a)->id, s1);
  // Both running under a valid lease: nothing left to claim for anyone.
  auto c = pushdaemon::claimSchedule(*b_, "c/1", std::chrono::seconds(30));
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->has_value());
}

TEST_F(Store, AnExpiredLeaseIsTakenOverWithANewEpochAndTheOldOwnerWritesNothing) {
  const auto sid = due();
  auto a = pushdaemon::claimSchedule(*a_, "a/1", std::chrono::seconds(30));
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ((*a)->epoch, 1u);
  EXPECT_FALSE((*a)->takeover);
  auto none = pushdaemon::claimSchedule(*b_, "b/1", std::chrono::seconds(30));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());  // lease still valid
  ASSERT_TRUE(a_->exec("UPDATE schedule SET lease_until = NOW(6) - INTERVAL 1 SECOND").ok());
  auto b = pushdaemon::claimSchedule(*b_, "b/1", std::chrono::seconds(30));
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_EQ((*b)->id, sid);
  EXPECT_EQ((*b)->epoch, 2u);
  EXPECT_TRUE((*b)->takeover);

  const std::vector<ResultRow> rows = {{5, OutcomeKind::kSuccess, 200, "", 1}};
  const Lease old{sid, "a/1", 1, std::chrono::seconds(30)};
  auto stale = pushdaemon::writePage(*a_, old, Platform::kFcm, 5, rows);
  ASSERT_TRUE(stale.ok());
  EXPECT_EQ(*stale, WriteOutcome::kLeaseLost);
  EXPECT_FALSE(*pushdaemon::renewLease(*a_, old));
  EXPECT_FALSE(*pushdaemon::finishSchedule(*a_, old));
  EXPECT_EQ(count(*a_, "SELECT COUNT(*) FROM push_result"), 0u);
  const Lease current{sid, "b/1", 2, std::chrono::seconds(30)};
  EXPECT_EQ(*pushdaemon::writePage(*b_, current, Platform::kFcm, 5, rows), WriteOutcome::kWritten);
  EXPECT_TRUE(*pushdaemon::finishSchedule(*b_, current));
  auto st = status(*a_, sid);
  EXPECT_EQ(st->state, "done");
  EXPECT_EQ(st->success, 1u);
  EXPECT_EQ(st->fcm_cursor, 5u);
}

TEST_F(Store, AReasonCutAtItsColumnSizeNeverSplitsAUtf8Character) {
  // A push server's reason text with a 2-byte character across the 64-byte
  // cut: the strict utf8mb4 column refuses half a character, and with it
  // the whole page.
  const std::string reason = std::string(63, 'x') + "\xC3\xA9 t\xC3\xA9l\xC3\xA9phone";
  const auto ids = insertTokens(*a_, app_, "fcm", {"u1", "u2"});
  const auto sid = due();
  auto c = pushdaemon::claimSchedule(*a_, "a/1", std::chrono::seconds(30));
  ASSERT_TRUE(c.ok() && c->has_value());
  const Lease lease{sid, "a/1", (*c)->epoch, std::chrono::seconds(30)};
  const std::vector<ResultRow> rows = {{ids[0], OutcomeKind::kPermanent, 400, reason, 1},
                                       {ids[1], OutcomeKind::kInvalidToken, 410, reason, 1}};
  auto w = pushdaemon::writePage(*a_, lease, Platform::kFcm, ids[1], rows);
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_EQ(*w, WriteOutcome::kWritten);
  const auto stored = resultsByToken(*a_, sid);
  ASSERT_EQ(stored.count("u1"), 1u);
  EXPECT_EQ(stored.at("u1")[0].reason, std::string(63, 'x'));
  EXPECT_EQ(count(*a_, "SELECT COUNT(*) FROM device_token WHERE last_error = '" +
                           std::string(63, 'x') + "'"),
            1u);
  // A failure reason with a 3-byte character across its 512-byte cut.
  const std::string failure = std::string(511, 'y') + "\xE2\x82\xAC";
  auto f = pushdaemon::failSchedule(*a_, lease, failure);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_TRUE(*f);
  EXPECT_EQ(status(*a_, sid)->failure_reason, std::string(511, 'y'));
}

TEST_F(Store, APageCommittedTwiceIsWrittenOnceAndInvalidTokensAreDeactivated) {
  const auto ids = insertTokens(*a_, app_, "fcm", {"t1", "t2", "t3"});
  const auto sid = due();
  auto c = pushdaemon::claimSchedule(*a_, "a/1", std::chrono::seconds(30));
  ASSERT_TRUE(c.ok() && c->has_value());
  const Lease lease{sid, "a/1", (*c)->epoch, std::chrono::seconds(30)};
  const std::vector<ResultRow> rows = {{ids[0], OutcomeKind::kSuccess, 200, "", 1},
                                       {ids[1], OutcomeKind::kInvalidToken, 404, "UNREGISTERED", 1},
                                       {ids[2], OutcomeKind::kRetryable, 503, "UNAVAILABLE", 9}};
  EXPECT_EQ(*pushdaemon::writePage(*a_, lease, Platform::kFcm, ids[2], rows),
            WriteOutcome::kWritten);
  // The same page again (its COMMIT's answer was lost): nothing is written.
  EXPECT_EQ(*pushdaemon::writePage(*b_, lease, Platform::kFcm, ids[2], rows),
            WriteOutcome::kAlreadyWritten);
  EXPECT_EQ(count(*a_, "SELECT COUNT(*) FROM push_result"), 3u);
  auto st = status(*a_, sid);
  EXPECT_EQ(st->success, 1u);
  EXPECT_EQ(st->invalid_token, 1u);
  EXPECT_EQ(st->retryable, 1u);
  EXPECT_EQ(count(*a_,
                  "SELECT COUNT(*) FROM device_token WHERE active = 0 AND last_error = "
                  "'UNREGISTERED' AND id = " +
                      std::to_string(ids[1])),
            1u);
  // The next page reads after the cursor: the deactivated token is gone too.
  auto next = pushdaemon::readTokens(*a_, app_, Platform::kFcm, 0, 10);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->size(), 2u);
  auto after = pushdaemon::readTokens(*a_, app_, Platform::kFcm, ids[2], 10);
  EXPECT_TRUE(after->empty());
}

TEST_F(Store, ReleasedSchedulesAreClaimableAgainAndKeepTheirCursor) {
  const auto sid = due();
  auto c = pushdaemon::claimSchedule(*a_, "a/1", std::chrono::seconds(30));
  const Lease lease{sid, "a/1", (*c)->epoch, std::chrono::seconds(30)};
  ASSERT_EQ(*pushdaemon::writePage(*a_, lease, Platform::kFcm, 42, {}), WriteOutcome::kWritten);
  EXPECT_TRUE(*pushdaemon::releaseSchedule(*a_, lease));
  auto b = pushdaemon::claimSchedule(*b_, "b/1", std::chrono::seconds(30));
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_EQ((*b)->cursor[static_cast<int>(Platform::kFcm)], 42u);
  EXPECT_EQ((*b)->epoch, 2u);
}

}  // namespace
}  // namespace leakscope::testing
