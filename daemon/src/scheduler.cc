#include "scheduler.h"

#include <mysql.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <random>

#include "leakscope/core/signals.h"
#include "log.h"

namespace pushdaemon {

namespace {

using Clock = std::chrono::steady_clock;

std::string makeOwner(const std::string& instance_id) {
  std::string id = instance_id;
  if (id.empty()) {
    char host[256] = {0};
    if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "localhost");
    id = std::string(host) + ":" + std::to_string(getpid());
  }
  // A nonce per process: a restarted daemon with the same instance id is a
  // different owner, so it takes its old claims over only after the lease.
  std::mt19937_64 rng{std::random_device{}()};
  char nonce[17];
  std::snprintf(nonce, sizeof nonce, "%016llx", static_cast<unsigned long long>(rng()));
  return id.substr(0, 100) + "/" + nonce;
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// The loop turns at least every poll interval (and every 100 ms while a
// schedule runs); a database call can hold it for up to the I/O timeout.
double maxLoopAge(const Config& c) {
  return seconds(c.poll_interval) + 2 * seconds(c.db_io_timeout) + 5;
}

}  // namespace

// One token of a page and what happened to it so far.
struct Slot {
  std::uint64_t id = 0;
  std::string token;
  push::OutcomeKind kind = push::OutcomeKind::kRetryable;
  int status = 0;
  std::string reason;
  int attempts = 0;                          // requests on the wire, all rounds
  int rounds = 0;                            // rounds answered "retryable" by the server
  std::chrono::milliseconds retry_after{0};  // the server's Retry-After, last answer
  bool final = false;
};

namespace {

// A complete page's rows for the writer.
std::shared_ptr<std::vector<ResultRow>> resultRows(const std::vector<Slot>& slots) {
  auto rows = std::make_shared<std::vector<ResultRow>>();
  rows->reserve(slots.size());
  for (const Slot& s : slots) {
    rows->push_back(ResultRow{s.id, s.kind, s.status, s.reason, s.attempts});
  }
  return rows;
}

}  // namespace

// A page: up to page_size tokens of one platform, from one keyset read.
// Shared with the outcome callbacks (loop thread), which fill slots and
// count `outstanding` down; the scheduler thread reads slots only after
// `outstanding` reached 0 (acquire) for the round it started.
struct Scheduler::Page {
  std::uint64_t run = 0;  // Run::serial of the schedule run that read it
  Platform platform = Platform::kApns;
  std::uint64_t last_id = 0;
  std::vector<Slot> slots;
  std::vector<std::uint32_t> to_send;  // this round
  std::size_t next_to_send = 0;
  std::atomic<std::size_t> outstanding{0};
  Clock::time_point ready_at{};
  Clock::time_point send_start{};
  bool complete = false;   // every slot final
  bool submitted = false;  // handed to the writer
};

// What the writer thread reports back about a job.
struct Scheduler::WriterEvent {
  std::uint64_t run = 0;       // Run::serial of the run that queued the job
  std::shared_ptr<Page> page;  // null: the schedule's final state change
  std::shared_ptr<std::vector<ResultRow>> rows;
  WriteOutcome outcome = WriteOutcome::kWritten;
  bool changed = true;  // final state change: the claim was still ours
  std::optional<diag::Error> error;
  double seconds = 0;
};

// One platform's part of the schedule being run.
struct Scheduler::PlatformRun {
  bool active = false;     // the payload has a message for this platform
  bool exhausted = false;  // every token was read
  std::uint64_t read_cursor = 0;
  std::shared_ptr<PlatformClient> client;   // null: fetch again (ClientRegistry::clientFor)
  std::deque<std::shared_ptr<Page>> pages;  // unwritten, in cursor order
  push::Backoff undelivered_backoff{{}};
  Clock::time_point client_retry_at{};
};

// The state of the schedule being run.
struct Scheduler::Run {
  // Which run of runSchedule this is: pages and writer events of an earlier
  // run (abandoned after a lost lease or a failed write) may still arrive
  // and must not touch this one.
  std::uint64_t serial = 0;
  std::uint64_t id = 0;
  ClaimedSchedule claimed;
  AppRow app;
  SchedulePayload payload;
  Lease lease;
  PlatformRun platforms[2];  // indexed by Platform
  bool lease_lost = false;
  std::string fatal;  // a write that cannot succeed: the schedule fails
  // Set by the writer thread when a page write failed for good.
  std::shared_ptr<std::atomic<bool>> write_failed = std::make_shared<std::atomic<bool>>(false);
  std::size_t in_memory_tokens = 0;
  // Leaving: stop requested, no new pages; finish those in flight.
  bool draining = false;
  Clock::time_point drain_deadline{};
  bool finishing = false;  // the final state change is queued
  bool finished = false;   // ... and was applied
  bool finish_changed = false;

