/*
 * SNI routing of passthrough listeners: the ordered sni_routes of a listener,
 * first match wins, then its default_backend.
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

struct backend *route_sni(const struct listener *l, const char *sni,
                          const struct sni_route **matched)
{
    const struct sni_route *hit = NULL;

    for (size_t i = 0; sni != NULL && i < l->nsni_routes; i++) {
        if (route_sni_matches(&l->sni_routes[i], sni)) {
            hit = &l->sni_routes[i];
            break;
        }
    }
    if (matched != NULL)
        *matched = hit;
    return hit != NULL ? hit->backend : l->default_backend;
}
