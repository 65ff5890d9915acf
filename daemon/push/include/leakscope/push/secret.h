// Buffers for key text (PEM keys, service-account JSON): their memory is
// zeroed with OPENSSL_cleanse before it goes back to the heap, so a freed
// buffer does not keep a private key for a later core dump, a heap snapshot
// or a use-after-free to find. Keys themselves live in EVP_PKEY objects
// (SigningKey); only the text they were parsed from passes through these.
//
// `SecretString` covers every heap buffer the string ever had (growth
// included). Its small-string buffer (up to 15 bytes, inside the object) is
// not covered: key text is always longer, and a fragment that short is no
// key. Plain value types, as thread-safe as std::string.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "leakscope/diag/result.h"

namespace leakscope::push {

// OPENSSL_cleanse: a memset the compiler may not drop.
void secureWipe(void* p, std::size_t n);

template <class T>
struct CleansingAllocator {
  using value_type = T;
  CleansingAllocator() = default;
  template <class U>
  CleansingAllocator(const CleansingAllocator<U>&) noexcept {}  // NOLINT: rebinding
  T* allocate(std::size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, std::size_t n) {
    secureWipe(p, n * sizeof(T));
    std::allocator<T>().deallocate(p, n);
  }
  template <class U>
  bool operator==(const CleansingAllocator<U>&) const {
    return true;
  }
};

using SecretString = std::basic_string<char, std::char_traits<char>, CleansingAllocator<char>>;

// Everything `fd` still has to give (read(2) straight into a SecretString:
// no stdio or iostream buffer keeps a copy). At most 1 MiB: no key file is
// larger. `what` names the file in errors. The fd stays open.
diag::Result<SecretString> readSecret(int fd, std::string_view what);

}  // namespace leakscope::push
