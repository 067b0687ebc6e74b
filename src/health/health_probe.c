/*
 * One active check of one server, as a small state machine on a raw
 * non-blocking socket with two one-shot events (readable, writable) and a
 * deadline timer: nothing ever blocks the main loop, and cancelling frees
 * everything at any step.
 *
 *   tcp   the connect succeeds.
 *   tls   connect, then a full TLS handshake with the check's SNI (the
 *         backend's CTX is not used: no ALPN, no resumption, so every check
 *         shows the server still holds a certificate that passes).
 *   http  connect (and TLS when the backend has tls:), "GET path" with Host
 *         and Connection: close, and the status line's code must be
 *         expect_status. The body is not read.
 *
 * A backend that sends a PROXY header to its servers gets one on checks
 * too (v1 UNKNOWN / v2 LOCAL: the server uses the real endpoints), else a
 * server that insists on it would fail every check.
 */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/event.h>

#include "health_int.h"
#include "proxy_proto.h"
#include "tls_ctx.h"

enum probe_step {
    PROBE_CONNECT,   /* waiting for the TCP connect */
    PROBE_PROXY,     /* writing the PROXY header */
    PROBE_HANDSHAKE, /* TLS handshake */
    PROBE_REQUEST,   /* writing the http request */
    PROBE_STATUS,    /* reading the status line */
};

/* For "timed out after 200 ms connecting". */
static const char *const step_names[] = {"connecting", "sending the PROXY header",
                                         "in the TLS handshake", "sending the request",
                                         "waiting for the status line"};

struct health_probe {
    const struct server *srv;
    enum health_check kind;
    bool tls;         /* TLS on this connection: tls checks, http checks of tls backends */
    SSL_CTX *tls_ctx; /* tls checks: the backend's check CTX (not owned) */
    int fd;
    SSL *ssl;             /* owned; NULL until the handshake starts */
    struct event *rd;     /* one-shot: fd readable */
    struct event *wr;     /* one-shot: fd writable (and connect done) */
    struct event *timer;  /* the check's deadline */
    enum probe_step step; /* where the check is */
    int connect_err;      /* connect() failed at once: told from the first event */
    char *out;            /* bytes to write at this step (owned) */
    size_t out_len, out_off;
    char in[HEALTH_STATUS_LINE_MAX]; /* the answer's first bytes */
    size_t in_len;
    health_probe_done done;
    void *arg;
};

/* Frees p (sending close_notify first when a TLS session is up: a clean end for the server). */
static void probe_free(struct health_probe *p)
{
    if (p->rd != NULL)
        event_free(p->rd);
    if (p->wr != NULL)
        event_free(p->wr);
    if (p->timer != NULL)
        event_free(p->timer);
    if (p->ssl != NULL) {
        if (SSL_is_init_finished(p->ssl))
            (void)SSL_shutdown(p->ssl); /* one try, never waits */
        SSL_free(p->ssl);
        ERR_clear_error();
    }
    if (p->fd >= 0)
        close(p->fd);
    free(p->out);
    free(p);
}

void health_probe_cancel(struct health_probe *p)
{
    if (p != NULL)
        probe_free(p);
}

