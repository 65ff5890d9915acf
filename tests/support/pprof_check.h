// `leakscope export --format pprof` checked by its real consumer, for the
// CLI's tests (tests/cli/export_pprof_test.cc) and the pushdaemon's leak
// drill (tests/daemon/leak_drill_test.cc): the leakscope binary run as a
// child, `go tool pprof -top` run with its caches in a temp dir, its flat
// column parsed and compared per function with rows of `leakscope show` or
// `leakscope diff`, and the file decoded with the classes protoc generated
// from pprof's profile.proto and held to the schema's rules.
// Failures are reported with GoogleTest's EXPECT/ASSERT in the calling test.
#pragma once

#include <profile.pb.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace leakscope::testing {

struct CliRun {
  int status = -1;
  std::string out, err;
};

// argv run to its end (2 minutes at most), its stdout and stderr captured.
CliRun runCommand(const std::vector<std::string>& argv);
// build/bin/leakscope ARGS...
CliRun runLeakscope(std::vector<std::string> args);

// `leakscope export --format pprof DIR/NAME INPUT [--base BASE]` (no base
// when `base` is empty), checked to exit 0 silently; returns DIR/NAME.
std::string exportPprof(const std::string& dir, const std::string& input, const std::string& base,
                        const std::string& name);
// `leakscope show --json --top 100000 INPUT` (every heap site).
nlohmann::json showJson(const std::string& input);
// The rows of `leakscope diff --json` output in `group` ("heap", "tracked").
nlohmann::json diffRows(const nlohmann::json& diff, const std::string& group);

// `go tool pprof ARGS...` with its caches in `home` and no network; a
// failure naming scripts/setup.sh when go is not on PATH.
CliRun goToolPprof(const std::string& home, std::vector<std::string> args);

// `-top` rows: function name -> flat value (in bytes for byte-valued sample
// types: -unit=B), every node (-nodefraction=0), positive or negative.
using TopFlat = std::map<std::string, long long>;
TopFlat topFlat(const std::string& home, const std::vector<std::string>& args);

// pprof's default display of a demangled C++ name (internal/symbolizer
// Demangle: parameter and template lists removed), so that leakscope's
// names can be compared with what -top prints.
std::string pprofName(std::string name);

// A leakscope view's rows summed by the name pprof would print; `rows` is
// how many rows each name merges (each rounded on its own: the tolerance).
struct Flat {
  std::map<std::string, long long> bytes;
  std::map<std::string, long long> rows;
};
Flat byPprofName(const nlohmann::json& rows, const char* value);

// Every function pprof shows has the bytes leakscope shows for it, and the
// reverse (the `[tracked] KIND` frames aside); `slack` bytes per merged row
// (1: each side rounds its own estimate to whole bytes; 0 for exact figures).
void expectSameFlat(const TopFlat& got, const Flat& want, long long slack, const std::string& what);

// The gzipped Profile in `path`, decoded (a failure when it is not one).
perftools::profiles::Profile decodePprof(const std::string& path);
// The name of sample type `i`.
std::string sampleTypeName(const perftools::profiles::Profile& p, int i);
// profile.proto's rules: string_table[0] == "", ids non-zero and unique,
// every id and string index referenced exists, one value per sample type;
// and leakscope's: inuse_space the default, period type space/bytes.
void expectValidProfile(const perftools::profiles::Profile& p);

}  // namespace leakscope::testing
