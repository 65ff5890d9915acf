// The scheduler: pushdaemon's main loop, on its own thread.
//
//   poll ─► claim (SKIP LOCKED, lease) ─► validate payload, get clients
//     ▲        │
//     │        ▼           per platform, up to pages_in_flight pages each
//     │   read page (keyset) ─► send (rate limit, sendMany) ─► outcomes
//     │        ▲                      ▲  undelivered / retryable │
//     │        │                      └── resend after back-off ◄┘
//     │        │  page final ─► ResultWriter (own thread + connection):
//     │        └─ committed ◄─── results, deactivations, counters, cursor
//     └── all platforms exhausted and written ─► done
//
// Database reads and claims run on this thread (its own connection), writes
// on the ResultWriter's; the push transport's event-loop thread only
// delivers outcomes into pages and wakes this thread. A page is complete
// when every token has a final outcome; pages of a platform commit in
// cursor order, so after a crash everything at or below a cursor has a
// result and nothing above it has one. Tokens above the cursor that were
// already sent are the only ones sent twice after a crash: at most
// pages_in_flight x page_size per platform (docs/pushdaemon.md).
//
// Thread-safety: requestReload(), requestStop() and health() from any
// thread; everything else is the scheduler thread's.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "clients.h"
#include "config.h"
#include "db.h"
#include "leakscope/push/backoff.h"
#include "metrics.h"
#include "payload.h"
#include "rate_limiter.h"
#include "store.h"
#include "writer.h"

namespace pushdaemon {

class Scheduler {
 public:
  Scheduler(Config config, DbParams db, push::EventLoop& loop,
            std::shared_ptr<push::PushMetrics> push_metrics, DaemonMetrics* metrics);
  ~Scheduler();  // requestStop() + join

  void start();
  // A new configuration, applied by the scheduler thread between pages.
  void requestReload(Config config);
  // Drain: stop claiming, finish and persist what is in flight (within
  // daemon.drain_timeout_s), release an unfinished schedule, close clients.
  void requestStop();
  void join();

  struct Health {
    bool ok = true;
    bool db_ok = true;
    bool draining = false;
    std::uint64_t schedule_id = 0;  // 0: idle
    double loop_age_s = 0;
    std::string reason;
  };
  Health health() const;
  const std::string& owner() const { return owner_; }

 private:
  struct Page;
  struct PlatformRun;
  struct Run;
  struct WriterEvent;
  void threadMain();
  void pollOnce();
  void runSchedule(ClaimedSchedule claimed);
  bool applyReload();
  diag::Result<std::optional<AppRow>> loadAppOnce(std::uint64_t app_id);
  void refreshSchedules();
  void waitIdle(std::chrono::milliseconds d);
  // Outcome delivery (loop thread) -> this thread.
  void pageDone(const std::shared_ptr<Page>& page);

  // The steps of runSchedule (scheduler thread).
  bool startRun(Run& run, ClaimedSchedule claimed);  // false: failed or stopping
  bool mustLeave(Run& run, std::chrono::steady_clock::time_point now);
  void refreshClients(Run& run);
  void collectReports(Run& run);
  void onWriterEvent(Run& run, const WriterEvent& e);
  void sendPage(Run& run, const std::shared_ptr<Page>& page,
                std::chrono::steady_clock::time_point& wake);
  void readPages(Run& run, Platform p, std::chrono::steady_clock::time_point& wake);
  std::shared_ptr<Page> makePage(const Run& run, Platform p, std::vector<TokenRow> tokens);
  void queueFinish(Run& run);
  void leaveRun(Run& run);
  void failRun(Run& run, const std::string& reason);

  // Schedule pieces (scheduler thread).
  bool sendSome(Run& run, Page& page, const std::shared_ptr<Page>& self);
  void classify(Run& run, const std::shared_ptr<Page>& page);
  void submitWrites(Run& run, Platform p);
  void abandonPages(Run& run);

  Config config_;
  DbParams db_params_;
  DaemonMetrics* metrics_;
  std::string owner_;
  Db db_;
  ClientRegistry registry_;
  std::unique_ptr<ResultWriter> writer_;
  RateLimiter limiter_[2];

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::uint64_t run_serial_ = 0;                  // scheduler thread: counts runSchedule calls
  std::deque<std::shared_ptr<Page>> done_pages_;  // guarded by mu_
  std::deque<std::shared_ptr<WriterEvent>> writer_events_;  // guarded by mu_
  std::optional<Config> pending_config_;                    // guarded by mu_
  bool stop_requested_ = false;                             // guarded by mu_

  std::atomic<bool> stop_flag_{false};
  std::atomic<bool> draining_{false};
  std::atomic<std::uint64_t> current_schedule_{0};
  std::atomic<std::int64_t> last_loop_ns_{0};
  std::atomic<double> max_loop_age_s_{60};
  std::chrono::steady_clock::time_point last_count_;
  std::thread thread_;
};

}  // namespace pushdaemon