  PlatformRun& of(Platform p) { return platforms[static_cast<int>(p)]; }
};

Scheduler::Scheduler(Config config, DbParams db, push::EventLoop& loop,
                     std::shared_ptr<push::PushMetrics> push_metrics, DaemonMetrics* metrics)
    : config_(std::move(config)),
      db_params_(db),
      metrics_(metrics),
      owner_(makeOwner(config_.instance_id)),
      db_(db, metrics, config_.db_reconnect_min, config_.db_reconnect_max, "scheduler"),
      registry_(loop, std::move(push_metrics), metrics) {
  registry_.configure(config_);
  max_loop_age_s_ = maxLoopAge(config_);
  last_loop_ns_ = Clock::now().time_since_epoch().count();
  // Made here, not in start(): health() (HTTP thread) reads it from now on.
  writer_ = std::make_unique<ResultWriter>(db_params_, config_, metrics_);
  limiter_[0].setRate(config_.apns.rate_limit, Clock::now());
  limiter_[1].setRate(config_.fcm.rate_limit, Clock::now());
}

Scheduler::~Scheduler() {
  requestStop();
  join();
}

void Scheduler::start() {
  last_loop_ns_ = Clock::now().time_since_epoch().count();
  thread_ = std::thread([this] { threadMain(); });
}

void Scheduler::requestReload(Config config) {
  const std::lock_guard lock(mu_);
  pending_config_ = std::move(config);
  cv_.notify_all();
}

void Scheduler::requestStop() {
  const std::lock_guard lock(mu_);
  stop_requested_ = true;
  stop_flag_ = true;
  cv_.notify_all();
}

void Scheduler::join() {
  if (thread_.joinable()) thread_.join();
}

Scheduler::Health Scheduler::health() const {
  Health h;
  h.draining = draining_.load();
  h.schedule_id = current_schedule_.load();
  h.db_ok = db_.up() && writer_->dbUp();
  const auto now = Clock::now().time_since_epoch().count();
  h.loop_age_s = static_cast<double>(now - last_loop_ns_.load()) / 1e9;
  const double max_age = max_loop_age_s_.load();
  if (!h.db_ok) {
    h.ok = false;
    h.reason = "database unreachable";
  } else if (h.loop_age_s > max_age) {
    h.ok = false;
    h.reason = "scheduler loop stalled";
  }
  return h;
}

void Scheduler::threadMain() {
  // Signals belong to main (sigwait) and leakscope's SIGUSR2 handler; none
  // may interrupt a database call here.
  const leakscope::core::SignalsBlocked blocked = leakscope::core::blockAllSignals();
  mysql_thread_init();
  logInfo("scheduler", "started as owner " + owner_);
  while (!stop_flag_.load()) {
    last_loop_ns_ = Clock::now().time_since_epoch().count();
    applyReload();
    pollOnce();
  }
  draining_ = true;
  current_schedule_ = 0;
  logInfo("scheduler", "stopping: closing push clients and database connections");
  // Everything that could be persisted was (or the drain timed out): a job
  // still retrying against an unreachable database is given up.
  writer_->stop(true);
  registry_.shutdownAll();
  db_.reset();
  mysql_thread_end();
}

// One attempt, no waiting: a reload during a database outage must not stall
// the loop (the app rows we have stay in use; key files are re-read anyway).
diag::Result<std::optional<AppRow>> Scheduler::loadAppOnce(std::uint64_t app_id) {
  DbConnection* c = db_.get();
  if (c == nullptr) return diag::Error{diag::Errc::kUnavailable, db_.lastError()};
  auto r = loadApp(*c, app_id);
  if (!r.ok()) {
    metrics_->dbError(DbOp::kApp);
    if (r.error().code == diag::Errc::kUnavailable) db_.reset();
  }
  return r;
}

bool Scheduler::applyReload() {
  std::optional<Config> next;
  {
    const std::lock_guard lock(mu_);
    next.swap(pending_config_);
  }
  if (!next) return false;
  const bool http_changed = next->http_address != config_.http_address ||
                            next->http_max_connections != config_.http_max_connections ||
                            next->http_request_timeout != config_.http_request_timeout ||
                            next->http_max_header_bytes != config_.http_max_header_bytes ||
                            next->http_fd_reserve != config_.http_fd_reserve;
  if (next->db_host != config_.db_host || next->db_port != config_.db_port ||
      next->db_socket != config_.db_socket || next->db_name != config_.db_name ||
      next->db_user != config_.db_user || http_changed ||
      next->db_ssl_mode != config_.db_ssl_mode || next->db_ssl_ca != config_.db_ssl_ca ||
      next->db_ssl_cert != config_.db_ssl_cert || next->db_ssl_key != config_.db_ssl_key ||
      next->allow_core_dumps != config_.allow_core_dumps) {
    logWarn("scheduler",
            "reload: database, daemon.http_* and allow_core_dumps settings take effect only "
            "after a restart");
  }
  Log::setLevel(next->log_level);
  const auto now = Clock::now();
  limiter_[0].setRate(next->apns.rate_limit, now);
  limiter_[1].setRate(next->fcm.rate_limit, now);
  // Keep what must not change under a running daemon.
  next->db_host = config_.db_host;
  next->db_port = config_.db_port;
  next->db_socket = config_.db_socket;
  next->db_name = config_.db_name;
  next->db_user = config_.db_user;
  next->db_ssl_mode = config_.db_ssl_mode;
  next->db_ssl_ca = config_.db_ssl_ca;
  next->db_ssl_cert = config_.db_ssl_cert;
  next->db_ssl_key = config_.db_ssl_key;
  next->allow_core_dumps = config_.allow_core_dumps;
  next->http_address = config_.http_address;
  next->http_max_connections = config_.http_max_connections;
  next->http_request_timeout = config_.http_request_timeout;
  next->http_max_header_bytes = config_.http_max_header_bytes;
  next->http_fd_reserve = config_.http_fd_reserve;
  config_ = *next;
  max_loop_age_s_ = maxLoopAge(config_);
  registry_.configure(config_);
  // Re-read the apps that have clients and let the registry replace those
  // whose credentials changed (the old pools are shut down, awaited).
  for (std::uint64_t app_id : registry_.appIds()) {
    auto app = loadAppOnce(app_id);
    if (!app.ok()) {
      logWarn("scheduler", "reload: app " + std::to_string(app_id) + ": " + app.error().message);
      continue;
    }
    if (!*app) {
      registry_.drop(app_id);
      continue;
    }
    for (Platform p : kPlatforms) {
      const bool has_creds = p == Platform::kApns ? !(*app)->apns_key_file.empty()
                                                  : !(*app)->fcm_service_account_file.empty();
      if (!has_creds) continue;
      auto c = registry_.clientFor(**app, p, ClientRegistry::kNoSchedule);
      if (!c.ok()) logWarn("scheduler", "reload: " + c.error().message);
    }
  }
  metrics_->reload(true);
  logInfo("scheduler", "configuration reloaded");
  return true;
}

void Scheduler::refreshSchedules() {
  const auto now = Clock::now();
  if (now - last_count_ < std::chrono::seconds(1)) return;
  last_count_ = now;
  DbConnection* c = db_.get();
  if (c == nullptr) return;
  auto counts = countSchedules(*c);
  if (!counts.ok()) {
    metrics_->dbError(DbOp::kPoll);
    if (counts.error().code == diag::Errc::kUnavailable) db_.reset();
    return;
  }
  for (const char* s : {"waiting", "running", "done", "failed"}) {
    double n = 0;
    for (const auto& [state, count] : *counts) {
      if (state == s) n = count;
    }
    metrics_->setSchedules(s, n);
  }
}

void Scheduler::waitIdle(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [&] { return stop_requested_ || pending_config_.has_value(); });
}

