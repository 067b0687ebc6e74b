/*
 * Connections from the HTTP engine to servers, and the per-worker pool of
 * idle keep-alive ones.
 *
 * A request takes an idle connection to its server from the pool when there
 * is one (no handshake, no connect), else opens one: plain TCP for offload,
 * verified TLS for backends with tls: (bridge). A connect that fails or times
 * out moves to the next server of the backend: nothing was sent yet, so this
 * is always safe. After a clean exchange the connection goes back to the
 * pool, most recently used first; a pooled connection that the server closes
 * or writes to is dropped. The pool belongs to one worker: no locks.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "balance.h"
#include "config.h"
#include "health.h"
#include "http/http_engine.h"
#include "http_session.h"
#include "log.h"
#include "metrics.h"
#include "proxy_proto.h"
#include "server_queue.h"
#include "session.h"
#include "tls_ctx.h"
#include "worker.h"

/* Idle connections kept per worker, over all servers. */
#define POOL_MAX_IDLE 256

/* How long an idle connection stays in the pool (servers often close at 5-60 s). */
#define POOL_IDLE_MS 4000

struct pool_conn {
    struct bufferevent *bev; /* the idle connection */
    struct server *srv;      /* where it goes (in conf) */
    struct config *conf;     /* keeps srv alive (one reference) */
    bool tls;                /* bev is a TLS bufferevent */
    struct event *timer;     /* drops it after POOL_IDLE_MS */
    struct http_pool *pool;  /* owner */
    TAILQ_ENTRY(pool_conn) link;
};

struct http_pool {
    TAILQ_HEAD(pool_list, pool_conn) idle; /* most recently used first */
    unsigned nidle;
    struct pool_list spare; /* entries not in use, timer kept: no allocation per request */
};

/* Frees a server connection; a TLS one is marked shut down so its session stays resumable. */
static void up_free_bev(struct bufferevent *bev)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);

    if (ssl != NULL)
        tls_ssl_closing(ssl);
    bufferevent_free(bev);
}

/* pc (out of the idle list) has no connection any more: keep it, with its timer, for the next. */
static void pool_conn_recycle(struct pool_conn *pc)
{
    evtimer_del(pc->timer);
    config_unref(pc->conf);
    pc->bev = NULL;
    pc->srv = NULL;
    pc->conf = NULL;
    TAILQ_INSERT_HEAD(&pc->pool->spare, pc, link);
}

/* Closes an idle connection and recycles its entry. */
static void pool_conn_free(struct pool_conn *pc)
{
    TAILQ_REMOVE(&pc->pool->idle, pc, link);
    pc->pool->nidle--;
    up_free_bev(pc->bev);
    pool_conn_recycle(pc);
}

/* An idle connection got bytes or a close from its server: it is of no use now. */
static void pool_on_read(struct bufferevent *bev, void *arg)
{
    pool_conn_free(arg);
}

static void pool_on_event(struct bufferevent *bev, short what, void *arg)
{
    pool_conn_free(arg);
}

static void pool_on_timer(evutil_socket_t fd, short what, void *arg)
{
    pool_conn_free(arg);
}

/* Takes an idle connection to srv out of w's pool, or NULL. */
static struct pool_conn *pool_take(struct worker *w, const struct server *srv)
{
    struct pool_conn *pc;

    if (w->pool == NULL)
        return NULL;
    TAILQ_FOREACH(pc, &w->pool->idle, link)
    {
        if (pc->srv == srv) {
            TAILQ_REMOVE(&w->pool->idle, pc, link);
            w->pool->nidle--;
            return pc;
        }
    }
    return NULL;
}

/* Puts s->server into w's pool. Returns 0, or -1 when it has to be closed instead. */
static int pool_put(struct session *s)
{
    struct worker *w = s->w;
    struct pool_conn *pc;

    if (w->stopping)
        return -1;
    if (w->pool == NULL) {
        if ((w->pool = calloc(1, sizeof(*w->pool))) == NULL)
            return -1;
        TAILQ_INIT(&w->pool->idle);
        TAILQ_INIT(&w->pool->spare);
    }
    if (w->pool->nidle >= POOL_MAX_IDLE)
        pool_conn_free(TAILQ_LAST(&w->pool->idle, pool_list));
    if ((pc = TAILQ_FIRST(&w->pool->spare)) != NULL) {
        TAILQ_REMOVE(&w->pool->spare, pc, link);
    } else {
        if ((pc = calloc(1, sizeof(*pc))) == NULL)
            return -1;
        if ((pc->timer = evtimer_new(w->base, pool_on_timer, pc)) == NULL) {
            free(pc);
            return -1;
        }
    }
    pc->bev = s->server.bev;
    pc->srv = s->srv;
    pc->conf = config_ref(s->conf);
    pc->tls = s->http->server_tls;
    pc->pool = w->pool;
    bufferevent_setcb(pc->bev, pool_on_read, NULL, pool_on_event, pc);
    bufferevent_enable(pc->bev, EV_READ);
    worker_timer_add(w, pc->timer, POOL_IDLE_MS);
    TAILQ_INSERT_HEAD(&w->pool->idle, pc, link);
    w->pool->nidle++;
    return 0;
}

