#include "leakscope/core/listen_address.h"

#include <charconv>
#include <string>

namespace leakscope::core {

Status validateListenAddress(std::string_view address) {
  const std::string a(address);
  std::string_view host;
  std::string_view port;
  if (!address.empty() && address.front() == '[') {
    const std::size_t close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() ||
        address[close + 1] != ':') {
      return Error{Errc::kInvalidArgument, "metrics address '" + a + "': expected [IPV6]:PORT"};
    }
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    const std::size_t colon = address.rfind(':');
    if (colon == std::string_view::npos) {
      return Error{Errc::kInvalidArgument, "metrics address '" + a + "': expected HOST:PORT"};
    }
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  if (host.empty()) {
    return Error{Errc::kInvalidArgument,
                 "metrics address '" + a + "': empty host (use 127.0.0.1 to stay local)"};
  }
  unsigned value = 0;
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || p != port.data() + port.size() || value > 65535) {
    return Error{Errc::kInvalidArgument,
                 "metrics address '" + a + "': port '" + std::string(port) + "' is not 0-65535"};
  }
  return Ok{};
}

}  // namespace leakscope::core
