/*
 * The byte relay: what one side sends is queued on the other side's output,
 * unchanged and in order. A side whose peer's output passes RELAY_HIGH_WATER
 * stops being read until that output drains to half of it, so a slow reader
 * never makes us buffer without bound. A FIN is passed on as shutdown(SHUT_WR)
 * once everything before it has been written; the session ends when both
 * directions are finished, or on an error, or when idle too long.
 */
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include "http/http_io.h"
#include "log.h"
#include "proxy_proto.h"
#include "relay.h"
#include "session.h"
#include "worker-t.h"

/* Passes the peer's FIN on to h once h's output is empty. */
static void relay_shut_if_drained(struct half *h)
{
    if (h->shut_wr || !h->peer->eof)
        return;
    if (evbuffer_get_length(bufferevent_get_output(h->bev)) != 0)
        return;
    (void)shutdown(bufferevent_getfd(h->bev), SHUT_WR);
    h->shut_wr = true;
}

/* Both directions finished: the session is done. Returns 1 when closed. */
static int relay_check_done(struct session *s)
{
    if (s->client.eof && s->server.eof && s->client.shut_wr && s->server.shut_wr) {
        session_close(s, "done");
        return 1;
    }
    return 0;
}

/* Moves everything h received to its peer's output; throttles h past the high mark. */
static void relay_move(struct half *h)
{
    struct evbuffer *in = bufferevent_get_input(h->bev);
    struct evbuffer *out = bufferevent_get_output(h->peer->bev);
    size_t n = evbuffer_get_length(in);

    if (n == 0)
        return;
    h->bytes_read += n;
    evbuffer_add_buffer(out, in);
    if (evbuffer_get_length(out) >= RELAY_HIGH_WATER && !h->throttled) {
        /* We're giving the other side data faster than it can take it. */
        h->throttled = true;
        bufferevent_disable(h->bev, EV_READ);
    }
}

static void relay_on_read(struct bufferevent *bev, void *arg)
{
    struct half *h = arg;

    relay_move(h);
    session_touch(h->s);
}

/* h's output drained to the low mark: resume the peer, pass on a pending FIN. */
static void relay_on_write(struct bufferevent *bev, void *arg)
{
    struct half *h = arg;
    struct half *peer = h->peer;

    session_touch(h->s);
    if (peer->throttled) {
        peer->throttled = false;
        if (!peer->eof) {
            bufferevent_enable(peer->bev, EV_READ);
            http_io_tls_kick(peer->bev); /* a tunnelled TLS client may have bytes read ahead */
        }
    }
    relay_shut_if_drained(h);
    relay_check_done(h->s);
}

static void relay_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct half *h = arg;
    struct session *s = h->s;

    if (what & BEV_EVENT_EOF) {
        relay_move(h);
        h->eof = true;
        relay_shut_if_drained(h->peer);
        relay_check_done(s);
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        log_debug("session %llx: %s side: %s", (unsigned long long)s->id,
                  h == &s->client ? "client" : "server",
                  evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        session_close(s, h == &s->client ? "client-error" : "server-error");
    }
}

/* Writes the PROXY header the backend asked for ahead of the client's bytes. */
static int relay_send_proxy_header(struct session *s)
{
    uint8_t hdr[PP_HDR_MAX];
    int n;

    if (s->backend->proxy_protocol == PP_OFF)
        return 0;
    n = pp_build(s->backend->proxy_protocol, (struct sockaddr *)&s->client_addr,
                 (struct sockaddr *)&s->local, hdr, sizeof(hdr));
    if (n < 0)
        return -1;
    return bufferevent_write(s->server.bev, hdr, (size_t)n);
}

void relay_start(struct session *s)
{
    if (relay_send_proxy_header(s) < 0) {
        session_close(s, "proxy-header-failed");
        return;
    }
    relay_tunnel(s);
}

void relay_tunnel(struct session *s)
{
    struct half *sides[2] = {&s->client, &s->server};

    s->state = SESSION_RELAY;
    for (int i = 0; i < 2; i++) {
        bufferevent_setcb(sides[i]->bev, relay_on_read, relay_on_write, relay_on_event, sides[i]);
        bufferevent_setwatermark(sides[i]->bev, EV_READ, 0, 0);
        bufferevent_setwatermark(sides[i]->bev, EV_WRITE, RELAY_HIGH_WATER / 2, 0);
    }
    relay_move(&s->client); /* the ClientHello we peeked, or bytes after a 101 */
    relay_move(&s->server);
    session_touch(s);
    session_set_timer(s, s->conf->timeouts.idle);
    bufferevent_enable(s->server.bev, EV_READ | EV_WRITE);
    if (!s->client.throttled) {
        bufferevent_enable(s->client.bev, EV_READ | EV_WRITE);
        http_io_tls_kick(s->client.bev);
    }
}

void relay_on_timer(struct session *s)
{
    struct timeval now, idle_for;
    unsigned idle_ms, limit = s->conf->timeouts.idle;

    event_base_gettimeofday_cached(s->w->base, &now);
    timersub(&now, &s->last_io, &idle_for);
    idle_ms = (unsigned)(idle_for.tv_sec * 1000 + idle_for.tv_usec / 1000);
    if (idle_ms >= limit) {
        session_close(s, "timeout-idle");
        return;
    }
    session_set_timer(s, limit - idle_ms);
}
