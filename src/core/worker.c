/*
 * A worker: one thread, one event loop, its own accept socket per listener.
 * Nothing here is shared with other workers but the config snapshot (read
 * only) and a few atomic counters.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "config.h"
#include "cpu.h"
#include "gateway.h"
#include "http_session.h"
#include "log.h"
#include "session.h"
#include "splice_relay.h"
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

/* Stops accepting: frees the listener objects (closing our sockets). */
static void worker_close_listeners(struct worker *w)
{
    for (size_t i = 0; i < w->nlisteners; i++) {
        if (w->listeners[i] == NULL)
            continue;
        evconnlistener_free(w->listeners[i]);
        w->listeners[i] = NULL;
    }
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

/* The main thread woke us: stop accepting, then leave when idle or when drain ends. */
static void worker_on_notify(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct session *s, *next;
    uint64_t v;
    struct timeval tv;

    if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        log_warn("worker %u: notify read", w->id);
    if (w->stopping)
        return;
    w->stopping = true;
    worker_close_listeners(w);
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
                int *listen_fds)
{
    size_t nl = conf->nlisteners;

    memset(w, 0, sizeof(*w));
    w->id = id;
    w->gw = gw;
    w->notify_fd = -1;
    TAILQ_INIT(&w->sessions);
    w->conf = config_ref(conf);
    w->base = worker_base_new();
    w->listeners = calloc(nl ? nl : 1, sizeof(*w->listeners));
    w->accept_ctx = calloc(nl ? nl : 1, sizeof(*w->accept_ctx));
    w->nlisteners = nl;
    if (w->base == NULL || w->listeners == NULL || w->accept_ctx == NULL)
        goto fail;
    if (cpu_worker_init(w) < 0)
        goto fail;
    w->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->notify_fd < 0)
        goto fail;
    w->notify_ev = event_new(w->base, w->notify_fd, EV_READ | EV_PERSIST, worker_on_notify, w);
    if (w->notify_ev == NULL || event_add(w->notify_ev, NULL) < 0)
        goto fail;
    for (size_t i = 0; i < nl; i++) {
        struct accept_ctx *ctx = &w->accept_ctx[i];
        ctx->w = w;
        ctx->l = &conf->listeners[i];
        if (listen_fds[i] < 0)
            continue; /* bind: none, reached through another listener */
        w->listeners[i] =
            evconnlistener_new(w->base, worker_on_accept, ctx,
                               LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, listen_fds[i]);
        if (w->listeners[i] == NULL)
            goto fail;
        listen_fds[i] = -1; /* owned by the listener now */
        evconnlistener_set_error_cb(w->listeners[i], worker_on_accept_error);
    }
    return 0;
fail:
    log_error("worker %u: cannot initialise", id);
    for (size_t i = 0; i < nl; i++)
        if (listen_fds[i] >= 0)
            close(listen_fds[i]);
    worker_join_and_free(w); /* thread not started: only frees */
    return -1;
}

/* Thread body: run the loop until stopped. */
static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char name[16];

    snprintf(name, sizeof(name), "w%u", w->id);
    log_set_thread_name(name);
    cpu_worker_enter(w);
    event_base_dispatch(w->base);
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

void worker_request_stop(struct worker *w)
{
    uint64_t one = 1;

    if (w->notify_fd >= 0 && write(w->notify_fd, &one, sizeof(one)) < 0)
        log_warn("worker %u: notify", w->id);
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
