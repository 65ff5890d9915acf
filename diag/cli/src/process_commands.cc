#include "process_commands.h"

#include <iostream>

#include "capture_command.h"
#include "leakscope/analysis/text.h"

namespace leakscope::cli {

// One entry per command; each lives in its own file (run_command.cc,
// capture_command.cc).
const std::vector<ProcessCommand> kProcessCommands = {
    {"run", "start a program with the preload agent (no rebuild): snapshots on a signal", kRunHelp,
     runCommand},
    {"capture", kCaptureSummary, kCaptureHelp, captureMain},
};

const ProcessCommand* findProcessCommand(const std::string& name) {
  for (const ProcessCommand& c : kProcessCommands) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

int failLine(const std::string& command, const std::string& message) {
  std::cerr << "leakscope " << command << ": " << analysis::printable(message) << "\n";
  return 2;
}

}  // namespace leakscope::cli
