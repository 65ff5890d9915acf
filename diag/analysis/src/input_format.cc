#include "input_format.h"

#include <cstdio>

namespace leakscope::analysis {
namespace {

using core::Errc;
using core::Error;

constexpr std::string_view kBom = "\xef\xbb\xbf";

// A format recognised only to be named in the error: its first bytes and
// what to call it. JSON prefixes are compared without blanks.
struct KnownFormat {
  std::string_view prefix;
  const char* what;
};

constexpr KnownFormat kBinary[] = {
    {"\x1f\x8b", "gzip data compressed twice (gunzip it once)"},
    {"\x28\xb5\x2f\xfd", "zstd-compressed data (leakscope reads gzip; zstd -d it first)"},
    {"\xfd\x37\x7a\x58\x5a\x00", "xz-compressed data (leakscope reads gzip; unxz it first)"},
    {"BZh", "bzip2-compressed data (leakscope reads gzip; bunzip2 it first)"},
    {"PK\x03\x04", "a zip archive (unzip it first)"},
    {"\x7f"
     "ELF",
     "an ELF file (a program, library or core dump)"},
};

constexpr KnownFormat kJson[] = {
    {R"({"head":{"callFrame")", "a V8 sampling heap profile (.heapprofile from Chrome DevTools)"},
    {R"({"nodes":[)", "a V8 CPU profile (.cpuprofile)"},
    {R"({"traceEvents")", "a Chrome trace (trace event JSON)"},
};

constexpr KnownFormat kText[] = {
    {"desc:", "a Valgrind massif profile (massif.out)"},
    {"heap_v2/", "a jemalloc heap profile"},
};

bool isBlank(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// `s` without JSON blanks (the first bytes only, so strings are not an issue
// for the prefixes compared).
std::string compact(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (!isBlank(c)) out += c;
  }
  return out;
}

// pprof's Profile message starts with its sample_type field (1, length
// delimited), holding a ValueType whose first field is 1 (varint): 0a LL 08.
bool looksLikePprof(std::string_view s) {
  return s.size() >= 3 && s[0] == '\x0a' && static_cast<unsigned char>(s[1]) < 0x80 &&
         s[2] == '\x08';
}

const char* knownFormat(std::string_view content, std::string_view text) {
  if (looksLikePprof(content)) {
    return "a pprof profile (protobuf; leakscope reads gperftools' text profiles, as "
           "'pprof -raw' or HeapProfilerDump write them)";
  }
  for (const auto& k : kBinary) {
    if (content.starts_with(k.prefix)) return k.what;
  }
  const std::string json = compact(text);
  for (const auto& k : kJson) {
    if (std::string_view(json).starts_with(k.prefix)) return k.what;
  }
  for (const auto& k : kText) {
    if (text.starts_with(k.prefix)) return k.what;
  }
  return nullptr;
}

// Up to 24 bytes from `s`, escaped.
std::string quoted(std::string_view s) {
  std::string shown;
  for (std::size_t k = 0; k < s.size() && shown.size() < 24; ++k) {
    const auto c = static_cast<unsigned char>(s[k]);
    if (c >= 0x20 && c < 0x7f) {
      shown += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      shown += hex;
    }
  }
  return shown;
}

}  // namespace

std::string_view withoutBom(std::string_view text) {
  return text.starts_with(kBom) ? text.substr(kBom.size()) : text;
}

core::Result<InputFormat> detectFormat(std::string_view head, const std::string& path) {
  const std::string_view content = withoutBom(head);
  std::size_t i = head.size() - content.size();
  while (i < head.size() && isBlank(head[i])) ++i;
  if (head.empty()) return Error{Errc::kParse, path + ": byte 0: empty file"};
  if (i == head.size()) {
    return Error{Errc::kParse, path + ": byte " + std::to_string(i) + ": only whitespace"};
  }
  const std::string_view text = head.substr(i);
  const char* known = knownFormat(content, text);
  if (known != nullptr) {
    return Error{Errc::kParse,
                 path + ": this is " + known +
                     ", not a leakscope snapshot, a gperftools heap profile or a V8 heap snapshot"};
  }
  // V8 writes the header object first: {"snapshot":{"meta":{...
  if (std::string_view(compact(text)).starts_with(R"({"snapshot":)")) return InputFormat::kV8;
  if (text[0] == '{') return InputFormat::kSnapshot;
  if (text.starts_with("heap profile:")) return InputFormat::kProfile;
  return Error{Errc::kParse,
               path + ": byte " + std::to_string(i) +
                   ": not a leakscope snapshot, a gperftools heap profile or a V8 heap snapshot "
                   "(starts with \"" +
                   quoted(text) + "\")"};
}

}  // namespace leakscope::analysis