void Scheduler::pollOnce() {
  refreshSchedules();
  DbConnection* c = db_.get();
  if (c == nullptr) {
    db_.backoff(&stop_flag_);
    return;
  }
  auto claimed = claimSchedule(*c, owner_, config_.lease);
  if (!claimed.ok()) {
    metrics_->dbError(DbOp::kClaim);
    logWarn("scheduler", "claim: " + claimed.error().message);
    if (claimed.error().code == diag::Errc::kUnavailable) db_.reset();
    db_.backoff(&stop_flag_);
    return;
  }
  db_.resetBackoff();
  if (!*claimed) {
    auto next = secondsUntilNextDue(*c);
    auto wait = config_.poll_interval;
    if (next.ok() && *next && **next > 0) {
      wait =
          std::min(wait, std::chrono::milliseconds(static_cast<std::int64_t>(**next * 1000) + 1));
    }
    waitIdle(wait);
    return;
  }
  metrics_->scheduleClaimed();
  runSchedule(std::move(**claimed));
}

void Scheduler::pageDone(const std::shared_ptr<Page>& page) {
  const std::lock_guard lock(mu_);
  done_pages_.push_back(page);
  cv_.notify_all();
}

bool Scheduler::sendSome(Run& run, Page& page, const std::shared_ptr<Page>& self) {
  const Platform p = page.platform;
  const int pi = static_cast<int>(p);
  PlatformRun& pr = run.of(p);
  if (page.next_to_send >= page.to_send.size()) return false;
  const auto now = Clock::now();
  if (now < page.ready_at) return false;
  if (!pr.client) {
    if (now < pr.client_retry_at) return false;
    auto c = registry_.clientFor(run.app, p, run.id);
    if (!c.ok()) {
      logWarn("scheduler", c.error().message);
      pr.client_retry_at = now + pr.undelivered_backoff.next();
      return false;
    }
    pr.client = *c;
  }
  const std::size_t want = page.to_send.size() - page.next_to_send;
  const std::size_t n = limiter_[pi].take(want, now);
  if (n == 0) return false;
  auto idx = std::make_shared<std::vector<std::uint32_t>>(
      page.to_send.begin() + static_cast<std::ptrdiff_t>(page.next_to_send),
      page.to_send.begin() + static_cast<std::ptrdiff_t>(page.next_to_send + n));
  std::vector<const std::string*> tokens;
  tokens.reserve(n);
  for (std::uint32_t i : *idx) tokens.push_back(&page.slots[i].token);
  if (page.next_to_send == 0) page.send_start = now;
  page.outstanding.fetch_add(n, std::memory_order_acq_rel);
  const auto admission = pr.client->sendMany(
      tokens, run.payload, run.app, [this, self, idx](std::size_t i, const push::Outcome& o) {
        Slot& s = self->slots[(*idx)[i]];
        s.kind = o.kind;
        s.status = o.status;
        s.reason = o.reason;
        s.attempts += o.attempts;
        s.retry_after = o.retry_after;
        if (self->outstanding.fetch_sub(1, std::memory_order_acq_rel) == 1) pageDone(self);
      });
  if (admission != push::Admission::kAccepted) {
    page.outstanding.fetch_sub(n, std::memory_order_acq_rel);
    if (admission == push::Admission::kShutDown) pr.client.reset();  // replaced: fetch again
    // Queue full: the clients' outcomes will make room; try again shortly.
    page.ready_at = now + std::chrono::milliseconds(2);
    return false;
  }
  page.next_to_send += n;
  return true;
}

