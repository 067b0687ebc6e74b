/*
 * The passthrough relay on raw sockets. Once the server is connected the
 * bytes peeked from the client (and the PROXY header the backend asked for)
 * are sent, both bufferevents are let go and each side gets one persistent,
 * level-triggered read event; a write event is added only while the peer
 * cannot take what was read.
 *
 * Bytes move one chunk at a time, read then written at once:
 *   - small reads (handshakes, requests) go through one buffer per worker with
 *     recv/send; a remainder the peer cannot take is copied aside (spill);
 *   - a side whose reads fill that buffer is "bulk": its bytes go by splice(2)
 *     through a pipe lent by the worker for as long as bytes are in it, so an
 *     idle connection holds no pipe and no buffer.
 * A side is read only when nothing of it waits for the peer, so the gateway
 * holds at most one chunk per direction (backpressure). Its FIN is passed on
 * as shutdown(SHUT_WR) once that chunk is written; the session ends when both
 * directions are finished, on an error, or when idle too long.
 *
 * Naps: a socket that runs dry right after a large read says a bulk stream
 * is arriving faster than it is read. Its side then stops watching the socket
 * for a short nap (SR_NAP_US), so the next read takes what a nap's worth of
 * stream brings instead of being woken for every few segments; every wake-up
 * costs the sender's CPU an interrupt to this one (docs/performance.md). All
 * the worker's napping sides share one timerfd. A nap ends early when the
 * peer sends anything, so a request is never answered late because the
 * previous answer was large; at most a stream's next bytes wait SR_NAP_US.
 *
 * TLSGATE_RELAY=copy|splice in the environment pins one path (tests run the
 * relay in each); the default picks per chunk as above. TLSGATE_RELAY_NAP=µs
 * sets the nap (0: never nap).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "config-t.h"
#include "log.h"
#include "proxy_proto.h"
#include "session.h"
#include "splice_relay.h"
#include "tuning.h"
#include "worker-t.h"

/* The shared copy buffer; a read that fills it makes the side bulk. */
#define SR_COPY_SIZE (16 * 1024)

/* Pipe size asked for: the most one direction has in flight through splice. */
#define SR_PIPE_SIZE (256 * 1024)

/* A splice read shorter than this sends the side back to the copy path. */
#define SR_SMALL (4 * 1024)

/* Bytes one direction moves per wakeup before other connections get a turn. */
#define SR_BUDGET (1024 * 1024)

/* A side whose socket ran dry right after a read this large naps SR_NAP_US. */
#define SR_NAP_MIN (8 * 1024)
#define SR_NAP_US  300

enum sr_path {
    SR_AUTO,   /* copy small reads, splice bulk ones */
    SR_COPY,   /* always recv/send */
    SR_SPLICE, /* always splice */
};

enum sr_flush {
    SR_FLUSHED, /* nothing of this side waits for the peer */
    SR_AGAIN,   /* the peer's socket is full */
    SR_ERROR,   /* writing to the peer failed (errno) */
    SR_NOMEM,   /* could not keep the remainder */
};

static enum sr_path sr_path = SR_AUTO;
static long sr_nap_us = SR_NAP_US;
static pthread_once_t sr_env_once = PTHREAD_ONCE_INIT;

/* splice(2) was refused (e.g. a sandbox without it): every side copies. */
static atomic_bool sr_no_splice;

static void sr_on_read(evutil_socket_t fd, short what, void *arg);
static void sr_on_write(evutil_socket_t fd, short what, void *arg);
static void sr_on_nap_timer(evutil_socket_t fd, short what, void *arg);

/* Reads TLSGATE_RELAY and TLSGATE_RELAY_NAP once per process. */
static void sr_env_init(void)
{
    const char *v = getenv("TLSGATE_RELAY");

    sr_nap_us = tuning_env_us("TLSGATE_RELAY_NAP", SR_NAP_US);
    if (v == NULL || *v == '\0' || strcmp(v, "auto") == 0)
        return;
    if (strcmp(v, "copy") == 0)
        sr_path = SR_COPY;
    else if (strcmp(v, "splice") == 0)
        sr_path = SR_SPLICE;
    else
        log_warnx("TLSGATE_RELAY=%s: not auto, copy or splice; using auto", v);
}

