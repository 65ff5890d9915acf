#include "leakscope/analysis/input.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <optional>
#include <string>
#include <variant>

#include "byte_reader.h"
#include "char_source.h"
#include "input_format.h"
#include "prefetch_reader.h"
#include "readers.h"
#include "safe_open.h"
#include "v8_model.h"
#include "v8_reader.h"

namespace leakscope::analysis {
namespace {

// gperftools writes a few hundred bytes per stack: 1 GiB is millions of
// stacks. A bigger "profile" is most likely a sparse or runaway file.
constexpr std::uint64_t kMaxProfileBytes = std::uint64_t{1} << 30;
// Standard input is kept in memory so that it can be read twice (a series
// reads each input's header first); as much as a raw profile may hold.
constexpr std::uint64_t kMaxStdinBytes = std::uint64_t{1} << 30;
// Enough to tell the formats apart (input_format.h).
constexpr std::size_t kHeadBytes = 64;

Error sysError(const std::string& what) {
  return Error{Errc::kIo, what + ": " + std::strerror(errno)};
}

// A file time in ns since the epoch, kept within [0, INT64_MAX] so that
// differences between inputs cannot overflow.
std::int64_t clampedNs(const timespec& t) {
  constexpr std::int64_t kMaxSeconds = INT64_MAX / 1'000'000'000 - 1;
  if (t.tv_sec < 0) return 0;
  if (t.tv_sec > kMaxSeconds) return kMaxSeconds * 1'000'000'000;
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

Status writeAll(int fd, const char* data, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return sysError("-: keeping standard input");
    data += w;
    n -= static_cast<std::size_t>(w);
  }
  return core::Ok{};
}

// Refuses what is plainly no input (endless zeros, a binary) from its first
// bytes, before keeping up to 1 GiB of it. Gzip is judged once inflated.
Status checkStdinHead(std::string& head, const char* data, std::size_t n, bool at_end) {
  if (head.size() >= kHeadBytes) return core::Ok{};
  head.append(data, std::min(n, kHeadBytes - head.size()));
  if ((head.size() < kHeadBytes && !at_end) || GzipReader::isGzip(head)) return core::Ok{};
  auto format = detectFormat(head, "-");
  if (!format) return format.error();
  return core::Ok{};
}

// Copies standard input into an anonymous memory file (no name anywhere,
// gone with the process).
Result<UniqueFd> spoolStdin() {
  UniqueFd mem(::memfd_create("leakscope-stdin", MFD_CLOEXEC));
  if (!mem.valid()) return sysError("-: memfd_create");
  std::vector<char> buf(std::size_t{1} << 16);
  std::uint64_t total = 0;
  std::string head;
  for (;;) {
    const ssize_t n = ::read(STDIN_FILENO, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sysError("-: reading standard input");
    const auto got = static_cast<std::size_t>(n);
    if (auto ok = checkStdinHead(head, buf.data(), got, n == 0); !ok) return ok.error();
    if (n == 0) return mem;
    total += got;
    if (total > kMaxStdinBytes) {
      return Error{Errc::kInvalidArgument,
                   "-: standard input is larger than 1 GiB (it is kept in memory); write it to a "
                   "file and name the file"};
    }
    if (auto w = writeAll(mem.get(), buf.data(), got); !w) {
      return w.error();
    }
  }
}

// Standard input is read once, on first use; every later open gets its own
// descriptor of the copy. Not thread-safe (the CLI opens inputs from one
// thread).
Result<UniqueFd> openStdin() {
  static std::optional<Result<UniqueFd>> spool;
  if (!spool) spool.emplace(spoolStdin());
  if (!*spool) return spool->error();
  UniqueFd fd(::dup((*spool)->get()));
  if (!fd.valid()) return sysError("-");
  return fd;
}

// An input to read: a file (read with pread from its start, however often)
// or bytes in memory, plain or gzip.
struct Input {
  std::string path;
  UniqueFd fd;
  std::string_view bytes;  // when fd is not valid
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  bool gzip = false;
};

// A fresh reader of an input's content from its start, inflating gzip.
class ContentReader {
 public:
  explicit ContentReader(const Input& in) {
    if (in.fd.valid()) {
      raw_.emplace<FileReader>(in.fd.get());
    } else {
      raw_.emplace<MemoryReader>(in.bytes);
    }
    if (in.gzip) gzip_.emplace(raw(), inflateLimit(in.size));
  }
  ContentReader(const ContentReader&) = delete;
  ContentReader& operator=(const ContentReader&) = delete;

  ByteReader& get() { return gzip_ ? static_cast<ByteReader&>(*gzip_) : raw(); }

 private:
  ByteReader& raw() {
    return std::visit([](auto& r) -> ByteReader& { return r; }, raw_);
  }
  // gzip_ reads raw_: declared after it, destroyed before it.
  std::variant<FileReader, MemoryReader> raw_{std::in_place_type<MemoryReader>, ""};
  std::optional<GzipReader> gzip_;
};

// Up to `n` bytes from the start of what `r` reads.
Result<std::string> readPrefix(ByteReader& r, std::size_t n, const std::string& path) {
  std::string out(n, '\0');
  std::size_t have = 0;
  while (have < n) {
    auto got = r.read(out.data() + have, n - have);
    if (!got) return Error{got.error().code, path + ": " + got.error().message};
    if (*got == 0) break;
    have += *got;
  }
  out.resize(have);
  return out;
}

// The first bytes of the content, and what they say the input is.
Result<InputFormat> formatOf(Input& in) {
  if (in.fd.valid()) {
    FileReader raw(in.fd.get());
    auto head = readPrefix(raw, kHeadBytes, in.path);
    if (!head) return head.error();
    in.gzip = GzipReader::isGzip(*head);
  } else {
    in.gzip = GzipReader::isGzip(in.bytes);
  }
  ContentReader content(in);
  auto head = readPrefix(content.get(), kHeadBytes, in.path);
  if (!head) return head.error();
  return detectFormat(*head, in.path);
}

// Inputs the user named may be symlinks (to a regular file); FIFOs, devices
// and the like are refused before they are opened (see safe_open.h).
Result<Input> open(const std::string& path) {
  Input in;
  in.path = path;
  auto fd = path == "-" ? openStdin() : openRegularFile(path, FollowLinks::kYes);
  if (!fd) return fd.error();
  in.fd = std::move(*fd);
  struct stat st {};
  if (::fstat(in.fd.get(), &st) != 0) return sysError(path);
  in.size = static_cast<std::uint64_t>(st.st_size);
  in.mtime_ns = clampedNs(st.st_mtim);
  return in;
}

// Raw profiles are parsed in memory (snapshots are streamed).
Result<std::string> readProfileText(ByteReader& r, const Input& in, const LoadOptions& options) {
  auto tooLarge = [&](std::uint64_t bytes) {
    return Error{Errc::kInvalidArgument,
                 in.path + ": " + std::to_string(bytes) +
                     " bytes: raw heap profiles are read whole, and this one is larger than " +
                     std::to_string(kMaxProfileBytes >> 30) + " GiB"};
  };
  if (in.size > kMaxProfileBytes) return tooLarge(in.size);
  std::string text;
  // st_size of a sparse file can be anything; reserve a sane amount only.
  text.reserve(std::min<std::uint64_t>(in.size, std::uint64_t{256} << 20));
  std::vector<char> buf(std::size_t{1} << 16);
  for (;;) {
    auto n = r.read(buf.data(), buf.size());
    if (!n) return Error{n.error().code, in.path + ": " + n.error().message};
    if (*n == 0) return text;
    text.append(buf.data(), *n);
    if (text.size() > kMaxProfileBytes) return tooLarge(text.size());
    if (options.progress) options.progress(r.consumed(), in.size);
  }
}

// "2026-11-30T19:58:00Z", as snapshots write their time.
std::string utcOf(std::int64_t unix_ns) {
  const std::time_t t = static_cast<std::time_t>(unix_ns / 1'000'000'000);
  std::tm tm{};
  if (::gmtime_r(&t, &tm) == nullptr) return {};
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// What a V8 snapshot's series needs to place it: the file says nothing of
// when or where it was written, so its name (Node's own naming) or else its
// modification time does.
InputHeader v8Header(const Input& in) {
  InputHeader h;
  h.path = in.path;
  h.source = SourceKind::kV8HeapSnapshot;
  const NodeFileName name = parseNodeFileName(in.path);
  h.taken_unix_ns = name.taken_unix_ns > 0 ? name.taken_unix_ns : in.mtime_ns;
  h.sequence = name.sequence;
  return h;
}

// Inputs this big are read ahead on a second thread (prefetch_reader.h);
// small ones (tests, fuzzers' cases) are not worth a thread.
constexpr std::uint64_t kPrefetchBytes = std::uint64_t{16} << 20;
constexpr std::size_t kPrefetchChunk = std::size_t{4} << 20;

Result<Snapshot> readV8(ByteReader& content, const Input& in, SymbolTable& symbols,
                        const LoadOptions& options) {
  std::optional<PrefetchReader> ahead;
  if (in.size >= kPrefetchBytes) ahead.emplace(content, kPrefetchChunk);
  ByteReader& source = ahead ? static_cast<ByteReader&>(*ahead) : content;
  auto graph = v8::readGraph(source, {options.progress, in.size});
  ahead.reset();
  if (!graph) return Error{graph.error().code, in.path + ": " + graph.error().message};
  Snapshot s = snapshotFromGraph(std::move(*graph), symbols, options);
  const InputHeader h = v8Header(in);
  s.path = in.path;
  s.taken_unix_ns = h.taken_unix_ns;
  s.sequence = h.sequence;
  s.utc = utcOf(h.taken_unix_ns);
  s.process.pid = parseNodeFileName(in.path).pid;
  return s;
}

Result<Snapshot> read(Input& in, SymbolTable& symbols, const LoadOptions& options) {
  auto format = formatOf(in);
  if (!format) return format.error();
  ContentReader content(in);
  if (*format == InputFormat::kV8) return readV8(content.get(), in, symbols, options);
  if (*format == InputFormat::kProfile) {
    auto text = readProfileText(content.get(), in, options);
    if (!text) return text.error();
    auto s = parseProfileText(withoutBom(*text), in.path, symbols, options);
    if (s) s->taken_unix_ns = in.mtime_ns;
    return s;
  }
  CharSource src(content.get(), in.size, options.progress);
  return readSnapshot(src, in.path, symbols);
}

}  // namespace

Result<InputHeader> readHeader(const std::string& path) {
  auto in = open(path);
  if (!in) return in.error();
  auto format = formatOf(*in);
  if (!format) return format.error();
  if (*format == InputFormat::kProfile) {
    InputHeader h;
    h.path = path;
    h.source = SourceKind::kHeapProfile;
    h.taken_unix_ns = in->mtime_ns;
    return h;
  }
  if (*format == InputFormat::kV8) return v8Header(*in);
  ContentReader content(*in);
  CharSource src(content.get(), in->size, nullptr);
  return readSnapshotHeader(src, path);
}

Result<Snapshot> load(const std::string& path, SymbolTable& symbols, const LoadOptions& options) {
  auto in = open(path);
  if (!in) return in.error();
  return read(*in, symbols, options);
}

Result<Snapshot> parseInput(std::string_view bytes, const std::string& path, SymbolTable& symbols,
                            const LoadOptions& options) {
  Input in;
  in.path = path;
  in.bytes = bytes;
  in.size = bytes.size();
  return read(in, symbols, options);
}

Result<Snapshot> parseSnapshotText(std::string_view text, const std::string& path,
                                   SymbolTable& symbols) {
  auto d = detectFormat(text.substr(0, kHeadBytes), path);
  if (!d) return d.error();
  if (*d != InputFormat::kSnapshot) return Error{Errc::kParse, path + ": not a snapshot"};
  CharSource src(text);
  return readSnapshot(src, path, symbols);
}

}  // namespace leakscope::analysis