void Scheduler::classify(Run& run, const std::shared_ptr<Page>& page) {
  PlatformRun& pr = run.of(page->platform);
  std::vector<std::uint32_t> again;
  std::size_t undelivered = 0, retry = 0;
  bool answered = false;
  auto delay = std::chrono::milliseconds(0);
  for (std::uint32_t i : page->to_send) {
    Slot& s = page->slots[i];
    if (s.kind != push::OutcomeKind::kRetryable) {
      s.final = true;
      answered = true;
      continue;
    }
    if (s.status == 0) {
      // No answer from the server (connect failed, connection lost,
      // timeout, client shut down): not a verdict on the token. The
      // schedule waits and sends it again, however long that takes.
      ++undelivered;
      again.push_back(i);
      continue;
    }
    answered = true;
    ++s.rounds;
    if (s.rounds >= config_.max_token_attempts) {
      s.final = true;
      continue;
    }
    ++retry;
    again.push_back(i);
    // Not before the server said (Retry-After), nor before our own delay.
    delay = std::max({delay, config_.token_retry_delay, s.retry_after});
  }
  if (answered) pr.undelivered_backoff.reset();
  if (again.empty()) {
    page->complete = true;
    metrics_->batchDuration(page->platform, Stage::kSend, seconds(Clock::now() - page->send_start));
    return;
  }
  if (undelivered > 0) {
    const auto b = pr.undelivered_backoff.next();
    delay = std::max(
        delay, std::clamp(b, config_.undelivered_backoff_min, config_.undelivered_backoff_max));
    metrics_->resend(page->platform, true, static_cast<double>(undelivered));
    if (pr.undelivered_backoff.failures() == 1 || pr.undelivered_backoff.failures() % 10 == 0) {
      logWarn("scheduler", "schedule " + std::to_string(run.id) + " " +
                               platformName(page->platform) + ": " + std::to_string(undelivered) +
                               " notifications got no answer (" + page->slots[again[0]].reason +
                               "); sending again in " + std::to_string(delay.count()) + " ms");
    }
  }
  if (retry > 0) metrics_->resend(page->platform, false, static_cast<double>(retry));
  page->to_send = std::move(again);
  page->next_to_send = 0;
  page->ready_at = Clock::now() + delay;
}

