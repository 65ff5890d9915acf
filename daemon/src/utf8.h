// Cutting text to a column's size without cutting a character in half.
//
// The result tables are utf8mb4 with strict SQL mode: a value that ends in
// part of a multibyte sequence is refused ("Incorrect string value"), and
// the whole page of results with it. Push servers' reason texts are
// normally ASCII, but nothing guarantees it.
#pragma once

#include <cstddef>
#include <string_view>

namespace pushdaemon {

// The longest prefix of `s` of at most `max_bytes` bytes that does not end
// inside a UTF-8 sequence: a cut that would split one drops the whole
// sequence. Bytes before the cut are kept as they are (invalid input stays
// invalid; only the cut itself is made safe).
inline std::string_view utf8Prefix(std::string_view s, std::size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  std::size_t cut = max_bytes;
  // Back up over continuation bytes (10xxxxxx) to the start of the
  // sequence that the cut falls into, at most 3 of them.
  std::size_t back = 0;
  while (cut > 0 && back < 3 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) {
    --cut;
    ++back;
  }
  return s.substr(0, cut);
}

}  // namespace pushdaemon
