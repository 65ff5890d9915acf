/* Shared by the test programs of tests/run: none of them links leakscope
   (the test checks with ldd); they are what `leakscope run` is for. */
#ifndef LEAKSCOPE_RUN_TEST_COMMON_H
#define LEAKSCOPE_RUN_TEST_COMMON_H

#include <signal.h>
#include <stdio.h>

/* Blocks `sig` and waits for it: the test moves the program on with
   kill -SIG, no handler involved (so the snapshot signal stays the agent's). */
static inline void wait_for_signal(int sig) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  sigprocmask(SIG_BLOCK, &set, NULL);
  int got = 0;
  sigwait(&set, &got);
}

/* One line on stdout, flushed: what the test waits for. */
#define SAY(...)         \
  do {                   \
    printf(__VA_ARGS__); \
    putchar('\n');       \
    fflush(stdout);      \
  } while (0)

#endif
