// Where the readers' bytes come from: a file, read from its start with
// pread() (so that two readers of one descriptor never move each other's
// offset), or a gzip file inflated through zlib on the fly. A snapshot is
// streamed either way; only the reader's buffers are held.
//
// A gzip file can inflate to a thousand times its size. GzipReader stops
// at a limit (inflateLimit: a multiple of the file's size, with a floor) so
// that a small hostile file cannot cost more time or memory than a plain
// file of proportionate size would. Not thread-safe.
#pragma once

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "leakscope/core/result.h"

namespace leakscope::analysis {

class ByteReader {
 public:
  virtual ~ByteReader() = default;
  // Up to `n` bytes into `buf`; 0 at the end. The error says why, one line
  // without the file's name ("read error: ...", "gzip data is corrupt ...").
  virtual core::Result<std::size_t> read(char* buf, std::size_t n) = 0;
  // Bytes of the file consumed so far (what progress is measured in).
  virtual std::uint64_t consumed() const = 0;
};

// `fd` is not owned and must outlive the reader.
class FileReader final : public ByteReader {
 public:
  explicit FileReader(int fd) : fd_(fd) {}
  core::Result<std::size_t> read(char* buf, std::size_t n) override;
  std::uint64_t consumed() const override { return offset_; }

 private:
  int fd_;
  std::uint64_t offset_ = 0;
};

// Bytes in memory (not owned): the fuzzers' and tests' inputs.
class MemoryReader final : public ByteReader {
 public:
  explicit MemoryReader(std::string_view bytes) : bytes_(bytes) {}
  core::Result<std::size_t> read(char* buf, std::size_t n) override;
  std::uint64_t consumed() const override { return offset_; }

 private:
  std::string_view bytes_;
  std::size_t offset_ = 0;
};

// How far a gzip file of `file_bytes` may inflate: 100 times its size, and
// at least 16 MiB. Real snapshots compress about 7:1; only crafted data
// approaches deflate's 1032:1.
std::uint64_t inflateLimit(std::uint64_t file_bytes);

// Inflates the gzip data `source` (not owned) reads; several concatenated
// members read as one stream, as gunzip reads them.
class GzipReader final : public ByteReader {
 public:
  GzipReader(ByteReader& source, std::uint64_t max_output);
  ~GzipReader() override;
  GzipReader(const GzipReader&) = delete;
  GzipReader& operator=(const GzipReader&) = delete;

  core::Result<std::size_t> read(char* buf, std::size_t n) override;
  std::uint64_t consumed() const override { return source_.consumed(); }

  static bool isGzip(std::string_view head) {
    return head.size() >= 2 && head[0] == '\x1f' && head[1] == '\x8b';
  }

 private:
  // One inflate() step into the caller's buffer; false at the end.
  core::Result<bool> step();

  ByteReader& source_;
  z_stream z_{};
  bool ready_ = false;        // inflateInit2 succeeded: inflateEnd is owed
  bool in_member_ = false;    // inside a gzip member (its end not yet seen)
  bool input_ended_ = false;  // the file has no more bytes
  std::vector<unsigned char> in_;
  std::uint64_t max_output_;
  std::uint64_t produced_ = 0;
};

}  // namespace leakscope::analysis
