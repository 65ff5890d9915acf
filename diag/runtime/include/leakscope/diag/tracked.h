// Tracked objects: the resource-owning objects (connections, streams,
// providers, DB handles) a daemon wants to see in snapshots and metrics.
//
// A `Tracked` member registers its owner under a `Kind` on construction and
// deregisters exactly once, on `release()` or destruction, whichever comes
// first. Each object gets an `ObjectId` that is never reused within the
// process, a birth time, a label (a peer name — never a secret: labels are
// written to snapshots), the bytes it retains, and optionally the fd of the
// socket it owns, so snapshots can join objects to kernel sockets.
//
// An object may name its owner: the tracked object that holds it (a
// connection's pool or client, a client's registry). Snapshots record the
// owner's id, so `leakscope trend` and `diff` can show a growing kind under
// the growing kind that holds it (a chain: provider → connection → socket),
// and name the top of the chain as the cause. The owner is only an id: an
// owner released before its objects leaves a dangling id, which readers take
// as "owner gone".
//
//   static leakscope::diag::Kind& kConn = leakscope::diag::kind("apns.connection");
//   class Connection {
//     leakscope::diag::Tracked tracked_{kConn, "api.push.apple.com"};
//   };
//   Connection::Connection(Pool& pool) { tracked_.setOwner(pool.tracked()); }
//
// Thread-safety: everything here is safe to call from any thread. The hot path
// (construct + destroy) is one atomic id increment, one clock read, and a lock
// of one of the kind's 16 shards, whose counters it updates; no allocation
// unless the label is longer than the small-string buffer.
// Snapshots copy one shard at a time, so a busy thread waits at most for the
// copy of 1/16 of one kind's objects.
#pragma once

#include <atomic>
#include <compare>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace leakscope::diag {

// Process-unique, never reused, increasing in creation order.
struct ObjectId {
  std::uint64_t value = 0;
  auto operator<=>(const ObjectId&) const = default;
};

// A copy of one live object, as a snapshot sees it.
struct ObjectRecord {
  ObjectId id;
  std::int64_t birth_unix_ns = 0;
  std::string label;
  std::uint64_t bytes = 0;
  int fd = -1;
  ObjectId owner;  // 0: none declared
};

class Tracked;

// A named class of tracked objects, e.g. "apns.connection". Interned by
// `kind()`: one instance per name for the life of the process, never
// destroyed, so references to it may be cached in statics.
class Kind {
 public:
  Kind(const Kind&) = delete;
  Kind& operator=(const Kind&) = delete;

  const std::string& name() const { return name_; }
  // Live objects, defined as created - destroyed read in an order that can
  // never underflow, so `live == created - destroyed` holds in every reading.
  struct Counts {
    std::uint64_t created = 0;
    std::uint64_t destroyed = 0;
    std::uint64_t live = 0;
  };
  Counts counts() const;
  // Bytes retained by the live objects: the settable bytes, plus, for objects
  // with a bytes callback, the callback's answer now (walks those objects).
  std::uint64_t liveBytes() const;

  // Copies the live objects of shard `shard` (0..kShards-1) into `out`
  // (appending). The shard is locked for the copy only.
  static constexpr int kShards = 16;
  void copyShard(int shard, std::vector<ObjectRecord>& out) const;

 private:
  friend class Tracked;
  friend Kind& kind(std::string_view name);
  explicit Kind(std::string name) : name_(std::move(name)) {}

  // Counters live in the shard, next to its mutex: the thread that links an
  // object already owns that cache line, so two threads tracking objects of
  // one kind do not bounce a shared counter between cores. Readers sum the
  // shards. Written under `mu`, read without it (hence atomics).
  struct alignas(64) Shard {
    mutable std::mutex mu;
    Tracked* head = nullptr;  // intrusive list of live objects
    std::atomic<std::uint64_t> created{0};
    std::atomic<std::uint64_t> destroyed{0};
    std::atomic<std::int64_t> set_bytes{0};  // settable bytes of live objects
  };

  std::string name_;
  Shard shards_[kShards];
  std::atomic<std::int64_t> callback_objects_{0};
};

// Returns the kind with this name, creating it on first use. Takes a lock;
// call once and keep the reference.
Kind& kind(std::string_view name);

// Every kind created so far, in creation order.
std::vector<Kind*> allKinds();

// Registration handle. Not copyable or movable: it is linked into its kind's
// list by address. Make it a member of the object it stands for.
class Tracked {
 public:
  explicit Tracked(Kind& kind, std::string label = {}, std::uint64_t bytes = 0);
  // The same, owned by `owner` from the start.
  Tracked(Kind& kind, const Tracked& owner, std::string label = {}, std::uint64_t bytes = 0);
  ~Tracked() { release(); }
  Tracked(const Tracked&) = delete;
  Tracked& operator=(const Tracked&) = delete;

  // Deregisters now (e.g. the connection closed but the object lingers in a
  // pool). Idempotent: the destroyed counter moves exactly once.
  void release();
  bool released() const { return released_.load(std::memory_order_relaxed); }

  ObjectId id() const { return id_; }
  Kind& kind() const { return *kind_; }
  std::int64_t birthUnixNs() const { return birth_unix_ns_; }

  // Retained bytes, settable at any time (e.g. buffer sizes after each read).
  void setBytes(std::uint64_t bytes);
  std::uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
  // Alternatively a callback asked at snapshot and scrape time. It runs with
  // the object's shard locked: keep it cheap, never block in it, and never
  // create or destroy tracked objects of the same kind from it.
  void setBytesCallback(std::function<std::uint64_t()> fn);

  // The socket fd this object owns (-1: none). Snapshots use it to name the
  // owner of each kernel socket.
  void setFd(int fd) { fd_.store(fd, std::memory_order_relaxed); }
  int fd() const { return fd_.load(std::memory_order_relaxed); }

  void setLabel(std::string label);

  // The tracked object that holds this one (ObjectId{}: none). May change
  // at any time (a client moved from a registry to another list); an atomic
  // store, like setFd. The owner is not kept alive or told: once it is
  // released, snapshots name an id no live object has.
  void setOwner(const Tracked& owner) { setOwner(owner.id()); }
  void setOwner(ObjectId owner) { owner_.store(owner.value, std::memory_order_relaxed); }
  ObjectId owner() const { return ObjectId{owner_.load(std::memory_order_relaxed)}; }

 private:
  friend class Kind;
  Kind::Shard& shard() const;
  ObjectRecord record() const;  // caller holds the shard lock

  Kind* kind_;
  ObjectId id_;
  std::int64_t birth_unix_ns_;
  std::string label_;  // guarded by the shard lock
  std::atomic<std::uint64_t> bytes_;
  std::atomic<int> fd_{-1};
  std::atomic<std::uint64_t> owner_{0};
  std::function<std::uint64_t()> bytes_fn_;  // guarded by the shard lock
  Tracked* prev_ = nullptr;
  Tracked* next_ = nullptr;
  std::atomic<bool> released_{false};  // written under the shard lock
};

}  // namespace leakscope::diag