void Scheduler::submitWrites(Run& run, Platform p) {
  for (auto& page : run.of(p).pages) {
    if (!page->complete) break;  // cursor order: later pages wait
    if (page->submitted) continue;
    page->submitted = true;
    auto rows = resultRows(page->slots);
    const Lease lease = run.lease;
    const std::uint64_t last_id = page->last_id;
    const auto queued_at = Clock::now();
    auto outcome = std::make_shared<WriteOutcome>(WriteOutcome::kWritten);
    ResultWriter::Job job;
    job.op = DbOp::kWrite;
    auto broken = run.write_failed;
    job.work = [lease, p, last_id, rows, outcome, broken](DbConnection& c) -> diag::Status {
      // After a page that cannot be written, the pages queued behind it must
      // not move the cursor past it.
      if (broken->load()) {
        return diag::Error{diag::Errc::kIo, "skipped after an earlier write failed"};
      }
      auto r = writePage(c, lease, p, last_id, *rows);
      if (!r.ok()) {
        if (r.error().code != diag::Errc::kUnavailable) broken->store(true);
        return r.error();
      }
      *outcome = *r;
      return diag::Ok{};
    };
    job.done = [this, page, rows, outcome, queued_at](const diag::Status& s) {
      WriterEvent e;
      e.run = page->run;
      e.page = page;
      e.rows = rows;
      e.outcome = *outcome;
      if (!s.ok()) e.error = s.error();
      e.seconds = seconds(Clock::now() - queued_at);
      const std::lock_guard lock(mu_);
      writer_events_.push_back(std::make_shared<WriterEvent>(std::move(e)));
      cv_.notify_all();
    };
    writer_->submit(std::move(job));
  }
}

void Scheduler::abandonPages(Run& run) {
  for (PlatformRun& pr : run.platforms) {
    for (auto& pg : pr.pages) metrics_->backlog(-static_cast<double>(pg->slots.size()));
    pr.pages.clear();
  }
  run.in_memory_tokens = 0;
}

}  // namespace pushdaemon

