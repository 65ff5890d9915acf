#include "leakscope/diag/runtime.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "leakscope/core/agent_env.h"
#include "leakscope/core/signals.h"
#include "leakscope/core/unique_fd.h"
#include "leakscope/core/watch_protocol.h"
#include "leakscope/diag/metrics.h"
#include "memory_pressure.h"
#include "thread_on_demand.h"

namespace leakscope::diag {
namespace {

std::atomic<bool> g_runtime_alive{false};
// The write end of the runtime's pipe, read by the signal handler. A
// lock-free atomic is async-signal-safe.
std::atomic<int> g_signal_fd{-1};
// Handlers between loading g_signal_fd and finishing their write: ~Runtime
// waits for zero before closing the pipe, so a late handler can never write
// into an fd number that has since been reused.
std::atomic<int> g_handlers_in_flight{0};
struct sigaction g_old_action {};

// What the pipe carries to the snapshot thread: one byte per request.
constexpr char kSignalByte = 's';    // the snapshot signal, from anyone
constexpr char kIntervalByte = 'i';  // the watcher: an interval snapshot is due
constexpr char kPressureByte = 'm';  // the watcher: a memory-limit fraction was crossed
constexpr char kStopByte = 'q';

// The watcher whose sigqueue() values are requests (core/watch_protocol.h),
// the fraction of its last memory-pressure request, and the on-demand start
// (null once started or when the thread started with the Runtime).
std::atomic<pid_t> g_watcher_pid{0};
std::atomic<int> g_pressure_permille{0};
std::atomic<ThreadOnDemand*> g_on_demand{nullptr};

// The byte for one delivery of the snapshot signal; 0 for the on-demand
// start's own retry, which asks for nothing.
char requestByte(const siginfo_t* info) {
  if (info == nullptr) return kSignalByte;
  if (info->si_code == SI_TIMER && info->si_value.sival_int == ThreadOnDemand::kRetryValue) {
    return 0;
  }
  const pid_t watcher = g_watcher_pid.load();
  if (info->si_code != SI_QUEUE || watcher <= 0 || info->si_pid != watcher) return kSignalByte;
  const auto request = core::decodeWatchRequest(info->si_value.sival_int);
  if (!request) return kSignalByte;
  if (request->kind == core::WatchKind::kInterval) return kIntervalByte;
  g_pressure_permille.store(request->permille);
  return kPressureByte;
}

extern "C" void onSnapshotSignal(int, siginfo_t* info, void* context) {
  const int saved = errno;
  g_handlers_in_flight.fetch_add(1);
  const int fd = g_signal_fd.load();
  if (fd >= 0) {
    // A full pipe means snapshots are already pending: dropping is right.
    if (const char b = requestByte(info); b != 0) [[maybe_unused]]
      const ssize_t n = ::write(fd, &b, 1);
    if (ThreadOnDemand* start = g_on_demand.load(); start != nullptr) start->request(context);
  }
  g_handlers_in_flight.fetch_sub(1);
  errno = saved;
}

}  // namespace

// The snapshot thread and the pipe that wakes it: a byte per request from
// the signal handler (kSignalByte, kIntervalByte, kPressureByte), 'q' from
// the destructor; a poll timeout runs the periodic jobs that are due
// (interval snapshots, the memory-pressure check). One thread for all of
// them: a check is one read of /proc/self/statm, and snapshots are
// serialized by the writer anyway.
// The thread starts with the Runtime, or, on demand, from the handler of the
// first request (thread_on_demand.h); requests wait in the pipe until then.
// The destructor stops and joins the thread, then the pipe closes (members).
// addPeriodic(), start() and the destructor run in the thread that owns the
// Runtime.
class Runtime::SnapshotThread {
 public:
  using Take = std::function<void(Trigger, std::string_view detail)>;
  using Log = std::function<void(const std::string&)>;
  // Returns false when it should not run again (it logged why).
  using Job = std::function<bool()>;

