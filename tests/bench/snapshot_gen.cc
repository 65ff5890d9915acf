// Writes a synthetic leakscope snapshot of about a given size, for
// `scripts/bench.sh diff` (trend over ten 100 MB snapshots). One kind leaks
// (ids below `leaked` stay alive in every snapshot), one churns; a few
// thousand heap sites; a few hundred sockets.
// Usage: snapshot_gen OUT SEQUENCE TARGET_MB
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s OUT SEQUENCE TARGET_MB\n", argv[0]);
    return 2;
  }
  const long seq = std::strtol(argv[2], nullptr, 10);
  const double target = std::strtod(argv[3], nullptr) * 1e6;
  std::FILE* f = std::fopen(argv[1], "w");
  if (f == nullptr) {
    std::perror(argv[1]);
    return 1;
  }
  const std::int64_t t0 = 1'795'000'000'000'000'000;
  const std::int64_t taken = t0 + seq * 3'600'000'000'000;  // one hour apart
  std::fprintf(
      f,
      "{\"format\":\"leakscope-snapshot\",\"version\":1,\"sequence\":%ld,\"name\":\"bench\",\n"
      "\"taken\":{\"unix_ns\":%" PRId64 ",\"monotonic_ns\":%" PRId64
      ",\"utc\":\"bench\"},\n"
      "\"trigger\":{\"reason\":\"api\",\"detail\":\"bench\"},\n"
      "\"process\":{\"pid\":4242,\"exe\":\"/usr/bin/bench\",\"rss_bytes\":%ld,\"open_fds\":300,"
      "\"max_fds\":65536,\"threads\":8},\n\"allocator\":{\"available\":false},\n\"tracked\":[\n",
      seq, taken, taken, 100'000'000L + seq * 50'000'000L);
  // ~95 bytes per object line: the leaking kind gets 60% of the budget.
  const auto objects = static_cast<std::uint64_t>(target * 0.9 / 95);
  const std::uint64_t leaked = objects * 6 / 10 * static_cast<std::uint64_t>(seq) / 10;
  const std::uint64_t churn = objects - leaked;
  std::fprintf(f, "{\"kind\":\"bench.connection\",\"objects\":[\n");
  for (std::uint64_t i = 0; i < leaked; ++i) {
    std::fprintf(f,
                 "%s{\"id\":%" PRIu64 ",\"birth_unix_ns\":%" PRId64
                 ",\"label\":\"api.push.apple.com\",\"bytes\":65536,\"fd\":%" PRIu64 "}\n",
                 i ? "," : "", i + 1, t0 + static_cast<std::int64_t>(i), 100 + i % 60000);
  }
  std::fprintf(f,
               "],\"live\":%" PRIu64 ",\"live_bytes\":%" PRIu64 ",\"created_total\":%" PRIu64
               ",\"destroyed_total\":0},\n",
               leaked, leaked * 65536, leaked);
  std::fprintf(f, "{\"kind\":\"bench.session\",\"objects\":[\n");
  const std::uint64_t base = 1'000'000'000ull * static_cast<std::uint64_t>(seq);
  for (std::uint64_t i = 0; i < churn; ++i) {
    std::fprintf(f,
                 "%s{\"id\":%" PRIu64 ",\"birth_unix_ns\":%" PRId64
                 ",\"label\":\"session\",\"bytes\":512,\"fd\":null}\n",
                 i ? "," : "", base + i, taken - 1000);
  }
  std::fprintf(f,
               "],\"live\":%" PRIu64 ",\"live_bytes\":%" PRIu64 ",\"created_total\":%" PRIu64
               ",\"destroyed_total\":0}\n],\n",
               churn, churn * 512, base + churn);
  std::fprintf(f, "\"sockets\":[\n");
  for (int i = 0; i < 300; ++i) {
    std::fprintf(
        f,
        "%s{\"fd\":%d,\"inode\":%d,\"protocol\":\"tcp\",\"local\":\"10.0.0.1:%d\",\"remote\":"
        "\"17.188.1.%d:443\",\"state\":\"ESTABLISHED\",\"peer\":\"apns\",\"owner\":null}\n",
        i ? "," : "", 100 + i, 5000 + i, 40000 + i, i % 250);
  }
  std::fprintf(f,
               "],\n\"heap\":{\"mode\":\"sampled\",\"available\":true,\"format\":\"heap_v2\","
               "\"sample_period\":524288,\"frames\":[\n");
  const int frames = 2000, sites = 5000;
  for (int i = 0; i < frames; ++i) {
    std::fprintf(
        f,
        "%s{\"id\":%d,\"address\":\"0x%x\",\"module\":\"/usr/bin/bench\",\"module_offset\":"
        "\"0x%x\",\"function\":\"bench::function%d()\",\"file\":\"bench.cc\",\"line\":%d}\n",
        i ? "," : "", i, 0x400000 + i * 64, i * 64, i, i);
  }
  std::fprintf(f, "],\"sites\":[\n");
  for (int i = 0; i < sites; ++i) {
    const long grow = i == 0 ? seq * 1000 : 10;
    std::fprintf(
        f,
        "%s{\"inuse_objects\":%ld,\"inuse_bytes\":%ld,\"alloc_objects\":%ld,\"alloc_bytes\":%ld,"
        "\"estimated_inuse_objects\":%ld,\"estimated_inuse_bytes\":%ld,\"stack\":[%d,%d,%d,%d]}\n",
        i ? "," : "", grow, grow * 4096, grow, grow * 4096, grow * 8, grow * 4096 * 8, i % frames,
        (i * 7) % frames, (i * 13) % frames, (i * 17) % frames);
  }
  std::fprintf(f, "]},\n\"writer\":{\"duration_seconds\":0.1}}\n");
  return std::fclose(f) == 0 ? 0 : 1;
}