namespace pushdaemon {

// A schedule that cannot be sent is marked failed with the reason; the
// daemon carries on with the next one.
void Scheduler::failRun(Run& run, const std::string& reason) {
  logWarn("scheduler", "schedule " + std::to_string(run.id) + " failed: " + reason);
  auto r = db_.run(
      DbOp::kFinish, [&](DbConnection& c) { return failSchedule(c, run.lease, reason); },
      &stop_flag_);
  if (r.ok() && *r) metrics_->scheduleFinished(false);
  current_schedule_ = 0;
}

bool Scheduler::startRun(Run& run, ClaimedSchedule claimed) {
  run.serial = ++run_serial_;
  run.id = claimed.id;
  run.lease = Lease{claimed.id, owner_, claimed.epoch, config_.lease};
  current_schedule_ = claimed.id;
  logInfo("scheduler", std::string(claimed.takeover ? "took over" : "claimed") + " schedule " +
                           std::to_string(claimed.id) + " (epoch " + std::to_string(claimed.epoch) +
                           ", apns cursor " + std::to_string(claimed.cursor[0]) + ", fcm cursor " +
                           std::to_string(claimed.cursor[1]) + ")");
  {
    const std::lock_guard lock(mu_);
    done_pages_.clear();
    writer_events_.clear();
  }
  auto app = db_.run(
      DbOp::kApp, [&](DbConnection& c) { return loadApp(c, claimed.app_id); }, &stop_flag_);
  if (!app.ok()) {
    current_schedule_ = 0;
    return false;  // stopping without a database: the lease will expire
  }
  if (!*app) {
    failRun(run, "app " + std::to_string(claimed.app_id) + " does not exist");
    return false;
  }
  run.app = **app;
  auto payload = validateSchedulePayload(claimed.payload, config_.max_payload_bytes);
  if (!payload.ok()) {
    failRun(run, payload.error().message);
    return false;
  }
  run.payload = std::move(*payload);
  run.of(Platform::kApns).active = run.payload.apns.has_value();
  run.of(Platform::kFcm).active = run.payload.fcm.has_value();
  for (Platform p : kPlatforms) {
    PlatformRun& pr = run.of(p);
    pr.exhausted = !pr.active;
    pr.read_cursor = claimed.cursor[static_cast<int>(p)];
    if (!pr.active) continue;
    // The one place a schedule gets its clients (ClientRegistry::clientFor).
    auto c = registry_.clientFor(run.app, p, run.id);
    if (!c.ok()) {
      failRun(run, c.error().message);
      return false;
    }
    pr.client = *c;
  }
  run.claimed = std::move(claimed);
  writer_->setLease(run.lease);
  return true;
}

bool Scheduler::mustLeave(Run& run, Clock::time_point now) {
  if (!run.draining && stop_flag_.load()) {
    run.draining = true;
    draining_ = true;
    run.drain_deadline = now + config_.drain_timeout;
    logInfo("scheduler", "draining schedule " + std::to_string(run.id) +
                             ": no new pages; finishing those in flight");
  }
  if (run.draining && now >= run.drain_deadline) {
    logWarn("scheduler", "drain timeout: " + std::to_string(run.in_memory_tokens) +
                             " tokens of schedule " + std::to_string(run.id) +
                             " not persisted; they will be sent again by the next owner");
    return true;
  }
  if (writer_->leaseLost()) run.lease_lost = true;
  if (run.lease_lost) {
    metrics_->leaseLost();
    logWarn("scheduler", "schedule " + std::to_string(run.id) +
                             ": another daemon holds the claim now; abandoning it");
    return true;
  }
  return false;
}

// After a reload: the app's credentials may have changed.
void Scheduler::refreshClients(Run& run) {
  auto fresh = loadAppOnce(run.app.id);
  if (fresh.ok() && *fresh) run.app = **fresh;
  for (Platform p : kPlatforms) {
    PlatformRun& pr = run.of(p);
    if (!pr.active) continue;
    auto c = registry_.clientFor(run.app, p, run.id);
    if (c.ok()) {
      pr.client = *c;
    } else {
      logWarn("scheduler", c.error().message);
      pr.client.reset();
    }
  }
}

// What the other threads reported: pages whose round was answered, and
// the writer's results.
void Scheduler::collectReports(Run& run) {
  std::deque<std::shared_ptr<Page>> done;
  std::deque<std::shared_ptr<WriterEvent>> events;
  {
    const std::lock_guard lock(mu_);
    done.swap(done_pages_);
    events.swap(writer_events_);
  }
  for (auto& page : done) {
    if (page->run != run.serial) continue;                    // from an abandoned earlier run
    if (page->next_to_send < page->to_send.size()) continue;  // more of this round to send
    if (page->outstanding.load(std::memory_order_acquire) != 0) continue;
    if (page->complete) continue;
    classify(run, page);
    if (page->complete) submitWrites(run, page->platform);
  }
  for (auto& e : events) {
    if (e->run != run.serial) continue;  // from an abandoned earlier run
    onWriterEvent(run, *e);
  }
}

void Scheduler::onWriterEvent(Run& run, const WriterEvent& e) {
  if (!e.page) {
    run.finished = true;
    run.finish_changed = !e.error && e.changed;
    return;
  }
  const Platform p = e.page->platform;
  if (e.error) {
    if (run.fatal.empty()) run.fatal = "writing results failed: " + e.error->message;
    return;
  }
  if (e.outcome == WriteOutcome::kLeaseLost) {
    run.lease_lost = true;
    return;
  }
  metrics_->batchDuration(p, Stage::kWrite, e.seconds);
  if (e.outcome == WriteOutcome::kWritten) {
    std::size_t invalid = 0;
    for (const ResultRow& r : *e.rows) {
      metrics_->tokens(p, r.outcome, 1);
      invalid += r.outcome == push::OutcomeKind::kInvalidToken;
    }
    if (invalid > 0) metrics_->deactivated(p, static_cast<double>(invalid));
  }
  // Pages commit in order: the event is for the front page.
  auto& q = run.of(p).pages;
  if (!q.empty() && q.front() == e.page) {
    metrics_->backlog(-static_cast<double>(q.front()->slots.size()));
    run.in_memory_tokens -= q.front()->slots.size();
    q.pop_front();
  }
}

// Sends what the rate limit lets go now; `wake` is lowered to when the
// page may send more.
void Scheduler::sendPage(Run& run, const std::shared_ptr<Page>& page, Clock::time_point& wake) {
  while (sendSome(run, *page, page)) {
  }
  if (page->next_to_send < page->to_send.size()) {
    const int pi = static_cast<int>(page->platform);
    wake = std::min(wake, std::max(page->ready_at, limiter_[pi].nextAt(Clock::now())));
  }
}

// Reads pages, within the bound on unwritten pages, and sends them.
void Scheduler::readPages(Run& run, Platform p, Clock::time_point& wake) {
  PlatformRun& pr = run.of(p);
  while (!run.draining && !pr.exhausted && pr.pages.size() < config_.pages_in_flight) {
    const auto t0 = Clock::now();
    auto tokens = db_.run(
        DbOp::kRead,
        [&](DbConnection& c) {
          return readTokens(c, run.app.id, p, pr.read_cursor, config_.page_size);
        },
        &stop_flag_);
    if (!tokens.ok()) {
      // kUnavailable only comes back once stopping: drain what we have.
      // Anything else is a statement the server refuses; repeating it
      // will not help, so the schedule fails with it.
      if (tokens.error().code != diag::Errc::kUnavailable && run.fatal.empty()) {
        run.fatal = "reading tokens failed: " + tokens.error().message;
      }
      break;
    }
    metrics_->batchDuration(p, Stage::kRead, seconds(Clock::now() - t0));
    if (tokens->empty()) {
      pr.exhausted = true;
      break;
    }
    auto page = makePage(run, p, std::move(*tokens));
    pr.read_cursor = page->last_id;
    run.in_memory_tokens += page->slots.size();
    metrics_->backlog(static_cast<double>(page->slots.size()));
    page->send_start = Clock::now();
    if (page->to_send.empty()) page->complete = true;
    pr.pages.push_back(page);
    if (page->complete) submitWrites(run, p);
    sendPage(run, page, wake);
  }
}

std::shared_ptr<Scheduler::Page> Scheduler::makePage(const Run& run, Platform p,
                                                     std::vector<TokenRow> tokens) {
  auto page = std::make_shared<Page>();
  page->run = run.serial;
  page->platform = p;
  page->last_id = tokens.back().id;
  page->slots.resize(tokens.size());
  page->to_send.reserve(tokens.size());
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    Slot& s = page->slots[i];
    s.id = tokens[i].id;
    s.token = std::move(tokens[i].token);
    if (s.token.empty()) {
      // Never sent: there is nothing to send it to.
      s.kind = push::OutcomeKind::kPermanent;
      s.reason = "EmptyToken";
      s.final = true;
      continue;
    }
    page->to_send.push_back(static_cast<std::uint32_t>(i));
  }
  return page;
}

