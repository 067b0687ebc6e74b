/*
 * A worker: one thread, one event loop, its own accept socket per listener.
 * Nothing here is shared with other workers but the config snapshot (read
 * only) and a few atomic counters.
 *
 * The main thread talks to a worker through its eventfd: a reload leaves a
 * new snapshot and fds in the mailbox, a stop sets stop_requested. The worker
 * answers through the gateway's ack eventfd once it has switched or let go of
 * its sockets, so the main thread knows when a socket may be closed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "config.h"
#include "cpu.h"
#include "gateway.h"
#include "http_session.h"
#include "log.h"
#include "metrics.h"
#include "session.h"
#include "splice_relay.h"
#include "tuning.h"
#include "worker.h"

/*
 * Takes one slot of the process and listener limits, or refuses. Returns 0
 * when the connection may proceed.
 */
static int worker_take_slot(struct worker *w, struct listener *l)
{
    unsigned limit = w->conf->max_connections;
    unsigned prev = atomic_fetch_add(&w->gw->active, 1);

    if (limit != 0 && prev >= limit)
        goto refuse_process;
    prev = atomic_fetch_add(&l->active, 1);
    if (l->max_connections != 0 && prev >= l->max_connections) {
        atomic_fetch_sub(&l->active, 1);
        goto refuse_process;
    }
    return 0;
refuse_process:
    atomic_fetch_sub(&w->gw->active, 1);
    return -1;
}

/* Gives back the slots taken by worker_take_slot (called when a session ends). */
static void worker_give_slot(struct worker *w, struct listener *l)
{
    atomic_fetch_sub(&l->active, 1);
    atomic_fetch_sub(&w->gw->active, 1);
}

/* New connection on one of our sockets: enforce limits, then hand it to a session. */
static void worker_on_accept(struct evconnlistener *el, evutil_socket_t fd, struct sockaddr *sa,
                             int salen, void *arg)
{
    struct accept_ctx *ctx = arg;
    struct worker *w = ctx->w;

    if (w->stopping) {
        close(fd);
        return;
    }
    if (worker_take_slot(w, ctx->l) < 0) {
        time_t now = time(NULL);
        if (now != w->last_refusal_log) {
            w->last_refusal_log = now;
            log_warnx("listener %s: connection limit reached (process %u, listener %u): "
                      "refusing new connections",
                      ctx->l->name, w->conf->max_connections, ctx->l->max_connections);
        }
        metrics_conn_refused(ctx->l);
        close(fd);
        return;
    }
    if (session_new(w, w->conf, ctx->l, fd, sa, salen) < 0)
        worker_give_slot(w, ctx->l);
}

/* accept() failed (e.g. EMFILE): log it; libevent keeps the listener. */
static void worker_on_accept_error(struct evconnlistener *el, void *arg)
{
    struct accept_ctx *ctx = arg;

    log_warn("listener %s: accept", ctx->l->name);
}

/* Stops accepting: frees the listener objects (the sockets stay open: the main thread's). */
static void worker_close_listeners(struct worker *w)
{
    for (size_t i = 0; w->listeners != NULL && i < w->nlisteners; i++) {
        if (w->listeners[i] == NULL)
            continue;
        evconnlistener_free(w->listeners[i]);
        w->listeners[i] = NULL;
    }
}

/*
 * Accepts for conf's listeners on fds (one per listener, -1 = none), after
 * freeing the previous listener objects. Returns 0, or -1 (logged) with this
 * worker accepting on none of them.
 */
static int worker_listen(struct worker *w, struct config *conf, const int *fds)
{
    size_t nl = conf->nlisteners;
    struct evconnlistener **listeners = calloc(nl ? nl : 1, sizeof(*listeners));
    struct accept_ctx *ctx = calloc(nl ? nl : 1, sizeof(*ctx));

    worker_close_listeners(w);
    free(w->listeners);
    free(w->accept_ctx);
    w->listeners = listeners;
    w->accept_ctx = ctx;
    w->nlisteners = listeners != NULL && ctx != NULL ? nl : 0;
    if (listeners == NULL || ctx == NULL) {
        log_errorx("worker %u: out of memory: not accepting", w->id);
        return -1;
    }
    for (size_t i = 0; i < nl; i++) {
        ctx[i].w = w;
        ctx[i].l = &conf->listeners[i];
        if (fds[i] < 0)
            continue; /* bind: none, reached through another listener */
        /* No LEV_OPT_CLOSE_ON_FREE: a reload frees these objects and keeps the sockets. */
        listeners[i] = evconnlistener_new(w->base, worker_on_accept, &ctx[i], LEV_OPT_CLOSE_ON_EXEC,
                                          -1, fds[i]);
        if (listeners[i] == NULL) {
            log_errorx("worker %u: listener %s: cannot accept on %s", w->id,
                       conf->listeners[i].name, conf->listeners[i].bind.text);
            worker_close_listeners(w);
            return -1;
        }
        evconnlistener_set_error_cb(listeners[i], worker_on_accept_error);
    }
    return 0;
}

