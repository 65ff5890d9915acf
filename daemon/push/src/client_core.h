// ClientCore: what ApnsClient and FcmClient share — admission and
// back-pressure, the hand-off from callers' threads to the loop, attempts
// and retries, exactly-once outcomes, and the awaited shutdown. The platform
// parts (building the request, reading the answer, credentials, which pools)
// are the virtual hooks.
//
// A notification is a Job (an Exchange with client fields). Ownership:
// caller → inbox (mutex) → loop thread → pool → ... → finish(), which
// delivers the outcome and frees the job. Between attempts a job waiting for
// a retry timer sits in `retrying_`. Every path ends in finish() exactly
// once, which decrements `outstanding_`.
//
// Thread-safety: enqueue(), runBatch(), shutdown() and stats() from any
// thread (runBatch/shutdown not from the loop thread); everything else on
// the loop thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "connection.h"
#include "exchange.h"
#include "leakscope/diag/result.h"
#include "leakscope/diag/tracked.h"
#include "leakscope/push/client.h"
#include "leakscope/push/event_loop.h"
#include "leakscope/push/metrics.h"
#include "leakscope/push/options.h"

namespace leakscope::push::detail {

class ClientCore;

struct Job : Exchange {
  ClientCore* core = nullptr;  // for the retry timer's callback
  OutcomeCallback done;
  std::shared_ptr<const BatchCallback> batch_done;  // sendMany(): instead of `done`
  std::size_t batch_index = 0;
  std::optional<Outcome> precheck;  // set: refused before sending, finish at once
  int attempts = 0;                 // requests handed to the pool
  bool reauthorized = false;        // the one free resend after a credential refresh
  Outcome last;                     // the outcome that led to waiting for a retry
  EventPtr retry_timer;
};

class ClientCore : public ExchangeHandler {
 public:
  struct Settings {
    std::string component;  // "apns", "fcm": metrics and tracked kinds
    std::string label;      // tracked label: the peer host name
    RetryOptions retry;
    std::size_t max_outstanding = 10000;
    bool instrument = true;
    std::shared_ptr<PushMetrics> metrics;  // null: a private one
    SystemClock clock;
  };

  ClientCore(EventLoop& loop, Settings settings);
  ~ClientCore() override;

  // Any thread. Takes the job(s) only when accepted; enqueueMany takes all
  // of `jobs` or none.
  Admission enqueue(std::unique_ptr<Job>& job);
  Admission enqueueMany(std::vector<std::unique_ptr<Job>>& jobs);
  std::vector<Outcome> runBatch(std::vector<std::unique_ptr<Job>> jobs);
  diag::Status shutdown(std::chrono::milliseconds grace);
  bool shutDown() const;
  ClientStats stats() const;
  std::shared_ptr<PushMetrics> metrics() const { return metrics_; }
  // The provider's tracked id (ObjectId{} when not instrumented), and the
  // tracked object that holds the client (a registry; any thread).
  diag::ObjectId trackedId() const { return provider_ ? provider_->id() : diag::ObjectId{}; }
  void setTrackedOwner(diag::ObjectId owner) {
    if (provider_) provider_->setOwner(owner);
  }
  EventLoop& loop() { return loop_; }

  void onExchangeDone(std::unique_ptr<Exchange> ex, ExchangeResult result) override;

 protected:
  // Loop thread. Put the job on the wire (pool->submit) now or later; a job
  // that cannot be sent must still reach finish() or onExchangeDone().
  virtual void dispatch(std::unique_ptr<Job> job) = 0;
  // The outcome of a complete answer.
  virtual Outcome interpret(Job& job, const Response& response) = 0;
  // The answer says the credential is stale (ExpiredProviderToken, 401):
  // drop it and return true so the job is sent once more with a new one.
  virtual bool refreshCredential(Job& job, const Outcome& outcome) = 0;
  // Start shutting the pools down; call `done` once all are closed.
  virtual void shutdownPools(SteadyTime deadline, std::function<void()> done) = 0;
  virtual std::size_t openConnections() const = 0;
  virtual std::size_t peakConnections() const = 0;

  void finish(std::unique_ptr<Job> job, Outcome outcome);
  UpstreamStats* upstream() const { return upstream_.get(); }
  const std::shared_ptr<UpstreamStats>& upstreamShared() const { return upstream_; }
  std::chrono::system_clock::time_point now() const { return settings_.clock(); }
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }

 private:
  void drainInbox();
  void attempt(std::unique_ptr<Job> job);
  void scheduleRetry(std::unique_ptr<Job> job, std::chrono::milliseconds delay);
  static void onRetryTimer(int, short, void* arg);
  void beginShutdown(SteadyTime deadline, std::function<void()> done);

  EventLoop& loop_;
  Settings settings_;
  std::shared_ptr<PushMetrics> metrics_;
  std::shared_ptr<UpstreamStats> upstream_;  // null when not instrumented
  std::optional<diag::Tracked> provider_;
  std::mt19937_64 rng_{std::random_device{}()};

  std::atomic<std::size_t> outstanding_{0};
  std::atomic<bool> stopping_{false};
  std::mutex inbox_mu_;
  std::vector<std::unique_ptr<Job>> inbox_;  // guarded by inbox_mu_
  bool inbox_closed_ = false;                // guarded by inbox_mu_
  std::mutex room_mu_;
  std::condition_variable room_cv_;
  std::atomic<int> room_waiters_{0};

  std::mutex shutdown_mu_;
  std::optional<std::shared_future<void>> shutdown_done_;  // guarded by shutdown_mu_

  std::map<Job*, std::unique_ptr<Job>> retrying_;  // loop thread
};

// The public clients' shared front. `Core` is a client's Impl: a ClientCore
// with `makeJob(Notification, OutcomeCallback)`.
template <class Core, class Notification>
Admission sendVia(Core& core, Notification n, OutcomeCallback done) {
  auto job = core.makeJob(std::move(n), std::move(done));
  return core.enqueue(job);
}

template <class Core, class Notification>
Admission sendManyVia(Core& core, std::vector<Notification> batch, BatchCallback done) {
  auto shared = std::make_shared<const BatchCallback>(std::move(done));
  std::vector<std::unique_ptr<Job>> jobs;
  jobs.reserve(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    jobs.push_back(core.makeJob(std::move(batch[i]), nullptr));
    jobs.back()->batch_done = shared;
    jobs.back()->batch_index = i;
  }
  return core.enqueueMany(jobs);
}

template <class Core, class Notification>
std::vector<Outcome> sendBatchVia(Core& core, std::vector<Notification> batch) {
  std::vector<std::unique_ptr<Job>> jobs;
  jobs.reserve(batch.size());
  for (auto& n : batch) jobs.push_back(core.makeJob(std::move(n), nullptr));
  return core.runBatch(std::move(jobs));
}

// A client's destructor: the awaited shutdown (5 s grace) if none ran, then
// the core is freed on the loop thread (its events belong to the loop).
// Called on the loop thread itself (from an outcome callback) it aborts
// with a message: nothing could await the shutdown there, and freeing the
// pools under the callback that is running would be a use-after-free.
void destroyCore(std::unique_ptr<ClientCore> core);

}  // namespace leakscope::push::detail
