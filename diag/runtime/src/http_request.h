// The one piece of HTTP the diagnostic endpoint parses itself: the request
// line. Header lines are only counted against the size limit, never parsed;
// libevent splits lines (http_server.cc). Kept apart so the fuzz build can
// reach it without libevent or the runtime.
#pragma once

#include <string>
#include <string_view>

namespace leakscope::diag {

// "GET /metrics?x HTTP/1.1" -> method "GET", path "/metrics" (the query is
// dropped). False, leaving both untouched, unless the line is
// "METHOD SP /TARGET SP HTTP/1.x".
bool parseRequestLine(std::string_view line, std::string* method, std::string* path);

}  // namespace leakscope::diag
