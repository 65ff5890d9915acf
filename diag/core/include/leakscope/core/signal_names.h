// Signal names as a person types them on a command line, and as messages
// spell them. One rule for every front end that takes a signal option.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace leakscope::core {

// "USR2", "SIGUSR2", "usr2", "12", "RTMIN+3", "SIGRTMAX-1" -> the number;
// nullopt for anything that is not a signal of this system (including 0,
// which only tests for a process).
std::optional<int> signalNumber(std::string_view name);
// SIGUSR2 -> "SIGUSR2", SIGRTMIN+3 -> "SIGRTMIN+3".
std::string signalName(int sig);

}  // namespace leakscope::core
