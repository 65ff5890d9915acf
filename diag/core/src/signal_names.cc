#include "leakscope/core/signal_names.h"

#include <signal.h>
#include <string.h>  // sigabbrev_np (glibc)

#include <algorithm>
#include <cctype>
#include <charconv>

namespace leakscope::core {
namespace {

// The whole of `text` as a number, or nothing.
bool wholeNumber(std::string_view text, int& out) {
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return !text.empty() && ec == std::errc() && p == text.data() + text.size();
}

// "RTMIN+3", "RTMAX-1", "RTMIN" -> the number; 0 when not of that form.
int realtimeSignal(std::string_view n) {
  const bool min = n.starts_with("RTMIN");
  if (!min && !n.starts_with("RTMAX")) return 0;
  const int base = min ? SIGRTMIN : SIGRTMAX;
  n.remove_prefix(5);
  if (n.empty()) return base;
  int offset = 0;
  if ((n[0] != '+' && n[0] != '-') || !wholeNumber(n.substr(1), offset)) return 0;
  const int sig = n[0] == '+' ? base + offset : base - offset;
  return sig >= SIGRTMIN && sig <= SIGRTMAX ? sig : 0;
}

// glibc's abbreviation without "SIG" ("USR2"); 0 for anything else.
int namedSignal(std::string_view n) {
  for (int sig = 1; sig < SIGRTMIN; ++sig) {
    const char* abbrev = sigabbrev_np(sig);
    if (abbrev != nullptr && n == abbrev) return sig;
  }
  return 0;
}

}  // namespace

std::optional<int> signalNumber(std::string_view name) {
  int number = 0;
  if (wholeNumber(name, number)) {
    if (number > 0 && number <= SIGRTMAX) return number;
    return std::nullopt;
  }
  std::string upper(name);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (upper.starts_with("SIG")) upper.erase(0, 3);
  if (upper.empty()) return std::nullopt;
  int sig = realtimeSignal(upper);
  if (sig == 0) sig = namedSignal(upper);
  if (sig == 0) return std::nullopt;
  return sig;
}

std::string signalName(int sig) {
  if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
    return sig == SIGRTMIN ? "SIGRTMIN" : "SIGRTMIN+" + std::to_string(sig - SIGRTMIN);
  }
  const char* abbrev = sigabbrev_np(sig);
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

}  // namespace leakscope::core
