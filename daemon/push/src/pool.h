// Pool: the connections of one credential to one endpoint, and the queue of
// requests waiting for a stream. Loop thread only, except the atomic
// observers at the bottom.
//
// - Requests queue FIFO (retries of unprocessed ones go to the front) and
//   are dispatched to the ready connection with the most free streams.
// - A new connection is opened when requests wait and no connection has a
//   free stream, one attempt at a time, never more than max_connections
//   open (draining ones included). Failed attempts back off exponentially
//   with jitter; see PoolOptions for when the queue gives up.
// - Requests the server provably did not process go back to the queue.
// - A periodic sweep (only while requests are outstanding) times them out.
// - shutdown(): requests already accepted finish until the deadline; then
//   every connection is closed (GOAWAY, close_notify, close); at the
//   deadline whatever is left fails with `Shutdown` and the sockets close
//   anyway. `done` runs once no connection object is left.
//
// Connections get their settings once, at construction (ConnectionSettings,
// built here from the endpoint and PoolOptions), and report back only
// through the ConnectionOwner callbacks.
//
// Nothing here calls into a connection, or out to the handler, from inside
// a connection's callbacks (which run inside nghttp2 and OpenSSL calls):
// submit() and completions only queue, and dispatching, delivering finished
// exchanges to the handler, reaping closed connections and finishing
// shutdown run from their own libevent events. So a handler may submit
// again, and its outcome callbacks never run under nghttp2's feet.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "connection.h"
#include "exchange.h"
#include "leakscope/diag/tracked.h"
#include "leakscope/push/backoff.h"
#include "leakscope/push/event_loop.h"
#include "leakscope/push/metrics.h"
#include "leakscope/push/options.h"

namespace leakscope::push::detail {

class Pool : public ConnectionOwner {
 public:
  // `component` names metrics and the tracked kind "<component>.connection".
  // `stats` may be null (instrumentation off). `owner`: the tracked object
  // its connections name as their owner (the client's provider).
  Pool(EventLoop& loop, std::string component, Endpoint endpoint, PoolOptions options,
       std::shared_ptr<SSL_CTX> ctx, std::shared_ptr<UpstreamStats> stats, ExchangeHandler& handler,
       diag::ObjectId owner = {});
  // Closes what is still open without calling the handler. Shut down first.
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Queues `ex` (deadline = now + request_timeout). After shutdown began past
  // its deadline, the exchange fails with kShutdown.
  void submit(std::unique_ptr<Exchange> ex);
  void shutdown(SteadyTime deadline, std::function<void()> done);
  bool shuttingDown() const { return shutting_down_; }

  // Thread-safe observers.
  std::size_t openConnections() const { return open_.load(std::memory_order_relaxed); }
  std::size_t peakConnections() const { return peak_.load(std::memory_order_relaxed); }

  // To PoolOptions::log, or stderr. Also the connections' log.
  void log(const std::string& line) const override;

 private:
  // ConnectionOwner: what the connections report.
  void onReady(Connection& c) override;
  void onCapacity() override;
  void onExchangeDone(std::unique_ptr<Exchange> ex, ExchangeResult result) override;
  void onClosed(Connection& c) override;

  static void onDispatch(int, short, void* arg);
  static void onDeliver(int, short, void* arg);
  static void onReap(int, short, void* arg);
  static void onSweep(int, short, void* arg);
  static void onConnectTimer(int, short, void* arg);
  static void onShutdownDeadline(int, short, void* arg);

  void scheduleDispatch();
  void dispatch();
  void maybeConnect();
  void sweep();
  void armSweep();
  void failQueue(Failure why);
  // Queues `ex` for the handler; deliver() hands the queue over.
  void complete(std::unique_ptr<Exchange> ex, ExchangeResult result);
  void deliver();
  bool anyUsable() const;
  void reap();
  void checkShutdown();
  void countOpen();

  EventLoop& loop_;
  std::string component_;
  Endpoint endpoint_;
  PoolOptions options_;
  std::shared_ptr<SSL_CTX> ctx_;
  std::shared_ptr<UpstreamStats> stats_;
  ExchangeHandler& handler_;
  diag::Kind* kind_ = nullptr;
  ConnectionSettings connection_settings_;  // every new connection gets a copy

  std::deque<std::unique_ptr<Exchange>> pending_;
  std::vector<std::pair<std::unique_ptr<Exchange>, ExchangeResult>> finished_;
  Backoff backoff_;
  int consecutive_failures_ = 0;
  SteadyTime next_connect_at_{};
  std::uint64_t next_conn_id_ = 1;
  bool shutting_down_ = false;
  bool shutdown_expired_ = false;
  bool destroying_ = false;
  std::function<void()> shutdown_done_;
  std::atomic<std::size_t> open_{0};
  std::atomic<std::size_t> peak_{0};

  // Connections last but one: destroying them may call back into the
  // members above (only while destroying_ is set, which drops the calls).
  std::vector<std::unique_ptr<Connection>> conns_;
  EventPtr dispatch_ev_;
  EventPtr deliver_ev_;
  EventPtr reap_ev_;
  EventPtr sweep_ev_;
  EventPtr connect_timer_;
  EventPtr shutdown_timer_;
};

}  // namespace leakscope::push::detail
