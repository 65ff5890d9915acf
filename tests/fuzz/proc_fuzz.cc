// libFuzzer target: the runtime's parsers of kernel text — /proc/net/tcp,
// tcp6 and unix lines (sockets.cc), /proc/PID/stat, /proc/stat's btime,
// /proc/meminfo and cgroup memory limits (process.cc) — and the peer-name
// specification (--peer-names). The input is split into lines and each line
// is fed to every line parser; the whole input to the whole-file parsers.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "leakscope/diag/process.h"
#include "leakscope/diag/sockets.h"

namespace ld = leakscope::diag;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    for (const bool ipv6 : {false, true}) {
      if (auto row = ld::parseProcNetInetLine(line, ipv6)) {
        (void)row->local.str();
        (void)row->remote.str();
        (void)ld::tcpStateName(row->state);
      }
    }
    if (auto row = ld::parseProcNetUnixLine(line)) (void)ld::unixStateName(*row);
  }
  if (auto st = ld::parseProcStat(text)) (void)st->cpu_ticks;
  (void)ld::parseBootTime(text);
  (void)ld::parseMemTotal(text);
  (void)ld::parseCgroupMemoryLimit(text);
  if (auto names = ld::PeerNames::parse(text)) {
    ld::Endpoint e;
    e.address = "127.0.0.1";
    e.port = 443;
    (void)names->nameFor(e);
  }
  return 0;
}
