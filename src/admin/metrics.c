/*
 * The counters the data path feeds (include/metrics.h). Every call is a few
 * relaxed atomic adds on counters that belong to the listener or server of
 * the config snapshot: nothing is ordered against anything else, readers
 * (the admin endpoint on the main thread) only want each value eventually.
 * Each call also credits the listener with work units for CPU attribution
 * (cpu_work(), a plain add into the calling worker's own array).
 *
 * TLS handshake latency histogram, upper bounds in milliseconds:
 *   0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, +Inf
 * A loopback ECDHE handshake with an RSA-2048 or P-256 key lands in the first
 * buckets; a loaded or starved gateway shows up in the tail. Buckets are kept
 * per bucket (not cumulative) so a handshake costs one add; /metrics sums
 * them into Prometheus' cumulative form.
 *
 * The recent access-log lines for the dashboard live outside the snapshot,
 * keyed by listener name, so they survive a configuration reload; a mutex
 * guards them (a line is written with a write(2) anyway, the lock is cheap
 * next to it).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "metrics.h"

#define RELAXED memory_order_relaxed

const uint64_t metrics_hs_bounds_usec[METRICS_HS_BUCKETS - 1] = {
    500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 500000, 1000000,
};

void metrics_conn_open(struct listener *l)
{
    atomic_fetch_add_explicit(&l->stats.conns_total, 1, RELAXED);
    cpu_work(l, CPU_W_CONN);
}

void metrics_conn_refused(struct listener *l)
{
    atomic_fetch_add_explicit(&l->stats.conns_refused, 1, RELAXED);
}

void metrics_bytes(struct listener *l, uint64_t in, uint64_t out)
{
    atomic_fetch_add_explicit(&l->stats.bytes_in, in, RELAXED);
    atomic_fetch_add_explicit(&l->stats.bytes_out, out, RELAXED);
    cpu_work(l, (in + out) * cpu_byte_weight(l->mode));
}

void metrics_handshake(struct listener *l, uint64_t usec, bool ok)
{
    size_t b = 0;

    while (b < METRICS_HS_BUCKETS - 1 && usec > metrics_hs_bounds_usec[b])
        b++;
    atomic_fetch_add_explicit(&l->stats.handshake_buckets[b], 1, RELAXED);
    atomic_fetch_add_explicit(&l->stats.handshake_usec_sum, usec, RELAXED);
    atomic_fetch_add_explicit(ok ? &l->stats.handshakes_ok : &l->stats.handshakes_failed, 1,
                              RELAXED);
    cpu_work(l, CPU_W_HANDSHAKE);
}

void metrics_request(struct listener *l, unsigned status)
{
    unsigned cls = status / 100;

    if (cls < 1 || cls > 5)
        cls = 0; /* no response, or a status outside 1xx..5xx */
    atomic_fetch_add_explicit(&l->stats.requests[cls], 1, RELAXED);
    cpu_work(l, CPU_W_REQUEST);
}

void metrics_server_pick(struct server *srv)
{
    atomic_fetch_add_explicit(&srv->stats.picks, 1, RELAXED);
}

/* ---- recent access-log lines ---- */

/* The last METRICS_RECENT lines of one listener name: a ring. */
struct recent {
    char *name;                  /* listener name (owned) */
    char *lines[METRICS_RECENT]; /* owned; NULL = empty slot */
    size_t lens[METRICS_RECENT]; /* length of each line */
    size_t next;                 /* slot the next line goes to */
    struct recent *link;         /* next listener in the store */
};

static pthread_mutex_t recent_lock = PTHREAD_MUTEX_INITIALIZER;
static struct recent *recent_head; /* guarded by recent_lock */

/* The ring of name, created if absent. Call with recent_lock held. NULL: out of memory. */
static struct recent *recent_find(const char *name, bool create)
{
    struct recent *r;

    for (r = recent_head; r != NULL; r = r->link)
        if (strcmp(r->name, name) == 0)
            return r;
    if (!create || (r = calloc(1, sizeof(*r))) == NULL)
        return NULL;
    if ((r->name = strdup(name)) == NULL) {
        free(r);
        return NULL;
    }
    r->link = recent_head;
    recent_head = r;
    return r;
}

void metrics_recent_add(const struct listener *l, const char *json_line, size_t len)
{
    struct recent *r;
    char *copy, *old = NULL;

    while (len > 0 && (json_line[len - 1] == '\n' || json_line[len - 1] == '\r'))
        len--;
    if ((copy = malloc(len + 1)) == NULL) /* allocate outside the lock */
        return;
    memcpy(copy, json_line, len);
    copy[len] = '\0';
    pthread_mutex_lock(&recent_lock);
    r = recent_find(l->name, true);
    if (r != NULL) {
        old = r->lines[r->next];
        r->lines[r->next] = copy;
        r->lens[r->next] = len;
        r->next = (r->next + 1) % METRICS_RECENT;
        copy = NULL;
    }
    pthread_mutex_unlock(&recent_lock);
    free(old);
    free(copy);
}

void metrics_recent_foreach(const char *name, void (*fn)(const char *line, size_t len, void *arg),
                            void *arg)
{
    struct recent *r;

    pthread_mutex_lock(&recent_lock);
    r = recent_find(name, false);
    for (size_t i = 0; r != NULL && i < METRICS_RECENT; i++) {
        size_t slot = (r->next + i) % METRICS_RECENT; /* oldest first */
        if (r->lines[slot] != NULL)
            fn(r->lines[slot], r->lens[slot], arg);
    }
    pthread_mutex_unlock(&recent_lock);
}

void metrics_recent_free(void)
{
    struct recent *r;

    pthread_mutex_lock(&recent_lock);
    while ((r = recent_head) != NULL) {
        recent_head = r->link;
        for (size_t i = 0; i < METRICS_RECENT; i++)
            free(r->lines[i]);
        free(r->name);
        free(r);
    }
    pthread_mutex_unlock(&recent_lock);
}
