#include "http_request.h"

namespace leakscope::diag {

bool parseRequestLine(std::string_view line, std::string* method, std::string* path) {
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return false;
  const std::string_view version = line.substr(sp2 + 1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (version.substr(0, 7) != "HTTP/1." || target.empty() || target.front() != '/') return false;
  if (const std::size_t q = target.find('?'); q != std::string_view::npos) {
    target = target.substr(0, q);
  }
  *method = std::string(line.substr(0, sp1));
  *path = std::string(target);
  return true;
}

}  // namespace leakscope::diag
