#include "process_commands.h"

namespace leakscope::cli {

// One entry per command; each lives in its own file (run_command.cc,
// capture_command.cc).
const std::vector<ProcessCommand> kProcessCommands = {
    {"run", "start a program with the preload agent (no rebuild): snapshots on a signal", kRunHelp,
     runCommand},
};

const ProcessCommand* findProcessCommand(const std::string& name) {
  for (const ProcessCommand& c : kProcessCommands) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

}  // namespace leakscope::cli
