// What an input is, from its first bytes: a leakscope snapshot, a gperftools
// heap profile, a V8 heap snapshot, or — for the error message — another format people are
// likely to hand over by mistake (a V8 CPU profile, a pprof protobuf, a
// file compressed with something other than gzip ...). Never by file name.
#pragma once

#include <string>
#include <string_view>

#include "leakscope/core/result.h"

namespace leakscope::analysis {

enum class InputFormat { kSnapshot, kProfile, kV8 };

// The first bytes of an input's content (already inflated for gzip).
// Leading blanks and a UTF-8 byte order mark are skipped. The error is
// "PATH: byte N: ..." naming the format when it is a known one.
core::Result<InputFormat> detectFormat(std::string_view head, const std::string& path);

// `text` without a leading UTF-8 byte order mark.
std::string_view withoutBom(std::string_view text);

}  // namespace leakscope::analysis
