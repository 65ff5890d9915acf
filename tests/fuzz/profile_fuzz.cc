// libFuzzer target: the gperftools heap profile reader (text parser,
// MAPPED_LIBRARIES parser, offline symbolization, unsampling).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "leakscope/analysis/analysis.h"
#include "leakscope/analysis/input.h"

namespace la = leakscope::analysis;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  la::SymbolTable symbols;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto p = la::parseProfileText(text, "fuzz", symbols, {});
  if (!p) return 0;
  la::TrendBuilder b(symbols, {});
  b.add(*p);
  b.add(*p);
  b.add(*p);
  (void)b.finish();
  (void)la::compare(*p, *p, symbols, {});
  return 0;
}
