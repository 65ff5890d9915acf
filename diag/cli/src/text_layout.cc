#include "text_layout.h"

#include <algorithm>
#include <utility>

#include "leakscope/analysis/text.h"

namespace leakscope::analysis {
namespace {

bool continuationByte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// The byte length of the first `columns` code points of `text` (all of it
// when it is shorter).
std::size_t bytesOfColumns(std::string_view text, std::size_t columns) {
  std::size_t seen = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (continuationByte(text[i])) continue;
    if (seen == columns) return i;
    ++seen;
  }
  return text.size();
}

std::size_t leadingSpaces(std::string_view text) {
  const auto first = text.find_first_not_of(' ');
  return first == std::string_view::npos ? text.size() : first;
}

// Where to end a piece of `text` that may be at most `cut` bytes long: before
// a stack separator, else after a comma or semicolon, in the second half of
// the piece; else at the last space; else at `cut` (moving on by one code
// point at least). So "4.4 MiB" or a frame stays on one line where it can.
// Breaks are looked for after `from`, so a line's own indentation is never
// one.
std::size_t breakAt(std::string_view text, std::size_t cut, std::size_t from) {
  const std::string_view head = text.substr(0, cut + 1);
  const std::size_t least = std::max(from + 1, cut / 2);
  if (const auto p = head.rfind(" <- "); p != std::string_view::npos && p >= least) return p;
  const auto comma = head.rfind(", ");
  const auto semicolon = head.rfind("; ");
  const auto p = comma == std::string_view::npos       ? semicolon
                 : semicolon == std::string_view::npos ? comma
                                                       : std::max(comma, semicolon);
  if (p != std::string_view::npos && p + 1 >= least) return p + 1;
  if (const auto q = head.rfind(' '); q != std::string_view::npos && q > from) return q;
  return std::max<std::size_t>(cut, bytesOfColumns(text, 1));
}

void wrapLine(std::string& out, std::string_view line, std::size_t width) {
  const std::size_t indent = leadingSpaces(line);
  // Deeper than the line it continues, but never more than half the width.
  std::size_t hang = indent + 4;
  if (hang > width / 2) hang = std::min(indent, width / 2);
  std::string_view rest = line;
  std::size_t from = indent;  // the first piece keeps its own indentation
  std::string prefix;
  while (displayWidth(rest) + prefix.size() > width) {
    const std::size_t brk = breakAt(rest, bytesOfColumns(rest, width - prefix.size()), from);
    std::string_view piece = rest.substr(0, brk);
    while (!piece.empty() && piece.back() == ' ') piece.remove_suffix(1);
    out.append(prefix).append(piece) += '\n';
    rest.remove_prefix(brk);
    rest.remove_prefix(leadingSpaces(rest));
    prefix.assign(hang, ' ');
    from = 0;
  }
  if (!rest.empty()) out.append(prefix).append(rest) += '\n';
}

}  // namespace

std::size_t displayWidth(std::string_view text) {
  return static_cast<std::size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return !continuationByte(c); }));
}

std::string shorten(std::string_view text, std::size_t width) {
  if (displayWidth(text) <= width) return std::string(text);
  if (width == 0) return {};
  return std::string(text.substr(0, bytesOfColumns(text, width - 1))) + "\u2026";
}

std::string shortenName(std::string_view name, std::size_t width) {
  std::string text(name);
  if (displayWidth(text) <= width) return text;
  if (!text.empty() && text.back() == ')') {
    // The '(' that opens the last argument list.
    int depth = 0;
    for (std::size_t i = text.size(); i-- > 0;) {
      depth += text[i] == ')' ? 1 : text[i] == '(' ? -1 : 0;
      if (depth == 0) {
        text = text.substr(0, i) + "(\u2026)";
        break;
      }
    }
    if (displayWidth(text) <= width) return text;
  }
  if (width == 0) return {};
  const std::size_t drop = displayWidth(text) - (width - 1);
  return "\u2026" + text.substr(bytesOfColumns(text, drop));
}

std::string fitText(std::string_view text, std::size_t width) {
  std::string out;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    const bool keep = !line.empty() && line.front() == kKeepLine;
    if (keep) line.remove_prefix(1);
    const std::string shown = printable(line);
    if (keep || width == 0 || displayWidth(shown) <= width) {
      out += shown;
      if (nl != std::string_view::npos) out += '\n';
    } else {
      wrapLine(out, shown, width);
    }
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return out;
}

// ---- Table ----------------------------------------------------------------

Table::Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }

void Table::add(std::vector<std::string> row) {
  for (auto& cell : row) cell = printable(cell);
  rows_.push_back(std::move(row));
}

// The header's columns less those whose every cell is "-" (the first column
// names the row and always stays).
std::vector<std::size_t> Table::shownColumns() const {
  std::vector<std::size_t> columns;
  for (std::size_t c = 0; c < rows_.front().size(); ++c) {
    const bool all_dashes =
        c > 0 && !empty() && std::all_of(rows_.begin() + 1, rows_.end(), [c](const auto& r) {
          return c >= r.size() || r[c] == "-";
        });
    if (!all_dashes) columns.push_back(c);
  }
  return columns;
}

std::vector<std::size_t> Table::columnWidths(const std::vector<std::size_t>& columns) const {
  std::vector<std::size_t> widths(columns.size(), 0);
  for (const auto& r : rows_) {
    for (std::size_t k = 0; k < columns.size(); ++k) {
      if (columns[k] < r.size()) widths[k] = std::max(widths[k], displayWidth(r[columns[k]]));
    }
  }
  return widths;
}

// Takes what the table is too wide by from the flexible column, down to the
// width of its header (at least 8): numbers are never shortened.
void Table::narrow(std::vector<std::size_t>& widths, std::size_t flexible, std::size_t indent,
                   std::size_t width) const {
  std::size_t total = indent + 2 * (widths.size() - 1);
  for (std::size_t w : widths) total += w;
  if (width == 0 || total <= width) return;
  const std::size_t floor = std::max<std::size_t>(displayWidth(rows_.front()[0]), 8);
  const std::size_t excess = total - width;
  std::size_t& w = widths[flexible];
  w = std::max(floor, w > excess ? w - excess : 0);
}

std::string Table::line(const std::vector<std::string>& row,
                        const std::vector<std::size_t>& columns,
                        const std::vector<std::size_t>& widths) const {
  const std::size_t last = rows_.front().size() - 1;
  std::string out;
  for (std::size_t k = 0; k < columns.size(); ++k) {
    const std::size_t c = columns[k];
    const std::string_view text = c < row.size() ? std::string_view(row[c]) : std::string_view();
    const std::string cell = c == 0 ? shortenName(text, widths[k]) : shorten(text, widths[k]);
    const std::string pad(widths[k] - displayWidth(cell), ' ');
    const bool left = c == 0 || (c == last && last_left_);
    out += left ? cell + pad : pad + cell;
    if (k + 1 < columns.size()) out += "  ";
  }
  return out;
}

void Table::print(std::ostream& out, std::size_t width, const std::string& indent) const {
  const std::vector<std::size_t> columns = shownColumns();
  std::vector<std::size_t> widths = columnWidths(columns);
  const bool last_flexible = last_left_ && columns.back() == rows_.front().size() - 1;
  narrow(widths, last_flexible ? columns.size() - 1 : 0, indent.size(), width);
  for (const auto& r : rows_) {
    std::string text = indent + line(r, columns, widths);
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out << kKeepLine << text << '\n';
  }
}

}  // namespace leakscope::analysis
