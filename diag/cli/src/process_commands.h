// Commands that act on a live process instead of reading inputs:
// `leakscope run` (start a program with the preload agent) and
// `leakscope capture` (snapshot a process from the outside). Each parses its
// own command line with CLI11 — `run` must stop at the program's own argv —
// and returns the exit code (0 done, 2 usage or process error; `run` that
// execs never returns).
#pragma once

#include <string>
#include <vector>

namespace leakscope::cli {

struct ProcessCommand {
  const char* name;
  const char* summary;  // one line for `leakscope --help`
  const char* help;     // `leakscope NAME --help`
  // args: everything after the command name.
  int (*main)(const std::vector<std::string>& args);
};

// `leakscope run` (run_command.cc).
extern const char kRunHelp[];
int runCommand(const std::vector<std::string>& args);

// Defined in process_commands.cc: the table main.cc dispatches on.
extern const std::vector<ProcessCommand> kProcessCommands;
const ProcessCommand* findProcessCommand(const std::string& name);

// "leakscope COMMAND: MESSAGE" on stderr as one printable line; returns 2
// (the usage or process error exit status), as main's errors do.
int failLine(const std::string& command, const std::string& message);

}  // namespace leakscope::cli
