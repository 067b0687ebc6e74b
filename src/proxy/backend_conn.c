/*
 * Connecting to a backend server: pick by the backend's algorithm, connect
 * without blocking, and on refusal or timeout move to the next server.
 */
#include <netinet/in.h>
#include <string.h>
#include <netinet/tcp.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include "addr.h"
#include "backend_conn.h"
#include "balance.h"
#include "health.h"
#include "log.h"
#include "metrics.h"
#include "server_queue.h"
#include "session.h"
#include "worker-t.h"

static void backend_try(struct session *s, const struct server *prev);

/* Releases the server being tried and moves on to the next one, or gives up. */
static void backend_connect_failed(struct session *s, const char *why)
{
    struct server *failed = s->srv;

    log_warnx("session %llx: server %s/%s (%s) %s", (unsigned long long)s->id, s->backend->name,
              failed->name, failed->addr.text, why);
    health_report_connect(failed, false);
    bufferevent_free(s->server.bev);
    s->server.bev = NULL;
    atomic_fetch_sub(&failed->active, 1);
    server_queue_kick(s->w);
    s->srv = NULL;
    if (s->attempts >= s->backend->nservers) {
        log_warnx("session %llx: backend %s: every server failed, closing",
                  (unsigned long long)s->id, s->backend->name);
        session_close(s, "no-server");
        return;
    }
    backend_try(s, failed);
}

/* Server socket events while connecting. */
static void backend_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct session *s = arg;
    int one = 1;

    if (what & BEV_EVENT_CONNECTED) {
        (void)setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        health_report_connect(s->srv, true);
        s->ops->connected(s);
        return;
    }
    backend_connect_failed(s, (what & BEV_EVENT_ERROR)
                                  ? evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR())
                                  : "closed while connecting");
}

/* Starts a connect to srv, whose slot the caller took. */
static void backend_start(struct session *s, struct server *srv)
{
    metrics_server_pick(srv);
    s->srv = srv;
    s->attempts++;
    s->state = SESSION_CONNECT;
    s->server.bev = bufferevent_socket_new(s->w->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (s->server.bev == NULL) {
        session_close(s, "out-of-memory");
        return;
    }
    bufferevent_setcb(s->server.bev, NULL, NULL, backend_on_event, s);
    session_set_timer(s, s->conf->timeouts.connect);
    if (bufferevent_socket_connect(s->server.bev, (struct sockaddr *)&srv->addr.ss,
                                   (int)srv->addr.len) < 0)
        backend_connect_failed(s, "connect failed");
}

/* The queue found a slot: hold the client's bytes in the kernel again, and connect. */
static void backend_dequeued(struct session *s, struct server *srv)
{
    bufferevent_disable(s->client.bev, EV_READ);
    backend_start(s, srv);
}

/*
 * Waits for a slot. The client is read meanwhile only so that a client who
 * gives up is noticed (the mode keeps what it sends for the server).
 */
static void backend_queue(struct session *s)
{
    s->state = SESSION_CONNECT;
    if (server_queue_wait(s, backend_dequeued) < 0) {
        session_close(s, "out-of-memory");
        return;
    }
    bufferevent_enable(s->client.bev, EV_READ);
}

/*
 * Connects to the server after prev (prev NULL: the balancer's choice), or
 * waits in the queue when every server is at its max_connections.
 */
static void backend_try(struct session *s, const struct server *prev)
{
    struct backend *b = s->backend;
    struct server *srv = NULL;

    if (prev != NULL) {
        srv = balance_next(b, prev);
        if (srv != NULL && !balance_take(srv))
            srv = NULL;
    } else if (!server_queue_has(s->w, b)) {
        /* Sessions already waiting for this backend go first. */
        srv = balance_pick_take(b, (struct sockaddr *)&s->client_addr);
    }
    if (srv != NULL) {
        backend_start(s, srv);
        return;
    }
    if (balance_saturated(b) || server_queue_has(s->w, b)) {
        backend_queue(s);
        return;
    }
    log_warnx("session %llx: backend %s: no server available", (unsigned long long)s->id, b->name);
    session_close(s, "no-server");
}

void backend_connect(struct session *s)
{
    s->attempts = 0;
    backend_try(s, NULL);
}

void backend_connect_timeout(struct session *s)
{
    if (s->queued != NULL) {
        server_queue_leave(s);
        log_info("session %llx: backend %s: no server slot freed in %u ms: closing",
                 (unsigned long long)s->id, s->backend->name, s->conf->timeouts.connect);
        session_close(s, "queue-timeout");
        return;
    }
    backend_connect_failed(s, "connect timed out");
}