static const char *sr_side(const struct half *h)
{
    return h == &h->s->client ? "client" : "server";
}

/* Lends h an empty pipe: a spare of the worker, or a new one. Returns 0 or -1. */
static int sr_pipe_get(struct half *h)
{
    struct worker *w = h->s->w;

    if (w->nrelay_pipes > 0) {
        w->nrelay_pipes--;
        h->pipe[0] = w->relay_pipes[w->nrelay_pipes][0];
        h->pipe[1] = w->relay_pipes[w->nrelay_pipes][1];
    } else {
        if (pipe2(h->pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
            log_debug("session %llx: pipe2: %s: copying instead", (unsigned long long)h->s->id,
                      strerror(errno));
            return -1;
        }
        /* Fewer, larger splices; the default (64 KiB) is kept if refused. */
        (void)fcntl(h->pipe[1], F_SETPIPE_SZ, SR_PIPE_SIZE);
    }
    h->has_pipe = true;
    h->piped = 0;
    return 0;
}

/* Takes h's pipe back: kept by the worker when empty and room is left, else closed. */
static void sr_pipe_put(struct half *h)
{
    struct worker *w = h->s->w;

    if (!h->has_pipe)
        return;
    if (h->piped == 0 && w->nrelay_pipes < WORKER_RELAY_PIPES) {
        w->relay_pipes[w->nrelay_pipes][0] = h->pipe[0];
        w->relay_pipes[w->nrelay_pipes][1] = h->pipe[1];
        w->nrelay_pipes++;
    } else {
        close(h->pipe[0]);
        close(h->pipe[1]);
    }
    h->has_pipe = false;
    h->piped = 0;
}

/* Forgets h's spilled bytes (freeing them unless they are the worker's buffer). */
static void sr_spill_clear(struct half *h)
{
    if (h->spill != NULL && h->spill != h->s->w->relay_buf)
        free(h->spill);
    h->spill = NULL;
    h->spill_len = h->spill_off = 0;
}

/* The peer is full: copies what is left in the worker's buffer aside. */
static enum sr_flush sr_spill_keep(struct half *h)
{
    uint32_t left = h->spill_len - h->spill_off;
    uint8_t *p;

    if (h->spill != h->s->w->relay_buf)
        return SR_AGAIN; /* already ours */
    p = malloc(left);
    if (p == NULL)
        return SR_NOMEM;
    memcpy(p, h->spill + h->spill_off, left);
    h->spill = p;
    h->spill_len = left;
    h->spill_off = 0;
    return SR_AGAIN;
}

/* Writes what h has waiting (spilled bytes, then its pipe) to the peer. */
static enum sr_flush sr_flush(struct half *h)
{
    evutil_socket_t to = h->peer->fd;
    ssize_t n;

    while (h->spill_off < h->spill_len) {
        n = send(to, h->spill + h->spill_off, h->spill_len - h->spill_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return sr_spill_keep(h);
            return SR_ERROR;
        }
        h->spill_off += (uint32_t)n;
    }
    if (h->spill != NULL)
        sr_spill_clear(h);
    while (h->piped > 0) {
        n = splice(h->pipe[0], NULL, to, NULL, h->piped, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return SR_AGAIN;
            return SR_ERROR;
        }
        h->piped -= (uint32_t)n;
    }
    return SR_FLUSHED;
}

/*
 * Reads one chunk from h: into a pipe when h is bulk, else into the worker's
 * buffer (as h's spill). Sets *asked to the most it could have read. Returns
 * the bytes read, 0 at EOF, -1 with errno set.
 */
static ssize_t sr_read(struct half *h, size_t *asked)
{
    struct worker *w = h->s->w;
    ssize_t n;

    if (h->bulk && !atomic_load_explicit(&sr_no_splice, memory_order_relaxed) &&
        (h->has_pipe || sr_pipe_get(h) == 0)) {
        *asked = SR_PIPE_SIZE;
        n = splice(h->fd, NULL, h->pipe[1], NULL, SR_PIPE_SIZE, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            h->piped = (uint32_t)n;
            if (n < SR_SMALL && sr_path == SR_AUTO)
                h->bulk = false;
        }
        if (n >= 0 || (errno != EINVAL && errno != ENOSYS))
            return n;
        /* Nothing was read: copy instead, in every session from now on. */
        if (!atomic_exchange(&sr_no_splice, true))
            log_warnx("splice: %s: relaying by copy from now on", strerror(errno));
        h->bulk = false;
    }
    if (w->relay_buf == NULL && (w->relay_buf = malloc(SR_COPY_SIZE)) == NULL) {
        errno = ENOMEM;
        return -1;
    }
    *asked = SR_COPY_SIZE;
    n = recv(h->fd, w->relay_buf, SR_COPY_SIZE, 0);
    if (n > 0) {
        h->spill = w->relay_buf;
        h->spill_len = (uint32_t)n;
        h->spill_off = 0;
        if (n == SR_COPY_SIZE && sr_path == SR_AUTO)
            h->bulk = true;
    }
    return n;
}

/* The peer can't take h's bytes now: stop reading h until the peer is writable. */
static int sr_block(struct half *h)
{
    struct half *to = h->peer;

    if (h->blocked)
        return 0;
    if (to->wr_ev == NULL) {
        to->wr_ev = event_new(h->s->w->base, to->fd, EV_WRITE | EV_PERSIST, sr_on_write, to);
        if (to->wr_ev == NULL)
            return -1;
    }
    event_del(h->rd_ev);
    event_add(to->wr_ev, NULL);
    h->blocked = true;
    return 0;
}

/* h's bytes are all written: read h again (unless it ended) and stop watching the peer. */
static void sr_unblock(struct half *h)
{
    h->blocked = false;
    event_del(h->peer->wr_ev);
    if (!h->eof)
        event_add(h->rd_ev, NULL);
}

/*
 * h stops watching its socket until the worker's nap timer fires (armed now
 * unless other sides already nap) or its peer sends something. If the timer
 * cannot be made, h just goes on watching.
 */
static void sr_nap_start(struct half *h)
{
    struct worker *w = h->s->w;
    struct itimerspec when = {.it_value = {.tv_nsec = sr_nap_us * 1000}};

    if (w->relay_nap_ev == NULL) {
        w->relay_nap_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (w->relay_nap_fd < 0) {
            log_debug("timerfd_create: %s: no relay naps", strerror(errno));
            return;
        }
        w->relay_nap_ev =
            event_new(w->base, w->relay_nap_fd, EV_READ | EV_PERSIST, sr_on_nap_timer, w);
        if (w->relay_nap_ev != NULL && event_add(w->relay_nap_ev, NULL) < 0) {
            event_free(w->relay_nap_ev);
            w->relay_nap_ev = NULL;
        }
        if (w->relay_nap_ev == NULL) {
            close(w->relay_nap_fd);
            w->relay_nap_fd = -1;
            return;
        }
    }
    if (LIST_EMPTY(&w->relay_napping) && timerfd_settime(w->relay_nap_fd, 0, &when, NULL) < 0)
        return;
    event_del(h->rd_ev);
    LIST_INSERT_HEAD(&w->relay_napping, h, nap_link);
    h->napping = true;
}

/* h's nap is over: it watches its socket again (unless blocked or ended). */
static void sr_nap_end(struct half *h)
{
    LIST_REMOVE(h, nap_link);
    h->napping = false;
    if (!h->blocked && !h->eof)
        event_add(h->rd_ev, NULL);
}

/* A side failed: the session ends. Returns -1 (s is gone). */
static int sr_fail(struct half *h, int err)
{
    struct session *s = h->s;

    log_debug("session %llx: %s side: %s", (unsigned long long)s->id, sr_side(h), strerror(err));
    session_close(s, h == &s->client ? "client-error" : "server-error");
    return -1;
}

/* h sent FIN and all its bytes are written: pass the FIN on. Returns -1 if s ended. */
static int sr_pass_fin(struct half *h)
{
    struct session *s = h->s;
    struct half *to = h->peer;

    if (!to->shut_wr) {
        (void)shutdown(to->fd, SHUT_WR);
        to->shut_wr = true;
    }
    sr_pipe_put(h);
    if (s->client.eof && s->server.eof && s->client.shut_wr && s->server.shut_wr) {
        session_close(s, "done");
        return -1;
    }
    return 0;
}

/* Writes what h has waiting; on a full peer blocks h. Returns 1 flushed, 0 blocked, -1 ended. */
static int sr_drain(struct half *h)
{
    switch (sr_flush(h)) {
    case SR_FLUSHED:
        if (h->blocked)
            sr_unblock(h);
        return 1;
    case SR_AGAIN:
        if (sr_block(h) == 0)
            return 0;
        /* fallthrough */
    case SR_NOMEM:
        session_close(h->s, "out-of-memory");
        return -1;
    case SR_ERROR:
        break;
    }
    return sr_fail(h->peer, errno);
}

/*
 * Moves h's bytes to the peer until h has none ready, the peer is full, h
 * ended or the budget is spent. Returns 0, or -1 when the session ended.
 */
static int sr_pump(struct half *h)
{
    size_t moved = 0, asked;
    ssize_t n, last = 0;
    int r;
    bool dry = false; /* h's socket ran out of bytes (rather than the peer of room) */

    if (h->napping)
        sr_nap_end(h);
    for (;;) {
        r = sr_drain(h);
        if (r < 0)
            return -1;
        if (r == 0)
            break; /* the peer is full: its wr_ev brings us back */
        if (h->eof)
            return sr_pass_fin(h);
        if (moved >= SR_BUDGET)
            break; /* level-triggered: we'll be back */
        n = sr_read(h, &asked);
        if (n == 0) {
            h->eof = true;
            event_del(h->rd_ev);
            continue;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                dry = true;
                break;
            }
            return sr_fail(h, errno);
        }
        h->bytes_read += (uint64_t)n;
        moved += (size_t)n;
        last = n;
        if (h->peer->napping)
            sr_nap_end(h->peer); /* it may answer: read the answer at once */
        if ((size_t)n < asked) {
            moved = SR_BUDGET; /* h had no more: write this, then wait for the next wakeup */
            dry = true;
        }
    }
    if (h->piped == 0)
        sr_pipe_put(h); /* an idle connection holds no pipe */
    /* Ran dry right after a large read: a stream is coming in, nap (see top). */
    if (dry && last >= SR_NAP_MIN && sr_nap_us > 0 && !h->blocked && !h->eof)
        sr_nap_start(h);
    return 0;
}

