/*
 * Carry-over at reload: random ticket keys into the new snapshot, and the
 * counts of retired snapshots into the one in force (see carryover.h).
 */
#include <stdlib.h>
#include <string.h>

#include "carryover.h"
#include "config.h"
#include "log.h"
#include "tls_ctx.h"

/* Counters of struct listener_stats, in the order lstat_ptrs() lists them. */
#define LSTAT_N (8 + METRICS_HS_BUCKETS + 6)
_Static_assert(sizeof(struct listener_stats) == LSTAT_N * sizeof(atomic_ullong),
               "a counter was added to struct listener_stats: list it in lstat_ptrs()");
_Static_assert(sizeof(struct server_stats) == sizeof(atomic_ullong),
               "a counter was added to struct server_stats: fold it in carry_fold_one()");

/* A snapshot replaced by a reload whose connections may still count on it. */
struct retired {
    struct config *conf;          /* one reference */
    uint64_t (*lfolded)[LSTAT_N]; /* per listener: values already added to the one in force */
    uint64_t *sfolded;            /* per server, backends in order: picks already added */
    struct retired *next;
};

struct carry {
    struct retired *list;
};

/* Fills p with the address of every counter of st. */
static void lstat_ptrs(struct listener_stats *st, atomic_ullong *p[LSTAT_N])
{
    size_t n = 0;

    p[n++] = &st->conns_total;
    p[n++] = &st->conns_refused;
    p[n++] = &st->bytes_in;
    p[n++] = &st->bytes_out;
    p[n++] = &st->handshakes_ok;
    p[n++] = &st->handshakes_failed;
    for (size_t i = 0; i < METRICS_HS_BUCKETS; i++)
        p[n++] = &st->handshake_buckets[i];
    p[n++] = &st->handshake_usec_sum;
    for (size_t i = 0; i < 6; i++)
        p[n++] = &st->requests[i];
    p[n++] = &st->cpu_nsec;
}

/* The listener of c named name, or NULL. */
static struct listener *carry_find_listener(const struct config *c, const char *name)
{
    for (size_t i = 0; i < c->nlisteners; i++)
        if (strcmp(c->listeners[i].name, name) == 0)
            return &c->listeners[i];
    return NULL;
}

/* The server of c named srv in backend of the same name as b, or NULL. */
static struct server *carry_find_server(struct config *c, const struct backend *b,
                                        const struct server *srv)
{
    struct backend *nb = config_find_backend(c, b->name);

    for (size_t i = 0; nb != NULL && i < nb->nservers; i++)
        if (strcmp(nb->servers[i].name, srv->name) == 0)
            return &nb->servers[i];
    return NULL;
}

/* Adds v - *folded to *to (when there is a to) and records v as folded. */
static void carry_add(atomic_ullong *to, atomic_ullong *from, uint64_t *folded)
{
    uint64_t v = atomic_load_explicit(from, memory_order_relaxed);

    if (to != NULL && v > *folded)
        atomic_fetch_add_explicit(to, v - *folded, memory_order_relaxed);
    *folded = v;
}

/* Folds what r counted since its last fold into cur. */
static void carry_fold_one(struct retired *r, struct config *cur)
{
    size_t k = 0;

    for (size_t i = 0; i < r->conf->nlisteners; i++) {
        struct listener *from = &r->conf->listeners[i];
        struct listener *to = carry_find_listener(cur, from->name);
        atomic_ullong *fp[LSTAT_N], *tp[LSTAT_N];

        lstat_ptrs(&from->stats, fp);
        if (to != NULL)
            lstat_ptrs(&to->stats, tp);
        for (size_t j = 0; j < LSTAT_N; j++)
            carry_add(to != NULL ? tp[j] : NULL, fp[j], &r->lfolded[i][j]);
    }
    for (size_t b = 0; b < r->conf->nbackends; b++) {
        struct backend *be = &r->conf->backends[b];

        for (size_t s = 0; s < be->nservers; s++, k++) {
            struct server *to = carry_find_server(cur, be, &be->servers[s]);
            carry_add(to != NULL ? &to->stats.picks : NULL, &be->servers[s].stats.picks,
                      &r->sfolded[k]);
        }
    }
}

static void retired_free(struct retired *r)
{
    config_unref(r->conf);
    free(r->lfolded);
    free(r->sfolded);
    free(r);
}

struct carry *carry_new(void)
{
    return calloc(1, sizeof(struct carry));
}

int carry_retire(struct carry *c, struct config *old, struct config *cur)
{
    struct retired *r = calloc(1, sizeof(*r));
    size_t nservers = 0;

    for (size_t b = 0; b < old->nbackends; b++)
        nservers += old->backends[b].nservers;
    if (r != NULL) {
        r->lfolded = calloc(old->nlisteners ? old->nlisteners : 1, sizeof(*r->lfolded));
        r->sfolded = calloc(nservers ? nservers : 1, sizeof(*r->sfolded));
    }
    if (r == NULL || r->lfolded == NULL || r->sfolded == NULL) {
        log_errorx("reload: out of memory carrying counters over");
        if (r != NULL) {
            free(r->lfolded);
            free(r->sfolded);
            free(r);
        }
        return -1;
    }
    r->conf = config_ref(old);
    carry_fold_one(r, cur);
    r->next = c->list;
    c->list = r;
    return 0;
}

size_t carry_fold(struct carry *c, struct config *cur)
{
    struct retired **pp = &c->list, *r;
    size_t kept = 0;

    while ((r = *pp) != NULL) {
        /* Read the count first: at 1 nobody can count on it any more, so this fold is the last. */
        bool last = atomic_load(&r->conf->refs) == 1;

        carry_fold_one(r, cur);
        if (last) {
            *pp = r->next;
            retired_free(r);
            continue;
        }
        kept++;
        pp = &r->next;
    }
    return kept;
}

void carry_free(struct carry *c)
{
    struct retired *r;

    if (c == NULL)
        return;
    while ((r = c->list) != NULL) {
        c->list = r->next;
        retired_free(r);
    }
    free(c);
}

void carryover_tickets(struct config *next, const struct config *cur)
{
    for (size_t i = 0; i < next->nlisteners; i++) {
        struct listener *l = &next->listeners[i];
        const struct listener *old = carry_find_listener(cur, l->name);

        if (old == NULL || !l->has_tls || !old->has_tls || !l->tls.session_tickets ||
            !old->tls.session_tickets || *l->tls.ticket_key_file != '\0' ||
            *old->tls.ticket_key_file != '\0')
            continue;
        if (tls_tickets_keep(l, old) < 0)
            log_warnx("listener %s: tickets issued before this reload will not resume", l->name);
    }
}
