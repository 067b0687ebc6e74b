/* Choosing a server of a backend: roundrobin, leastconn, source, random. */
#ifndef TLSGATE_BALANCE_H
#define TLSGATE_BALANCE_H

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

#endif
