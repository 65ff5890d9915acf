#include "snapshot_sections.h"

#include <time.h>
#include <unistd.h>

#include <cstdio>

#include "leakscope/core/snapshot_format.h"

namespace leakscope::diag {
namespace {

std::int64_t clockNs(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::string utcString(std::int64_t unix_ns) {
  const time_t secs = static_cast<time_t>(unix_ns / 1'000'000'000);
  tm t{};
  gmtime_r(&secs, &t);
  char buf[40];
  const std::size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  char ms[8];
  snprintf(ms, sizeof ms, ".%03dZ", static_cast<int>((unix_ns / 1'000'000) % 1000));
  return std::string(buf, n) + ms;
}

}  // namespace

void writeHead(JsonWriter& w, std::uint64_t sequence, std::string_view name,
               std::string_view reason, std::string_view detail, std::string_view heap_snapshot) {
  const std::int64_t unix_ns = clockNs(CLOCK_REALTIME);
  const std::int64_t mono_ns = clockNs(CLOCK_MONOTONIC);
  w.beginObject()
      .field("format", core::kSnapshotFormat)
      .field("version", core::kSnapshotVersion)
      .field("sequence", sequence)
      .field("name", name);
  w.key("taken")
      .beginObject()
      .field("unix_ns", unix_ns)
      .field("monotonic_ns", mono_ns)
      .field("utc", utcString(unix_ns))
      .endObject();
  w.key("trigger").beginObject().field("reason", reason).field("detail", detail);
  if (!heap_snapshot.empty()) w.field("heap_snapshot", heap_snapshot);
  w.endObject();
}

void writeProcess(JsonWriter& w, const Result<ProcessStats>& stats, int pid) {
  w.key("process").beginObject();
  if (const Result<ProcessStats>& p = stats; p.ok()) {
    w.field("pid", p->pid)
        .field("exe", p->exe)
        .field("host", p->host)
        .field("build_id", p->build_id)
        .field("start_time_unix", p->start_time_unix)
        .field("rss_bytes", p->rss_bytes)
        .field("virtual_bytes", p->virtual_bytes)
        .field("open_fds", p->open_fds)
        .field("max_fds", p->max_fds)
        .field("threads", p->threads)
        .field("cpu_seconds", p->cpu_seconds);
    // The limit the process runs under, so that `leakscope trend` can project
    // when it is reached without being told (the same figure as the
    // leakscope_memory_limit_bytes metric).
    if (auto limit = readMemoryLimit("", pid); limit.ok()) {
      w.field("memory_limit_bytes", limit->bytes)
          .field("memory_limit_source", std::string_view(memoryLimitSourceName(limit->source)));
    }
  } else {
    w.field("pid", pid == 0 ? static_cast<int>(getpid()) : pid)
        .field("error", stats.error().message);
  }
  w.endObject();
}

std::uint64_t writeSockets(JsonWriter& w, Result<std::vector<OwnSocket>>& sockets,
                           const PeerNames& names,
                           const std::unordered_map<int, std::uint64_t>& owners) {
  w.key("sockets").beginArray();
  std::uint64_t n = 0;
  if (sockets.ok()) {
    namePeers(*sockets, names);
    for (const OwnSocket& s : *sockets) {
      w.beginObject()
          .field("fd", s.fd)
          .field("inode", s.inode)
          .field("protocol", s.protocol)
          .field("local", s.local.str())
          .field("remote", s.remote.str())
          .field("state", s.state);
      if (s.protocol == "unix") w.field("path", s.path);
      w.field("peer", s.peer);
      w.key("owner");
      if (auto it = owners.find(s.fd); it != owners.end()) {
        w.value(it->second);
      } else {
        w.null();
      }
      w.endObject();
      ++n;
    }
  }
  w.endArray();
  if (!sockets.ok()) w.field("sockets_error", sockets.error().message);
  return n;
}

void writeTail(JsonWriter& w, std::chrono::steady_clock::time_point t0) {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  w.key("writer").beginObject().field("duration_seconds", elapsed).endObject();
  w.endObject();
  w.flush();
}

}  // namespace leakscope::diag
