/*
 * Session lifecycle. A session is created on accept, owns both connections
 * and its timer, and is destroyed in exactly one place: session_close().
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "config.h"
#include "http_session.h"
#include "log.h"
#include "metrics.h"
#include "passthrough.h"
#include "session.h"
#include "tls_ctx.h"
#include "worker.h"

/* The session timer fired: the mode decides what the deadline meant. */
static void session_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct session *s = arg;

    s->ops->on_timer(s);
}

/* The ops table for a listener's mode, or NULL when the mode is not built. */
static const struct session_ops *session_ops_for(const struct listener *l)
{
    switch (l->mode) {
    case MODE_PASSTHROUGH:
        return &passthrough_ops;
    case MODE_OFFLOAD:
    case MODE_BRIDGE:
    case MODE_HTTP:
        return &http_ops;
    }
    return NULL;
}

int session_new(struct worker *w, struct config *conf, struct listener *l, evutil_socket_t fd,
                const struct sockaddr *peer, int peerlen)
{
    struct session *s;
    socklen_t locallen = sizeof(s->local);

    s = calloc(1, sizeof(*s));
    if (s == NULL)
        goto err_fd;
    s->ops = session_ops_for(l);
    if (s->ops == NULL)
        goto err_session;
    if ((size_t)peerlen > sizeof(s->client_addr))
        peerlen = sizeof(s->client_addr);
    memcpy(&s->client_addr, peer, (size_t)peerlen);
    if (getsockname(fd, (struct sockaddr *)&s->local, &locallen) < 0)
        memset(&s->local, 0, sizeof(s->local));
    s->fd = fd;
    if (!s->ops->opens_client) {
        s->client.bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
        if (s->client.bev == NULL)
            goto err_session;
    }
    s->timer = evtimer_new(w->base, session_on_timer, s);
    if (s->timer == NULL)
        goto err_bev;

    s->id = ((uint64_t)w->id << 48) | ++w->next_id;
    s->w = w;
    s->conf = config_ref(conf);
    s->l = l;
    s->client.s = s->server.s = s;
    s->client.peer = &s->server;
    s->server.peer = &s->client;
    event_base_gettimeofday_cached(w->base, &s->started);
    s->last_io = s->started;
    TAILQ_INSERT_TAIL(&w->sessions, s, link);
    w->nsessions++;
    metrics_conn_open(l);
    s->ops->start(s);
    return 0;

err_bev:
    if (s->client.bev != NULL)
        bufferevent_free(s->client.bev); /* closes fd */
    else
        close(fd);
    free(s);
    return -1;
err_session:
    free(s);
err_fd:
    log_warnx("listener %s: cannot set up a session: out of memory", l->name);
    close(fd);
    return -1;
}

/*
 * A TLS connection being freed: mark it shut down so OpenSSL keeps its
 * session for resumption (libevent never sends close_notify itself).
 */
static void session_tls_closing(struct bufferevent *bev)
{
    SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;

    if (ssl != NULL)
        tls_ssl_closing(ssl);
}

void session_set_timer(struct session *s, unsigned ms)
{
    worker_timer_add(s->w, s->timer, ms);
}

void session_touch(struct session *s)
{
    struct worker *w = s->w;

    event_base_gettimeofday_cached(w->base, &s->last_io);
    if (s->io_turn != w->turn) { /* counted once a turn, for busy naps (worker_run) */
        s->io_turn = w->turn;
        w->turn_sessions++;
    }
}

void session_close(struct session *s, const char *result)
{
    struct worker *w = s->w;

    if (s->closing)
        return;
    s->closing = true;
    if (s->result == NULL)
        s->result = result;
    s->ops->log(s);
    event_free(s->timer);
    session_tls_closing(s->client.bev);
    session_tls_closing(s->server.bev);
    if (s->client.bev)
        bufferevent_free(s->client.bev); /* closes s->fd */
    else if (s->ops->opens_client && s->fd >= 0)
        close(s->fd);
    if (s->server.bev)
        bufferevent_free(s->server.bev);
    if (s->srv)
        atomic_fetch_sub(&s->srv->active, 1);
    if (s->ops->free)
        s->ops->free(s);
    free(s->hello);
    TAILQ_REMOVE(&w->sessions, s, link);
    w->nsessions--;
    worker_release_slot(w, s->l);
    config_unref(s->conf);
    free(s);
    worker_session_ended(w);
}
