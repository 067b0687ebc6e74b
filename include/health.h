/*
 * Server health (src/health/): active checks and passive ejection.
 *
 * Active checks (tcp, tls, http) run on the main thread's event loop, off the
 * data path: one checker per config snapshot, started with it and stopped when
 * a reload replaces it. They write server->down, which the balancer reads.
 *
 * Passive ejection is fed by the workers: every connect to a server and every
 * HTTP response status is reported; `fall` consecutive failures (refused or
 * timed-out connects, or 5xx answers: each kind counted apart) mark the server
 * down until active checks bring it back after `rise` successes, or, with
 * check: none, for `interval` ms. It never marks down the last server of a
 * backend that is up. Each transition is logged once.
 *
 * Files: health.c (the checker), health_state.c (the state machine),
 * health_probe.c (one check on the loop), health_parse.c (status line).
 */
#ifndef TLSGATE_HEALTH_H
#define TLSGATE_HEALTH_H

#include <stdbool.h>

#include "config-t.h"

struct event_base;
struct health;

/*
 * Starts the checks of every backend of conf whose check is not none, on base
 * (main thread). When old is given, each server of conf that has the same
 * backend name, server name and address in old starts with old's state (up or
 * down, counts) so a reload neither flaps nor forgets a dead server; other
 * servers start up. Takes a reference on conf. Returns the checker, or NULL
 * (logged) when it cannot start.
 */
struct health *health_start(struct event_base *base, struct config *conf, const struct config *old);

/* Stops every check, frees the checker and drops its reference. NULL is ignored. */
void health_stop(struct health *h);

/* Passive: a connect to srv succeeded (ok) or was refused / timed out. Any thread. */
void health_report_connect(struct server *srv, bool ok);

/* Passive: srv answered an HTTP request with status (5xx counts as a failure). Any thread. */
void health_report_status(struct server *srv, unsigned status);

#endif
