// Text read from an input, made safe to show: on a terminal (printable) and
// as JSON (dumpJson). Shared by the readers (whose error messages quote the
// input) and the CLI's views. Pure functions; thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace leakscope::analysis {

// `text` made safe to write to a terminal: C0 and C1 control characters,
// DEL, Unicode bidi overrides and bytes that are not UTF-8 are shown escaped
// ("\x1b", "\u202e"), so a name read from an input can neither move the
// cursor, retitle or clear the terminal, nor hide or reorder text. With
// `keep_newlines` '\n' passes (whole tables); without it the result is one
// line (error messages).
std::string printable(std::string_view text, bool keep_newlines = false);

// `text` with each byte that is not part of valid UTF-8 replaced by U+FFFD:
// for formats whose strings must be UTF-8 (profile.proto), where a library
// path or symbol from a profile may not be.
std::string validUtf8(std::string_view text);

// The JSON text of `j` (indent as nlohmann's dump). Text that is not UTF-8
// (a file name, a library path from a profile) is replaced by U+FFFD rather
// than throwing.
std::string dumpJson(const nlohmann::json& j, int indent = -1);

}  // namespace leakscope::analysis
