// `leakscope run` starts its watcher (leakscope/diag/watcher.h) beside the
// program before the exec: a process named `leakscope-watch` that is nobody's
// child in the program's tree (a program's wait() must never see it) and in
// a session of its own (a Ctrl-C to the program's terminal does not reach
// it). docs/run-and-capture.md.
#pragma once

#include "leakscope/core/result.h"
#include "leakscope/core/watch_protocol.h"
#include "leakscope/diag/watcher.h"

namespace leakscope::cli {

// Starts the watcher and returns its address for LEAKSCOPE_WATCHER: its pid
// and the write end of its registration pipe, left open across exec for
// the program (the only fd this leaves behind). The error, when it cannot
// start, is one line naming the call that failed.
core::Result<core::WatcherAddress> startWatcher(const diag::WatcherOptions& options);

}  // namespace leakscope::cli
