/* The gateway process: sockets, workers, signals, reload. */
#ifndef TLSGATE_GATEWAY_H
#define TLSGATE_GATEWAY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bindtab.h"
#include "config-t.h"

struct worker;
struct event_base;
struct event;
struct health;
struct carry;

struct gateway {
    struct config *conf;    /* snapshot in force: every worker switched to it (one reference) */
    struct config *next;    /* handed to the workers, not acknowledged by all yet; NULL = none */
    uint64_t generation;    /* of conf (1 = the starting file); next is generation + 1 */
    struct worker *workers; /* array of nworkers */
    unsigned nworkers;
    struct event_base *base; /* main thread loop: signals, admin, health checks */
    struct health *health;   /* active checks of the newest snapshot's backends (src/health/) */
    struct bind_table binds; /* listening sockets of the newest snapshot (owned) */
    struct bind_table gone;  /* sockets next dropped: closed once every worker switched */
    int ack_fd;              /* eventfd workers write when they switched or stopped accepting */
    struct event *ack_ev;    /* reads ack_fd */
    struct carry *carry;     /* retired snapshots whose counts fold into conf (carryover.h) */
    struct event *carry_ev;  /* folds them every second while there are some */
    bool reload_again;       /* a SIGHUP came during a reload: run another once it is applied */
    bool stopping;           /* SIGTERM/SIGINT: waiting for the workers to drain */
    atomic_uint active;      /* client connections open, whole process */
};

/*
 * Runs the gateway on conf until SIGTERM/SIGINT and a drain; SIGHUP reloads
 * conf->path (reload.h). Takes over the caller's reference on conf. Returns
 * a process exit code (0, or 2 when a socket cannot be bound or a thread
 * started).
 */
int gateway_run(struct config *conf);

/*
 * Raises the open-files soft limit toward what conf's max_connections needs
 * (two descriptors per relayed connection), as far as the hard limit allows.
 */
void gateway_raise_fd_limit(const struct config *conf);

#endif