  SnapshotThread(Take take, Log log, int signal)
      : take_(std::move(take)),
        log_(std::move(log)),
        signal_(signal),
        signal_name_(core::signalName(signal)) {}
  ~SnapshotThread();
  SnapshotThread(const SnapshotThread&) = delete;
  SnapshotThread& operator=(const SnapshotThread&) = delete;

  // Before start(): run `job` every `every`, timed from the end of its
  // previous run (a slow snapshot delays the next one, never piles them up).
  void addPeriodic(std::chrono::milliseconds every, Job job);
  bool hasPeriodic() const { return !periodic_.empty(); }
  // Opens the pipe and starts the thread with every signal blocked, so no
  // signal is ever delivered to it; it only reads the pipe. With
  // `on_demand` (and no periodic jobs) only prepares the start, which the
  // signal handler makes (onDemand()). False (the reason logged) when the
  // pipe or the thread cannot be had.
  bool start(bool on_demand);
  // The on-demand start for the handler; null when the thread started at once.
  ThreadOnDemand* onDemand() const { return on_demand_.get(); }
  // The write end, for the signal handler.
  int signalFd() const { return write_.get(); }
  // In a fork()ed child: closes the pipe so the child does not keep the
  // parent's copy open; the thread object stays (it is not running here).
  void closePipeInChild() {
    read_.reset();
    write_.reset();
  }

 private:
  using Clock = std::chrono::steady_clock;
  struct Periodic {
    std::chrono::milliseconds every;
    Job job;
    Clock::time_point next;
  };
  // What one wake-up by the pipe brought.
  struct Wakeup {
    bool stop = false;
    std::uint64_t signals = 0;
    std::uint64_t intervals = 0;
    std::uint64_t pressure = 0;
  };

  static void* body(void* self);
  bool startNow();
  bool running() const;
  void run();
  void serve(const Wakeup& w);
  int msUntilNextJob() const;  // poll's timeout; -1 = no jobs
  void runDueJobs();
  Wakeup drainPipe();

  const Take take_;
  const Log log_;
  const int signal_;
  const std::string signal_name_;   // the snapshot's trigger detail
  std::vector<Periodic> periodic_;  // touched only by the thread once started
  core::UniqueFd read_;
  core::UniqueFd write_;
  std::atomic<bool> stop_{false};
  std::unique_ptr<ThreadOnDemand> on_demand_;
  pthread_t thread_{};
  bool started_now_ = false;
};

void Runtime::SnapshotThread::addPeriodic(std::chrono::milliseconds every, Job job) {
  periodic_.push_back(Periodic{every, std::move(job), Clock::now() + every});
}

void* Runtime::SnapshotThread::body(void* self) {
  static_cast<SnapshotThread*>(self)->run();
  return nullptr;
}

bool Runtime::SnapshotThread::start(bool on_demand) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    log_(std::string("snapshot thread: pipe: ") + std::strerror(errno) +
         "; signal, interval and memory-pressure snapshots are off");
    return false;
  }
  read_ = core::UniqueFd(fds[0]);
  write_ = core::UniqueFd(fds[1]);
  if (on_demand && periodic_.empty()) {
    on_demand_ = std::make_unique<ThreadOnDemand>(signal_, &SnapshotThread::body, this);
    if (on_demand_->usable()) return true;
    on_demand_.reset();  // no rule for this platform, or no timer: start now
  }
  return startNow();
}

bool Runtime::SnapshotThread::startNow() {
  const core::SignalsBlocked blocked = core::blockAllSignals();  // the thread inherits the mask
  const int err = pthread_create(&thread_, nullptr, &SnapshotThread::body, this);
  if (err != 0) {
    log_(std::string("snapshot thread: ") + std::strerror(err) +
         "; signal, interval and memory-pressure snapshots are off");
    return false;
  }
  started_now_ = true;
  return true;
}

bool Runtime::SnapshotThread::running() const {
  return started_now_ || (on_demand_ != nullptr && on_demand_->started());
}