static void sr_on_read(evutil_socket_t fd, short what, void *arg)
{
    struct half *h = arg;

    session_touch(h->s);
    (void)sr_pump(h);
}

/* The nap is over for every side that took one: read what came meanwhile. */
static void sr_on_nap_timer(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct relay_nap_list due = LIST_HEAD_INITIALIZER(due);
    struct half *h;
    uint64_t expirations;

    if (read(fd, &expirations, sizeof(expirations)) < 0)
        return; /* not due after all (EAGAIN) */
    /* Sides that nap again while these are pumped wait for the next timer. */
    while ((h = LIST_FIRST(&w->relay_napping)) != NULL) {
        LIST_REMOVE(h, nap_link);
        LIST_INSERT_HEAD(&due, h, nap_link);
    }
    while ((h = LIST_FIRST(&due)) != NULL) {
        sr_nap_end(h);
        session_touch(h->s);
        (void)sr_pump(h); /* if it ends h's session, both sides leave `due` (splice_relay_free) */
    }
}

/* h can take bytes again: its peer's wait is over. */
static void sr_on_write(evutil_socket_t fd, short what, void *arg)
{
    struct half *h = arg;

    session_touch(h->s);
    (void)sr_pump(h->peer);
}

/*
 * Gathers prefix and whatever h's bufferevent already read into one buffer
 * that becomes h's spill. Returns 0 or -1 (no memory).
 */
