/* Wherever a program may be when the first snapshot is asked for: the agent
   starts its thread only at a safe point (diag/runtime/src/thread_on_demand.h).
   busy MODE: idle (parked in pause), spin (its own code), malloc (mostly
   inside the allocator), join (the main thread in pthread_join, a spinning
   thread beside it), grow (leaks 256 KiB every 25 ms, touched: 10 MiB/s,
   for the memory-pressure snapshots the watcher asks for). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static void* spin(void* arg) {
  (void)arg;
  volatile unsigned long n = 0;
  for (;;) ++n;
  return NULL;
}

static void churn(void) {
  void* v[64];
  for (;;) {
    for (int i = 0; i < 64; ++i) v[i] = malloc(16 + (size_t)i * 40);
    for (int i = 0; i < 64; ++i) free(v[i]);
  }
}

__attribute__((noinline)) static void grow_forever(void) {
  for (;;) {
    char* p = malloc(256 << 10);
    memset(p, 'g', 256 << 10);
    usleep(25 * 1000);
  }
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "idle";
  SAY("busy pid=%d mode=%s", getpid(), mode);
  if (strcmp(mode, "spin") == 0) spin(NULL);
  if (strcmp(mode, "malloc") == 0) churn();
  if (strcmp(mode, "grow") == 0) grow_forever();
  if (strcmp(mode, "join") == 0) {
    pthread_t t;
    pthread_create(&t, NULL, spin, NULL);
    pthread_join(t, NULL);
  }
  for (;;) pause();
}