Runtime::SnapshotThread::~SnapshotThread() {
  if (!running()) return;
  // The flag, not the byte, is what stops the thread: the pipe may be full
  // after a burst of signals, and then the byte cannot be written — but a
  // full pipe wakes the thread anyway.
  stop_.store(true);
  const char b = kStopByte;
  while (::write(write_.get(), &b, 1) < 0 && errno == EINTR) {
  }
  pthread_join(started_now_ ? thread_ : on_demand_->thread(), nullptr);
}

void Runtime::SnapshotThread::run() {
  for (;;) {
    pollfd p{read_.get(), POLLIN, 0};
    const int n = poll(&p, 1, msUntilNextJob());
    if (n < 0 && errno != EINTR) {
      log_(std::string("snapshot thread: poll: ") + std::strerror(errno));
      return;
    }
    if (stop_.load()) return;
    if (n <= 0) {
      runDueJobs();
      continue;
    }
    const Wakeup w = drainPipe();
    if (w.stop || stop_.load()) return;
    serve(w);
  }
}

// One snapshot per kind of request, however many arrived.
void Runtime::SnapshotThread::serve(const Wakeup& w) {
  if (w.signals > 0) take_(Trigger::kSignal, signal_name_);
  if (w.intervals > 0) take_(Trigger::kInterval, "interval (leakscope-watch)");
  if (w.pressure > 0) {
    take_(Trigger::kMemoryPressure, pressureDetailNow(g_pressure_permille.load() / 1000.0));
  }
}

int Runtime::SnapshotThread::msUntilNextJob() const {
  if (periodic_.empty()) return -1;
  const auto now = Clock::now();
  std::int64_t least = std::numeric_limits<int>::max();
  for (const Periodic& p : periodic_) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(p.next - now);
    least = std::min<std::int64_t>(least, std::max<std::int64_t>(0, left.count()));
  }
  return static_cast<int>(least);
}

void Runtime::SnapshotThread::runDueJobs() {
  for (std::size_t i = 0; i < periodic_.size();) {
    Periodic& p = periodic_[i];
    if (Clock::now() < p.next) {
      ++i;
      continue;
    }
    if (!p.job()) {
      periodic_.erase(periodic_.begin() + static_cast<std::ptrdiff_t>(i));
      continue;
    }
    p.next = Clock::now() + p.every;
    ++i;
  }
}

// Drain: a burst of requests becomes one snapshot of each kind.
Runtime::SnapshotThread::Wakeup Runtime::SnapshotThread::drainPipe() {
  Wakeup w;
  char buf[256];
  for (;;) {
    const ssize_t got = ::read(read_.get(), buf, sizeof buf);
    if (got <= 0) break;
    for (ssize_t i = 0; i < got; ++i) {
      w.stop = w.stop || buf[i] == kStopByte;
      w.signals += buf[i] == kSignalByte ? 1 : 0;
      w.intervals += buf[i] == kIntervalByte ? 1 : 0;
      w.pressure += buf[i] == kPressureByte ? 1 : 0;
    }
  }
  return w;
}

Runtime::Runtime(Config config) : config_(std::move(config)) {
  if (g_runtime_alive.exchange(true)) {
    throw std::logic_error("leakscope::diag::Runtime: only one may exist at a time");
  }
  // If anything below throws (bad_alloc), let the next Runtime be created.
  struct AliveGuard {
    bool armed = true;
    ~AliveGuard() {
      if (armed) g_runtime_alive.store(false);
    }
  } alive_guard;
  collector_ = std::make_shared<DiagCollector>(config_.peer_names);

  collectables_.push_back(collector_);
  if (!config_.metrics_address.empty()) startMetrics();
  if (!config_.snapshot_dir.empty()) createSnapshotWriter();

  alive_guard.armed = false;  // nothing below throws

  // On demand only where nothing else needs the thread sooner: a job on a
  // clock here (the watcher runs those for the agent) or the /metrics server.
  const bool on_demand = config_.snapshot_thread_on_demand && config_.snapshot_on_sigusr2 &&
                         config_.metrics_address.empty();
  if (snapshot_thread_ == nullptr || !snapshot_thread_->start(on_demand)) return;
  g_watcher_pid.store(config_.watcher_pid);
  if (config_.snapshot_on_sigusr2) installSnapshotSignal();
}