static int sr_take_input(struct half *h, const uint8_t *prefix, size_t plen)
{
    struct evbuffer *in = bufferevent_get_input(h->bev);
    size_t len = evbuffer_get_length(in);

    if (plen + len == 0)
        return 0;
    h->spill = malloc(plen + len);
    if (h->spill == NULL)
        return -1;
    if (plen > 0)
        memcpy(h->spill, prefix, plen);
    evbuffer_remove(in, h->spill + plen, len);
    h->spill_len = (uint32_t)(plen + len);
    h->spill_off = 0;
    h->bytes_read += len;
    return 0;
}

/* Makes h's read event (not added yet). Returns 0 or -1. */
static int sr_prepare(struct half *h)
{
    h->fd = bufferevent_getfd(h->bev);
    h->rd_ev = event_new(h->s->w->base, h->fd, EV_READ | EV_PERSIST, sr_on_read, h);
    h->bulk = sr_path == SR_SPLICE;
    return h->rd_ev == NULL ? -1 : 0;
}

/* Lets h's bufferevent go but keeps its socket. */
static void sr_detach(struct half *h)
{
    bufferevent_disable(h->bev, EV_READ | EV_WRITE);
    bufferevent_setfd(h->bev, -1); /* else freeing it closes the socket */
    bufferevent_free(h->bev);
    h->bev = NULL;
    h->raw = true;
}