void http_pool_free(struct worker *w)
{
    struct pool_conn *pc;

    if (w->pool == NULL)
        return;
    while ((pc = TAILQ_FIRST(&w->pool->idle)) != NULL)
        pool_conn_free(pc);
    while ((pc = TAILQ_FIRST(&w->pool->spare)) != NULL) {
        TAILQ_REMOVE(&w->pool->spare, pc, link);
        event_free(pc->timer);
        free(pc);
    }
    free(w->pool);
    w->pool = NULL;
}

/* Forgets s->server, closing or pooling the connection. */
void http_upstream_release(struct session *s, bool reusable)
{
    struct server *srv = s->srv;

    if (s->server.bev == NULL)
        return;
    if (!reusable || evbuffer_get_length(bufferevent_get_input(s->server.bev)) != 0 ||
        evbuffer_get_length(bufferevent_get_output(s->server.bev)) != 0 || pool_put(s) < 0)
        up_free_bev(s->server.bev);
    s->server.bev = NULL;
    s->server.eof = s->server.shut_wr = s->server.throttled = false;
    s->http->server_pooled = s->http->server_tls = s->http->server_pp_tls = false;
    if (srv != NULL) {
        atomic_fetch_sub(&srv->active, 1);
        server_queue_kick(s->w);
    }
    s->srv = NULL;
}

static void up_start(struct session *s, struct server *srv, bool pooled_ok);

/* The queue took a slot for s: connect (a pooled connection is fine). */
static void up_dequeued(struct session *s, struct server *srv)
{
    up_start(s, srv, true);
}

/*
 * No server can take the request now: wait for a slot when one may free up
 * (every live server at its max_connections, or others already waiting),
 * else answer status.
 */
static void up_wait_or_fail(struct session *s, unsigned status, const char *result)
{
    struct backend *b = s->backend;

    if (balance_saturated(b) || server_queue_has(s->w, b)) {
        if (server_queue_wait(s, up_dequeued) < 0)
            http_exchange_failed(s, 500, "out-of-memory");
        return;
    }
    log_warnx("session %llx: backend %s: no server available", (unsigned long long)s->id, b->name);
    http_exchange_failed(s, status, result);
}

/* The server being tried failed: try the next one, or answer 503 (502 for TLS trouble). */
static void up_failed(struct session *s, const char *why, unsigned status)
{
    struct server *failed = s->srv;
    struct backend *b = s->backend;
    struct server *next;

    log_warnx("session %llx: server %s/%s (%s) %s", (unsigned long long)s->id, b->name,
              failed->name, failed->addr.text, why);
    health_report_connect(failed, false);
    http_upstream_release(s, false);
    if (s->attempts >= b->nservers) {
        log_warnx("session %llx: backend %s: no server could be reached", (unsigned long long)s->id,
                  b->name);
        http_exchange_failed(s, status, status == 502 ? "server-tls-failed" : "no-server");
        return;
    }
    /* Nothing reached the failed server (a TLS handshake is not the request): retry is safe. */
    next = balance_next(b, failed);
    if (next == NULL || !balance_take(next)) {
        up_wait_or_fail(s, status, status == 502 ? "server-tls-failed" : "no-server");
        return;
    }
    up_start(s, next, true);
}

static void up_on_event(struct bufferevent *bev, short what, void *arg);

/*
 * A TLS server that wants the PROXY header: the TCP connection is up, so the
 * header goes out now on the raw socket (a new connection's buffer takes it
 * whole), and TLS starts on the same socket: the plain bufferevent hands
 * over a duplicate of its descriptor and is freed (closing its own).
 * Returns 0, or -1 with s->server.bev still the plain one.
 */
