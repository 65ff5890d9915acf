// Laying out the CLI's text views in a terminal of a given width: aligned
// tables that give way in one column, and long lines wrapped with a hanging
// indent. Widths are in columns (UTF-8 code points, which is what the views
// hold once printable() has escaped them); 0 means unlimited. Pure
// functions and plain values; thread-safe.
#pragma once

#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace leakscope::analysis {

// Columns `text` takes on a terminal: its UTF-8 code points.
std::size_t displayWidth(std::string_view text);

// `text` cut to at most `width` columns, ending in "…" when cut.
std::string shorten(std::string_view text, std::size_t width);

// A name cut to at most `width` columns keeping its end, where C++ names
// and socket groups say the most ("…)::countedMalloc(…)", "…:443
// ESTABLISHED"); a function's argument list goes first.
std::string shortenName(std::string_view name, std::size_t width);

// A view's text made ready for the terminal: escaped with printable(), and
// every line wider than `width` broken into lines that fit — before a
// stack's " <- " where possible, else at a space, else anywhere.
// Continuation lines are indented a little deeper than the line they
// continue, so a wrapped stack or reason still reads as one entry. Lines
// that start with kKeepLine (a table's rows) are only escaped.
std::string fitText(std::string_view text, std::size_t width);

// Marks a line fitText() must not break: a table row, already as narrow as
// it can be made, would lose its alignment. Removed by fitText().
inline constexpr char kKeepLine = '\x1f';

// A plain text table: the first column left-aligned, the others
// right-aligned (the last one left-aligned too with lastColumnLeft()).
// Cells are escaped when added, so widths count what is shown. When printed,
// a column whose every cell is "-" is left out (it says nothing), and a
// table wider than the view is narrowed by shortening the cells of its
// text column: the last one when it is left-aligned (shorten()), else the
// first, which names the row (shortenName()). Its
// lines are marked kKeepLine: print it into text that goes to fitText().
class Table {
 public:
  explicit Table(std::vector<std::string> header);
  void add(std::vector<std::string> row);
  bool empty() const { return rows_.size() == 1; }
  void lastColumnLeft() { last_left_ = true; }
  void print(std::ostream& out, std::size_t width, const std::string& indent = "  ") const;

 private:
  std::vector<std::size_t> shownColumns() const;
  std::vector<std::size_t> columnWidths(const std::vector<std::size_t>& columns) const;
  void narrow(std::vector<std::size_t>& widths, std::size_t flexible, std::size_t indent,
              std::size_t width) const;
  std::string line(const std::vector<std::string>& row, const std::vector<std::size_t>& columns,
                   const std::vector<std::size_t>& widths) const;

  std::vector<std::vector<std::string>> rows_;  // the header first
  bool last_left_ = false;
};

}  // namespace leakscope::analysis
