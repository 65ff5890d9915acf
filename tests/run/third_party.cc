#include "third_party.h"

#include "test_support.h"

namespace leakscope::testing {

bool onPath(const std::string& tool) {
  Child which({"/usr/bin/which", tool});
  return which.wait() == 0;
}

bool makeCert(const std::string& dir) {
  Child req({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=127.0.0.1", "-days", "1",
             "-keyout", dir + "/key.pem", "-out", dir + "/cert.pem"});
  return req.wait(30000) == 0;
}

}  // namespace leakscope::testing
