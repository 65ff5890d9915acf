// EventLoop: one libevent event_base driven by its own thread, which every
// pool, connection and client of the push transport runs on.
//
// Work reaches the loop through post(), from any thread; everything else in
// leakscope::push that touches sockets, nghttp2 or OpenSSL runs on the loop
// thread only, so none of it needs locks. The thread starts with all signals
// blocked (signals belong to the daemon's own signal handling).
//
// Lifetime: clients using the loop must be shut down and destroyed before
// the loop; ~EventLoop stops the thread and drops work still queued.
// Thread-safety: post() and inLoopThread() from any thread.
#pragma once

#include <functional>
#include <mutex>
#include <thread>
#include <vector>

struct event_base;
struct evdns_base;
struct event;

namespace leakscope::push {

class EventLoop {
 public:
  // Throws std::runtime_error when libevent cannot be set up (start-up only).
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs `fn` on the loop thread, after the work posted before it.
  void post(std::function<void()> fn);
  bool inLoopThread() const { return std::this_thread::get_id() == thread_id_; }

  event_base* base() const { return base_; }
  evdns_base* dns() const { return dns_; }

 private:
  static void onWake(int fd, short what, void* arg);
  void runPosted();

  // Teardown order: thread joined first (destructor), then the events, the
  // resolver and last the base they live on.
  event_base* base_ = nullptr;
  evdns_base* dns_ = nullptr;
  event* wake_ = nullptr;
  std::mutex mu_;
  std::vector<std::function<void()>> posted_;  // guarded by mu_
  bool stopping_ = false;                      // loop thread only
  std::thread::id thread_id_;
  std::thread thread_;  // last: started once everything above exists
};

}  // namespace leakscope::push
