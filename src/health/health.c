/*
 * The checker: one per configuration snapshot, on the main thread's loop.
 *
 * Every server of a backend with checks has a timer; when it fires one probe
 * (health_probe.c) runs, and when that ends its result goes through the
 * state machine (health_state.c) and the next check is due a jittered
 * interval later. The first checks are spread over one interval, so a
 * gateway with many servers does not open them all at once.
 *
 * Passive reports come from the workers through health_report_*(), which
 * only touch the server's atomics. Backends without checks get one sweep
 * timer that gives passively ejected servers back after `interval` ms.
 *
 * Each transition is logged once, by whoever made it.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <event2/event.h>

#include "config.h"
#include "health.h"
#include "health_int.h"
#include "log.h"

/* Passive retries of backends without checks are looked at this often at most. */
#define SWEEP_MIN_MS 50
#define SWEEP_MAX_MS 1000

/* One checked server. */
struct hserver {
    struct health *h;
    struct server *srv;         /* in h->conf */
    struct event *timer;        /* next check */
    struct health_probe *probe; /* the check running now, or NULL */
};

struct health {
    struct event_base *base;
    struct config *conf;     /* one reference */
    struct hserver *servers; /* servers of backends with checks */
    size_t nservers;
    SSL_CTX **tls_ctx;   /* by backend index; set for check: tls */
    struct event *sweep; /* passive retries of backends without checks; may be NULL */
    unsigned sweep_ms;
};

/* Main thread only: jitter needs no quality, only independence between servers. */
static uint64_t rng_state;

static uint32_t health_random(void)
{
    if (rng_state == 0 && getrandom(&rng_state, sizeof(rng_state), GRND_NONBLOCK) < 0)
        rng_state = (uint64_t)time(NULL);
    rng_state |= 1;
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void arm_ms(struct event *ev, unsigned ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    evtimer_add(ev, &tv);
}

/* The one log line of a transition. how: "(3 failed checks)" and the like. */
static void log_change(const struct server *srv, enum health_change c, const char *reason,
                       const char *how)
{
    if (c == HEALTH_WENT_DOWN)
        log_warnx("backend %s: server %s (%s) is DOWN: %s %s", srv->backend->name, srv->name,
                  srv->addr.text, reason != NULL ? reason : "check failed", how);
    else if (c == HEALTH_WENT_UP)
        log_info("backend %s: server %s (%s) is UP %s", srv->backend->name, srv->name,
                 srv->addr.text, how);
}

static void hs_on_timer(evutil_socket_t fd, short what, void *arg);

/* A check of hs ended: state, log, next check. */
static void hs_on_result(void *arg, bool ok, const char *reason)
{
    struct hserver *hs = arg;
    struct server *srv = hs->srv;
    const struct health_conf *hc = &srv->backend->health;
    enum health_change c;
    char how[64];

    hs->probe = NULL;
    c = health_state_check(srv, ok, reason);
    if (c == HEALTH_WENT_DOWN)
        snprintf(how, sizeof(how), "(%u failed check%s)", hc->fall, hc->fall == 1 ? "" : "s");
    else
        snprintf(how, sizeof(how), "(%u successful check%s)", hc->rise, hc->rise == 1 ? "" : "s");
    log_change(srv, c, reason, how);
    if (!ok && c == HEALTH_SAME && log_enabled(LOG_LEVEL_DEBUG))
        log_debug("backend %s: server %s (%s): check failed: %s", srv->backend->name, srv->name,
                  srv->addr.text, reason);
    arm_ms(hs->timer, health_jitter(hc->interval, health_random()));
}

/* Time for hs's next check. */
static void hs_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct hserver *hs = arg;
    struct health *h = hs->h;
    char why[128];

    hs->probe =
        health_probe_start(h->base, hs->srv, h->tls_ctx[hs->srv->backend - h->conf->backends],
                           hs_on_result, hs, why, sizeof(why));
    if (hs->probe == NULL)
        hs_on_result(hs, false, why);
}

/* Backends without checks: passively ejected servers get another try after interval. */
static void health_on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct health *h = arg;
    uint64_t now = now_ms();
    char how[64];

    for (size_t i = 0; i < h->conf->nbackends; i++) {
        struct backend *be = &h->conf->backends[i];

        if (be->health.check != HEALTH_NONE)
            continue;
        for (size_t k = 0; k < be->nservers; k++) {
            struct server *srv = &be->servers[k];
            if (health_state_retry(srv, be->health.interval, now) == HEALTH_SAME)
                continue;
            snprintf(how, sizeof(how), "(another try %u ms after a passive ejection)",
                     be->health.interval);
            log_change(srv, HEALTH_WENT_UP, "", how);
        }
    }
    arm_ms(h->sweep, h->sweep_ms);
}

