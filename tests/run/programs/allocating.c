/* Allocates and waits: linked with jemalloc or tcmalloc by the build, to see
   what `leakscope run` does with a program that has an allocator of its own. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

__attribute__((noinline)) static void* keep_some(void) {
  void* p = malloc(1 << 20);
  memset(p, 'a', 1 << 20);
  return p;
}

int main(void) {
  volatile void* p = keep_some();
  (void)p;
  SAY("allocating pid=%d", getpid());
  for (;;) pause();
}