/* Tells the main thread something it waits for happened (see worker_post_config). */
static void worker_ack(struct worker *w)
{
    uint64_t one = 1;

    if (w->gw->ack_fd >= 0 && write(w->gw->ack_fd, &one, sizeof(one)) < 0)
        log_warn("worker %u: ack", w->id);
}

/* Drain time is over: close what is still open. */
static void worker_on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct session *s;

    if (w->nsessions > 0)
        log_warnx("drain time over: closing %u open connection(s)", w->nsessions);
    while ((s = TAILQ_FIRST(&w->sessions)) != NULL)
        session_close(s, "drain-timeout");
    event_base_loopbreak(w->base);
}

/* Unlinks and frees r (its timer with it). */
static void worker_retired_free(struct worker_retired *r)
{
    LIST_REMOVE(r, link);
    if (r->timer != NULL)
        event_free(r->timer);
    for (size_t i = 0; i < r->nnames; i++)
        free(r->names[i]);
    free(r->names);
    free(r);
}

/* True when conf has a listener named name. */
static bool worker_conf_has(const struct config *conf, const char *name)
{
    for (size_t i = 0; i < conf->nlisteners; i++)
        if (strcmp(conf->listeners[i].name, name) == 0)
            return true;
    return false;
}

/*
 * The drain time after a reload that removed listeners is over: close what
 * is still open on them (unless a later reload brought the name back).
 */
static void worker_on_retired_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct worker_retired *r = arg;
    struct worker *w = r->w;
    struct session *s, *next;
    unsigned closed = 0;

    for (s = TAILQ_FIRST(&w->sessions); s != NULL; s = next) {
        next = TAILQ_NEXT(s, link);
        if (s->conf == w->conf || s->closing || worker_conf_has(w->conf, s->l->name))
            continue;
        for (size_t i = 0; i < r->nnames; i++) {
            if (strcmp(r->names[i], s->l->name) == 0) {
                session_close(s, "listener-removed");
                closed++;
                break;
            }
        }
    }
    if (closed > 0)
        log_warnx("drain time over: closed %u connection(s) of removed listener(s)", closed);
    worker_retired_free(r);
}

/*
 * After switching from old to conf: when conf dropped listeners of old, arms
 * a timer that closes their connections after conf's drain time.
 */
static void worker_watch_removed(struct worker *w, const struct config *old,
                                 const struct config *conf)
{
    struct timeval tv = {.tv_sec = conf->timeouts.drain / 1000,
                         .tv_usec = (conf->timeouts.drain % 1000) * 1000};
    struct worker_retired *r;

    for (size_t i = 0; i < old->nlisteners; i++)
        if (!worker_conf_has(conf, old->listeners[i].name))
            goto removed;
    return;
removed:
    if ((r = calloc(1, sizeof(*r))) == NULL)
        goto oom;
    r->w = w;
    LIST_INSERT_HEAD(&w->retired, r, link);
    if ((r->names = calloc(old->nlisteners, sizeof(*r->names))) == NULL)
        goto oom_r;
    for (size_t i = 0; i < old->nlisteners; i++) {
        if (worker_conf_has(conf, old->listeners[i].name))
            continue;
        if ((r->names[r->nnames] = strdup(old->listeners[i].name)) == NULL)
            goto oom_r;
        r->nnames++;
    }
    r->timer = evtimer_new(w->base, worker_on_retired_timeout, r);
    if (r->timer == NULL || evtimer_add(r->timer, &tv) < 0)
        goto oom_r;
    return;
oom_r:
    worker_retired_free(r);
oom:
    log_errorx("worker %u: out of memory: connections of removed listeners end on their own",
               w->id);
}

/*
 * A reload: new connections use conf from now on, accepted on fds. Sessions
 * keep the snapshot they started with; idle server connections of the old
 * one are closed (they belong to old servers).
 */
static void worker_switch(struct worker *w, struct config *conf, const int *fds)
{
    struct config *old = w->conf;

    worker_listen(w, conf, fds);
    w->conf = conf; /* the mailbox's reference */
    http_pool_free(w);
    worker_watch_removed(w, old, conf);
    config_unref(old);
}

