/* tlsgate demo: a self-contained lab with one listener per mode. */
#ifndef TLSGATE_DEMO_H
#define TLSGATE_DEMO_H

/*
 * Entry point of "tlsgate demo [options]"; argv[0] is "demo". Makes lab
 * certificates and a configuration in a temporary directory, starts origins
 * and a gateway as child processes, prints what to try, runs a short
 * comparison, then serves until SIGINT/SIGTERM (or --duration, or at once
 * with --no-serve) and removes everything it made. Returns the exit code:
 * 0, 1 (usage), 2 (runtime failure, e.g. a port is busy).
 */
int demo_main(int argc, char **argv);

#endif
