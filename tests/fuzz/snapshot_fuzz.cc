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
#include "leakscope/analysis/chains.h"
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
  // As the CLI prints them (dumpJson): names from the input may hold bytes
  // that are not UTF-8 (a V8 string's raw bytes), replaced on output.
  out << la::dumpJson(la::compareJson(c, symbols, {}))
      << la::dumpJson(la::trendJson(t, symbols, {})) << la::dumpJson(la::runsJson(r, symbols, {}))
      << la::renderHtmlReport(la::singleRun(t), c, k, symbols, {})
      << la::renderHtmlReport(r, c, k, symbols, {});
  // Retainer chains: every kind's paths, every object's chain, and chains of
  // suspects made of every kind and socket group (owner loops, dangling
  // owners and deep chains must end).
  const la::Ownership own(*s, symbols);
  std::vector<la::Suspect> all;
  for (const auto& kind : s->kinds) {
    for (const auto& p : own.retainers(kind.name, {}, 5)) out << p.path << p.count;
    for (const auto& o : kind.objects) out << own.chainOf(o.id);
    all.push_back({la::Group::kTracked, kind.name, "", 1, 0, std::nullopt});
  }
  const auto listening = la::listeningPorts(*s);
  for (const auto& sock : s->sockets) {
    all.push_back(
        {la::Group::kSocket, la::socketSeriesName(sock, listening), "", 1, 0, std::nullopt});
  }
  std::vector<std::string> notes;
  for (const auto& ch : la::buildChains(
           all, own, [](std::size_t) { return std::string(); }, notes))
    out << ch.summary;
  // The pprof export, alone and as a growth profile (refused when there is
  // no heap profile: that must be an error, not a crash).
  const la::Snapshot* bases[] = {nullptr, &other};
  for (const la::Snapshot* base : bases) {
    auto pb = la::exportPprof(*s, base, symbols);
    if (pb) out << pb->size();
  }
  return 0;
}
