// libFuzzer target: what `load` reads — format detection (byte order mark,
// the formats named in errors), gzip inflation with its limit, the streaming
// snapshot reader — then every analysis and the pprof export over what it
// accepted. Any crash, sanitizer report or hang is a bug.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string_view>

#include "export_pprof.h"
#include "leakscope/analysis/analysis.h"
#include "leakscope/analysis/input.h"
#include "leakscope/analysis/runs.h"
#include "render.h"

namespace la = leakscope::analysis;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  la::SymbolTable symbols;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto s = la::parseInput(text, "fuzz", symbols, {});
  if (!s) return 0;
  const la::Comparison c = la::compare(*s, *s, symbols, {});
  la::TrendBuilder b(symbols, {});
  for (int i = 0; i < 3; ++i) b.add(*s);
  const la::TrendResult t = b.finish();
  // A restart: three inputs of this process (a trend), two of another (a
  // comparison), then what the runs say together.
  la::Snapshot other = *s;
  other.process.pid = s->process.pid == 1 ? 2 : 1;
  la::RunsBuilder rb(symbols, {});
  for (const la::Snapshot* x : {&*s, &*s, &*s, &other, &other}) rb.add(*x);
  const la::RunsResult r = rb.finish();
  const la::SocketsResult k = la::analyseSockets({&*s, &*s}, symbols, {});
  std::ostringstream out;
  la::renderShow(out, *s, k, symbols, {});
  la::renderTrend(out, t, symbols, {});
  la::renderRuns(out, r, symbols, {});
  out << la::compareJson(c, symbols, {}).dump() << la::trendJson(t, symbols, {}).dump()
      << la::runsJson(r, symbols, {}).dump()
      << la::renderHtmlReport(la::singleRun(t), c, k, symbols, {})
      << la::renderHtmlReport(r, c, k, symbols, {});
  // The pprof export, alone and as a growth profile (refused when there is
  // no heap profile: that must be an error, not a crash).
  const la::Snapshot* bases[] = {nullptr, &other};
  for (const la::Snapshot* base : bases) {
    auto pb = la::exportPprof(*s, base, symbols);
    if (pb) out << pb->size();
  }
  return 0;
}
