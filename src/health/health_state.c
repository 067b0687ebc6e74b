/*
 * The state machine of a server's health. `down` is the one bit the
 * balancer reads; it is flipped only by compare-and-swap, so when a check on
 * the main thread and a worker's passive report race, exactly one of them
 * sees the transition and logs it.
 *
 * Everything is relaxed: down is a hint for the next pick, not a guard of
 * other memory, and a pick that reads a stale value costs one connect.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "health_int.h"

#define LOAD(x)     atomic_load_explicit(&(x), memory_order_relaxed)
#define STORE(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)
#define INC(x)      atomic_fetch_add_explicit(&(x), 1, memory_order_relaxed)

/* Flips srv->down from !to to to. True when this call made the change. */
static bool set_down(struct server *srv, bool to)
{
    bool expected = !to;

    return atomic_compare_exchange_strong_explicit(&srv->down, &expected, to, memory_order_relaxed,
                                                   memory_order_relaxed);
}

/* The server just came up: whatever put it down is over. */
static void came_up(struct server *srv)
{
    struct server_health *h = &srv->health;

    STORE(h->connect_fails, 0);
    STORE(h->status_fails, 0);
    STORE(h->ejected_ms, 0);
    INC(h->went_up);
}

enum health_change health_state_check(struct server *srv, bool ok, const char *reason)
{
    const struct health_conf *hc = &srv->backend->health;
    struct server_health *h = &srv->health;

    h->last = ok ? HEALTH_RESULT_OK : HEALTH_RESULT_FAILED;
    snprintf(h->last_reason, sizeof(h->last_reason), "%s", reason != NULL ? reason : "");
    if (!ok)
        INC(h->check_failures);
    if (!LOAD(srv->down)) {
        /* Counting toward down; a pass while up also forgets old passes. */
        h->rise_count = 0;
        h->fall_count = ok ? 0 : h->fall_count + 1;
        if (h->fall_count < hc->fall)
            return HEALTH_SAME;
        h->fall_count = 0;
        if (!set_down(srv, true))
            return HEALTH_SAME;  /* a worker ejected it meanwhile and logged it */
        STORE(h->ejected_ms, 0); /* down by checks: only checks bring it back */
        INC(h->went_down);
        return HEALTH_WENT_DOWN;
    }
    h->fall_count = 0;
    h->rise_count = ok ? h->rise_count + 1 : 0;
    if (h->rise_count < hc->rise)
        return HEALTH_SAME;
    h->rise_count = 0;
    if (!set_down(srv, false))
        return HEALTH_SAME;
    came_up(srv);
    return HEALTH_WENT_UP;
}

bool health_state_last_up(const struct server *srv)
{
    const struct backend *be = srv->backend;

    for (size_t i = 0; i < be->nservers; i++)
        if (&be->servers[i] != srv && !LOAD(be->servers[i].down))
            return false;
    return true;
}

enum health_change health_state_passive(struct server *srv, enum health_passive what, bool ok,
                                        uint64_t now_ms)
{
    struct server_health *h = &srv->health;
    atomic_uint *count = what == HEALTH_PASSIVE_CONNECT ? &h->connect_fails : &h->status_fails;
    unsigned fails;

    if (ok) {
        /* Read first: most reports find 0 and need not dirty a shared line. */
        if (atomic_load_explicit(count, memory_order_relaxed) != 0)
            atomic_store_explicit(count, 0, memory_order_relaxed);
        return HEALTH_SAME;
    }
    if (LOAD(srv->down))
        return HEALTH_SAME; /* late news of a connection started before */
    fails = atomic_fetch_add_explicit(count, 1, memory_order_relaxed) + 1;
    if (fails < srv->backend->health.fall || health_state_last_up(srv))
        return HEALTH_SAME;
    if (!set_down(srv, true))
        return HEALTH_SAME;
    STORE(h->connect_fails, 0);
    STORE(h->status_fails, 0);
    STORE(h->ejected_ms, now_ms != 0 ? now_ms : 1);
    INC(h->went_down);
    return HEALTH_WENT_DOWN;
}

enum health_change health_state_retry(struct server *srv, unsigned retry_ms, uint64_t now_ms)
{
    uint64_t since = LOAD(srv->health.ejected_ms);

    if (since == 0 || !LOAD(srv->down) || now_ms < since + retry_ms)
        return HEALTH_SAME;
    if (!set_down(srv, false))
        return HEALTH_SAME;
    came_up(srv);
    return HEALTH_WENT_UP;
}

const struct server *health_state_match(const struct config *old, const struct server *srv)
{
    if (old == NULL)
        return NULL;
    for (size_t i = 0; i < old->nbackends; i++) {
        const struct backend *be = &old->backends[i];

        if (strcmp(be->name, srv->backend->name) != 0)
            continue;
        for (size_t k = 0; k < be->nservers; k++) {
            const struct server *o = &be->servers[k];
            if (strcmp(o->name, srv->name) == 0 && strcmp(o->addr.text, srv->addr.text) == 0)
                return o;
        }
        return NULL; /* backend names are unique */
    }
    return NULL;
}

void health_state_carry(struct server *to, const struct server *from, bool active)
{
    const struct server_health *f = &from->health;
    struct server_health *t = &to->health;
    uint64_t ejected = LOAD(f->ejected_ms);
    bool down = LOAD(from->down) && (active || ejected != 0);

    STORE(to->down, down);
    STORE(t->ejected_ms, down ? ejected : 0);
    STORE(t->connect_fails, LOAD(f->connect_fails));
    STORE(t->status_fails, LOAD(f->status_fails));
    STORE(t->check_failures, LOAD(f->check_failures));
    STORE(t->went_down, LOAD(f->went_down));
    STORE(t->went_up, LOAD(f->went_up));
    t->rise_count = f->rise_count;
    t->fall_count = f->fall_count;
    t->last = f->last;
    memcpy(t->last_reason, f->last_reason, sizeof(t->last_reason));
}

unsigned health_jitter(unsigned interval, uint32_t r)
{
    /* 85% .. 115% in 31 steps of 1% */
    uint64_t ms = (uint64_t)interval * (85 + r % 31) / 100;

    return ms == 0 ? 1 : ms > UINT32_MAX ? UINT32_MAX : (unsigned)ms;
}

unsigned health_first_delay(unsigned interval, uint32_t r)
{
    return interval == 0 ? 0 : r % interval;
}
