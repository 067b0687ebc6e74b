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

#endif
