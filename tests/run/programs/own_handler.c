/* A program with its own SIGUSR2 handler (the usual "reopen logs" kind),
   installed with sigaction, or with signal() when run as `own_handler
   signal`. It prints "got USR2" each time the signal arrives. */
#include <string.h>
#include <unistd.h>

#include "common.h"

static volatile sig_atomic_t got = 0;

static void on_usr2(int sig) {
  (void)sig;
  got = got + 1;
}

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "signal") == 0) {
    signal(SIGUSR2, on_usr2);
  } else {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr2;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, NULL);
  }
  SAY("own_handler pid=%d", getpid());
  sig_atomic_t seen = 0;
  for (;;) {
    pause();
    while (seen < got) {
      ++seen;
      SAY("got USR2");
    }
  }
}