// Every token was read and every page written: mark the schedule done.
void Scheduler::queueFinish(Run& run) {
  run.finishing = true;
  const Lease lease = run.lease;
  ResultWriter::Job job;
  job.op = DbOp::kFinish;
  auto changed = std::make_shared<bool>(false);
  job.work = [lease, changed](DbConnection& c) -> diag::Status {
    auto r = finishSchedule(c, lease);
    if (!r.ok()) return r.error();
    *changed = *r;
    return diag::Ok{};
  };
  job.done = [this, changed, serial = run.serial](const diag::Status& s) {
    WriterEvent e;
    e.run = serial;
    e.changed = *changed;
    if (!s.ok()) e.error = s.error();
    const std::lock_guard lock(mu_);
    writer_events_.push_back(std::make_shared<WriterEvent>(std::move(e)));
    cv_.notify_all();
  };
  writer_->submit(std::move(job));
}

void Scheduler::leaveRun(Run& run) {
  writer_->clearLease();
  if (run.finished) {
    if (run.finish_changed) {
      metrics_->scheduleFinished(true);
      logInfo("scheduler", "schedule " + std::to_string(run.id) + " done");
    } else {
      logWarn("scheduler",
              "schedule " + std::to_string(run.id) + ": claim lost before it could be marked done");
    }
  } else if (!run.fatal.empty()) {
    abandonPages(run);
    failRun(run, run.fatal);
  } else if (!run.lease_lost) {
    // Draining: what is persisted stays; the rest goes back to waiting for
    // the next daemon (or this one after a restart).
    abandonPages(run);
    auto r = db_.run(
        DbOp::kFinish, [&](DbConnection& c) { return releaseSchedule(c, run.lease); }, &stop_flag_);
    if (r.ok()) {
      logInfo("scheduler", "schedule " + std::to_string(run.id) + " released (state waiting)");
    }
  } else {
    abandonPages(run);
  }
  current_schedule_ = 0;
}

