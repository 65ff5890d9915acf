#include "program_inspect.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "leakscope/core/unique_fd.h"

extern char** environ;

namespace leakscope::cli {
namespace {

using core::Errc;
using core::Error;
using core::Result;

Error programError(const std::string& path, const std::string& what) {
  return Error{Errc::kInvalidArgument, "'" + path + "': " + what};
}

// An executable regular file, or the reason it is not one.
Result<std::string> executableFile(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return programError(path, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return programError(path, "not a regular file");
  if (access(path.c_str(), X_OK) != 0) return programError(path, "not executable");
  return path;
}

struct ElfDeleter {
  void operator()(Elf* e) const { elf_end(e); }
};
using ElfPtr = std::unique_ptr<Elf, ElfDeleter>;

// "#!/usr/bin/python3 -u" -> "/usr/bin/python3"; "" when not a script.
std::string scriptInterpreter(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string line;
  if (!std::getline(in, line) || !line.starts_with("#!")) return "";
  std::istringstream words(line.substr(2));
  std::string interpreter;
  words >> interpreter;
  return interpreter;
}

// PT_INTERP of the ELF at `path`: "" for a static executable.
Result<std::string> elfInterpreter(const std::string& path) {
  core::UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return programError(path, std::string("open: ") + std::strerror(errno));
  elf_version(EV_CURRENT);
  ElfPtr elf(elf_begin(fd.get(), ELF_C_READ, nullptr));
  if (elf == nullptr || elf_kind(elf.get()) != ELF_K_ELF) {
    return programError(path, "not an ELF executable or a #! script");
  }
  std::size_t count = 0;
  if (elf_getphdrnum(elf.get(), &count) != 0) return programError(path, elf_errmsg(-1));
  for (std::size_t i = 0; i < count; ++i) {
    GElf_Phdr ph{};
    if (gelf_getphdr(elf.get(), static_cast<int>(i), &ph) == nullptr || ph.p_type != PT_INTERP) {
      continue;
    }
    std::size_t size = 0;
    const char* image = elf_rawfile(elf.get(), &size);
    if (image == nullptr || ph.p_offset >= size || ph.p_filesz > size - ph.p_offset) {
      return programError(path, "PT_INTERP lies outside the file");
    }
    return std::string(image + ph.p_offset, strnlen(image + ph.p_offset, ph.p_filesz));
  }
  return std::string();
}

// Runs `argv` and returns its standard output; an error when it fails.
Result<std::string> outputOf(const std::vector<std::string>& argv) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Error{Errc::kIo, std::string("pipe: ") + strerror(errno)};
  core::UniqueFd read_end(fds[0]);
  core::UniqueFd write_end(fds[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int err = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) return Error{Errc::kIo, argv[0] + ": " + std::strerror(err)};
  write_end.reset();
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(read_end.get(), buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Error{Errc::kIo, argv[0] + " --list failed (a library it needs is missing?)"};
  }
  return out;
}

// "\tlibjemalloc.so.2 => /lib/x86_64-linux-gnu/libjemalloc.so.2 (0x7f..)"
std::vector<LinkedLibrary> parseList(const std::string& text) {
  std::vector<LinkedLibrary> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    LinkedLibrary lib;
    std::string arrow;
    if (!(words >> lib.name >> arrow) || arrow != "=>" || !(words >> lib.path)) continue;
    out.push_back(lib);
  }
  return out;
}

}  // namespace

Result<std::string> resolveCommand(const std::string& command) {
  if (command.empty()) return programError(command, "empty command");
  if (command.find('/') != std::string::npos) return executableFile(command);
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  std::string found_but_not;  // the first match that could not run
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + command;
    if (access(candidate.c_str(), F_OK) != 0) continue;
    auto ok = executableFile(candidate);
    if (ok.ok()) return ok;
    if (found_but_not.empty()) found_but_not = ok.error().message;
  }
  if (!found_but_not.empty()) return Error{Errc::kInvalidArgument, found_but_not};
  return programError(command, "command not found in PATH");
}

Result<ProgramInfo> inspectProgram(const std::string& path) {
  ProgramInfo info;
  info.path = path;
  if (const std::string script = scriptInterpreter(path); !script.empty()) {
    auto interpreter = executableFile(script);
    if (!interpreter.ok())
      return programError(path, "its #! interpreter " + interpreter.error().message);
    info.path = *interpreter;
  }
  auto interp = elfInterpreter(info.path);
  if (!interp.ok()) return interp.error();
  if (interp->empty()) {
    return programError(info.path,
                        "a static executable (no ELF interpreter): LD_PRELOAD cannot reach it; "
                        "link it with leakscope::diag or use leakscope capture");
  }
  info.interpreter = *interp;
  auto listed = outputOf({info.interpreter, "--list", info.path});
  if (!listed.ok()) return programError(info.path, listed.error().message);
  info.libraries = parseList(*listed);
  return info;
}

const LinkedLibrary* linkedAllocator(const std::vector<LinkedLibrary>& libs) {
  static constexpr const char* kAllocators[] = {
      "libtcmalloc", "libjemalloc", "libmimalloc", "libtbbmalloc_proxy", "libhoard",
      "libsnmalloc", "librpmalloc", "libscudo",    "libllalloc",
  };
  for (const LinkedLibrary& lib : libs) {
    for (const char* prefix : kAllocators) {
      if (lib.name.starts_with(prefix)) return &lib;
    }
  }
  return nullptr;
}

}  // namespace leakscope::cli
