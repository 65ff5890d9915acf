#include "leakscope/push/event_loop.h"

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <signal.h>

#include <future>
#include <stdexcept>

#include "leakscope/core/signals.h"

namespace leakscope::push {

EventLoop::EventLoop() {
  static std::once_flag threads_once;
  static int threads_rc = 0;
  // libevent needs its lock callbacks before the first base is made, so that
  // post() may wake the loop from other threads.
  std::call_once(threads_once, [] { threads_rc = evthread_use_pthreads(); });
  if (threads_rc != 0) throw std::runtime_error("libevent: evthread_use_pthreads failed");
  // Precise timers: libevent's default monotonic clock is the coarse one
  // (a few ms of resolution), which would fire a Retry-After wait early.
  event_config* cfg = event_config_new();
  if (cfg == nullptr) throw std::runtime_error("libevent: event_config_new failed");
  event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
  base_ = event_base_new_with_config(cfg);
  event_config_free(cfg);
  if (base_ == nullptr) throw std::runtime_error("libevent: event_base_new failed");
  // Nameservers from /etc/resolv.conf; /etc/hosts and numeric hosts work even
  // when there is no resolver configured.
  dns_ =
      evdns_base_new(base_, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
  if (dns_ == nullptr) dns_ = evdns_base_new(base_, 0);
  wake_ = event_new(base_, -1, 0, &EventLoop::onWake, this);
  if (dns_ == nullptr || wake_ == nullptr) {
    if (wake_ != nullptr) event_free(wake_);
    if (dns_ != nullptr) evdns_base_free(dns_, 0);
    event_base_free(base_);
    throw std::runtime_error("libevent: cannot create the resolver or the wake-up event");
  }
  std::promise<void> started;
  thread_ = std::thread([this, &started] {
    const core::SignalsBlocked blocked = core::blockAllSignals();
    thread_id_ = std::this_thread::get_id();
    started.set_value();
    event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY);
  });
  started.get_future().wait();
}

EventLoop::~EventLoop() {
  post([this] {
    stopping_ = true;
    event_base_loopbreak(base_);
  });
  thread_.join();
  event_free(wake_);
  // fail_requests = 1: outstanding lookups get their callback (with an
  // error) now, while the base still exists.
  evdns_base_free(dns_, 1);
  event_base_free(base_);
}

void EventLoop::post(std::function<void()> fn) {
  bool wake = false;
  {
    const std::lock_guard lock(mu_);
    wake = posted_.empty();
    posted_.push_back(std::move(fn));
  }
  // One wake-up per batch: while the loop has not drained the queue, later
  // posts ride on the wake-up already pending.
  if (wake) event_active(wake_, EV_READ, 0);
}

void EventLoop::onWake(int, short, void* arg) { static_cast<EventLoop*>(arg)->runPosted(); }

void EventLoop::runPosted() {
  std::vector<std::function<void()>> batch;
  {
    const std::lock_guard lock(mu_);
    batch.swap(posted_);
  }
  for (auto& fn : batch) {
    if (stopping_) break;
    fn();
  }
}

}  // namespace leakscope::push
