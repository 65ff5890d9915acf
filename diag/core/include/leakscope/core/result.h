// Result<T>: the return type of every leakscope I/O call.
//
// A value or an Error (one code from Errc plus a message written for a person:
// it names the file, address or setting involved). Exceptions are kept for
// setup mistakes caught once in main; everything that can fail at run time
// returns a Result. Not thread-safe; a plain value type.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace leakscope::core {

enum class Errc {
  kIo,               // a read or write failed (errno text in the message)
  kPermission,       // EACCES / EPERM
  kNoSpace,          // ENOSPC, or the configured snapshot byte budget is full
  kParse,            // input is not in the expected format
  kInvalidArgument,  // a setting or argument is out of range or malformed
  kUnavailable,      // the feature is not available in this build or process
};

struct Error {
  Errc code;
  std::string message;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result of an operation that yields nothing but success.
struct Ok {};
using Status = Result<Ok>;

}  // namespace leakscope::core
