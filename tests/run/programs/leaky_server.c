/* A server that leaks one connection struct per "client" and keeps the TCP
   connection open, plus a transient spike. Steps, each moved on by SIGUSR1:
     step 1..3: CONNS connections opened (open_connection: malloc + connect)
     step 2:    a spike (make_spike: 24 MiB), freed in step 3
   After each step it prints "step N" and waits; the test takes a snapshot
   (kill -USR2) at each. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

enum { CONNS = 40, PAYLOAD = 96 * 1024 };

struct connection {
  int client_fd;
  int server_fd;
  struct connection* next;
  char buffer[PAYLOAD];
};

static struct connection* leaked = NULL;

static int listen_loopback(struct sockaddr_in* addr) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  memset(addr, 0, sizeof *addr);
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof *addr;
  if (fd < 0 || bind(fd, (struct sockaddr*)addr, len) != 0 || listen(fd, 128) != 0 ||
      getsockname(fd, (struct sockaddr*)addr, &len) != 0) {
    perror("listen");
    exit(1);
  }
  return fd;
}

/* The leak: the struct and both ends of its connection are never freed. */
__attribute__((noinline)) static void open_connection(int listener,
                                                      const struct sockaddr_in* addr) {
  struct connection* c = malloc(sizeof *c);
  memset(c->buffer, 'x', sizeof c->buffer);
  c->client_fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(c->client_fd, (const struct sockaddr*)addr, sizeof *addr) != 0) {
    perror("connect");
    exit(1);
  }
  c->server_fd = accept(listener, NULL, NULL);
  c->next = leaked;
  leaked = c;
}

/* The spike: big, and freed a step later. */
__attribute__((noinline)) static char* make_spike(void) {
  char* p = malloc(24u << 20);
  memset(p, 's', 24u << 20);
  return p;
}

int main(void) {
  struct sockaddr_in addr;
  int listener = listen_loopback(&addr);
  SAY("leaky_server pid=%d listen=127.0.0.1:%d", getpid(), ntohs(addr.sin_port));
  char* spike = NULL;
  for (int step = 1; step <= 3; ++step) {
    for (int i = 0; i < CONNS; ++i) open_connection(listener, &addr);
    if (step == 2) spike = make_spike();
    if (step == 3) {
      free(spike);
      spike = NULL;
    }
    SAY("step %d", step);
    wait_for_signal(SIGUSR1);
  }
  SAY("done");
  return 0;
}
