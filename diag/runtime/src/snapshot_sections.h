// The parts of a snapshot document (docs/snapshot-format.md) that the
// in-process SnapshotWriter and `leakscope capture` (capture.h) both write,
// so the two kinds of file cannot drift apart: the head (format, version,
// sequence, name, taken, trigger), the process object, the sockets array and
// the writer's own figures at the end. Stateless; leakscope::collect.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "json_writer.h"
#include "leakscope/diag/process.h"
#include "leakscope/diag/result.h"
#include "leakscope/diag/sockets.h"

namespace leakscope::diag {

// Opens the document's object and writes everything before "process".
// `reason` is trigger.reason ("signal", ..., "capture"); `detail` is written
// verbatim, so never put a secret in it. `heap_snapshot` (a capture's): the
// file name of the heap snapshot taken with it, as trigger.heap_snapshot.
void writeHead(JsonWriter& w, std::uint64_t sequence, std::string_view name,
               std::string_view reason, std::string_view detail,
               std::string_view heap_snapshot = {});
// "process": the figures of `stats`, and the memory limit of process `pid`
// (0 = this one); when `stats` is an error, the pid and the error's message.
void writeProcess(JsonWriter& w, const Result<ProcessStats>& stats, int pid);
// "sockets" (named by namePeers with `names`, each with its owner from
// `owners`, fd -> tracked object id, or null) and, when `sockets` is an
// error, "sockets_error". Returns how many sockets it wrote.
std::uint64_t writeSockets(JsonWriter& w, Result<std::vector<OwnSocket>>& sockets,
                           const PeerNames& names,
                           const std::unordered_map<int, std::uint64_t>& owners);
// "writer" (the time since `t0`) and closes the document's object.
void writeTail(JsonWriter& w, std::chrono::steady_clock::time_point t0);

}  // namespace leakscope::diag