/* Stops accepting, ends idle connections, and leaves when idle or when drain ends. */
static void worker_stop(struct worker *w)
{
    struct session *s, *next;
    struct timeval tv;

    w->stopping = true;
    worker_close_listeners(w);
    atomic_store(&w->stopped_accepting, true);
    worker_ack(w);
    http_pool_free(w);
    for (s = TAILQ_FIRST(&w->sessions); s != NULL; s = next) {
        next = TAILQ_NEXT(s, link);
        if (s->ops->on_stop != NULL)
            s->ops->on_stop(s); /* e.g. idle keep-alive connections end now */
    }
    if (w->nsessions == 0) {
        event_base_loopbreak(w->base);
        return;
    }
    tv.tv_sec = w->conf->timeouts.drain / 1000;
    tv.tv_usec = (w->conf->timeouts.drain % 1000) * 1000;
    w->drain_ev = evtimer_new(w->base, worker_on_drain_timeout, w);
    if (w->drain_ev == NULL || evtimer_add(w->drain_ev, &tv) < 0)
        worker_on_drain_timeout(-1, 0, w);
}

/* The main thread woke us: a new snapshot in the mailbox, a stop, or both. */
static void worker_on_notify(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct config *conf;
    int *fds;
    uint64_t v, gen;

    if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        log_warn("worker %u: notify read", w->id);
    pthread_mutex_lock(&w->mbox.lock);
    conf = w->mbox.conf;
    fds = w->mbox.fds;
    gen = w->mbox.gen;
    w->mbox.conf = NULL;
    w->mbox.fds = NULL;
    pthread_mutex_unlock(&w->mbox.lock);
    if (conf != NULL) {
        if (!w->stopping && !atomic_load(&w->stop_requested))
            worker_switch(w, conf, fds);
        else
            config_unref(conf); /* stopping anyway: only acknowledge */
        free(fds);
        atomic_store(&w->gen_applied, gen);
        worker_ack(w);
    }
    if (atomic_load(&w->stop_requested) && !w->stopping)
        worker_stop(w);
}

void worker_timer_add(struct worker *w, struct event *ev, unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    unsigned i;

    for (i = 0; i < w->ndurations; i++) {
        if (w->durations[i].ms == ms) {
            evtimer_add(ev, w->durations[i].tv);
            return;
        }
    }
    if (i < WORKER_TIMER_DURATIONS) {
        const struct timeval *common = event_base_init_common_timeout(w->base, &tv);

        if (common != NULL) {
            w->durations[w->ndurations++] = (struct worker_duration){.ms = ms, .tv = common};
            evtimer_add(ev, common);
            return;
        }
    }
    evtimer_add(ev, &tv);
}

void worker_session_ended(struct worker *w)
{
    if (w->stopping && w->nsessions == 0)
        event_base_loopbreak(w->base);
}

/*
 * The worker's event loop. With epoll's changelist, an event added and
 * removed within one loop turn (a write interest per response) costs no
 * epoll_ctl at all.
 */
static struct event_base *worker_base_new(void)
{
    struct event_config *cfg = event_config_new();
    struct event_base *base;

    if (cfg == NULL)
        return NULL;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return base;
}

int worker_init(struct worker *w, struct gateway *gw, unsigned id, struct config *conf,
                const int *listen_fds)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->gw = gw;
    w->notify_fd = -1;
    w->relay_nap_fd = -1;
    LIST_INIT(&w->relay_napping);
    TAILQ_INIT(&w->sessions);
    LIST_INIT(&w->retired);
    w->conf = config_ref(conf);
    if (pthread_mutex_init(&w->mbox.lock, NULL) != 0)
        goto fail;
    w->mbox_ready = true;
    w->base = worker_base_new();
    if (w->base == NULL)
        goto fail;
    if (cpu_worker_init(w) < 0)
        goto fail;
    w->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->notify_fd < 0)
        goto fail;
    w->notify_ev = event_new(w->base, w->notify_fd, EV_READ | EV_PERSIST, worker_on_notify, w);
    if (w->notify_ev == NULL || event_add(w->notify_ev, NULL) < 0)
        goto fail;
    if (worker_listen(w, conf, listen_fds) < 0)
        goto fail;
    return 0;
fail:
    log_error("worker %u: cannot initialise", id);
    worker_join_and_free(w); /* thread not started: only frees */
    return -1;
}

/* After a turn with I/O for this many sessions, the worker naps (worker_run). */
#define WORKER_BUSY_SESSIONS 2

/* The nap after a busy turn, µs; TLSGATE_BUSY_NAP=µs overrides (0: never nap). */
#define WORKER_BUSY_NAP_US 20

