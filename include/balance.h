/* Choosing a server of a backend: roundrobin, leastconn, source, random. */
#ifndef TLSGATE_BALANCE_H
#define TLSGATE_BALANCE_H

#include <stdbool.h>
#include <sys/socket.h>

#include "config-t.h"

/*
 * Builds what the backend's algorithm needs (the consistent-hash ring for
 * source). Called once per backend when a config is built. Returns 0 or -1.
 */
int balance_build(struct backend *b);

/* Frees what balance_build allocated. */
void balance_free(struct backend *b);

/*
 * Picks a server for a new connection from client, skipping servers that are
 * down or at their max_connections. Returns NULL when none is usable.
 * Thread-safe: may be called from every worker at once.
 */
struct server *balance_pick(struct backend *b, const struct sockaddr *client);

/*
 * The server to try after prev failed to connect: the next usable one in
 * index order after prev, wrapping, never prev itself. NULL when none.
 */
struct server *balance_next(struct backend *b, const struct server *prev);

/* A usable server: up and below its connection limit. */
int balance_server_usable(const struct server *s);

/*
 * Takes one connection slot on srv (srv->active + 1) unless it is at its
 * max_connections: check and increment are one atomic step, so workers
 * racing for the last slot never overshoot. Returns true when taken; give it
 * back by decrementing srv->active.
 */
bool balance_take(struct server *srv);

/*
 * balance_pick, then balance_take on the server picked; picks again when
 * another thread took its last slot first. Returns the server with a slot
 * taken, or NULL.
 */
struct server *balance_pick_take(struct backend *b, const struct sockaddr *client);

/*
 * True when no slot is free now but one may free up: a server that is up and
 * takes new connections is at its max_connections. Then a new connection
 * waits for a slot (server_queue.h) instead of failing.
 */
bool balance_saturated(const struct backend *b);

#endif
