/* tlsgate origin: the lab backend (HTTP and HTTPS, JSON echo of each request). */
#ifndef TLSGATE_ORIGIN_H
#define TLSGATE_ORIGIN_H

/*
 * Entry point of "tlsgate origin [options]"; argv[0] is "origin".
 * Runs until SIGTERM/SIGINT. Returns the process exit code (0, 1 usage, 2 runtime).
 */
int origin_main(int argc, char **argv);

#endif
