#include "byte_reader.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "leakscope/analysis/units.h"

namespace leakscope::analysis {

using core::Errc;
using core::Error;
using core::Result;

namespace {

constexpr std::uint64_t kInflateRatio = 100;
constexpr std::uint64_t kInflateFloor = std::uint64_t{16} << 20;
constexpr std::size_t kInputChunk = std::size_t{64} << 10;

}  // namespace

Result<std::size_t> FileReader::read(char* buf, std::size_t n) {
  for (;;) {
    const ssize_t got = ::pread(fd_, buf, n, static_cast<off_t>(offset_));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return Error{Errc::kIo, std::string("read error: ") + std::strerror(errno)};
    offset_ += static_cast<std::uint64_t>(got);
    return static_cast<std::size_t>(got);
  }
}

std::uint64_t inflateLimit(std::uint64_t file_bytes) {
  const std::uint64_t ratio =
      file_bytes > UINT64_MAX / kInflateRatio ? UINT64_MAX : file_bytes * kInflateRatio;
  return std::max(ratio, kInflateFloor);
}

Result<std::size_t> MemoryReader::read(char* buf, std::size_t n) {
  const std::size_t k = std::min(n, bytes_.size() - offset_);
  std::memcpy(buf, bytes_.data() + offset_, k);
  offset_ += k;
  return k;
}

GzipReader::GzipReader(ByteReader& source, std::uint64_t max_output)
    : source_(source), in_(kInputChunk), max_output_(max_output) {
  // 16 + MAX_WBITS: gzip framing only (a zlib or raw stream is not a .gz).
  ready_ = ::inflateInit2(&z_, 16 + MAX_WBITS) == Z_OK;
}

GzipReader::~GzipReader() {
  if (ready_) ::inflateEnd(&z_);
}

Result<bool> GzipReader::step() {
  if (z_.avail_in == 0 && !input_ended_) {
    auto got = source_.read(reinterpret_cast<char*>(in_.data()), in_.size());
    if (!got) return got.error();
    input_ended_ = *got == 0;
    z_.next_in = in_.data();
    z_.avail_in = static_cast<uInt>(*got);
  }
  if (z_.avail_in == 0) {
    if (in_member_) return Error{Errc::kParse, "gzip data ends early (truncated?)"};
    return false;
  }
  in_member_ = true;
  const int rc = ::inflate(&z_, Z_NO_FLUSH);
  if (rc == Z_STREAM_END) {
    // Another member may follow (gzip a b > ab.gz); gunzip reads them all.
    in_member_ = false;
    if (::inflateReset(&z_) != Z_OK) return Error{Errc::kParse, "gzip: cannot restart zlib"};
    return true;
  }
  if (rc == Z_OK || (rc == Z_BUF_ERROR && z_.avail_in == 0)) return true;
  if (rc == Z_MEM_ERROR) return Error{Errc::kIo, "out of memory inflating gzip data"};
  return Error{Errc::kParse, std::string("gzip data is corrupt (") +
                                 (z_.msg != nullptr ? z_.msg : "zlib error") + ")"};
}

Result<std::size_t> GzipReader::read(char* buf, std::size_t n) {
  if (!ready_) return Error{Errc::kIo, "gzip: cannot initialise zlib"};
  n = std::min<std::size_t>(n, UINT_MAX);
  z_.next_out = reinterpret_cast<unsigned char*>(buf);
  z_.avail_out = static_cast<uInt>(n);
  // Until something was produced or the stream ended.
  while (z_.avail_out == n) {
    auto more = step();
    if (!more) return more.error();
    if (!*more) break;
  }
  const std::size_t out = n - z_.avail_out;
  produced_ += out;
  if (produced_ > max_output_) {
    return Error{Errc::kInvalidArgument,
                 "gzip data inflates past " + formatBytes(static_cast<double>(max_output_)) +
                     " (100 times the file, at least 16 MiB; snapshots compress about 7:1): a "
                     "gzip bomb? If it is a real input, gunzip it and name the file"};
  }
  return out;
}

}  // namespace leakscope::analysis