/* Ends the check: frees p, then tells the owner (who may start the next one). */
static void probe_finish(struct health_probe *p, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void probe_finish(struct health_probe *p, bool ok, const char *fmt, ...)
{
    health_probe_done done = p->done;
    void *arg = p->arg;
    char reason[128];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    probe_free(p);
    done(arg, ok, reason);
}

/* Why a TLS operation failed: the certificate verdict, else OpenSSL's first error. */
static const char *probe_tls_reason(struct health_probe *p, char *buf, size_t len)
{
    long vr = SSL_get_verify_result(p->ssl);
    unsigned long e = ERR_peek_error();

    if ((SSL_get_verify_mode(p->ssl) & SSL_VERIFY_PEER) && vr != X509_V_OK)
        snprintf(buf, len, "certificate: %s", X509_verify_cert_error_string(vr));
    else if (e != 0 && ERR_reason_error_string(e) != NULL)
        snprintf(buf, len, "%s", ERR_reason_error_string(e));
    else
        snprintf(buf, len, "%s", errno != 0 ? strerror(errno) : "connection closed");
    ERR_clear_error();
    return buf;
}

/*
 * After an SSL call returned r <= 0: arms the event it waits for and
 * returns 0, or returns -1 with why filled.
 */
static int probe_ssl_wait(struct health_probe *p, int r, char *why, size_t len)
{
    switch (SSL_get_error(p->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        event_add(p->rd, NULL);
        return 0;
    case SSL_ERROR_WANT_WRITE:
        event_add(p->wr, NULL);
        return 0;
    case SSL_ERROR_ZERO_RETURN:
        snprintf(why, len, "connection closed");
        return -1;
    default:
        probe_tls_reason(p, why, len);
        return -1;
    }
}

/* Writes what is left of p->out. 1 when all is written, 0 when waiting, -1 failed (why). */
static int probe_flush(struct health_probe *p, bool tls, char *why, size_t len)
{
    while (p->out_off < p->out_len) {
        size_t left = p->out_len - p->out_off;
        ssize_t n;

        if (tls) {
            ERR_clear_error();
            int r =
                SSL_write(p->ssl, p->out + p->out_off, left > INT32_MAX ? INT32_MAX : (int)left);
            if (r <= 0)
                return probe_ssl_wait(p, r, why, len);
            n = r;
        } else {
            n = send(p->fd, p->out + p->out_off, left, MSG_NOSIGNAL);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                event_add(p->wr, NULL);
                return 0;
            }
            if (n < 0) {
                snprintf(why, len, "%s", strerror(errno));
                return -1;
            }
        }
        p->out_off += (size_t)n;
    }
    return 1;
}

/* Reads into p->in. >0 bytes read, 0 when waiting, -1 closed or failed (why). */
static ssize_t probe_read(struct health_probe *p, char *why, size_t len)
{
    size_t room = sizeof(p->in) - p->in_len;
    ssize_t n;

    if (p->tls) {
        ERR_clear_error();
        int r = SSL_read(p->ssl, p->in + p->in_len, (int)room);
        if (r <= 0)
            return probe_ssl_wait(p, r, why, len);
        return r;
    }
    n = recv(p->fd, p->in + p->in_len, room, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        event_add(p->rd, NULL);
        return 0;
    }
    if (n <= 0) {
        snprintf(why, len, "%s", n == 0 ? "connection closed" : strerror(errno));
        return -1;
    }
    return n;
}

/* Replaces p->out with len bytes of data. Returns 0 or -1 (out of memory). */
static int probe_set_out(struct health_probe *p, const void *data, size_t len)
{
    char *copy = malloc(len > 0 ? len : 1);

    if (copy == NULL)
        return -1;
    memcpy(copy, data, len);
    free(p->out);
    p->out = copy;
    p->out_len = len;
    p->out_off = 0;
    return 0;
}

/* The http check's request. Returns 0 or -1 (out of memory). */
static int probe_request(struct health_probe *p)
{
    const struct backend *be = p->srv->backend;
    const char *host = be->tls.enabled && be->tls.sni != NULL ? be->tls.sni : p->srv->addr.text;
    char *req = NULL;
    int n, rc;

    n = asprintf(&req,
                 "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tlsgate-health\r\n"
                 "Connection: close\r\n\r\n",
                 be->health.path, host);
    if (n < 0)
        return -1;
    rc = probe_set_out(p, req, (size_t)n);
    free(req);
    return rc;
}

/* The host of "host:port" or "[v6]:port", without a trailing dot, into buf. */
static void addr_host(const char *text, char *buf, size_t len)
{
    const char *start = text, *end = strrchr(text, ':');
    size_t n;

    if (text[0] == '[' && (end = strchr(text, ']')) != NULL)
        start = text + 1;
    else if (end == NULL || strchr(text, ':') != end)
        end = text + strlen(text);
    n = (size_t)(end - start);
    if (n > 0 && start[n - 1] == '.')
        n--;
    snprintf(buf, len, "%.*s", (int)n, start);
}

/* True when name is an IPv4 or IPv6 literal (never sent as SNI). */
static bool is_ip(const char *name)
{
    unsigned char a[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1;
}

/*
 * The SSL of a tls check: SNI health.sni, else the backend's tls.sni, else
 * the host of the server's address; the same name is verified when the
 * backend verifies. NULL when out of memory.
 */
static SSL *probe_tls_check_ssl(const struct server *srv, SSL_CTX *ctx)
{
    const struct backend *be = srv->backend;
    char host[256];
    const char *name;
    SSL *ssl;

    if (be->health.sni != NULL) {
        name = be->health.sni;
    } else if (be->tls.sni != NULL) {
        name = be->tls.sni;
    } else {
        addr_host(srv->addr.text, host, sizeof(host));
        name = host;
    }
    if (ctx == NULL || (ssl = SSL_new(ctx)) == NULL)
        return NULL;
    if (!is_ip(name) && SSL_set_tlsext_host_name(ssl, name) != 1)
        goto fail;
    if (be->tls.enabled && be->tls.verify) {
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (is_ip(name) ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1
                        : SSL_set1_host(ssl, name) != 1)
            goto fail;
    }
    SSL_set_connect_state(ssl);
    return ssl;
fail:
    SSL_free(ssl);
    return NULL;
}

/* After the connect (and PROXY header): the TLS handshake or the request. Returns 0 or -1 (why). */
static int probe_begin(struct health_probe *p, char *why, size_t len)
{
    if (p->tls) {
        p->ssl = p->kind == HEALTH_TLS ? probe_tls_check_ssl(p->srv, p->tls_ctx)
                                       : tls_client_ssl_new(p->srv->backend, p->srv);
        if (p->ssl == NULL || SSL_set_fd(p->ssl, p->fd) != 1) {
            ERR_clear_error();
            snprintf(why, len, "cannot set up TLS");
            return -1;
        }
        p->step = PROBE_HANDSHAKE;
        return 0;
    }
    if (probe_request(p) < 0) {
        snprintf(why, len, "out of memory");
        return -1;
    }
    p->step = PROBE_REQUEST;
    return 0;
}

/* The connect finished. Returns 1 to go on, 0 when p is finished (freed). */
static int probe_on_connect(struct health_probe *p)
{
    enum pp_version ppv = p->srv->backend->proxy_protocol;
    int err = p->connect_err;
    socklen_t elen = sizeof(err);
    uint8_t hdr[PP_HDR_MAX];
    char why[128];
    int n;

    if (err == 0 && getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
        err = errno;
    if (err != 0) {
        probe_finish(p, false, "connect: %s", strerror(err));
        return 0;
    }
    if (ppv != PP_OFF) { /* tcp checks too: a server expecting the header logs its absence */
        n = pp_build(ppv, NULL, NULL, hdr, sizeof(hdr));
        if (n < 0 || probe_set_out(p, hdr, (size_t)n) < 0) {
            probe_finish(p, false, "cannot build the PROXY header");
            return 0;
        }
        p->step = PROBE_PROXY;
        return 1;
    }
    if (p->kind == HEALTH_TCP) {
        probe_finish(p, true, "connected");
        return 0;
    }
    if (probe_begin(p, why, sizeof(why)) < 0) {
        probe_finish(p, false, "%s", why);
        return 0;
    }
    return 1;
}

/* Reads toward the status line. Returns 1 to read on, 0 when waiting or finished. */
static int probe_on_status(struct health_probe *p)
{
    unsigned want = p->srv->backend->health.expect_status, status = 0;
    enum health_parse r;
    char why[128];
    ssize_t n = probe_read(p, why, sizeof(why));

    if (n < 0) {
        probe_finish(p, false, "%s before a status line", why);
        return 0;
    }
    if (n == 0)
        return 0;
    p->in_len += (size_t)n;
    /* in holds HEALTH_STATUS_LINE_MAX bytes: a full buffer parses as BAD, never MORE */
    r = health_parse_status(p->in, p->in_len, &status);
    if (r == HEALTH_PARSE_MORE)
        return 1;
    if (r == HEALTH_PARSE_BAD) {
        probe_finish(p, false, "not an HTTP/1.x answer");
        return 0;
    }
    if (status == want)
        probe_finish(p, true, "status %u", status);
    else
        probe_finish(p, false, "status %u, expected %u", status, want);
    return 0;
}

/* Runs the check as far as the socket allows; re-entered from its events. */
static void probe_advance(struct health_probe *p)
{
    char why[128];
    int r;

    for (;;) {
        switch (p->step) {
        case PROBE_CONNECT:
            if (probe_on_connect(p) == 0)
                return;
            break;
        case PROBE_PROXY:
            if ((r = probe_flush(p, false, why, sizeof(why))) <= 0) {
                if (r < 0)
                    probe_finish(p, false, "sending the PROXY header: %s", why);
                return;
            }
            if (p->kind == HEALTH_TCP) {
                probe_finish(p, true, "connected, PROXY header sent");
                return;
            }
            if (probe_begin(p, why, sizeof(why)) < 0) {
                probe_finish(p, false, "%s", why);
                return;
            }
            break;
        case PROBE_HANDSHAKE:
            ERR_clear_error();
            errno = 0;
            r = SSL_connect(p->ssl);
            if (r <= 0) {
                if (probe_ssl_wait(p, r, why, sizeof(why)) < 0)
                    probe_finish(p, false, "TLS handshake: %s", why);
                return;
            }
            if (p->kind == HEALTH_TLS) {
                probe_finish(p, true, "%s handshake", SSL_get_version(p->ssl));
                return;
            }
            if (probe_request(p) < 0) {
                probe_finish(p, false, "out of memory");
                return;
            }
            p->step = PROBE_REQUEST;
            break;
        case PROBE_REQUEST:
            if ((r = probe_flush(p, p->tls, why, sizeof(why))) <= 0) {
                if (r < 0)
                    probe_finish(p, false, "sending the request: %s", why);
                return;
            }
            p->step = PROBE_STATUS;
            break;
        case PROBE_STATUS:
            if (probe_on_status(p) == 0)
                return;
            break;
        }
    }
}

static void probe_on_io(evutil_socket_t fd, short what, void *arg)
{
    probe_advance(arg);
}

static void probe_on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct health_probe *p = arg;

    probe_finish(p, false, "timed out after %u ms %s", p->srv->backend->health.timeout,
                 step_names[p->step]);
}

struct health_probe *health_probe_start(struct event_base *base, const struct server *srv,
                                        SSL_CTX *tls_ctx, health_probe_done done, void *arg,
                                        char *why, size_t why_len)
{
    const struct backend *be = srv->backend;
    const struct sockaddr *sa = (const struct sockaddr *)&srv->addr.ss;
    struct timeval tv = {be->health.timeout / 1000, (be->health.timeout % 1000) * 1000};
    struct health_probe *p = calloc(1, sizeof(*p));

    if (p == NULL) {
        snprintf(why, why_len, "out of memory");
        return NULL;
    }
    p->srv = srv;
    p->kind = be->health.check;
    p->tls = p->kind == HEALTH_TLS || (p->kind == HEALTH_HTTP && be->tls.enabled);
    p->tls_ctx = tls_ctx;
    p->done = done;
    p->arg = arg;
    p->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->fd < 0) {
        snprintf(why, why_len, "socket: %s", strerror(errno));
        goto fail;
    }
    p->rd = event_new(base, p->fd, EV_READ, probe_on_io, p);
    p->wr = event_new(base, p->fd, EV_WRITE, probe_on_io, p);
    p->timer = evtimer_new(base, probe_on_timeout, p);
    if (p->rd == NULL || p->wr == NULL || p->timer == NULL || evtimer_add(p->timer, &tv) < 0) {
        snprintf(why, why_len, "out of memory");
        goto fail;
    }
    if (connect(p->fd, sa, srv->addr.len) == 0 || errno == EINPROGRESS)
        event_add(p->wr, NULL);
    else {
        /* Refused at once (loopback can): said from the loop, never from here. */
        p->connect_err = errno;
        event_active(p->wr, EV_WRITE, 1);
    }
    return p;
fail:
    probe_free(p);
    return NULL;
}

SSL_CTX *health_probe_tls_ctx(const struct backend *be, char *why, size_t why_len)
{
    bool verify = be->tls.enabled && be->tls.verify;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    unsigned long e;

    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
        goto fail;
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (verify && (be->tls.ca != NULL ? SSL_CTX_load_verify_locations(ctx, be->tls.ca, NULL)
                                      : SSL_CTX_set_default_verify_paths(ctx)) != 1)
        goto fail;
    return ctx;
fail:
    e = ERR_peek_error();
    snprintf(why, why_len, "cannot set up TLS checks: %s",
             e != 0 && ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "out of memory");
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}
