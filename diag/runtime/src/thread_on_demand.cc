#include "thread_on_demand.h"

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <sys/syscall.h>
#include <ucontext.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

namespace leakscope::diag {
namespace {

// The code that holds, or runs under, what pthread_create needs (see the
// header): matched on the file name's start.
constexpr std::string_view kUnsafeFiles[] = {
    "ld-linux",    "libc.so",   "libpthread.so", "libdl.so",      "librt.so",
    "libtcmalloc", "libunwind", "libgcc_s.so",   "linux-vdso.so",
};

// The system calls a thread blocks in when idle, which the kernel restarts
// after a handler (it rewinds the instruction pointer onto `syscall`).
bool blockingRestartable(long long nr) {
  switch (nr) {
    case SYS_futex:
    case SYS_read:
    case SYS_readv:
    case SYS_recvfrom:
    case SYS_recvmsg:
    case SYS_accept:
    case SYS_accept4:
    case SYS_wait4:
    case SYS_waitid:
    case SYS_connect:
    case SYS_rt_sigtimedwait:
    case SYS_flock:
      return true;
    default:
      return false;
  }
}

std::uintptr_t fileBaseOf(const void* addr) {
  Dl_info info{};
  if (addr == nullptr || dladdr(addr, &info) == 0) return 0;
  return reinterpret_cast<std::uintptr_t>(info.dli_fbase);
}

struct LoadContext {
  SafePoints* points;
  std::uintptr_t malloc_base;
  std::uintptr_t self_base;
  std::uintptr_t libc_base;
};

// libc's own syscall(), not an interposer's (a sanitizer's, another
// preloaded library's): its file is what identifies libc.
void* libcSyscall() {
  void* handle = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
  if (handle == nullptr) return nullptr;
  void* fn = dlsym(handle, "syscall");
  dlclose(handle);  // NOLOAD took a reference; libc stays
  return fn;
}

bool unsafeName(std::string_view path) {
  const std::size_t slash = path.rfind('/');
  const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  return std::any_of(std::begin(kUnsafeFiles), std::end(kUnsafeFiles),
                     [&](std::string_view prefix) { return name.starts_with(prefix); });
}

}  // namespace

void SafePoints::add(std::uintptr_t begin, std::uintptr_t end, bool libc) {
  if (count_ == kMaxRanges) {
    full_ = true;
    return;
  }
  ranges_[count_++] = Range{begin, end, libc};
}

SafePoints SafePoints::load() {
  SafePoints p;
#if defined(__x86_64__) && defined(__linux__)
  void* syscall_fn = libcSyscall();
  Dl_info info{};
  void* sym_entry = nullptr;
  if (syscall_fn != nullptr && dladdr1(syscall_fn, &info, &sym_entry, RTLD_DL_SYMENT) != 0 &&
      sym_entry != nullptr) {
    const auto* sym = static_cast<const ElfW(Sym)*>(sym_entry);
    p.syscall_fn_begin_ = reinterpret_cast<std::uintptr_t>(syscall_fn);
    p.syscall_fn_end_ = p.syscall_fn_begin_ + std::max<std::size_t>(sym->st_size, 1);
  }
  LoadContext ctx{&p, fileBaseOf(dlsym(RTLD_DEFAULT, "malloc")),
                  fileBaseOf(reinterpret_cast<const void*>(&SafePoints::load)),
                  fileBaseOf(syscall_fn)};
  dl_iterate_phdr(
      [](dl_phdr_info* object, std::size_t, void* data) {
        auto* c = static_cast<LoadContext*>(data);
        const bool libc = c->libc_base != 0 && object->dlpi_addr == c->libc_base;
        const bool unsafe =
            libc || unsafeName(object->dlpi_name != nullptr ? object->dlpi_name : "") ||
            object->dlpi_addr == c->malloc_base || object->dlpi_addr == c->self_base;
        if (!unsafe) return 0;
        for (int i = 0; i < object->dlpi_phnum; ++i) {
          const ElfW(Phdr)& ph = object->dlpi_phdr[i];
          if (ph.p_type != PT_LOAD || (ph.p_flags & PF_X) == 0) continue;
          const std::uintptr_t begin = object->dlpi_addr + ph.p_vaddr;
          c->points->add(begin, begin + ph.p_memsz, libc);
        }
        return 0;
      },
      &ctx);
  // Without libc's range nothing could ever be told apart: no rule.
  p.supported_ = ctx.libc_base != 0 && p.syscall_fn_begin_ != 0;
#endif
  return p;
}

const SafePoints::Range* SafePoints::find(std::uintptr_t ip) const {
  for (std::size_t i = 0; i < count_; ++i) {
    if (ip >= ranges_[i].begin && ip < ranges_[i].end) return &ranges_[i];
  }
  return nullptr;
}

bool SafePoints::parkedInSyscall(const Range& libc, std::uintptr_t ip, long long ax) const {
  if (ip >= syscall_fn_begin_ && ip < syscall_fn_end_) return false;
  const auto* code = reinterpret_cast<const unsigned char*>(ip);
  // Returned EINTR: the instruction pointer is just past `syscall` (0f 05).
  if (ax == -EINTR && ip >= libc.begin + 2 && code[-2] == 0x0f && code[-1] == 0x05) return true;
  // To be restarted: rewound onto `syscall`, with the call's number in rax.
  return ip + 2 <= libc.end && code[0] == 0x0f && code[1] == 0x05 && blockingRestartable(ax);
}

bool SafePoints::safe(const void* ucontext) const {
#if defined(__x86_64__) && defined(__linux__)
  if (!supported_ || full_ || ucontext == nullptr) return false;
  const auto* uc = static_cast<const ucontext_t*>(ucontext);
  const auto ip = static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
  const Range* r = find(ip);
  if (r == nullptr) return true;  // program code, or a library of no concern
  return r->libc && parkedInSyscall(*r, ip, uc->uc_mcontext.gregs[REG_RAX]);
#else
  (void)ucontext;
  return false;
#endif
}

ThreadOnDemand::ThreadOnDemand(int signal, Body body, void* arg)
    : points_(SafePoints::load()), body_(body), arg_(arg) {
  sigevent ev{};
  ev.sigev_notify = SIGEV_SIGNAL;  // never SIGEV_THREAD: that starts a thread
  ev.sigev_signo = signal;
  ev.sigev_value.sival_int = kRetryValue;
  have_timer_ = timer_create(CLOCK_MONOTONIC, &ev, &timer_) == 0;
}

ThreadOnDemand::~ThreadOnDemand() {
  if (have_timer_) timer_delete(timer_);
}

void ThreadOnDemand::request(const void* ucontext) {
  if (started_.load() || !usable()) return;
  if (!points_.safe(ucontext) || starting_.exchange(true)) {
    armRetry();
    return;
  }
  // The handler's mask (every signal: the Runtime installs it so) is what
  // the thread starts with: no signal is ever delivered to it.
  if (pthread_create(&thread_, nullptr, body_, arg_) == 0) {
    started_.store(true);
    return;
  }
  starting_.store(false);
  armRetry();
}

void ThreadOnDemand::armRetry() {
  // 1 ms, doubling to 250 ms: a program that is rarely at a safe point is
  // not flooded with signals (each one interrupts its blocking calls).
  const int n = std::min(retries_.fetch_add(1), 8);
  const long ms = std::min(1L << n, 250L);
  itimerspec when{};
  when.it_value.tv_sec = ms / 1000;
  when.it_value.tv_nsec = (ms % 1000) * 1000000L;
  timer_settime(timer_, 0, &when, nullptr);  // async-signal-safe
}

}  // namespace leakscope::diag
