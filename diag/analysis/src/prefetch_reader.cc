#include "prefetch_reader.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace leakscope::analysis {

PrefetchReader::PrefetchReader(ByteReader& source, std::size_t chunk)
    : source_(source), chunk_(chunk), thread_([this] { fill(); }) {}

PrefetchReader::~PrefetchReader() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

// The thread: reads chunks until the source ends, fails, or the reader is
// destroyed, keeping at most two ahead of the caller.
void PrefetchReader::fill() {
  for (;;) {
    Chunk c;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [this] { return stop_ || ready_.size() < 2; });
      if (stop_) return;
      if (!spare_.empty()) {
        c = std::move(spare_.back());
        spare_.pop_back();
      }
    }
    c.bytes.resize(chunk_);
    c.size = 0;
    c.taken = 0;
    auto got = source_.read(c.bytes.data(), c.bytes.size());
    if (got) c.size = *got;
    c.last = !got || *got == 0;
    if (!got) c.error = got.error().message;
    c.consumed = source_.consumed();
    const bool last = c.last;
    {
      std::lock_guard lock(mutex_);
      ready_.push_back(std::move(c));
    }
    changed_.notify_all();
    if (last) return;
  }
}

core::Result<std::size_t> PrefetchReader::read(char* buf, std::size_t n) {
  std::unique_lock lock(mutex_);
  if (ended_) return std::size_t{0};
  changed_.wait(lock, [this] { return !ready_.empty(); });
  Chunk& c = ready_.front();
  if (c.taken == c.size && c.last) {
    ended_ = true;
    consumed_ = c.consumed;
    if (!c.error.empty()) return core::Error{core::Errc::kIo, c.error};
    return std::size_t{0};
  }
  const std::size_t k = std::min(n, c.size - c.taken);
  std::memcpy(buf, c.bytes.data() + c.taken, k);
  c.taken += k;
  consumed_ = c.consumed;
  if (c.taken == c.size && !c.last) {
    spare_.push_back(std::move(c));
    ready_.erase(ready_.begin());
    changed_.notify_all();
  }
  return k;
}

std::uint64_t PrefetchReader::consumed() const {
  std::lock_guard lock(mutex_);
  return consumed_;
}

}  // namespace leakscope::analysis
