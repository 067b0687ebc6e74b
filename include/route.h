/* SNI routing of passthrough listeners. */
#ifndef TLSGATE_ROUTE_H
#define TLSGATE_ROUTE_H

#include <stdbool.h>

#include "config-t.h"

/*
 * True when the normalised SNI matches pattern: exact (case-insensitive),
 * or "*.suffix" matching exactly one extra label ("*.lab.test" matches
 * "a.lab.test", not "lab.test" nor "a.b.lab.test").
 */
bool route_sni_matches(const struct sni_route *r, const char *sni);

/*
 * The backend for a connection with this SNI (NULL when the client sent
 * none): the first matching route, else the listener's default_backend,
 * which may be NULL (close the connection). *matched is set to the route
 * taken or NULL for the default.
 */
struct backend *route_sni(const struct listener *l, const char *sni,
                          const struct sni_route **matched);

/* Where route_sni_pick sends a connection: at most one of backend and terminate is set. */
struct route_pick {
    struct backend *backend;         /* relay the raw bytes to a server of it */
    struct listener *terminate;      /* or hand the connection to this offload/bridge listener */
    const struct sni_route *matched; /* the route taken, NULL for the listener's default */
};

/*
 * As route_sni, but also for routes and defaults that terminate TLS here:
 * fills pick with the first matching route, else default_backend or
 * default_terminate. Returns 0, or -1 when there is nowhere to go (close).
 */
int route_sni_pick(const struct listener *l, const char *sni, struct route_pick *pick);

#endif
