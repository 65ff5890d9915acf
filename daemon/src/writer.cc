#include "writer.h"

#include <mysql.h>
#include <signal.h>

#include "leakscope/core/signals.h"
#include "log.h"

namespace pushdaemon {

ResultWriter::ResultWriter(DbParams params, const Config& config, DaemonMetrics* metrics)
    : db_(std::move(params), metrics, config.db_reconnect_min, config.db_reconnect_max, "writer"),
      thread_([this] { threadMain(); }) {}

ResultWriter::~ResultWriter() { stop(false); }

void ResultWriter::submit(Job job) {
  const std::lock_guard lock(mu_);
  jobs_.push_back(std::move(job));
  cv_.notify_one();
}

void ResultWriter::setLease(Lease lease) {
  const std::lock_guard lock(mu_);
  lease_ = std::move(lease);
  lease_lost_ = false;
  last_renew_ = std::chrono::steady_clock::now();
}

void ResultWriter::clearLease() {
  const std::lock_guard lock(mu_);
  lease_.reset();
}

std::size_t ResultWriter::queued() const {
  const std::lock_guard lock(mu_);
  return jobs_.size();
}

void ResultWriter::stop(bool abandon) {
  {
    const std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    if (abandon) {
      abandon_ = true;
      jobs_.clear();
    }
    cv_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

void ResultWriter::maybeRenew() {
  std::optional<Lease> lease;
  {
    const std::lock_guard lock(mu_);
    if (!lease_ || lease_lost_) return;
    if (std::chrono::steady_clock::now() - last_renew_ <
        std::chrono::milliseconds(lease_->length) / 3)
      return;
    lease = lease_;
  }
  auto r = db_.run(
      DbOp::kLease, [&](DbConnection& c) { return renewLease(c, *lease); }, &abandon_);
  if (!r.ok()) {
    logWarn("writer", "lease renewal of schedule " + std::to_string(lease->schedule_id) + ": " +
                          r.error().message);
    return;
  }
  const std::lock_guard lock(mu_);
  last_renew_ = std::chrono::steady_clock::now();
  if (!*r && lease_ && lease_->schedule_id == lease->schedule_id && lease_->epoch == lease->epoch) {
    lease_lost_ = true;
  }
}

void ResultWriter::threadMain() {
  // Signals belong to main (sigwait) and leakscope's SIGUSR2 handler; none
  // may interrupt a database call here.
  const leakscope::core::SignalsBlocked blocked = leakscope::core::blockAllSignals();
  mysql_thread_init();
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      const auto period =
          lease_ ? std::chrono::milliseconds(lease_->length) / 3 : std::chrono::seconds(1);
      cv_.wait_for(lock, std::min<std::chrono::milliseconds>(period, std::chrono::seconds(1)),
                   [&] { return !jobs_.empty() || stopping_; });
      if (jobs_.empty()) {
        if (stopping_) break;
        lock.unlock();
        maybeRenew();
        continue;
      }
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    auto s = db_.run(job.op, job.work, &abandon_);
    if (!s.ok() && abandon_) break;  // shutting down without the database
    if (job.done) job.done(s);
    maybeRenew();
  }
  db_.reset();
  mysql_thread_end();
}

}  // namespace pushdaemon
