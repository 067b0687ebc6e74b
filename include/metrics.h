/*
 * Counters the data path feeds and the admin endpoint reads (/metrics,
 * /stats, dashboard). Every call is a few relaxed atomic adds on the
 * listener's or server's own counters: cheap enough for every request.
 *
 * The counters live in struct listener_stats / struct server_stats, which
 * belong to the config snapshot (struct listener.stats, struct server.stats).
 */
#ifndef TLSGATE_METRICS_H
#define TLSGATE_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "config-t.h"

/* A client connection was accepted on l. */
void metrics_conn_open(struct listener *l);

/* A client connection to l was closed at accept: the process's or l's max_connections. */
void metrics_conn_refused(struct listener *l);

/* Bytes moved for a client of l: in = from the client, out = to it. */
void metrics_bytes(struct listener *l, uint64_t in, uint64_t out);

/* A TLS handshake at the gateway ended (ok or failed) after usec microseconds. */
void metrics_handshake(struct listener *l, uint64_t usec, bool ok);

/* An HTTP response with this status went to a client of l (0 = none, e.g. cut). */
void metrics_request(struct listener *l, unsigned status);

/* A request or connection was handed to srv (counts per server). */
void metrics_server_pick(struct server *srv);

/*
 * The most recent access-log lines, kept per listener for the dashboard:
 * accesslog.c calls this with every JSON line it writes (no newline).
 */
void metrics_recent_add(const struct listener *l, const char *json_line, size_t len);

/* ---- Read side: the admin endpoint (src/admin/admin.c) ---- */

/* Upper bounds of the handshake latency buckets, in microseconds; the last bucket is +Inf. */
extern const uint64_t metrics_hs_bounds_usec[METRICS_HS_BUCKETS - 1];

#define METRICS_RECENT 20 /* access-log lines kept per listener name */

/*
 * Calls fn on each kept line of the listener named name, oldest first, with
 * the store locked: fn must be quick and must not call metrics_recent_*.
 */
void metrics_recent_foreach(const char *name, void (*fn)(const char *line, size_t len, void *arg),
                            void *arg);

/* Empties the store of recent lines (at exit, once no worker logs any more). */
void metrics_recent_free(void);

#endif
