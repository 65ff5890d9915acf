// A ByteReader that reads ahead on a thread of its own: while the caller
// parses one chunk, the next is read (or inflated) from the source, so
// reading a big V8 snapshot costs the parse and not the parse plus the
// copy from the page cache (or plus zlib, for .gz inputs). Two chunks are in
// flight at most; the source is only touched by the thread. Not for use
// from several threads at once (as every ByteReader).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "byte_reader.h"

namespace leakscope::analysis {

class PrefetchReader final : public ByteReader {
 public:
  // `source` is not owned and must outlive the reader.
  PrefetchReader(ByteReader& source, std::size_t chunk);
  ~PrefetchReader() override;
  PrefetchReader(const PrefetchReader&) = delete;
  PrefetchReader& operator=(const PrefetchReader&) = delete;

  core::Result<std::size_t> read(char* buf, std::size_t n) override;
  std::uint64_t consumed() const override;

 private:
  struct Chunk {
    std::vector<char> bytes;
    std::size_t size = 0;
    std::size_t taken = 0;       // handed to the caller so far
    bool last = false;           // the source ended (or failed) after it
    std::string error;           // the source's error, with `last`
    std::uint64_t consumed = 0;  // the source's consumed() after it
  };
  void fill();

  ByteReader& source_;
  std::size_t chunk_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Chunk> ready_;  // in order; at most 2
  std::vector<Chunk> spare_;
  bool stop_ = false;
  bool ended_ = false;
  std::uint64_t consumed_ = 0;
  std::thread thread_;  // last: started when the rest is ready
};

}  // namespace leakscope::analysis
