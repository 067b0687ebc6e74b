/*
 * SNI routing of passthrough listeners: the ordered sni_routes of a listener,
 * first match wins, then its default_backend (or default_terminate). A route
 * leads either to a backend (raw relay) or to a listener that terminates TLS
 * in-process.
 */
#include <string.h>
#include <strings.h>

#include "route.h"

/*
 * True when sni is one label followed by suffix (".lab.test"): the label is
 * non-empty and holds no dot, so "*.lab.test" never matches "lab.test" nor
 * "a.b.lab.test".
 */
static bool route_one_label_under(const char *suffix, const char *sni)
{
    size_t sl = strlen(suffix), nl = strlen(sni);

    if (nl <= sl || strcasecmp(sni + nl - sl, suffix) != 0)
        return false;
    return memchr(sni, '.', nl - sl) == NULL;
}

bool route_sni_matches(const struct sni_route *r, const char *sni)
{
    if (r->pattern == NULL || sni == NULL)
        return false;
    if (r->wildcard && r->pattern[0] == '*' && r->pattern[1] == '.')
        return route_one_label_under(r->pattern + 1, sni);
    return strcasecmp(r->pattern, sni) == 0;
}

/* The first route matching sni, or NULL (always NULL without an SNI). */
static const struct sni_route *route_find(const struct listener *l, const char *sni)
{
    for (size_t i = 0; sni != NULL && i < l->nsni_routes; i++)
        if (route_sni_matches(&l->sni_routes[i], sni))
            return &l->sni_routes[i];
    return NULL;
}

struct backend *route_sni(const struct listener *l, const char *sni,
                          const struct sni_route **matched)
{
    const struct sni_route *hit = route_find(l, sni);

    if (matched != NULL)
        *matched = hit;
    return hit != NULL ? hit->backend : l->default_backend;
}

int route_sni_pick(const struct listener *l, const char *sni, struct route_pick *pick)
{
    const struct sni_route *hit = route_find(l, sni);

    pick->matched = hit;
    pick->backend = hit != NULL ? hit->backend : l->default_backend;
    pick->terminate = hit != NULL ? hit->terminate : l->default_terminate;
    if (pick->backend != NULL)
        pick->terminate = NULL; /* validation allows only one; be sure */
    return pick->backend != NULL || pick->terminate != NULL ? 0 : -1;
}
