#include "leakscope/core/signal_names.h"

#include <signal.h>
#include <string.h>

#include <cctype>
#include <charconv>

namespace leakscope::core {

std::optional<int> signalNumber(std::string_view name) {
  int number = 0;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), number);
  if (!name.empty() && ec == std::errc() && end == name.data() + name.size()) {
    if (number > 0 && number < NSIG) return number;
    return std::nullopt;
  }
  std::string upper;
  for (char c : name)
    upper.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  if (upper.starts_with("SIG")) upper.erase(0, 3);
  if (upper.empty()) return std::nullopt;
  for (int sig = 1; sig < NSIG; ++sig) {
    // glibc's abbreviation without "SIG" ("USR2"); null for unnamed numbers.
    if (const char* abbrev = sigabbrev_np(sig); abbrev != nullptr && upper == abbrev) return sig;
  }
  return std::nullopt;
}

std::string signalName(int sig) {
  if (const char* abbrev = sigabbrev_np(sig); abbrev != nullptr) return std::string("SIG") + abbrev;
  return "signal " + std::to_string(sig);
}

}  // namespace leakscope::core
