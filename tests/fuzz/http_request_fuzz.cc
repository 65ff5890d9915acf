// libFuzzer target: the diagnostic HTTP endpoint's request-line parser
// (diag/src/http_request.cc), the only HTTP text it parses itself. Beyond
// not crashing, what it accepts must be what the server relies on: a path
// that starts with '/' and holds no query, and a method with no space.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http_request.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  std::string method = "unset";
  std::string path = "unset";
  if (!leakscope::diag::parseRequestLine(line, &method, &path)) {
    if (method != "unset" || path != "unset") std::abort();  // a refusal changes nothing
    return 0;
  }
  if (path.empty() || path.front() != '/' || path.find('?') != std::string::npos) std::abort();
  if (method.find(' ') != std::string::npos) std::abort();
  if (line.substr(0, method.size()) != method) std::abort();
  return 0;
}
