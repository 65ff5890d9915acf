#include "json_scanner.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "leakscope/analysis/text.h"

namespace leakscope::analysis {

using core::Errc;
using core::Error;

namespace {

bool isWs(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// A byte that ends a run of plain string content: the quote, the backslash,
// and control characters (JSON forbids them raw; the sentinel is one).
constexpr bool isPlainStringByte(unsigned char c) { return c >= 0x20 && c != '"' && c != '\\'; }

int hexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Four hex digits at `s` (stops at the first non-hex byte, so it never reads
// past the sentinel); -1 if they are not.
long hex4(const char* s) {
  long v = 0;
  for (int i = 0; i < 4; ++i) {
    const int d = hexDigit(s[i]);
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

void appendUtf8(std::string& out, unsigned long cp) {
  auto byte = [&out](unsigned long b) { out.push_back(static_cast<char>(b)); };
  if (cp < 0x80) {
    byte(cp);
  } else if (cp < 0x800) {
    byte(0xC0 | (cp >> 6));
    byte(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    byte(0xE0 | (cp >> 12));
    byte(0x80 | ((cp >> 6) & 0x3F));
    byte(0x80 | (cp & 0x3F));
  } else {
    byte(0xF0 | (cp >> 18));
    byte(0x80 | ((cp >> 12) & 0x3F));
    byte(0x80 | ((cp >> 6) & 0x3F));
    byte(0x80 | (cp & 0x3F));
  }
}

constexpr unsigned long kReplacement = 0xFFFD;

}  // namespace

JsonScanner::JsonScanner(ByteReader& reader, std::uint64_t total, Progress progress)
    : reader_(reader),
      total_(total),
      progress_(std::move(progress)),
      capacity_(total > 0
                    ? static_cast<std::size_t>(std::clamp<std::uint64_t>(total, kMinChunk, kChunk))
                    : kChunk),
      // Not zeroed: only what was read is looked at, up to the sentinel.
      buf_(std::make_unique_for_overwrite<char[]>(capacity_ + 1)) {
  p_ = buf_.get();
  end_ = buf_.get();
  *end_ = '\0';
}

void JsonScanner::makeRoom(std::size_t want) {
  if (eof_) return;
  char* const buf = buf_.get();
  const auto keep = static_cast<std::size_t>(end_ - p_);
  if (capturing_) {
    // Past the limit the rest is not kept: endCapture reports it.
    if (capture_.size() <= capture_limit_) capture_.append(capture_from_, p_);
    capture_from_ = buf;
  }
  base_ += static_cast<std::uint64_t>(p_ - buf);
  std::memmove(buf, p_, keep);
  p_ = buf;
  end_ = buf + keep;
  while (static_cast<std::size_t>(end_ - p_) < want) {
    auto got = reader_.read(end_, capacity_ - static_cast<std::size_t>(end_ - buf));
    if (!got || *got == 0) {
      if (!got) read_error_ = got.error();
      eof_ = true;
      break;
    }
    end_ += *got;
    if (progress_) progress_(reader_.consumed(), total_);
  }
  *end_ = '\0';
}

void JsonScanner::skipWsSlow() {
  for (;;) {
    while (isWs(*p_)) {
      if (*p_ == '\n') ++lines_;
      ++p_;
    }
    if (p_ != end_ || eof_) return;
    makeRoom(1);
  }
}

std::string JsonScanner::found() const {
  if (p_ == end_) return "the end of the file (truncated?)";
  const auto c = static_cast<unsigned char>(*p_);
  if (c < 0x20 || c >= 0x7f) {
    static constexpr char kHex[] = "0123456789abcdef";
    return std::string("byte 0x") + kHex[c >> 4] + kHex[c & 15];
  }
  return std::string("'") + static_cast<char>(c) + "'";
}

bool JsonScanner::fail(Position at, std::string what) {
  if (!error_at_) {
    error_at_ = at;
    error_what_ = std::move(what);
  }
  return false;
}

bool JsonScanner::failExpected(std::string_view what) {
  return fail(position(), "expected " + std::string(what) + ", found " + found());
}

void JsonScanner::addContext(std::string_view context) { error_what_.insert(0, context); }

Error JsonScanner::error() const {
  if (read_error_) return *read_error_;
  const Position at = error_at_.value_or(position());
  return Error{Errc::kParse, "byte " + std::to_string(at.offset) + " (line " +
                                 std::to_string(at.line) + "): " + error_what_};
}

bool JsonScanner::expect(char c, std::string_view what) {
  if (peek() == c && p_ != end_) {
    ++p_;
    return true;
  }
  return failExpected(what);
}

bool JsonScanner::failSeparator(char close) {
  return failExpected(std::string("',' or '") + close + "'");
}

bool JsonScanner::failUint() {
  const char c = *p_;
  if (p_ == end_) return failExpected("a number");
  if (c == '-') return fail(position(), "expected a number of at least 0, found a negative one");
  if (isDigit(c)) {
    if (c == '0' && isDigit(p_[1])) return fail(position(), "a number with a leading zero");
    return fail(position(), "a number of more than 16 digits (out of range)");
  }
  return failExpected("a number");
}

bool JsonScanner::failUint(std::uint64_t x, std::uint64_t max) {
  const char* s = p_;
  while (isDigit(*s)) ++s;
  if (*s == '.' || *s == 'e' || *s == 'E') {
    return fail(position(), "expected an integer, found a fraction or exponent");
  }
  return fail(position(),
              std::to_string(x) + " is out of range (at most " + std::to_string(max) + ")");
}

bool JsonScanner::escape(std::string& out) {
  if (static_cast<std::size_t>(end_ - p_) < 12) makeRoom(12);
  const Position at = position();
  const char e = p_[1];
  static constexpr std::string_view kSimple = "\"\\/bfnrt";
  static constexpr std::string_view kDecoded = "\"\\/\b\f\n\r\t";
  if (const auto k = kSimple.find(e); k != std::string_view::npos && p_ + 1 != end_) {
    out.push_back(kDecoded[k]);
    p_ += 2;
    return true;
  }
  if (p_ + 1 == end_) return fail(at, "the file ends inside a string (truncated?)");
  if (e != 'u') {
    return fail(at, "invalid escape \\" + printable(std::string_view(p_ + 1, 1)) + " in a string");
  }
  const long cp = hex4(p_ + 2);
  if (cp < 0 && end_ - p_ < 6) return fail(at, "the file ends inside a string (truncated?)");
  if (cp < 0) return fail(at, "invalid \\u escape (four hex digits expected) in a string");
  p_ += 6;
  if (cp >= 0xD800 && cp <= 0xDBFF && p_[0] == '\\' && p_[1] == 'u') {
    const long low = hex4(p_ + 2);
    if (low >= 0xDC00 && low <= 0xDFFF) {
      p_ += 6;
      appendUtf8(out, 0x10000 + ((static_cast<unsigned long>(cp) - 0xD800) << 10) +
                          (static_cast<unsigned long>(low) - 0xDC00));
      return true;
    }
  }
  // V8 cuts names at a fixed length and writes UTF-16 units one by one, so a
  // lone surrogate is ordinary; it reads as U+FFFD like DevTools shows it.
  const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
  appendUtf8(out, surrogate ? kReplacement : static_cast<unsigned long>(cp));
  return true;
}

bool JsonScanner::readString(std::string& out) {
  if (peek() != '"' || p_ == end_) return failExpected("a string");
  ++p_;
  for (;;) {
    const char* s = p_;
    while (isPlainStringByte(static_cast<unsigned char>(*s))) ++s;
    out.append(p_, s);
    p_ = s;
    const char c = *p_;
    if (c == '"' && p_ != end_) {
      ++p_;
      return true;
    }
    if (c == '\\') {
      if (!escape(out)) return false;
      continue;
    }
    if (p_ == end_ && !eof_) {
      makeRoom(1);
      continue;
    }
    if (p_ == end_) return fail(position(), "the file ends inside a string (truncated?)");
    return fail(position(),
                "a raw control character (" + found() + ") inside a string; JSON needs it escaped");
  }
}

bool JsonScanner::readKey(std::string& key) {
  key.clear();
  return readString(key) && expect(':', "':'");
}

bool JsonScanner::skipNumber() {
  skipWs();
  if (static_cast<std::size_t>(end_ - p_) < kToken) makeRoom(kToken);
  const char* s = p_;
  auto digits = [&s] {
    const char* from = s;
    while (isDigit(*s)) ++s;
    return s != from;
  };
  auto bad = [&](const char* what) {
    if (s == end_ && s != p_) return fail(position(), "the file ends inside a number (truncated?)");
    return s == p_ ? failExpected("a number") : fail(position(), what);
  };
  if (*s == '-') ++s;
  if (*s == '0') {
    ++s;
  } else if (!digits()) {
    return bad("expected a number, found a lone '-'");
  }
  if (*s == '.' && (++s, !digits())) return bad("a number with no digit after '.'");
  if (*s == 'e' || *s == 'E') {
    ++s;
    if (*s == '+' || *s == '-') ++s;
    if (!digits()) return bad("a number with no digit in its exponent");
  }
  if (s == end_ && !eof_) {
    return fail(position(), "a number longer than " + std::to_string(kToken) + " characters");
  }
  p_ = s;
  return true;
}

bool JsonScanner::skipNumberArray(std::uint64_t& count) {
  count = 0;
  if (!expect('[', "'['")) return false;
  if (peek() == ']' && p_ != end_) {
    ++p_;
    return true;
  }
  for (;;) {
    if (!skipNumber()) return false;
    ++count;
    const char c = separator(']');
    if (c == '\0') return false;
    if (c == ']') return true;
  }
}

bool JsonScanner::literal(std::string_view word) {
  if (static_cast<std::size_t>(end_ - p_) < word.size()) makeRoom(word.size());
  const std::string_view there(p_, std::min(word.size(), static_cast<std::size_t>(end_ - p_)));
  if (there.size() < word.size() && word.starts_with(there)) {
    return fail(position(), "the file ends inside " + std::string(word) + " (truncated?)");
  }
  if (there != word) return failExpected("a JSON value");
  p_ += word.size();
  return true;
}

bool JsonScanner::skipScalar(Allow allow) {
  const char c = peek();
  if (c == '-' || isDigit(c)) return skipNumber();
  if (allow == Allow::kNumbersAndArrays) return failExpected("a number or '['");
  if (c == '"') {
    scratch_.clear();
    return readString(scratch_);
  }
  if (c == 't') return literal("true");
  if (c == 'f') return literal("false");
  if (c == 'n') return literal("null");
  return failExpected("a JSON value");
}

bool JsonScanner::skipValue(Allow allow, std::size_t max_depth, std::uint64_t& scalars) {
  scalars = 0;
  std::string open;  // the closing bracket of each open container, innermost last
  bool want_value = true;
  for (;;) {
    const char c = peek();
    const bool at_end = p_ == end_;
    if (want_value && !at_end && (c == '[' || (c == '{' && allow == Allow::kAny))) {
      if (open.size() >= max_depth) {
        return fail(position(), "nesting deeper than " + std::to_string(max_depth));
      }
      ++p_;
      open.push_back(c == '[' ? ']' : '}');
      if (peek() == open.back() && p_ != end_) {
        ++p_;
        open.pop_back();
        want_value = false;
      } else if (c == '{' && !readKey(scratch_)) {
        return false;
      }
      continue;
    }
    if (want_value) {
      if (!skipScalar(allow)) return false;
      ++scalars;
      want_value = false;
      continue;
    }
    if (open.empty()) return true;
    const char sep = separator(open.back());
    if (sep == '\0') return false;
    if (sep == ',') {
      if (open.back() == '}' && !readKey(scratch_)) return false;
      want_value = true;
    } else {
      open.pop_back();
    }
  }
}

void JsonScanner::startCapture(std::size_t limit, std::string what) {
  capturing_ = true;
  capture_from_ = p_;
  capture_limit_ = limit;
  capture_what_ = std::move(what);
  capture_.clear();
}

bool JsonScanner::endCapture(std::string& out) {
  capture_.append(capture_from_, p_);
  capturing_ = false;
  if (capture_.size() > capture_limit_) {
    return fail(position(),
                capture_what_ + " is larger than " + std::to_string(capture_limit_) + " bytes");
  }
  out = std::move(capture_);
  capture_.clear();
  return true;
}

}  // namespace leakscope::analysis
