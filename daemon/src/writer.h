// The result writer: the thread that persists what the scheduler produced,
// in order, on its own database connection, so that sending never waits
// for a commit and a database outage only grows the (bounded) backlog.
//
// Jobs run strictly in submission order (pages of one platform must commit
// in cursor order). Each runs under Db::run: when the server goes away the
// job is retried after reconnecting, with back-off, until it succeeds or
// fails for another reason. Between jobs, and while idle, it renews the
// lease of the schedule being run (every third of the lease).
//
// Thread-safety: submit(), setLease(), clearLease() and stop() from any
// thread; job callbacks run on the writer thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "db.h"
#include "store.h"

namespace pushdaemon {

class ResultWriter {
 public:
  struct Job {
    DbOp op = DbOp::kWrite;
    std::function<diag::Status(DbConnection&)> work;
    std::function<void(const diag::Status&)> done;  // on the writer thread
  };

  ResultWriter(DbParams params, const Config& config, DaemonMetrics* metrics);
  ~ResultWriter();  // stop(false)

  void submit(Job job);
  void setLease(Lease lease);
  void clearLease();
  // True once a renewal found the claim taken by another daemon.
  bool leaseLost() const { return lease_lost_.load(); }
  std::size_t queued() const;
  bool dbUp() const { return db_.up(); }
  // Stops the thread. With `abandon` the job in progress gives up at its
  // next retry and queued jobs are dropped (their done() is not called).
  void stop(bool abandon);

 private:
  void threadMain();
  void maybeRenew();

  Db db_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;        // guarded by mu_
  std::optional<Lease> lease_;  // guarded by mu_
  bool stopping_ = false;       // guarded by mu_
  std::atomic<bool> abandon_{false};
  std::atomic<bool> lease_lost_{false};
  std::chrono::steady_clock::time_point last_renew_;
  std::thread thread_;  // last: starts once everything above exists
};

}  // namespace pushdaemon