// The writer, and the (not yet started) thread that will call it.
void Runtime::createSnapshotWriter() {
  SnapshotOptions o;
  o.dir = config_.snapshot_dir;
  o.name = config_.snapshot_name;
  o.keep = config_.snapshot_keep;
  o.max_bytes = config_.snapshot_max_bytes;
  o.heap_mode = config_.heap_mode;
  o.peer_names = config_.peer_names;
  o.heap_unavailable_reason = config_.heap_unavailable_reason;
  writer_ = std::make_unique<SnapshotWriter>(std::move(o));
  if (Status s = writer_->prepareDir(); !s.ok()) {
    log(s.error().message + "; snapshots will fail until this is fixed");
  }
  if (config_.heap_mode == HeapMode::kSampled && config_.heap_unavailable_reason.empty()) {
    if (activeSamplePeriod() == 0) {
      log("heap mode 'sampled' but TCMALLOC_SAMPLE_PARAMETER is not set: snapshots will have "
          "no heap sites (set it in the environment, or call ensureHeapSampling in main)");
    } else {
      primeHeapSampler();  // for the thread that constructs the Runtime (usually main)
    }
  }
  snapshot_thread_ = std::make_unique<SnapshotThread>(
      [this](Trigger trigger, std::string_view detail) { takeSnapshot(trigger, detail); },
      [this](const std::string& line) { log(line); }, config_.snapshot_signal);
  addIntervalSnapshots();
  addMemoryPressureCheck();
}

void Runtime::addIntervalSnapshots() {
  if (config_.snapshot_interval.count() <= 0) return;
  snapshot_thread_->addPeriodic(config_.snapshot_interval, [this] {
    takeSnapshot(Trigger::kInterval, "interval");
    return true;
  });
}

void Runtime::addMemoryPressureCheck() {
  if (config_.memory_pressure_fractions.empty() || config_.memory_check_interval.count() <= 0) {
    return;
  }
  if (Status s = validateMemoryPressureFractions(config_.memory_pressure_fractions); !s.ok()) {
    log(s.error().message + "; memory-pressure snapshots are off");
    return;
  }
  auto opened = MemoryPressureCheck::open(config_.memory_pressure_fractions);
  if (!opened.ok()) {
    log(opened.error().message + "; memory-pressure snapshots are off");
    return;
  }
  // std::function needs a copyable callable; the check (it owns an fd) is
  // shared by the copies, of which the thread keeps one.
  auto check = std::make_shared<MemoryPressureCheck>(std::move(*opened));
  snapshot_thread_->addPeriodic(config_.memory_check_interval, [this, check] {
    auto due = check->check(std::chrono::steady_clock::now());
    if (!due.ok()) {
      log(due.error().message + "; memory-pressure snapshots are off");
      return false;
    }
    if (*due) takeSnapshot(Trigger::kMemoryPressure, **due);
    return true;
  });
}

void Runtime::installSnapshotSignal() {
  g_signal_fd.store(snapshot_thread_->signalFd());
  g_on_demand.store(snapshot_thread_->onDemand());
  struct sigaction sa {};
  sa.sa_sigaction = onSnapshotSignal;
  // Every signal blocked while it runs: a thread it starts inherits that
  // mask, so no signal is ever delivered to the snapshot thread.
  sigfillset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART | SA_SIGINFO;
  if (sigaction(config_.snapshot_signal, &sa, &g_old_action) == 0) {
    handler_installed_ = true;
  } else {
    log("sigaction(" + core::signalName(config_.snapshot_signal) + "): " + std::strerror(errno));
  }
}

