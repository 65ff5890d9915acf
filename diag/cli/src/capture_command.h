// `leakscope capture PID`: a snapshot of any process from the outside
// (leakscope::diag::Capture, in leakscope::collect), optionally after sending
// it its own dump signal and waiting for the heap snapshot that signal
// writes (the wait protocol: docs/run-and-capture.md).
#pragma once

#include <string>
#include <vector>

namespace leakscope::cli {

extern const char* const kCaptureSummary;
extern const char* const kCaptureHelp;
// args: everything after "capture". 0 written, 2 usage or process error
// (one line on stderr).
int captureMain(const std::vector<std::string>& args);

}  // namespace leakscope::cli
