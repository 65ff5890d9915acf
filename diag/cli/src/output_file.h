// Writing the CLI's output files (the HTML report).
//
// The content goes to a new temp file beside the target, created mode 0600
// with O_CREAT | O_EXCL | O_NOFOLLOW under an unpredictable name, is fsynced
// and renamed over the target (renameat, relative to the target's directory
// opened once). So a reader never sees half a file, and a link planted in a
// shared directory such as /tmp — at the temp name or any other — is never
// written through; a link at the target itself is replaced, not followed.
// The file ends up 0600: a report names peers and code paths, like the
// snapshots it comes from.
#pragma once

#include <string>
#include <string_view>

#include "leakscope/core/result.h"

namespace leakscope::analysis {

// Replaces `path` with `content`. Errors name the path and the reason.
core::Status writeFileReplacing(const std::string& path, std::string_view content);

}  // namespace leakscope::analysis
