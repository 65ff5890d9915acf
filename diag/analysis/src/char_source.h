// A buffered byte source over a file or over memory, with an input iterator
// nlohmann::json's SAX parser can read from. It counts bytes and lines so
// that errors can name where they happened, and reports progress.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <string_view>
#include <vector>

namespace leakscope::analysis {

class CharSource {
 public:
  // Reads `fd` (not owned) in 1 MiB chunks.
  CharSource(int fd, std::uint64_t total,
             std::function<void(std::uint64_t, std::uint64_t)> progress)
      : fd_(fd), total_(total), progress_(std::move(progress)), buffer_(std::size_t{1} << 20) {}
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
  int readError() const { return read_errno_; }
  std::uint64_t total() const { return total_; }

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
    if (fd_ < 0 || eof_) return false;
    consumed_ += length_;
    pos_ = 0;
    length_ = 0;
    for (;;) {
      const ssize_t n = ::read(fd_, buffer_.data(), buffer_.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (n < 0) read_errno_ = errno;
        eof_ = true;
        return false;
      }
      data_ = buffer_.data();
      length_ = static_cast<std::size_t>(n);
      if (progress_) progress_(consumed_ + length_, total_);
      return true;
    }
  }

  int fd_ = -1;
  std::uint64_t total_ = 0;
  std::function<void(std::uint64_t, std::uint64_t)> progress_;
  std::vector<char> buffer_;
  const char* data_ = nullptr;
  std::size_t length_ = 0;
  std::size_t pos_ = 0;
  std::uint64_t consumed_ = 0;
  std::uint64_t lines_ = 0;
  bool eof_ = false;
  int read_errno_ = 0;
};

}  // namespace leakscope::analysis
