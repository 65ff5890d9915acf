#include "leakscope/core/watch_protocol.h"

#include <charconv>

namespace leakscope::core {
namespace {

template <class Int>
std::optional<Int> positive(std::string_view text) {
  Int v{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v <= 0) return std::nullopt;
  return v;
}

}  // namespace

Result<WatcherAddress> parseWatcherAddress(std::string_view text) {
  const std::size_t colon = text.find(':');
  if (colon != std::string_view::npos) {
    auto pid = positive<pid_t>(text.substr(0, colon));
    auto fd = positive<int>(text.substr(colon + 1));
    if (pid && fd) return WatcherAddress{*pid, *fd};
  }
  return Error{Errc::kInvalidArgument, std::string(kEnvWatcher) + "='" + std::string(text) +
                                           "': expected PID:FD (set by leakscope run)"};
}

std::string formatWatcherAddress(const WatcherAddress& a) {
  return std::to_string(a.pid) + ":" + std::to_string(a.fd);
}

int encodeWatchRequest(const WatchRequest& r) {
  return static_cast<int>(r.kind) | (r.permille << 8);
}

std::optional<WatchRequest> decodeWatchRequest(int value) {
  const int kind = value & 0xff;
  const int permille = value >> 8;
  if (kind == static_cast<int>(WatchKind::kInterval) && permille == 0) {
    return WatchRequest{WatchKind::kInterval, 0};
  }
  if (kind == static_cast<int>(WatchKind::kMemoryPressure) && permille > 0 && permille <= 1000) {
    return WatchRequest{WatchKind::kMemoryPressure, permille};
  }
  return std::nullopt;
}

}  // namespace leakscope::core
