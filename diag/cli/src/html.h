// Text for the HTML report's pages (report_html.cc, flame_graph.cc): one
// escaping rule, so that a symbol or path read from an input can never
// become markup or script.
#pragma once

#include <string>

namespace leakscope::analysis {

// `raw` as HTML text or attribute value: control characters and invalid
// UTF-8 shown escaped (as in the terminal views; newlines kept when
// `keep_newlines`, for tooltips), then & < > " ' as entities.
std::string htmlText(const std::string& raw, bool keep_newlines = false);

}  // namespace leakscope::analysis
