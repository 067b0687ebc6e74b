/*
 * Passthrough mode. The gateway never holds a key: it reads the client's
 * first bytes (an optional PROXY header from a balancer in front, then the
 * TLS ClientHello), routes on the SNI, connects to a server and from then on
 * relays bytes it cannot read. TLS stays end to end.
 *
 *   accept -> [PROXY header] -> ClientHello complete -> route -> connect -> relay
 *                                                             `-> terminate: the HTTP engine
 *
 * A route may instead name an offload or bridge listener ("terminate"): the
 * session then becomes one of that listener, on this socket, with the bytes
 * read so far replayed into its TLS handshake (pt_terminate).
 */
#include <stdatomic.h>
#include <stdlib.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "accesslog.h"
#include "addr.h"
#include "backend_conn.h"
#include "clienthello.h"
#include "http_session.h"
#include "log.h"
#include "metrics.h"
#include "passthrough.h"
#include "proxy_proto.h"
#include "relay.h"
#include "route.h"
#include "server_queue.h"
#include "session.h"
#include "splice_relay.h"
#include "tls_replay_bio.h"

/* Most bytes we hold from a client before the ClientHello is complete. */
#define PT_MAX_PEEK (CLIENTHELLO_MAX_WIRE + 4096)

/* Longest PROXY header we accept from a balancer in front (v2 with some TLVs). */
#define PT_MAX_PROXY_HDR 4096

/* Refuses the client: logs why once, at info (clients send garbage all the time). */
static void pt_refuse(struct session *s, const char *result, const char *what)
{
    char addr[64];

    log_info("session %llx: listener %s: %s from %s: closing", (unsigned long long)s->id,
             s->l->name, what, addr_format((struct sockaddr *)&s->client_addr, addr, sizeof(addr)));
    session_close(s, result);
}

/* Consumes a PROXY header at the start of in. Returns 1 done, 0 need more, -1 closed. */
static int pt_read_proxy_header(struct session *s, struct evbuffer *in)
{
    size_t len = evbuffer_get_length(in);
    const uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)len);
    struct pp_info info;

    switch (pp_parse(p, len, s->l->proxy_protocol, &info)) {
    case PP_NEED_MORE:
        if (len >= PT_MAX_PROXY_HDR) {
            pt_refuse(s, "proxy-header-bad", "oversized PROXY header");
            return -1;
        }
        return 0;
    case PP_ABSENT:
        pt_refuse(s, "proxy-header-missing", "no PROXY header (the listener requires one)");
        return -1;
    case PP_BAD:
        pt_refuse(s, "proxy-header-bad", "malformed PROXY header");
        return -1;
    case PP_OK:
        break;
    }
    if (!info.local) {
        s->client_addr = info.src;
        s->local = info.dst;
    }
    evbuffer_drain(in, info.consumed);
    s->state = SESSION_HELLO;
    return 1;
}

/*
 * Moves the connection's listener slot from the passthrough listener to the
 * terminating one, so that each counts what it serves and session_close()
 * gives back the slot it finds in s->l. Returns -1 when t is full.
 */
static int pt_move_slot(struct session *s, struct listener *t)
{
    unsigned prev = atomic_fetch_add(&t->active, 1);

    if (t->max_connections != 0 && prev >= t->max_connections) {
        atomic_fetch_sub(&t->active, 1);
        return -1;
    }
    atomic_fetch_sub(&s->l->active, 1);
    s->l = t;
    return 0;
}

/*
 * The route terminates TLS here: the session becomes a connection of the
 * offload/bridge listener t, on the same socket. The bytes read so far (the
 * ClientHello and whatever followed it) go to a replay BIO that OpenSSL
 * reads first; the socket is then read directly (tls_replay_bio.h).
 */
static void pt_terminate(struct session *s, struct listener *t, const char *sni,
                         const struct sni_route *route)
{
    struct evbuffer *in = bufferevent_get_input(s->client.bev);
    size_t len = evbuffer_get_length(in);
    const uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)len);
    struct listener *from = s->l;
    BIO *bio;

    if (pt_move_slot(s, t) < 0) {
        pt_refuse(s, "listener-full", "terminate listener at max_connections");
        return;
    }
    accesslog_terminated(s, from, len);
    metrics_bytes(from, len, 0); /* what this listener read: t counts the decrypted requests */
    log_debug("session %llx: SNI %s -> terminate %s (%s), %zu bytes replayed",
              (unsigned long long)s->id, sni ? sni : "(none)", t->name,
              route ? route->pattern : "default", len);
    metrics_conn_open(t);
    bio = p != NULL || len == 0 ? tls_replay_bio_new(s->fd, p, len) : NULL;
    /* Let go of the bufferevent but not the socket: the HTTP engine opens its own. */
    bufferevent_setfd(s->client.bev, -1);
    bufferevent_free(s->client.bev);
    s->client.bev = NULL;
    s->ops = &http_ops; /* from here session_close() closes s->fd itself */
    if (bio == NULL) {
        session_close(s, "out-of-memory");
        return;
    }
    http_start_terminated(s, bio);
}

