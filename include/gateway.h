/* The gateway process: sockets, workers, signals. */
#ifndef TLSGATE_GATEWAY_H
#define TLSGATE_GATEWAY_H

#include <stdatomic.h>

#include "config-t.h"

struct worker;
struct event_base;
struct health;

struct gateway {
    struct config *conf;    /* current snapshot (one reference) */
    struct worker *workers; /* array of nworkers */
    unsigned nworkers;
    struct event_base *base; /* main thread loop: signals, admin, health checks */
    struct health *health;   /* active checks of conf's backends (src/health/) */
    atomic_uint active;      /* client connections open, whole process */
};

/*
 * Runs the gateway on conf until SIGTERM/SIGINT and a drain. Takes over the
 * caller's reference on conf. Returns a process exit code (0, or 2 when a
 * socket cannot be bound or a thread started).
 */
int gateway_run(struct config *conf);

#endif
