// The leakscope snapshot format's name and version: the one place both sides
// of the file take them from — the runtime's writer stamps them into every
// snapshot, the analysis library's reader checks them (spec:
// docs/snapshot-format.md). Bump the version when a reader of the old version
// would misread a new file; readers refuse newer versions naming both.
#pragma once

#include <string_view>

namespace leakscope::core {

inline constexpr std::string_view kSnapshotFormat = "leakscope-snapshot";
inline constexpr int kSnapshotVersion = 2;
// Version 2 added each tracked object's `owner`. Readers still read version 1
// (no owners).

}  // namespace leakscope::core
