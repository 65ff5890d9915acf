// A streaming JSON writer over a file descriptor: output goes through a 64 KiB
// buffer, so writing a snapshot never holds the whole document in memory.
// Strings are escaped and invalid UTF-8 is replaced by U+FFFD, so the output
// is always valid JSON whatever a label holds. The first write error is kept
// (errno) and every later call is a no-op. Not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace leakscope::diag {

class JsonWriter {
 public:
  // Writes to `fd` (not owned), or into `out` when fd is -1 (tests).
  explicit JsonWriter(int fd, std::string* out = nullptr);
  ~JsonWriter() = default;
  JsonWriter(const JsonWriter&) = delete;
  JsonWriter& operator=(const JsonWriter&) = delete;

  JsonWriter& beginObject();
  JsonWriter& endObject();
  JsonWriter& beginArray();
  JsonWriter& endArray();
  JsonWriter& key(std::string_view k);
  JsonWriter& value(std::string_view s);
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  JsonWriter& value(const std::string& s) { return value(std::string_view(s)); }
  JsonWriter& value(std::int64_t v);
  JsonWriter& value(std::uint64_t v);
  JsonWriter& value(int v) { return value(static_cast<std::int64_t>(v)); }
  JsonWriter& value(double v);
  JsonWriter& value(bool v);
  JsonWriter& null();
  // key + value in one call.
  template <class T>
  JsonWriter& field(std::string_view k, const T& v) {
    key(k);
    return value(v);
  }

  // Flushes the buffer; false (with errno()) if any write failed.
  bool flush();
  int error() const { return errno_; }
  std::uint64_t bytesWritten() const { return written_ + buf_.size(); }

 private:
  void separator();
  void raw(std::string_view s);
  void escaped(std::string_view s);

  int fd_;
  std::string* out_;
  std::string buf_;
  std::uint64_t written_ = 0;
  int errno_ = 0;
  // One entry per open container: true once it holds an element.
  std::vector<bool> has_element_;
  bool after_key_ = false;
};

}  // namespace leakscope::diag
