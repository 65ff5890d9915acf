// A buffered byte source over a ByteReader (a file, plain or gzip) or over
// memory, with an input iterator nlohmann::json's SAX parser can read from.
// It counts bytes and lines so that errors can name where they happened, and
// reports progress.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "byte_reader.h"

namespace leakscope::analysis {

class CharSource {
 public:
  // Reads `reader` (not owned) in 1 MiB chunks; `total` is the file's size.
  CharSource(ByteReader& reader, std::uint64_t total,
             std::function<void(std::uint64_t, std::uint64_t)> progress)
      : reader_(&reader),
        total_(total),
        progress_(std::move(progress)),
        buffer_(std::size_t{1} << 20) {}
  explicit CharSource(std::string_view text)
      : total_(text.size()), data_(text.data()), length_(text.size()) {}

  bool atEnd() {
    if (pos_ < length_) return false;
    return !refill();
  }
  char peek() const { return data_[pos_]; }
  void advance() {
    if (data_[pos_] == '\n') ++lines_;
    ++pos_;
  }
  // Bytes consumed so far and the 1-based line of the next byte.
  std::uint64_t offset() const { return consumed_ + pos_; }
  std::uint64_t line() const { return lines_ + 1; }
  // Why reading stopped early ("" when it did not).
  const std::string& readError() const { return read_error_; }
  // Whether every byte of the input has been read (a parse error then means
  // the input ends early).
  bool reachedEnd() const { return eof_ && read_error_.empty(); }

  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = char;
    using difference_type = std::ptrdiff_t;
    using pointer = const char*;
    using reference = char;

    Iterator() = default;
    explicit Iterator(CharSource* s) : source_(s) {}
    char operator*() const { return source_->peek(); }
    Iterator& operator++() {
      source_->advance();
      return *this;
    }
    bool operator==(const Iterator& o) const { return done() == o.done(); }
    bool operator!=(const Iterator& o) const { return !(*this == o); }

   private:
    bool done() const { return source_ == nullptr || source_->atEnd(); }
    CharSource* source_ = nullptr;
  };
  Iterator begin() { return Iterator(this); }
  static Iterator end() { return Iterator(); }

 private:
  bool refill() {
    if (reader_ == nullptr || eof_) {
      eof_ = true;
      return false;
    }
    consumed_ += length_;
    pos_ = 0;
    length_ = 0;
    auto n = reader_->read(buffer_.data(), buffer_.size());
    if (!n || *n == 0) {
      if (!n) read_error_ = n.error().message;
      eof_ = true;
      return false;
    }
    data_ = buffer_.data();
    length_ = *n;
    if (progress_) progress_(reader_->consumed(), total_);
    return true;
  }

  ByteReader* reader_ = nullptr;
  std::uint64_t total_ = 0;
  std::function<void(std::uint64_t, std::uint64_t)> progress_;
  std::vector<char> buffer_;
  const char* data_ = nullptr;
  std::size_t length_ = 0;
  std::size_t pos_ = 0;
  std::uint64_t consumed_ = 0;
  std::uint64_t lines_ = 0;
  bool eof_ = false;
  std::string read_error_;
};

}  // namespace leakscope::analysis
