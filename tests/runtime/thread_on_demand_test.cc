// Where the snapshot signal's handler may start the snapshot thread
// (diag/runtime/src/thread_on_demand.h): interrupted contexts built by hand
// around real code of this process — its own code, malloc, and libc's
// system-call instructions.
#include "thread_on_demand.h"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <ucontext.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>

namespace leakscope::diag {
namespace {

#if defined(__x86_64__)

ucontext_t at(const void* ip, long long ax) {
  ucontext_t uc{};
  uc.uc_mcontext.gregs[REG_RIP] = reinterpret_cast<greg_t>(ip);
  uc.uc_mcontext.gregs[REG_RAX] = ax;
  return uc;
}

// The first `syscall` instruction (0f 05) in the first 512 bytes of a libc
// function: read(2)'s wrapper has one.
// libc's own definition: a sanitizer build intercepts read() in front of it.
void* inLibc(const char* function) {
  void* libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
  void* f = libc != nullptr ? dlsym(libc, function) : nullptr;
  if (libc != nullptr) dlclose(libc);
  return f;
}

const unsigned char* syscallInstruction(const char* function) {
  const auto* code = static_cast<const unsigned char*>(inLibc(function));
  if (code == nullptr) return nullptr;
  for (int i = 0; i < 512; ++i) {
    if (code[i] == 0x0f && code[i + 1] == 0x05) return code + i;
  }
  return nullptr;
}

__attribute__((noinline)) int programCode(int x) { return x * 3 + 1; }

TEST(SafePoints, AnotherLibrarysCodeIsSafeTheAllocatorLibcAndTheRuntimeAreNot) {
  const SafePoints points = SafePoints::load();
  ASSERT_TRUE(points.supported());
  // The runtime's own file is never a safe point: here that is this test's
  // executable, which links it statically.
  ucontext_t own = at(reinterpret_cast<const void*>(&programCode), 0);
  EXPECT_FALSE(points.safe(&own));
  // Nor malloc's file (tcmalloc here), nor libc outside a parked syscall.
  ucontext_t in_malloc = at(reinterpret_cast<const void*>(dlsym(RTLD_DEFAULT, "malloc")), 0);
  EXPECT_FALSE(points.safe(&in_malloc));
  ucontext_t in_memcpy = at(inLibc("memcpy"), 0);
  EXPECT_FALSE(points.safe(&in_memcpy));
  // A library of no concern: libm's code is program code for this rule.
  void* libm = dlopen("libm.so.6", RTLD_NOW | RTLD_NOLOAD);
  if (libm == nullptr) libm = dlopen("libm.so.6", RTLD_NOW);
  ASSERT_NE(libm, nullptr);
  const SafePoints with_libm = SafePoints::load();
  ucontext_t in_cos = at(dlsym(libm, "cos"), 0);
  EXPECT_TRUE(with_libm.safe(&in_cos));
}

TEST(SafePoints, ParkedInABlockingSyscallIsSafeMidAllocatorCallIsNot) {
  const SafePoints points = SafePoints::load();
  const unsigned char* sys = syscallInstruction("read");
  ASSERT_NE(sys, nullptr);
  // Interrupted and returning EINTR: just past the instruction.
  ucontext_t eintr = at(sys + 2, -EINTR);
  EXPECT_TRUE(points.safe(&eintr));
  // Past it with a result: the call finished, its caller is unknown.
  ucontext_t finished = at(sys + 2, 42);
  EXPECT_FALSE(points.safe(&finished));
  // Rewound to restart: a blocking call is safe, an mmap (what an allocator
  // calls with its lock held) is not.
  ucontext_t restart_futex = at(sys, SYS_futex);
  EXPECT_TRUE(points.safe(&restart_futex));
  ucontext_t restart_read = at(sys, SYS_read);
  EXPECT_TRUE(points.safe(&restart_read));
  ucontext_t about_to_mmap = at(sys, SYS_mmap);
  EXPECT_FALSE(points.safe(&about_to_mmap));
  // libc's generic syscall(), which tcmalloc waits on its spin lock through.
  const unsigned char* generic = syscallInstruction("syscall");
  ASSERT_NE(generic, nullptr);
  ucontext_t spin_wait = at(generic + 2, -EINTR);
  EXPECT_FALSE(points.safe(&spin_wait));
  // Anywhere else in libc, not at a syscall instruction.
  ucontext_t mid_read = at(inLibc("read"), -EINTR);
  EXPECT_FALSE(points.safe(&mid_read));
}

#endif

}  // namespace
}  // namespace leakscope::diag
