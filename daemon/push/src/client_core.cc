#include "client_core.h"

#include <event2/event.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "timeval.h"

namespace leakscope::push::detail {

ClientCore::ClientCore(EventLoop& loop, Settings settings)
    : loop_(loop), settings_(std::move(settings)) {
  if (!settings_.clock) settings_.clock = [] { return std::chrono::system_clock::now(); };
  metrics_ = settings_.metrics ? settings_.metrics : std::make_shared<PushMetrics>();
  if (settings_.instrument) {
    upstream_ = metrics_->upstream(settings_.component);
    provider_.emplace(diag::kind(settings_.component + ".provider"), settings_.label);
  }
  if (settings_.retry.max_attempts < 1) settings_.retry.max_attempts = 1;
}

ClientCore::~ClientCore() = default;

Admission ClientCore::enqueue(std::unique_ptr<Job>& job) {
  std::vector<std::unique_ptr<Job>> one;
  one.push_back(std::move(job));
  const Admission a = enqueueMany(one);
  if (a != Admission::kAccepted) job = std::move(one.front());
  return a;
}

Admission ClientCore::enqueueMany(std::vector<std::unique_ptr<Job>>& jobs) {
  const std::size_t n = jobs.size();
  if (n == 0) return Admission::kAccepted;
  // Reserve the slots first; give them back if the client is closed.
  std::size_t cur = outstanding_.load(std::memory_order_relaxed);
  do {
    if (cur + n > settings_.max_outstanding) {
      if (upstream_) upstream_->rqPendingOverflow();
      return Admission::kQueueFull;
    }
  } while (!outstanding_.compare_exchange_weak(cur, cur + n, std::memory_order_relaxed));
  bool wake = false;
  {
    const std::lock_guard lock(inbox_mu_);
    if (inbox_closed_) {
      outstanding_.fetch_sub(n, std::memory_order_relaxed);
      return Admission::kShutDown;
    }
    wake = inbox_.empty();
    if (inbox_.empty()) {
      inbox_.swap(jobs);
    } else {
      for (auto& j : jobs) inbox_.push_back(std::move(j));
    }
    jobs.clear();
  }
  // One post per burst: while the loop has not drained the inbox, later
  // sends ride on the wake-up already queued.
  if (wake) loop_.post([this] { drainInbox(); });
  return Admission::kAccepted;
}

void ClientCore::drainInbox() {
  std::vector<std::unique_ptr<Job>> jobs;
  {
    const std::lock_guard lock(inbox_mu_);
    jobs.swap(inbox_);
  }
  for (auto& job : jobs) {
    if (job->precheck) {
      Outcome o = *job->precheck;
      finish(std::move(job), std::move(o));
    } else {
      attempt(std::move(job));
    }
  }
}

void ClientCore::attempt(std::unique_ptr<Job> job) {
  ++job->attempts;
  dispatch(std::move(job));
}

void ClientCore::onExchangeDone(std::unique_ptr<Exchange> ex, ExchangeResult result) {
  // Every exchange this core hands to a pool is a Job.
  std::unique_ptr<Job> job(static_cast<Job*>(ex.release()));
  Outcome o;
  if (result.failure == Failure::kNone) {
    o = interpret(*job, job->response);
  } else {
    o.kind = OutcomeKind::kRetryable;
    o.reason = std::string(failureReason(result.failure));
  }
  o.attempts = job->attempts;
  if (upstream_) upstream_->rqCompleted(o.status, o.reason, o.kind, result.seconds);

  const bool answered = result.failure == Failure::kNone;
  if (answered && o.kind == OutcomeKind::kRetryable && !job->reauthorized &&
      refreshCredential(*job, o)) {
    // The credential was stale, not the notification: once more, at once.
    job->reauthorized = true;
    if (upstream_) upstream_->rqRetry();
    attempt(std::move(job));
    return;
  }
  // Only an answer from the server proves the notification was not taken;
  // after a timeout or a lost connection it may have been, so the caller
  // decides (a push sent twice is the worse failure).
  if (answered && o.kind == OutcomeKind::kRetryable &&
      job->attempts < settings_.retry.max_attempts && !stopping() &&
      o.retry_after <= settings_.retry.max_retry_after) {
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    const auto backoff = Backoff::delayFor(settings_.retry.backoff, job->attempts, unit(rng_));
    job->last = o;
    scheduleRetry(std::move(job), std::max(backoff, o.retry_after));
    return;
  }
  finish(std::move(job), std::move(o));
}

void ClientCore::scheduleRetry(std::unique_ptr<Job> job, std::chrono::milliseconds delay) {
  job->core = this;
  job->retry_timer.reset(evtimer_new(loop_.base(), &ClientCore::onRetryTimer, job.get()));
  if (!job->retry_timer) {
    Outcome o = job->last;
    finish(std::move(job), std::move(o));
    return;
  }
  const timeval tv = toTimeval(delay);
  evtimer_add(job->retry_timer.get(), &tv);
  Job* key = job.get();
  retrying_.emplace(key, std::move(job));
}

void ClientCore::onRetryTimer(int, short, void* arg) {
  auto* key = static_cast<Job*>(arg);
  ClientCore* core = key->core;
  const auto it = core->retrying_.find(key);
  if (it == core->retrying_.end()) return;
  std::unique_ptr<Job> job = std::move(it->second);
  core->retrying_.erase(it);
  // Freeing the timer inside its own (non-persistent, fired) callback is
  // allowed by libevent.
  job->retry_timer.reset();
  if (core->upstream_) core->upstream_->rqRetry();
  core->attempt(std::move(job));
}

void ClientCore::finish(std::unique_ptr<Job> job, Outcome outcome) {
  if (upstream_) upstream_->notificationDone(outcome.kind);
  OutcomeCallback done = std::move(job->done);
  std::shared_ptr<const BatchCallback> batch_done = std::move(job->batch_done);
  const std::size_t index = job->batch_index;
  job.reset();  // its memory is gone before the caller hears back
  // The slot is free before the callback runs, so it may send again.
  outstanding_.fetch_sub(1, std::memory_order_relaxed);
  if (room_waiters_.load(std::memory_order_relaxed) > 0) {
    const std::lock_guard lock(room_mu_);
    room_cv_.notify_all();
  }
  if (batch_done) {
    (*batch_done)(index, outcome);
  } else if (done) {
    done(outcome);
  }
}

std::vector<Outcome> ClientCore::runBatch(std::vector<std::unique_ptr<Job>> jobs) {
  struct Batch {
    std::mutex mu;
    std::condition_variable cv;
    std::size_t remaining = 0;
    std::vector<Outcome> results;
  } batch;
  batch.results.resize(jobs.size());
  batch.remaining = jobs.size();
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    jobs[i]->done = [&batch, i](const Outcome& o) {
      const std::lock_guard lock(batch.mu);
      batch.results[i] = o;
      if (--batch.remaining == 0) batch.cv.notify_all();
    };
  }
  // Hand over as much as fits at once (one lock, one wake-up per chunk);
  // when full, wait for room (back-pressure).
  std::size_t next = 0;
  while (next < jobs.size()) {
    const std::size_t used = outstanding_.load(std::memory_order_relaxed);
    const std::size_t room =
        used < settings_.max_outstanding ? settings_.max_outstanding - used : 0;
    const std::size_t k = std::min({room, jobs.size() - next, std::size_t{1024}});
    Admission a = Admission::kQueueFull;
    if (k > 0) {
      std::vector<std::unique_ptr<Job>> chunk;
      chunk.reserve(k);
      for (std::size_t i = next; i < next + k; ++i) chunk.push_back(std::move(jobs[i]));
      a = enqueueMany(chunk);
      if (a == Admission::kAccepted) {
        next += k;
        continue;
      }
      for (std::size_t i = 0; i < chunk.size(); ++i) jobs[next + i] = std::move(chunk[i]);
    }
    if (a == Admission::kShutDown) {
      const Outcome o = outcomeOf(OutcomeKind::kRetryable, reason::kShutdown);
      const std::lock_guard lock(batch.mu);
      for (std::size_t i = next; i < jobs.size(); ++i) batch.results[i] = o;
      batch.remaining -= jobs.size() - next;
      break;
    }
    // Full: wait for a slot, re-checking now and then in case a notify
    // slipped between the check and the wait.
    room_waiters_.fetch_add(1);
    {
      std::unique_lock lock(room_mu_);
      room_cv_.wait_for(lock, std::chrono::milliseconds(50), [&] {
        return outstanding_.load(std::memory_order_relaxed) < settings_.max_outstanding;
      });
    }
    room_waiters_.fetch_sub(1);
  }
  std::unique_lock lock(batch.mu);
  batch.cv.wait(lock, [&] { return batch.remaining == 0; });
  return std::move(batch.results);
}

