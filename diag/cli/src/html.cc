#include "html.h"

#include "leakscope/analysis/text.h"

namespace leakscope::analysis {

std::string htmlText(const std::string& raw, bool keep_newlines) {
  const std::string s = printable(raw, keep_newlines);
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&#39;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

}  // namespace leakscope::analysis
