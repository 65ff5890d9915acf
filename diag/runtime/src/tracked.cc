#include "leakscope/diag/tracked.h"

#include <time.h>

#include <deque>
#include <memory>

namespace leakscope::diag {
namespace {

std::atomic<std::uint64_t> g_next_id{1};

std::int64_t nowUnixNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// The interned kinds. Allocated once and never freed: tracked objects with
// static storage may be destroyed after any other static, and must still find
// their kind.
struct KindTable {
  std::mutex mu;
  std::deque<std::unique_ptr<Kind>> kinds;
};

KindTable& table() {
  static KindTable* t = new KindTable;
  return *t;
}

}  // namespace

Kind& kind(std::string_view name) {
  KindTable& t = table();
  std::lock_guard lock(t.mu);
  for (auto& k : t.kinds) {
    if (k->name() == name) return *k;
  }
  t.kinds.push_back(std::unique_ptr<Kind>(new Kind(std::string(name))));
  return *t.kinds.back();
}

std::vector<Kind*> allKinds() {
  KindTable& t = table();
  std::lock_guard lock(t.mu);
  std::vector<Kind*> out;
  out.reserve(t.kinds.size());
  for (auto& k : t.kinds) out.push_back(k.get());
  return out;
}

Kind::Counts Kind::counts() const {
  // destroyed first: whatever happens between the two loads can only make
  // created larger, so live never underflows.
  // Per shard destroyed <= created at every instant, so summing all destroyed
  // counters before any created counter can only overstate created.
  Counts c;
  for (const Shard& s : shards_) c.destroyed += s.destroyed.load(std::memory_order_acquire);
  for (const Shard& s : shards_) c.created += s.created.load(std::memory_order_acquire);
  c.live = c.created - c.destroyed;
  return c;
}

std::uint64_t Kind::liveBytes() const {
  std::int64_t total = 0;
  for (const Shard& s : shards_) total += s.set_bytes.load(std::memory_order_relaxed);
  if (callback_objects_.load(std::memory_order_relaxed) > 0) {
    for (const Shard& s : shards_) {
      std::lock_guard lock(s.mu);
      for (const Tracked* t = s.head; t != nullptr; t = t->next_) {
        // A callback overrides the settable bytes of its object.
        if (t->bytes_fn_) {
          total += static_cast<std::int64_t>(t->bytes_fn_()) -
                   static_cast<std::int64_t>(t->bytes_.load(std::memory_order_relaxed));
        }
      }
    }
  }
  return total < 0 ? 0 : static_cast<std::uint64_t>(total);
}

void Kind::copyShard(int shard, std::vector<ObjectRecord>& out) const {
  const Shard& s = shards_[shard];
  std::lock_guard lock(s.mu);
  for (const Tracked* t = s.head; t != nullptr; t = t->next_) out.push_back(t->record());
}

Tracked::Tracked(Kind& k, std::string label, std::uint64_t bytes)
    : kind_(&k),
      id_{g_next_id.fetch_add(1, std::memory_order_relaxed)},
      birth_unix_ns_(nowUnixNs()),
      label_(std::move(label)),
      bytes_(bytes) {
  Kind::Shard& s = shard();
  std::lock_guard lock(s.mu);
  next_ = s.head;
  if (s.head != nullptr) s.head->prev_ = this;
  s.head = this;
  if (bytes != 0)
    s.set_bytes.fetch_add(static_cast<std::int64_t>(bytes), std::memory_order_relaxed);
  s.created.fetch_add(1, std::memory_order_release);
}

Tracked::Tracked(Kind& k, const Tracked& owner, std::string label, std::uint64_t bytes)
    : Tracked(k, std::move(label), bytes) {
  setOwner(owner);
}

Kind::Shard& Tracked::shard() const { return kind_->shards_[id_.value % Kind::kShards]; }

void Tracked::release() {
  Kind::Shard& s = shard();
  bool had_callback = false;
  {
    // Everything under the shard lock: release() may race setBytes() or a
    // second release() from another thread, and must count exactly once.
    std::lock_guard lock(s.mu);
    if (released_.load(std::memory_order_relaxed)) return;
    released_.store(true, std::memory_order_relaxed);
    if (prev_ != nullptr) {
      prev_->next_ = next_;
    } else {
      s.head = next_;
    }
    if (next_ != nullptr) next_->prev_ = prev_;
    prev_ = next_ = nullptr;
    had_callback = static_cast<bool>(bytes_fn_);
    bytes_fn_ = nullptr;
    const std::uint64_t b = bytes_.exchange(0, std::memory_order_relaxed);
    if (b != 0) s.set_bytes.fetch_sub(static_cast<std::int64_t>(b), std::memory_order_relaxed);
    s.destroyed.fetch_add(1, std::memory_order_release);
  }
  if (had_callback) kind_->callback_objects_.fetch_sub(1);
}

void Tracked::setBytes(std::uint64_t bytes) {
  Kind::Shard& s = shard();
  std::lock_guard lock(s.mu);
  if (released_.load(std::memory_order_relaxed)) return;
  const std::uint64_t old = bytes_.exchange(bytes, std::memory_order_relaxed);
  const auto delta = static_cast<std::int64_t>(bytes) - static_cast<std::int64_t>(old);
  if (delta != 0) s.set_bytes.fetch_add(delta, std::memory_order_relaxed);
}

void Tracked::setBytesCallback(std::function<std::uint64_t()> fn) {
  const bool has = static_cast<bool>(fn);
  bool had = false;
  {
    Kind::Shard& s = shard();
    std::lock_guard lock(s.mu);
    if (released_.load(std::memory_order_relaxed)) return;
    had = static_cast<bool>(bytes_fn_);
    bytes_fn_ = std::move(fn);
    // Inside the lock, so release() cannot slip between the swap and the count.
    if (has && !had) kind_->callback_objects_.fetch_add(1);
    if (!has && had) kind_->callback_objects_.fetch_sub(1);
  }
}

void Tracked::setLabel(std::string label) {
  Kind::Shard& s = shard();
  std::lock_guard lock(s.mu);
  label_ = std::move(label);
}

ObjectRecord Tracked::record() const {
  ObjectRecord r;
  r.id = id_;
  r.birth_unix_ns = birth_unix_ns_;
  r.label = label_;
  r.bytes = bytes_fn_ ? bytes_fn_() : bytes_.load(std::memory_order_relaxed);
  r.fd = fd_.load(std::memory_order_relaxed);
  r.owner = ObjectId{owner_.load(std::memory_order_relaxed)};
  return r;
}

}  // namespace leakscope::diag