void Scheduler::runSchedule(ClaimedSchedule claimed) {
  Run run;
  if (!startRun(run, std::move(claimed))) return;
  for (;;) {
    const auto now = Clock::now();
    last_loop_ns_ = now.time_since_epoch().count();
    if (mustLeave(run, now)) break;
    if (applyReload()) refreshClients(run);
    collectReports(run);
    if (run.lease_lost) continue;  // handled at the top
    if (!run.fatal.empty()) break;
    if (run.finished) break;

    Clock::time_point wake = now + std::chrono::milliseconds(100);
    for (Platform p : kPlatforms) {
      for (auto& page : run.of(p).pages) sendPage(run, page, wake);
    }
    for (Platform p : kPlatforms) readPages(run, p, wake);

    const bool all_written = run.platforms[0].pages.empty() && run.platforms[1].pages.empty();
    if (all_written && !run.finishing) {
      if (run.platforms[0].exhausted && run.platforms[1].exhausted) {
        queueFinish(run);
      } else if (run.draining) {
        break;  // everything read so far is persisted: release below
      }
    }

    std::unique_lock lock(mu_);
    cv_.wait_until(lock, wake, [&] {
      return !done_pages_.empty() || !writer_events_.empty() || pending_config_.has_value() ||
             (stop_requested_ && !run.draining);
    });
  }
  leaveRun(run);
}

}  // namespace pushdaemon