diag::Status ClientCore::shutdown(std::chrono::milliseconds grace) {
  if (loop_.inLoopThread()) {
    return diag::Error{diag::Errc::kInvalidArgument,
                       "push client shutdown() called on its own event-loop thread"};
  }
  std::shared_future<void> done;
  {
    const std::lock_guard lock(shutdown_mu_);
    if (!shutdown_done_) {
      {
        const std::lock_guard inbox_lock(inbox_mu_);
        inbox_closed_ = true;
      }
      stopping_.store(true);
      auto promise = std::make_shared<std::promise<void>>();
      shutdown_done_ = promise->get_future().share();
      const SteadyTime deadline = std::chrono::steady_clock::now() + grace;
      loop_.post([this, deadline, promise] {
        beginShutdown(deadline, [promise] { promise->set_value(); });
      });
    }
    done = *shutdown_done_;
  }
  done.wait();
  return diag::Ok{};
}

bool ClientCore::shutDown() const { return stopping(); }

void ClientCore::beginShutdown(SteadyTime deadline, std::function<void()> done) {
  // Notifications accepted before the inbox closed are started like any.
  drainInbox();
  // Waiting for a retry is not work in flight: report the last answer now.
  auto waiting = std::move(retrying_);
  retrying_.clear();
  for (auto& [key, job] : waiting) {
    job->retry_timer.reset();
    Outcome o = job->last;
    finish(std::move(job), std::move(o));
  }
  shutdownPools(deadline, [this, done = std::move(done)] {
    if (provider_) provider_->release();
    done();
  });
}

ClientStats ClientCore::stats() const {
  ClientStats s;
  s.open_connections = openConnections();
  s.peak_connections = peakConnections();
  s.outstanding = outstanding_.load(std::memory_order_relaxed);
  return s;
}

void destroyCore(std::unique_ptr<ClientCore> core) {
  if (!core) return;
  EventLoop& loop = core->loop();
  if (loop.inLoopThread()) {
    std::fputs(
        "leakscope push: a client was destroyed on its own event-loop thread (from an outcome "
        "callback?); shut it down and destroy it from another thread\n",
        stderr);
    std::abort();
  }
  (void)core->shutdown(std::chrono::seconds(5));
  std::promise<void> gone;
  loop.post([&core, &gone] {
    core.reset();
    gone.set_value();
  });
  gone.get_future().wait();
}

}  // namespace leakscope::push::detail
