// pushdaemon: schedules and device tokens in MySQL/MariaDB, sent through
// bounded APNs/FCM connection pools, instrumented with leakscope.
// Operations guide: docs/pushdaemon.md; options: docs/config.md.
#include "daemon.h"

int main(int argc, char** argv) { return pushdaemon::runDaemon(argc, argv); }
