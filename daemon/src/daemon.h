// The whole daemon, for main() and for tests that run it in-process:
// configuration in, signals handled, exit code out.
#pragma once

#include <string>
#include <vector>

namespace pushdaemon {

// pushdaemon's command line (see kUsage in daemon.cc). Returns the exit
// code: 0 after a clean drain, 1 on a fatal run-time error, 2 on bad
// configuration or usage.
int runDaemon(int argc, char** argv);

}  // namespace pushdaemon