/*
 * The worker's loop, with busy naps. A worker that blocks in epoll_wait as
 * soon as its sockets are drained must be woken by the next byte, and under
 * load that byte comes from another CPU, which pays an inter-processor
 * interrupt for it (docs/performance.md, "Busy naps"). So once a turn has
 * had I/O for two sessions or more, the worker polls without blocking, and
 * when a poll finds nothing it sleeps a short nap on its own timer instead
 * of blocking: what arrives meanwhile is taken in one turn, and no other CPU
 * has to wake it. A nap that brought nothing sends it back to blocking. A
 * worker with work always waiting never naps, and a lone client (one
 * session's I/O a turn) never makes it nap: under load, bytes wait at most
 * one nap. Returns when the loop is broken.
 */
static void worker_run(struct worker *w)
{
    struct timespec nap = {.tv_nsec = tuning_env_us("TLSGATE_BUSY_NAP", WORKER_BUSY_NAP_US) * 1000};
    bool busy = false, napped = false;

    if (nap.tv_nsec == 0) {
        event_base_dispatch(w->base);
        return;
    }
    (void)prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0); /* a nap of 20 µs, not 20 + 50 */
    while (!event_base_got_break(w->base) && !event_base_got_exit(w->base)) {
        w->turn++;
        w->turn_sessions = 0;
        if (event_base_loop(w->base, EVLOOP_ONCE | (busy ? EVLOOP_NONBLOCK : 0)) != 0)
            break; /* an error, or no events left: as event_base_dispatch would */
        if (!busy) {
            busy = w->turn_sessions >= WORKER_BUSY_SESSIONS;
            napped = false;
        } else if (w->turn_sessions > 0) {
            napped = false; /* more was waiting: poll again */
        } else if (napped) {
            busy = false; /* a whole nap brought nothing: block again */
        } else {
            (void)nanosleep(&nap, NULL);
            napped = true;
        }
    }
}

/* Thread body: run the loop until stopped. */
static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char name[16];

    snprintf(name, sizeof(name), "w%u", w->id);
    log_set_thread_name(name);
    cpu_worker_enter(w);
    worker_run(w);
    cpu_worker_leave(w);
    return NULL;
}

int worker_start(struct worker *w)
{
    int err = pthread_create(&w->thread, NULL, worker_main, w);

    if (err != 0) {
        errno = err;
        log_error("worker %u: cannot start thread", w->id);
        return -1;
    }
    w->started = true;
    return 0;
}

/* Wakes the worker's loop (worker_on_notify). */
static void worker_wake(struct worker *w)
{
    uint64_t one = 1;

    if (w->notify_fd >= 0 && write(w->notify_fd, &one, sizeof(one)) < 0)
        log_warn("worker %u: notify", w->id);
}

void worker_request_stop(struct worker *w)
{
    atomic_store(&w->stop_requested, true);
    worker_wake(w);
}

void worker_post_config(struct worker *w, struct config *conf, int *fds, uint64_t gen)
{
    struct config *stale;
    int *stale_fds;

    pthread_mutex_lock(&w->mbox.lock);
    stale = w->mbox.conf;
    stale_fds = w->mbox.fds;
    w->mbox.conf = config_ref(conf);
    w->mbox.fds = fds;
    w->mbox.gen = gen;
    pthread_mutex_unlock(&w->mbox.lock);
    config_unref(stale);
    free(stale_fds);
    worker_wake(w);
}

void worker_join_and_free(struct worker *w)
{
    struct session *s;

    if (w->started)
        pthread_join(w->thread, NULL);
    while ((s = TAILQ_FIRST(&w->sessions)) != NULL)
        session_close(s, "shutdown");
    splice_relay_worker_free(w); /* after the sessions: they return their pipes */
    http_pool_free(w);
    worker_close_listeners(w);
    free(w->listeners);
    free(w->accept_ctx);
    while (!LIST_EMPTY(&w->retired))
        worker_retired_free(LIST_FIRST(&w->retired));
    if (w->mbox_ready) {
        config_unref(w->mbox.conf); /* a handover the thread never took */
        free(w->mbox.fds);
        pthread_mutex_destroy(&w->mbox.lock);
    }
    if (w->drain_ev)
        event_free(w->drain_ev);
    if (w->notify_ev)
        event_free(w->notify_ev);
    if (w->notify_fd >= 0)
        close(w->notify_fd);
    cpu_worker_free(w); /* its timer is on w->base */
    if (w->base)
        event_base_free(w->base);
    config_unref(w->conf);
    memset(w, 0, sizeof(*w));
}

void worker_release_slot(struct worker *w, struct listener *l)
{
    worker_give_slot(w, l);
}