void splice_relay_start(struct session *s)
{
    uint8_t hdr[PP_HDR_MAX];
    int hlen = 0, one = 1;

    pthread_once(&sr_env_once, sr_env_init);
    if (s->backend->proxy_protocol != PP_OFF) {
        hlen = pp_build(s->backend->proxy_protocol, (struct sockaddr *)&s->client_addr,
                        (struct sockaddr *)&s->local, hdr, sizeof(hdr));
        if (hlen < 0) {
            session_close(s, "proxy-header-failed");
            return;
        }
    }
    if (sr_prepare(&s->client) < 0 || sr_prepare(&s->server) < 0 ||
        sr_take_input(&s->client, hdr, (size_t)hlen) < 0 ||
        sr_take_input(&s->server, NULL, 0) < 0) {
        session_close(s, "out-of-memory"); /* splice_relay_free releases what was taken */
        return;
    }
    sr_detach(&s->client);
    sr_detach(&s->server);
    /* TLS records are whole messages: don't hold the last one back. */
    (void)setsockopt(s->client.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    s->state = SESSION_RELAY;
    session_touch(s);
    session_set_timer(s, s->conf->timeouts.idle);
    event_add(s->client.rd_ev, NULL);
    event_add(s->server.rd_ev, NULL);
    if (sr_drain(&s->client) < 0) /* the ClientHello */
        return;
    (void)sr_drain(&s->server);
}

void splice_relay_free(struct session *s)
{
    struct half *sides[2] = {&s->client, &s->server};

    for (int i = 0; i < 2; i++) {
        struct half *h = sides[i];

        if (h->rd_ev != NULL)
            event_free(h->rd_ev);
        if (h->napping) {
            LIST_REMOVE(h, nap_link);
            h->napping = false;
        }
        if (h->wr_ev != NULL)
            event_free(h->wr_ev);
        h->rd_ev = h->wr_ev = NULL;
        sr_spill_clear(h);
        sr_pipe_put(h);
        if (h->raw)
            close(h->fd);
        h->raw = false;
    }
}

void splice_relay_worker_free(struct worker *w)
{
    while (w->nrelay_pipes > 0) {
        w->nrelay_pipes--;
        close(w->relay_pipes[w->nrelay_pipes][0]);
        close(w->relay_pipes[w->nrelay_pipes][1]);
    }
    free(w->relay_buf);
    w->relay_buf = NULL;
    if (w->relay_nap_ev != NULL)
        event_free(w->relay_nap_ev);
    if (w->relay_nap_fd >= 0)
        close(w->relay_nap_fd);
    w->relay_nap_ev = NULL;
    w->relay_nap_fd = -1;
}
