// `leakscope export --format pprof`: the heap profile of one input (a
// leakscope snapshot or a raw gperftools profile) as pprof's profile.proto,
// gzipped, for `go tool pprof`, Grafana Pyroscope and Parca (docs/cli.md,
// "export"). The message is built with the classes protoc generates from
// pprof's published schema; nothing here encodes protobuf by hand.
//
// Values are the model's: exact for full profiles, unsampled estimates for
// sampled ones (as pprof itself unsamples heap_v2), rounded to whole objects
// and bytes. Tracked kinds are samples of their own sample types
// (tracked_objects, tracked_space) with one synthetic frame per kind, so
// they never add to heap bytes. Stateless; thread-compatible.
#pragma once

#include <string>

#include "leakscope/analysis/model.h"
#include "leakscope/core/result.h"

namespace leakscope::analysis {

// The gzipped profile.proto of `target`, or with `base` the growth from base
// to target (target minus base per stack, matched by symbols as `diff` does;
// negative where a stack shrank). Both must have been read into `symbols`.
// Errors name the input: one without a heap profile, a base of another kind
// (sampled vs full, snapshot vs raw profile).
core::Result<std::string> exportPprof(const Snapshot& target, const Snapshot* base,
                                      const SymbolTable& symbols);

}  // namespace leakscope::analysis
