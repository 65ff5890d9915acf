// A forward-only JSON scanner over a ByteReader, for inputs too big to hold
// or to parse into a DOM (V8 heap snapshots of several GB). It reads the
// input in 4 MiB chunks into one buffer and works on that buffer directly:
// the hot paths (whitespace, unsigned integers, separators, string runs) are
// inline loops over a char pointer that stop at a NUL sentinel kept after the
// buffer's last byte, so they need no bounds check per byte and no virtual
// call per byte; refilling happens only when a token might cross the end.
//
// It counts bytes and lines (only whitespace can hold a newline in JSON) so
// that every error names where: "byte N (line L): expected ..., found ...".
// Functions return false on an error and keep it (error()); the caller stops
// at the first. A read error from the ByteReader is kept as it is and wins
// over the syntax error it causes. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "byte_reader.h"
#include "leakscope/core/result.h"

namespace leakscope::analysis {

class JsonScanner {
 public:
  using Progress = std::function<void(std::uint64_t, std::uint64_t)>;
  // The buffer: big reads for big files; a small input (a test, a fuzzer's
  // case) gets a buffer of its own size, at least kMinChunk.
  static constexpr std::size_t kChunk = std::size_t{4} << 20;
  static constexpr std::size_t kMinChunk = std::size_t{64} << 10;
  // The longest number token read (more is an error, not a slow path): V8
  // writes at most 16 digits; the slack is for exponents and fractions in
  // skipped sections.
  static constexpr std::size_t kToken = 64;

  struct Position {
    std::uint64_t offset = 0;  // bytes before it
    std::uint64_t line = 1;    // 1-based
  };
  // What may appear inside a skipped value: anything JSON, or only numbers
  // and arrays (V8's trace_tree).
  enum class Allow { kAny, kNumbersAndArrays };

  // `reader` is not owned; `total` (the file's size) and `progress` (may be
  // empty) are for progress reports after each read.
  JsonScanner(ByteReader& reader, std::uint64_t total, Progress progress);

  Position position() const {
    return {base_ + static_cast<std::uint64_t>(p_ - buf_.get()), lines_ + 1};
  }
  // Whitespace skipped, whether the input has ended.
  bool atEnd() {
    skipWs();
    return p_ == end_;
  }
  // Whitespace skipped, the next byte ('\0' at the end; atEnd tells it from a
  // NUL in the input).
  char peek() {
    skipWs();
    return *p_;
  }
  // Consumes the byte peek() returned (not at the end).
  void advance() { ++p_; }

  // Whitespace skipped, consumes `c` or fails "expected <what>, found ...".
  bool expect(char c, std::string_view what);
  // After a value inside an array or object closed by `close`: consumes and
  // returns ',' or `close`; '\0' (an error) otherwise.
  char separator(char close) {
    skipWs();
    const char c = *p_;
    if (c == ',' || (c == close && p_ != end_)) {
      ++p_;
      return c;
    }
    failSeparator(close);
    return '\0';
  }

  // A JSON string, decoded and appended to `out`: escapes resolved, \uXXXX
  // as UTF-8, a lone surrogate as U+FFFD, raw bytes passed through as they
  // are (V8 escapes all non-ASCII). An invalid escape is an error.
  bool readString(std::string& out);
  // `"key" :` — the key decoded into `key` (replaced).
  bool readKey(std::string& key);

  // A non-negative JSON integer of at most 16 digits, no greater than `max`.
  // The error says what was found (a sign, a fraction, a string ...).
  bool readUint(std::uint64_t& v, std::uint64_t max) {
    skipWs();
    if (static_cast<std::size_t>(end_ - p_) < kToken) makeRoom(kToken);
    const char* s = p_;
    unsigned d = static_cast<unsigned char>(*s) - unsigned{'0'};
    if (d > 9 || (d == 0 && isDigit(s[1]))) return failUint();
    std::uint64_t x = d;
    while ((d = static_cast<unsigned char>(*++s) - unsigned{'0'}) <= 9) {
      x = x * 10 + d;
      if (s - p_ >= 16) return failUint();
    }
    if (*s == '.' || *s == 'e' || *s == 'E' || x > max) return failUint(x, max);
    p_ = s;
    v = x;
    return true;
  }
  // Any JSON number (sign, fraction, exponent), not kept.
  bool skipNumber();
  // A JSON array of numbers, not kept; `count` gets how many.
  bool skipNumberArray(std::uint64_t& count);
  // Any JSON value (or, with kNumbersAndArrays, only arrays and numbers),
  // validated and not kept; nesting deeper than `max_depth` is an error.
  // `scalars` gets the number of non-container values inside.
  bool skipValue(Allow allow, std::size_t max_depth, std::uint64_t& scalars);

  // Everything consumed from now until endCapture() is also kept (bytes as
  // they are in the input) unless it exceeds `limit` bytes, which is an error
  // ("<what> is larger than ...") at endCapture; what is past the limit is
  // not kept.
  void startCapture(std::size_t limit, std::string what);
  bool endCapture(std::string& out);

  // Records an error at `at` and returns false. `what` is the text after
  // "byte N (line L): ".
  bool fail(Position at, std::string what);
  // "expected <what>, found <the next byte>" at the current position.
  bool failExpected(std::string_view what);
  // Puts `context` in front of the recorded error's text ("nodes: " ...).
  void addContext(std::string_view context);
  // The first error: the ByteReader's own if reading failed, else a parse
  // error "byte N (line L): ...".
  core::Error error() const;

 private:
  static bool isDigit(char c) { return c >= '0' && c <= '9'; }
  // Inline fast path: most tokens are not preceded by whitespace. The
  // sentinel NUL at end_ is below ' ', so the end also takes the slow path.
  void skipWs() {
    if (static_cast<unsigned char>(*p_) <= ' ') skipWsSlow();
  }
  void skipWsSlow();
  // Moves the unread bytes to the buffer's front and reads until at least
  // `want` are there or the input ends.
  void makeRoom(std::size_t want);
  bool failUint();
  bool failUint(std::uint64_t x, std::uint64_t max);
  bool failSeparator(char close);
  bool escape(std::string& out);
  bool literal(std::string_view word);
  bool skipScalar(Allow allow);
  std::string found() const;

  ByteReader& reader_;
  std::uint64_t total_;
  Progress progress_;
  std::size_t capacity_;         // bytes the buffer holds, without the sentinel
  std::unique_ptr<char[]> buf_;  // capacity_ bytes and the sentinel
  const char* p_;                // next unread byte
  char* end_;                    // one past the last byte read; *end_ == '\0'
  std::uint64_t base_ = 0;       // input offset of buf_[0]
  std::uint64_t lines_ = 0;      // newlines before p_
  bool eof_ = false;
  std::optional<core::Error> read_error_;
  std::optional<Position> error_at_;
  std::string error_what_;

  bool capturing_ = false;
  const char* capture_from_ = nullptr;
  std::size_t capture_limit_ = 0;
  std::string capture_what_;
  std::string capture_;
  std::string scratch_;  // skipped strings
};

}  // namespace leakscope::analysis
