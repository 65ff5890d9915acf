#include "pool.h"

#include <event2/event.h>

#include <algorithm>
#include <iostream>

#include "timeval.h"

namespace leakscope::push::detail {

namespace {

EventPtr newEvent(event_base* base, short what, event_callback_fn fn, void* arg) {
  EventPtr e(event_new(base, -1, what, fn, arg));
  // Out of memory while building the pool: nothing sensible to do.
  if (!e) throw std::bad_alloc();
  return e;
}

}  // namespace

Pool::Pool(EventLoop& loop, std::string component, Endpoint endpoint, PoolOptions options,
           std::shared_ptr<SSL_CTX> ctx, std::shared_ptr<UpstreamStats> stats,
           ExchangeHandler& handler, diag::ObjectId owner)
    : loop_(loop),
      component_(std::move(component)),
      endpoint_(std::move(endpoint)),
      options_(std::move(options)),
      ctx_(std::move(ctx)),
      stats_(options_.instrument ? std::move(stats) : nullptr),
      handler_(handler),
      backoff_(options_.reconnect) {
  if (options_.instrument) kind_ = &diag::kind(component_ + ".connection");
  if (options_.max_connections == 0) options_.max_connections = 1;
  if (options_.max_streams_per_connection == 0) options_.max_streams_per_connection = 1;
  connection_settings_ = ConnectionSettings{.component = component_,
                                            .endpoint = endpoint_,
                                            .ssl_ctx = ctx_.get(),
                                            .stats = stats_.get(),
                                            .tracked_kind = kind_,
                                            .tracked_owner = owner,
                                            .max_streams = options_.max_streams_per_connection,
                                            .connect_timeout = options_.connect_timeout,
                                            .idle_timeout = options_.idle_timeout,
                                            .ping_interval = options_.ping_interval,
                                            .ping_timeout = options_.ping_timeout};
  event_base* base = loop_.base();
  dispatch_ev_ = newEvent(base, 0, &Pool::onDispatch, this);
  deliver_ev_ = newEvent(base, 0, &Pool::onDeliver, this);
  reap_ev_ = newEvent(base, 0, &Pool::onReap, this);
  sweep_ev_ = newEvent(base, EV_PERSIST, &Pool::onSweep, this);
  connect_timer_ = newEvent(base, 0, &Pool::onConnectTimer, this);
  shutdown_timer_ = newEvent(base, 0, &Pool::onShutdownDeadline, this);
}

Pool::~Pool() {
  destroying_ = true;
  for (auto& c : conns_) c->close(CloseSide::kLocal, Failure::kShutdown);
  conns_.clear();
  if (stats_) stats_->rqPending(-static_cast<std::int64_t>(pending_.size()));
}

void Pool::log(const std::string& line) const {
  if (options_.log) {
    options_.log(line);
  } else {
    std::cerr << "leakscope push: " << line << '\n';
  }
}

void Pool::submit(std::unique_ptr<Exchange> ex) {
  if (shutdown_expired_ || destroying_) {
    complete(std::move(ex), {Failure::kShutdown, -1});
    return;
  }
  ex->deadline = std::chrono::steady_clock::now() + options_.request_timeout;
  ex->unprocessed_retries = 0;
  pending_.push_back(std::move(ex));
  if (stats_) stats_->rqPending(1);
  armSweep();
  scheduleDispatch();
}

void Pool::complete(std::unique_ptr<Exchange> ex, ExchangeResult result) {
  if (destroying_) return;
  if (result.failure == Failure::kTimeout && stats_) stats_->rqTimeout();
  if (finished_.empty()) event_active(deliver_ev_.get(), 0, 0);
  finished_.emplace_back(std::move(ex), result);
}

void Pool::onDeliver(int, short, void* arg) { static_cast<Pool*>(arg)->deliver(); }

void Pool::deliver() {
  // The handler may submit again, and completions of those land in a new
  // queue (and a new activation of this event).
  auto batch = std::move(finished_);
  finished_.clear();
  for (auto& [ex, result] : batch) {
    if (destroying_) return;
    handler_.onExchangeDone(std::move(ex), result);
  }
  if (shutting_down_) checkShutdown();
}

void Pool::scheduleDispatch() {
  if (!destroying_) event_active(dispatch_ev_.get(), 0, 0);
}

void Pool::onDispatch(int, short, void* arg) { static_cast<Pool*>(arg)->dispatch(); }

void Pool::dispatch() {
  const auto now = std::chrono::steady_clock::now();
  std::vector<Connection*> touched;
  while (!pending_.empty()) {
    Connection* best = nullptr;
    std::uint32_t best_free = 0;
    for (auto& c : conns_) {
      const std::uint32_t f = c->freeStreams();
      if (f > best_free) {
        best = c.get();
        best_free = f;
      }
    }
    if (best == nullptr) break;
    std::unique_ptr<Exchange> ex = std::move(pending_.front());
    pending_.pop_front();
    if (stats_) stats_->rqPending(-1);
    if (ex->deadline <= now) {
      complete(std::move(ex), {Failure::kTimeout, -1});
      continue;
    }
    best->submit(std::move(ex));
    if (std::find(touched.begin(), touched.end(), best) == touched.end()) touched.push_back(best);
  }
  // One write per connection for the whole batch.
  for (Connection* c : touched) c->flush();
  maybeConnect();
  if (shutting_down_) checkShutdown();
}

void Pool::maybeConnect() {
  if (pending_.empty() || shutdown_expired_ || destroying_) return;
  std::size_t taking = 0;    // connecting, ready, busy
  std::size_t draining = 0;  // finishing their streams, taking no new ones
  for (const auto& c : conns_) {
    if (c->state() == Connection::State::kClosed) continue;
    if (c->state() == Connection::State::kDraining) {
      ++draining;
      continue;
    }
    ++taking;
    // One attempt at a time: a server that is down costs one failure per
    // back-off step, not one per queued request.
    if (c->state() == Connection::State::kConnecting) return;
  }
  // See PoolOptions::max_connections.
  if (taking >= options_.max_connections || draining > options_.max_connections) return;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_connect_at_) {
    if (evtimer_pending(connect_timer_.get(), nullptr) == 0) {
      const timeval tv = toTimeval(next_connect_at_ - now);
      evtimer_add(connect_timer_.get(), &tv);
    }
    return;
  }
  conns_.push_back(
      std::make_unique<Connection>(loop_, connection_settings_, *this, ConnId{next_conn_id_++}));
  Connection* c = conns_.back().get();
  countOpen();
  c->start();
}