static int up_start_tls_after_proxy(struct session *s)
{
    struct bufferevent *plain = s->server.bev, *tls;
    evutil_socket_t fd = bufferevent_getfd(plain);
    uint8_t hdr[PP_HDR_MAX];
    SSL *ssl;
    int n, fd2;

    n = pp_build(s->backend->proxy_protocol, (struct sockaddr *)&s->client_addr,
                 (struct sockaddr *)&s->local, hdr, sizeof(hdr));
    if (n < 0 || send(fd, hdr, (size_t)n, MSG_NOSIGNAL) != n)
        return -1;
    if ((ssl = tls_client_ssl_new(s->backend, s->srv)) == NULL)
        return -1;
    if ((fd2 = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
        SSL_free(ssl);
        return -1;
    }
    tls = bufferevent_openssl_socket_new(s->w->base, fd2, ssl, BUFFEREVENT_SSL_CONNECTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (tls == NULL) {
        SSL_free(ssl);
        close(fd2);
        return -1;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
    bufferevent_setcb(tls, NULL, NULL, up_on_event, s);
    bufferevent_free(plain);
    s->server.bev = tls;
    s->http->server_pp_tls = false;
    s->http->server_tls = true;
    return 0;
}

static void up_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct session *s = arg;
    int one = 1;
    char why[256];

    if (what & BEV_EVENT_CONNECTED) {
        (void)setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (s->http->server_pp_tls) {
            if (up_start_tls_after_proxy(s) < 0)
                up_failed(s, "cannot send the PROXY header and start TLS", 502);
            return; /* the TLS handshake's end comes back here */
        }
        if (s->http->server_tls)
            tls_client_save_session(s->backend, s->srv, bufferevent_openssl_get_ssl(bev));
        health_report_connect(s->srv, true);
        http_server_connected(s);
        return;
    }
    if (s->http->server_tls) {
        tls_bev_handshake_error(bev, why, sizeof(why));
        if (why[0] != '\0') {
            up_failed(s, why, 502);
            return;
        }
    }
    up_failed(s,
              (what & BEV_EVENT_ERROR) ? evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR())
                                       : "closed while connecting",
              503);
}

/* Writes the PROXY header the backend asks for, first thing on a new connection. */
static int up_send_proxy_header(struct session *s)
{
    uint8_t hdr[PP_HDR_MAX];
    int n;

    if (s->backend->proxy_protocol == PP_OFF || s->http->server_pp_tls)
        return 0; /* (a TLS server gets it once connected: up_start_tls_after_proxy) */
    n = pp_build(s->backend->proxy_protocol, (struct sockaddr *)&s->client_addr,
                 (struct sockaddr *)&s->local, hdr, sizeof(hdr));
    if (n < 0)
        return -1;
    return evbuffer_add(bufferevent_get_output(s->server.bev), hdr, (size_t)n);
}

/* Gives s a connection to srv, whose slot the caller took: pooled, or a new one. */
static void up_start(struct session *s, struct server *srv, bool pooled_ok)
{
    struct backend *b = s->backend;
    struct event_base *base = s->w->base;
    struct pool_conn *pc = pooled_ok && b->proxy_protocol == PP_OFF ? pool_take(s->w, srv) : NULL;

    metrics_server_pick(srv);
    s->srv = srv;
    if (pc != NULL) {
        s->server.bev = pc->bev;
        s->http->server_pooled = true;
        s->http->server_tls = pc->tls;
        pool_conn_recycle(pc);
        http_server_connected(s);
        return;
    }
    s->attempts++;
    if (b->tls.enabled && b->proxy_protocol != PP_OFF) {
        /* The PROXY header goes before TLS: connect plain first (up_start_tls_after_proxy). */
        s->server.bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
        s->http->server_pp_tls = true;
    } else if (b->tls.enabled) {
        SSL *ssl = tls_client_ssl_new(b, srv);

        if (ssl == NULL) {
            log_ssl_error("session %llx: cannot create a TLS session", (unsigned long long)s->id);
            http_exchange_failed(s, 500, "out-of-memory");
            return;
        }
        s->server.bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                       BEV_OPT_CLOSE_ON_FREE);
        if (s->server.bev == NULL)
            SSL_free(ssl);
        else
            bufferevent_openssl_set_allow_dirty_shutdown(s->server.bev, 1);
        s->http->server_tls = true;
    } else {
        s->server.bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    }
    if (s->server.bev == NULL) {
        http_exchange_failed(s, 500, "out-of-memory");
        return;
    }
    bufferevent_setcb(s->server.bev, NULL, NULL, up_on_event, s);
    session_set_timer(s, s->conf->timeouts.connect);
    if (up_send_proxy_header(s) < 0) {
        http_exchange_failed(s, 500, "proxy-header-failed");
        return;
    }
    if (bufferevent_socket_connect(s->server.bev, (struct sockaddr *)&srv->addr.ss,
                                   (int)srv->addr.len) < 0)
        up_failed(s, "connect failed", 503);
}

/* Takes a slot on srv, unless earlier requests wait for the backend. Returns 0 when taken. */
static int up_take(struct session *s, struct server *srv)
{
    if (srv == NULL || server_queue_has(s->w, s->backend))
        return -1;
    if (balance_take(srv))
        return 0;
    return -1;
}

void http_upstream_connect(struct session *s, struct server *srv)
{
    s->attempts = 0;
    if (up_take(s, srv) < 0) {
        /* The pick lost its last slot to another connection, or there was none. */
        srv = server_queue_has(s->w, s->backend)
                  ? NULL
                  : balance_pick_take(s->backend, (struct sockaddr *)&s->client_addr);
        if (srv == NULL) {
            up_wait_or_fail(s, 503, "no-server");
            return;
        }
    }
    up_start(s, srv, true);
}

void http_upstream_connect_new(struct session *s, struct server *srv)
{
    s->attempts = 0;
    if (up_take(s, srv) < 0) {
        up_wait_or_fail(s, 503, "no-server");
        return;
    }
    up_start(s, srv, false);
}

void http_upstream_connect_timeout(struct session *s)
{
    if (s->queued != NULL) {
        server_queue_leave(s);
        log_info("session %llx: backend %s: no server slot freed in %u ms: answering 503",
                 (unsigned long long)s->id, s->backend->name, s->conf->timeouts.connect);
        http_exchange_failed(s, 503, "queue-timeout");
        return;
    }
    up_failed(s, s->http->server_tls ? "connect or TLS handshake timed out" : "connect timed out",
              503);
}