// Puts back what was there before, except the default action, which for
// SIGUSR2 is to terminate: a `kill -USR2` that lands during shutdown must not
// turn a clean exit into a crash. Only while our handler is still the one in
// place: a program that installed its own since keeps it.
void Runtime::restoreSnapshotSignal() {
  struct sigaction current {};
  if (sigaction(config_.snapshot_signal, nullptr, &current) != 0 ||
      (current.sa_flags & SA_SIGINFO) == 0 || current.sa_sigaction != onSnapshotSignal) {
    return;
  }
  struct sigaction restore = g_old_action;
  if (restore.sa_handler == SIG_DFL && (restore.sa_flags & SA_SIGINFO) == 0) {
    restore.sa_handler = SIG_IGN;
  }
  sigaction(config_.snapshot_signal, &restore, nullptr);
}

void Runtime::abandonAfterFork(std::unique_ptr<Runtime> r) {
  if (r == nullptr) return;
  // The handler, inherited, would write into the parent's pipe copy: off
  // until the next Runtime installs its own.
  g_signal_fd.store(-1);
  g_on_demand.store(nullptr);  // its timer is the parent's (timers are not inherited)
  g_handlers_in_flight.store(0);
  if (r->snapshot_thread_ != nullptr) r->snapshot_thread_->closePipeInChild();
  // The port is the parent's: a worker that outlives it must not hold it.
  if (r->http_ != nullptr) r->http_->closeListenerInForkedChild();
  g_runtime_alive.store(false);
  // Never destroyed: ~SnapshotThread would join a thread that is not here.
  [[maybe_unused]] Runtime* leaked = r.release();
}

Runtime::~Runtime() {
  http_.reset();  // no scrape runs while the rest goes
  if (handler_installed_) restoreSnapshotSignal();
  g_signal_fd.store(-1);
  g_on_demand.store(nullptr);
  while (g_handlers_in_flight.load() != 0) std::this_thread::yield();
  snapshot_thread_.reset();  // joins the thread (a snapshot in progress ends), closes the pipe
  g_runtime_alive.store(false);
}

void Runtime::startMetrics() {
  auto handler = [this](std::string_view path) {
    if (path != "/metrics") return HttpResponse{404, "text/plain; charset=utf-8", "try /metrics\n"};
    std::vector<std::weak_ptr<prometheus::Collectable>> from;
    {
      std::lock_guard<std::mutex> lock(collectables_mu_);
      from = collectables_;
    }
    return metricsResponse(from);
  };
  auto server =
      HttpServer::start(config_.metrics_address, config_.metrics_limits, std::move(handler),
                        [this](std::string_view line) { log(std::string(line)); });
  if (server.ok()) {
    http_ = std::move(*server);
    metrics_bound_ = http_->address();
  } else {
    // Address errors already name the address; others get it in front.
    metrics_status_ = server.error();
    if (server.error().code != Errc::kInvalidArgument) {
      metrics_status_ = Error{server.error().code, "metrics address '" + config_.metrics_address +
                                                       "': " + server.error().message};
    }
    log(metrics_status_.error().message + "; carrying on without /metrics");
  }
}

void Runtime::log(const std::string& line) const {
  if (config_.log) {
    config_.log(line);
  } else {
    std::fprintf(stderr, "leakscope: %s\n", line.c_str());
  }
}

void Runtime::record(const Result<SnapshotInfo>& r, Trigger trigger) {
  if (r.ok()) {
    if (!r->warning.empty()) log("snapshot " + r->path + " written, but: " + r->warning);
    const double now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    collector_->recordSnapshot(trigger, r->duration_seconds, now);
  } else {
    collector_->recordSnapshotFailure();
    log("snapshot failed: " + r.error().message);
  }
}

void Runtime::takeSnapshot(Trigger trigger, std::string_view detail) {
  record(writer_->write(trigger, detail), trigger);
}

Result<SnapshotInfo> Runtime::snapshot(std::string_view detail) {
  if (writer_ == nullptr) return Error{Errc::kUnavailable, "snapshots are off (no snapshot_dir)"};
  auto r = writer_->write(Trigger::kApi, detail);
  record(r, Trigger::kApi);
  return r;
}

void Runtime::registerCollectable(const std::weak_ptr<prometheus::Collectable>& c) {
  std::lock_guard<std::mutex> lock(collectables_mu_);
  collectables_.push_back(c);
}

}  // namespace leakscope::diag