void Pool::onConnectTimer(int, short, void* arg) { static_cast<Pool*>(arg)->dispatch(); }

void Pool::countOpen() {
  std::size_t open = 0;
  for (const auto& c : conns_)
    if (c->state() != Connection::State::kClosed) ++open;
  open_.store(open, std::memory_order_relaxed);
  if (open > peak_.load(std::memory_order_relaxed)) peak_.store(open, std::memory_order_relaxed);
}

void Pool::onReady(Connection&) {
  backoff_.reset();
  consecutive_failures_ = 0;
  scheduleDispatch();
}

void Pool::onCapacity() { scheduleDispatch(); }

void Pool::onExchangeDone(std::unique_ptr<Exchange> ex, ExchangeResult result) {
  if (destroying_) return;
  if (result.failure == Failure::kRefusedStream &&
      ex->unprocessed_retries < options_.max_unprocessed_retries && !shutdown_expired_ &&
      ex->deadline > std::chrono::steady_clock::now()) {
    // The server did not process it: send it again, first in line, on
    // whichever connection has room (never the one that refused, if that one
    // is draining).
    ++ex->unprocessed_retries;
    if (stats_) {
      if (result.seconds >= 0) {
        stats_->rqCompleted(0, reason::kRefusedStream, OutcomeKind::kRetryable, result.seconds);
      }
      stats_->rqRetry();
      stats_->rqPending(1);
    }
    ex->resetAttempt();
    pending_.push_front(std::move(ex));
    scheduleDispatch();
    return;
  }
  complete(std::move(ex), result);
}

void Pool::onClosed(Connection& c) {
  countOpen();
  if (destroying_) return;
  if (!c.everReady() && c.closeReason() != Failure::kShutdown) {
    if (stats_) stats_->cxConnectFailed();
    ++consecutive_failures_;
    const auto delay = backoff_.next();
    next_connect_at_ = std::chrono::steady_clock::now() + delay;
    log(component_ + " to " + endpoint_.host + ":" + std::to_string(endpoint_.port) +
        ": connection attempt " + std::to_string(consecutive_failures_) + " failed (" +
        std::string(failureReason(c.closeReason())) + "); next attempt in " +
        std::to_string(delay.count()) + " ms");
    const bool hopeless =
        c.closeReason() == Failure::kTlsVerifyFailed || c.closeReason() == Failure::kAlpnRefused;
    // Give up on the queue only when no connection can carry it: attempts
    // at an extra connection failing while others work just wait for those.
    if (hopeless ||
        (consecutive_failures_ >= options_.connect_failures_before_failing_queue && !anyUsable())) {
      // A connection that never became ready lost nothing: the set-up failed
      // (e.g. the server refused our certificate after the handshake).
      failQueue(hopeless ? c.closeReason() : Failure::kConnectFailed);
    }
  }
  event_active(reap_ev_.get(), 0, 0);
  scheduleDispatch();
}