/* Carries state from old and counts the servers to check; sets up the sweep period. */
static size_t health_prepare(struct health *h, const struct config *old)
{
    size_t n = 0;

    for (size_t i = 0; i < h->conf->nbackends; i++) {
        struct backend *be = &h->conf->backends[i];
        bool active = be->health.check != HEALTH_NONE;

        for (size_t k = 0; k < be->nservers; k++) {
            const struct server *o = health_state_match(old, &be->servers[k]);
            if (o != NULL)
                health_state_carry(&be->servers[k], o, active);
        }
        if (active) {
            n += be->nservers;
        } else {
            unsigned ms = be->health.interval / 4;
            ms = ms < SWEEP_MIN_MS ? SWEEP_MIN_MS : ms > SWEEP_MAX_MS ? SWEEP_MAX_MS : ms;
            if (h->sweep_ms == 0 || ms < h->sweep_ms)
                h->sweep_ms = ms;
        }
    }
    return n;
}

/* The TLS contexts of tls checks. Returns 0 or -1 (logged). */
static int health_tls_setup(struct health *h)
{
    char why[160];

    h->tls_ctx = calloc(h->conf->nbackends ? h->conf->nbackends : 1, sizeof(*h->tls_ctx));
    if (h->tls_ctx == NULL) {
        log_errorx("health: out of memory");
        return -1;
    }
    for (size_t i = 0; i < h->conf->nbackends; i++) {
        const struct backend *be = &h->conf->backends[i];
        if (be->health.check != HEALTH_TLS)
            continue;
        h->tls_ctx[i] = health_probe_tls_ctx(be, why, sizeof(why));
        if (h->tls_ctx[i] == NULL) {
            log_errorx("backend %s: %s", be->name, why);
            return -1;
        }
    }
    return 0;
}

struct health *health_start(struct event_base *base, struct config *conf, const struct config *old)
{
    struct health *h = calloc(1, sizeof(*h));
    size_t n;

    if (h == NULL) {
        log_errorx("health: out of memory");
        return NULL;
    }
    h->base = base;
    h->conf = config_ref(conf);
    n = health_prepare(h, old);
    h->servers = calloc(n ? n : 1, sizeof(*h->servers));
    if (h->servers == NULL || health_tls_setup(h) < 0)
        goto fail;
    for (size_t i = 0; i < conf->nbackends; i++) {
        struct backend *be = &conf->backends[i];
        if (be->health.check == HEALTH_NONE)
            continue;
        for (size_t k = 0; k < be->nservers; k++) {
            struct hserver *hs = &h->servers[h->nservers];
            hs->h = h;
            hs->srv = &be->servers[k];
            if ((hs->timer = evtimer_new(base, hs_on_timer, hs)) == NULL)
                goto oom;
            h->nservers++;
            arm_ms(hs->timer, health_first_delay(be->health.interval, health_random()));
        }
    }
    if (h->sweep_ms != 0) {
        if ((h->sweep = evtimer_new(base, health_on_sweep, h)) == NULL)
            goto oom;
        arm_ms(h->sweep, h->sweep_ms);
    }
    return h;
oom:
    log_errorx("health: out of memory");
fail:
    health_stop(h);
    return NULL;
}

void health_stop(struct health *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->nservers; i++) {
        health_probe_cancel(h->servers[i].probe);
        event_free(h->servers[i].timer);
    }
    if (h->sweep != NULL)
        event_free(h->sweep);
    for (size_t i = 0; h->tls_ctx != NULL && i < h->conf->nbackends; i++)
        SSL_CTX_free(h->tls_ctx[i]);
    free(h->tls_ctx);
    free(h->servers);
    config_unref(h->conf);
    free(h);
}

/* A passive report: the worker that ejects the server logs it. */
static void health_passive(struct server *srv, enum health_passive kind, bool ok, const char *what)
{
    const struct health_conf *hc;
    char how[96];

    if (srv == NULL || health_state_passive(srv, kind, ok, now_ms()) != HEALTH_WENT_DOWN)
        return;
    hc = &srv->backend->health;
    snprintf(how, sizeof(how), "(%u in a row in traffic; %s)", hc->fall,
             hc->check != HEALTH_NONE ? "checks will bring it back"
                                      : "another try after the check interval");
    log_change(srv, HEALTH_WENT_DOWN, what, how);
}

void health_report_connect(struct server *srv, bool ok)
{
    health_passive(srv, HEALTH_PASSIVE_CONNECT, ok, "connect failed");
}

void health_report_status(struct server *srv, unsigned status)
{
    char what[32];

    if (status < 500 || status > 599) {
        health_passive(srv, HEALTH_PASSIVE_ANSWER, true, NULL);
        return;
    }
    snprintf(what, sizeof(what), "status %u", status);
    health_passive(srv, HEALTH_PASSIVE_ANSWER, false, what);
}
