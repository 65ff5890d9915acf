#include "json_writer.h"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>

namespace leakscope::diag {
namespace {
constexpr std::size_t kBufferSize = 64 * 1024;

// Length of the valid UTF-8 sequence starting at s[i], or 0 if invalid.
std::size_t utf8Length(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t n = 0;
  std::uint32_t cp = 0;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  // Overlong forms, surrogates and out-of-range code points are invalid.
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
      cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return n;
}
}  // namespace

JsonWriter::JsonWriter(int fd, std::string* out) : fd_(fd), out_(out) {
  buf_.reserve(kBufferSize + 256);
}

void JsonWriter::raw(std::string_view s) {
  if (errno_ != 0) return;
  buf_.append(s);
  if (buf_.size() >= kBufferSize) flush();
}

bool JsonWriter::flush() {
  if (errno_ != 0) return false;
  if (fd_ < 0) {
    if (out_ != nullptr) out_->append(buf_);
    written_ += buf_.size();
    buf_.clear();
    return true;
  }
  std::size_t off = 0;
  while (off < buf_.size()) {
    const ssize_t n = ::write(fd_, buf_.data() + off, buf_.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      errno_ = errno;
      return false;
    }
    off += static_cast<std::size_t>(n);
  }
  written_ += buf_.size();
  buf_.clear();
  return true;
}

void JsonWriter::separator() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!has_element_.empty()) {
    if (has_element_.back()) raw(",");
    has_element_.back() = true;
    // One array element per line keeps snapshots greppable and diffable.
    if (has_element_.size() <= 3) raw("\n");
  }
}

JsonWriter& JsonWriter::beginObject() {
  separator();
  raw("{");
  has_element_.push_back(false);
  return *this;
}
JsonWriter& JsonWriter::endObject() {
  has_element_.pop_back();
  raw("}");
  return *this;
}
JsonWriter& JsonWriter::beginArray() {
  separator();
  raw("[");
  has_element_.push_back(false);
  return *this;
}
JsonWriter& JsonWriter::endArray() {
  has_element_.pop_back();
  raw("]");
  return *this;
}
JsonWriter& JsonWriter::key(std::string_view k) {
  separator();
  escaped(k);
  raw(":");
  after_key_ = true;
  return *this;
}
JsonWriter& JsonWriter::value(std::string_view s) {
  separator();
  escaped(s);
  return *this;
}
JsonWriter& JsonWriter::value(std::int64_t v) {
  separator();
  char b[24];
  auto r = std::to_chars(b, b + sizeof b, v);
  raw(std::string_view(b, static_cast<std::size_t>(r.ptr - b)));
  return *this;
}
JsonWriter& JsonWriter::value(std::uint64_t v) {
  separator();
  char b[24];
  auto r = std::to_chars(b, b + sizeof b, v);
  raw(std::string_view(b, static_cast<std::size_t>(r.ptr - b)));
  return *this;
}
JsonWriter& JsonWriter::value(double v) {
  separator();
  if (!std::isfinite(v)) {
    raw("null");  // JSON has no NaN or infinity
    return *this;
  }
  char b[32];
  auto r = std::to_chars(b, b + sizeof b, v);
  raw(std::string_view(b, static_cast<std::size_t>(r.ptr - b)));
  return *this;
}
JsonWriter& JsonWriter::value(bool v) {
  separator();
  raw(v ? "true" : "false");
  return *this;
}
JsonWriter& JsonWriter::null() {
  separator();
  raw("null");
  return *this;
}

void JsonWriter::escaped(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
      ++i;
    } else if (c < 0x20) {
      switch (c) {
        case '\n':
          out += "\\n";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\r':
          out += "\\r";
          break;
        default:
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
      }
      ++i;
    } else if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
    } else if (const std::size_t n = utf8Length(s, i); n > 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\\ufffd";
      ++i;
    }
  }
  out.push_back('"');
  raw(out);
}

}  // namespace leakscope::diag
