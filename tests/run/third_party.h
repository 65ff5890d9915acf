// What the tests of third-party daemons under `leakscope run` share (nghttpd,
// nginx): looking for the daemon's tools, and a throwaway certificate.
#pragma once

#include <string>

namespace leakscope::testing {

// `tool` is on PATH (the tests skip without the daemon or h2load).
bool onPath(const std::string& tool);
// A self-signed EC key and certificate for 127.0.0.1, made by the openssl
// CLI: DIR/key.pem and DIR/cert.pem.
bool makeCert(const std::string& dir);

}  // namespace leakscope::testing
