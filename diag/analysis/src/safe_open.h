// Opening the files the CLI reads so that no path can make it block or read
// a device: inputs named on the command line, --binary, and the mapped files
// a heap profile names (which libdwfl reads for symbols).
//
// Only regular files are opened. The path is stat()ed first, so a FIFO,
// device or socket is refused without ever being opened (opening a FIFO
// blocks; opening some devices has side effects); the open itself is
// O_NONBLOCK, and fstat() on the descriptor checks that it is still the same
// regular file. Files on the kernel's pseudo file systems (/proc, /sys, ...)
// look regular but can block or never end, so they are refused too.
#pragma once

#include <string>

#include "leakscope/core/result.h"
#include "leakscope/core/unique_fd.h"

namespace leakscope::analysis {

using core::UniqueFd;

enum class FollowLinks {
  kYes,  // paths the user named: a symlink to a regular file is fine
  kNo,   // paths named inside an input file: a symlink is refused
};

// A blocking read-only descriptor on the regular file at `path`, or an error
// whose message is "PATH: why" (e.g. "x.lsnap: not a regular file (a FIFO)").
core::Result<UniqueFd> openRegularFile(const std::string& path, FollowLinks follow);

}  // namespace leakscope::analysis
