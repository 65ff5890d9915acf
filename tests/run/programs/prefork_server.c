/* A pre-forking server: the parent forks WORKERS workers, each allocates a
   little and waits; then one more child execs `cat /proc/self/maps` (what
   the test reads to see whether the agent came along). The workers die with
   the parent (PR_SET_PDEATHSIG), so the test's kill of the parent ends all. */
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

enum { WORKERS = 3 };

__attribute__((noinline)) static void* worker_state(void) {
  void* p = malloc(256 * 1024);
  memset(p, 'w', 256 * 1024);
  return p;
}

static void worker(void) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  volatile void* state = worker_state();
  (void)state;
  SAY("worker pid=%d", getpid());
  for (;;) pause();
}

int main(void) {
  SAY("prefork_server pid=%d", getpid());
  for (int i = 0; i < WORKERS; ++i) {
    pid_t pid = fork();
    if (pid == 0) worker();
  }
  pid_t exec_child = fork();
  if (exec_child == 0) {
    SAY("exec begin");
    execl("/bin/cat", "cat", "/proc/self/maps", (char*)NULL);
    _exit(127);
  }
  waitpid(exec_child, NULL, 0);
  SAY("exec end");
  SAY("workers ready");
  for (;;) pause();
}