bool Pool::anyUsable() const {
  for (const auto& c : conns_) {
    if (c->state() == Connection::State::kReady || c->state() == Connection::State::kBusy) {
      return true;
    }
  }
  return false;
}

void Pool::failQueue(Failure why) {
  auto queue = std::move(pending_);
  pending_.clear();
  if (stats_) stats_->rqPending(-static_cast<std::int64_t>(queue.size()));
  for (auto& ex : queue) complete(std::move(ex), {why, -1});
}

void Pool::armSweep() {
  if (evtimer_pending(sweep_ev_.get(), nullptr) != 0) return;
  // A quarter of the timeout, within [10 ms, 250 ms]: timeouts fire at most
  // that late, and an idle pool has no timer at all.
  const auto period = std::clamp<std::chrono::milliseconds>(
      options_.request_timeout / 4, std::chrono::milliseconds(10), std::chrono::milliseconds(250));
  const timeval tv = toTimeval(period);
  event_add(sweep_ev_.get(), &tv);
}

void Pool::onSweep(int, short, void* arg) { static_cast<Pool*>(arg)->sweep(); }

void Pool::sweep() {
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<Exchange>> expired;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if ((*it)->deadline <= now) {
      expired.push_back(std::move(*it));
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  if (stats_) stats_->rqPending(-static_cast<std::int64_t>(expired.size()));
  for (auto& ex : expired) complete(std::move(ex), {Failure::kTimeout, -1});
  bool streams = false;
  for (std::size_t i = 0; i < conns_.size(); ++i) {
    conns_[i]->expire(now);
    streams = streams || conns_[i]->activeStreams() > 0;
  }
  if (pending_.empty() && !streams) event_del(sweep_ev_.get());
  if (shutting_down_) checkShutdown();
}

void Pool::onReap(int, short, void* arg) { static_cast<Pool*>(arg)->reap(); }

void Pool::reap() {
  conns_.erase(std::remove_if(conns_.begin(), conns_.end(),
                              [](const std::unique_ptr<Connection>& c) {
                                return c->state() == Connection::State::kClosed;
                              }),
               conns_.end());
  if (shutting_down_) checkShutdown();
}

void Pool::shutdown(SteadyTime deadline, std::function<void()> done) {
  shutting_down_ = true;
  shutdown_done_ = std::move(done);
  const timeval tv = toTimeval(deadline - std::chrono::steady_clock::now());
  evtimer_add(shutdown_timer_.get(), &tv);
  scheduleDispatch();
  checkShutdown();
}

void Pool::onShutdownDeadline(int, short, void* arg) {
  auto* p = static_cast<Pool*>(arg);
  p->shutdown_expired_ = true;
  p->failQueue(Failure::kShutdown);
  for (std::size_t i = 0; i < p->conns_.size(); ++i) {
    p->conns_[i]->abortStreams(Failure::kShutdown);
    p->conns_[i]->close(CloseSide::kLocal, Failure::kShutdown);
  }
  p->checkShutdown();
}

void Pool::checkShutdown() {
  if (!shutting_down_ || !shutdown_done_) return;
  bool streams = false;
  for (const auto& c : conns_) streams = streams || c->activeStreams() > 0;
  // Accepted work still running, or outcomes not yet handed over: let it
  // finish (or the deadline end it).
  if (!pending_.empty() || streams || !finished_.empty()) return;
  for (std::size_t i = 0; i < conns_.size(); ++i) conns_[i]->drain(CloseSide::kLocal);
  if (!conns_.empty()) return;  // reap() calls back once they are closed
  event_del(shutdown_timer_.get());
  event_del(sweep_ev_.get());
  event_del(connect_timer_.get());
  shutdown_expired_ = true;  // nothing more goes out
  auto done = std::move(shutdown_done_);
  shutdown_done_ = nullptr;
  done();
}

}  // namespace leakscope::push::detail