/* The whole ClientHello is here: pick the route by SNI; connect, or terminate here. */
static void pt_route(struct session *s)
{
    const char *sni = s->hello->has_sni ? s->hello->sni : NULL;
    struct route_pick pick;

    if (route_sni_pick(s->l, sni, &pick) < 0) {
        log_info("session %llx: listener %s: no route for SNI %s and no default_backend: "
                 "closing",
                 (unsigned long long)s->id, s->l->name, sni ? sni : "(none)");
        session_close(s, "no-route");
        return;
    }
    if (pick.terminate != NULL) {
        pt_terminate(s, pick.terminate, sni, pick.matched);
        return;
    }
    s->backend = pick.backend;
    log_debug("session %llx: SNI %s -> backend %s (%s)", (unsigned long long)s->id,
              sni ? sni : "(none)", s->backend->name,
              pick.matched ? pick.matched->pattern : "default");
    /* Hold further client bytes in the kernel until the server is there. */
    bufferevent_disable(s->client.bev, EV_READ);
    backend_connect(s);
}

/* Client bytes before the relay starts: PROXY header, then ClientHello. */
static void pt_on_client_read(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    const uint8_t *p;
    size_t len;

    if (s->state == SESSION_CONNECT)
        return; /* waiting for a server slot: the bytes wait with the ClientHello */
    if (s->state == SESSION_PROXY_HDR && pt_read_proxy_header(s, in) <= 0)
        return;
    len = evbuffer_get_length(in);
    if (len == 0)
        return;
    p = evbuffer_pullup(in, (ev_ssize_t)len);
    switch (clienthello_parse_ja4(p, len, s->hello, accesslog_enabled())) {
    case CH_NEED_MORE:
        if (len >= PT_MAX_PEEK)
            pt_refuse(s, "hello-too-large", "ClientHello too large");
        return;
    case CH_NOT_TLS:
        pt_refuse(s, "not-tls", "not a TLS ClientHello");
        return;
    case CH_INVALID:
        pt_refuse(s, "hello-invalid", "malformed ClientHello");
        return;
    case CH_TOO_LARGE:
        pt_refuse(s, "hello-too-large", "ClientHello larger than 32 KiB");
        return;
    case CH_DONE:
        s->hello_parsed = true;
        pt_route(s);
        return;
    }
}

/* Client closed or failed before the relay started. */
static void pt_on_client_event(struct bufferevent *bev, short what, void *arg)
{
    struct session *s = arg;

    if (s->state == SESSION_CONNECT && (what & BEV_EVENT_EOF) && s->queued == NULL)
        return; /* unreachable while reading is off; the relay notices the FIN */
    session_close(s, s->state == SESSION_CONNECT ? "client-closed" : "client-closed-early");
}

static void pt_start(struct session *s)
{
    s->hello = malloc(sizeof(*s->hello));
    if (s->hello == NULL) {
        session_close(s, "out-of-memory");
        return;
    }
    s->state = s->l->proxy_protocol != PP_OFF ? SESSION_PROXY_HDR : SESSION_HELLO;
    bufferevent_setcb(s->client.bev, pt_on_client_read, NULL, pt_on_client_event, s);
    /* Bound what a client can make us hold before it is routed. */
    bufferevent_setwatermark(s->client.bev, EV_READ, 0, PT_MAX_PEEK + PT_MAX_PROXY_HDR);
    session_set_timer(s, s->conf->timeouts.client_hello);
    bufferevent_enable(s->client.bev, EV_READ);
}

static void pt_on_timer(struct session *s)
{
    switch (s->state) {
    case SESSION_PROXY_HDR:
    case SESSION_HELLO:
        pt_refuse(s, "timeout-hello", "ClientHello not complete in time");
        return;
    case SESSION_CONNECT:
        backend_connect_timeout(s);
        return;
    case SESSION_RELAY:
        relay_on_timer(s);
        return;
    }
}

/* At close, after the server slot went back: leave the queue, wake it, free the relay. */
static void pt_free(struct session *s)
{
    server_queue_session_end(s);
    splice_relay_free(s);
}

/*
 * At close: the connection's byte counts and its access-log line. Bytes read
 * from the client but not relayed (a refused or unrouted ClientHello, or a
 * connection that ended while waiting for a server) count as read.
 */
static void pt_log(const struct session *s)
{
    uint64_t in = s->client.bytes_read;

    if (s->client.bev != NULL)
        in += evbuffer_get_length(bufferevent_get_input(s->client.bev));
    metrics_bytes(s->l, in, s->server.bytes_read);
    accesslog_passthrough(s, in);
}

const struct session_ops passthrough_ops = {
    .name = "passthrough",
    .start = pt_start,
    .on_timer = pt_on_timer,
    .connected = splice_relay_start,
    .log = pt_log,
    .free = pt_free,
};
