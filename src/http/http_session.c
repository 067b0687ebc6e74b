/*
 * HTTP modes: offload (TLS ends here, plain HTTP to servers), bridge (TLS
 * again to servers) and http (no TLS at the front). The life of a client
 * connection, from accept to close:
 *
 *   http_start            PROXY header (raw fd, exact bytes) -> open client.bev
 *   hs_on_client_event    TLS handshake done -> wait for a request head
 *   hs_read_head          parse, rules, sticky cookie, pick a server
 *   http_upstream_connect pooled or new server connection
 *   http_server_connected head + body to the server
 *   hs_on_server_read     response head (rewritten) + body to the client
 *   hs_exchange_done      log, server back to the pool, next request
 *
 * One request is served at a time; pipelined requests wait in the client's
 * input until the response before them is complete, so they are answered in
 * order. Bodies are streamed in both directions with backpressure, never
 * buffered whole.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "accesslog.h"
#include "addr.h"
#include "balance.h"
#include "health.h"
#include "http/http_engine.h"
#include "http/http_io.h"
#include "http/sticky_memo.h"
#include "http_rules.h"
#include "http_session.h"
#include "log.h"
#include "metrics.h"
#include "proxy_proto.h"
#include "relay.h"
#include "server_queue.h"
#include "session.h"
#include "tls_ctx.h"
#include "worker-t.h"

/* Output past this pauses reading the other side (as in the byte relay). */
#define HTTP_HIGH_WATER (256 * 1024)

/* Largest response head we take from a server. */
#define HTTP_MAX_RESPONSE_HEAD (64 * 1024)

/* How long a closing connection keeps reading what the client still sends. */
#define HTTP_LINGER_MS 2000

/* Longest PROXY header we accept from a balancer in front. */
#define HTTP_MAX_PROXY_HDR 4096

static void hs_process_input(struct session *s);
static void hs_on_client_read(struct bufferevent *bev, void *arg);
static void hs_on_client_write(struct bufferevent *bev, void *arg);
static void hs_on_client_event(struct bufferevent *bev, short what, void *arg);
static void hs_on_server_read(struct bufferevent *bev, void *arg);
static void hs_on_server_write(struct bufferevent *bev, void *arg);
static void hs_on_server_event(struct bufferevent *bev, short what, void *arg);

static long hs_ms_since(const struct session *s, const struct timeval *t)
{
    struct timeval now, d;

    event_base_gettimeofday_cached(s->w->base, &now);
    timersub(&now, t, &d);
    return (long)(d.tv_sec * 1000 + d.tv_usec / 1000);
}

/* Microseconds since t, by the clock (handshake latency wants better than the loop's cache). */
static uint64_t hs_usec_since(const struct timeval *t)
{
    struct timeval now, d;

    gettimeofday(&now, NULL);
    timersub(&now, t, &d);
    return (uint64_t)d.tv_sec * 1000000u + (uint64_t)d.tv_usec;
}

/* Writes the access-log line of the current request (once). */
static void hs_log_txn(struct session *s)
{
    struct http_sess *h = s->http;
    struct http_txn *t = &h->txn;
    const struct rule *r = t->rule >= 0 ? &s->l->http.rules[t->rule] : NULL;
    static const char *const actions[] = {"deny", "redirect", "forward"};
    struct access_http a = {
        .request_no = t->no,
        .sni = h->sni,
        .tls_version = h->tls_version,
        .tls_cipher = h->tls_cipher,
        .method = t->method[0] ? t->method : NULL,
        .host = t->names && t->names->host[0] ? t->names->host : NULL,
        .path = t->names && t->names->path[0] ? t->names->path : NULL,
        .status = t->status,
        .rule_action = r ? actions[r->action] : NULL,
        .rule = t->rule,
        .sticky = t->sticky,
        .backend = t->backend ? t->backend->name : NULL,
        .server = t->server ? t->server->name : NULL,
        .bytes_in = t->bytes_in,
        .bytes_out = t->bytes_out,
        .duration_ms = hs_ms_since(s, &t->started),
        .result = t->result ? t->result : "ok",
    };

    if (t->logged)
        return;
    t->logged = true;
    metrics_bytes(s->l, t->bytes_in, t->bytes_out);
    if (t->method[0] != '\0')
        metrics_request(s->l, t->status);
    accesslog_http(s, &a);
}

/* Forgets the finished request; keeps what belongs to the connection. */
static void hs_txn_reset(struct http_sess *h)
{
    free(h->txn.req_head);
    free(h->txn.names);
    memset(&h->txn, 0, sizeof(h->txn));
    h->txn.rule = -1;
}

/* Reads the client again (and what OpenSSL already holds of it: see http_io_tls_kick). */
static void hs_client_read_on(struct session *s)
{
    bufferevent_enable(s->client.bev, EV_READ);
    http_io_tls_kick(s->client.bev);
}

/* Waits for the next request head: keep-alive deadline until its first byte. */
static void hs_wait_next(struct session *s)
{
    struct http_sess *h = s->http;

    hs_txn_reset(h);
    h->phase = HTTP_WAIT_HEAD;
    session_set_timer(s, h->nrequests == 0 ? s->conf->timeouts.http_request
                                           : s->conf->timeouts.http_keepalive);
    hs_client_read_on(s);
}

/*
 * The last response is written: send our FIN, then read and discard what the
 * client still sends for a moment before closing. Closing a socket with
 * unread bytes makes the kernel send a reset, which can destroy the response
 * before the client reads it (nginx's lingering close does the same).
 */
static void hs_linger(struct session *s)
{
    struct http_sess *h = s->http;

    h->lingering = true;
    tls_send_close_notify(h->ssl); /* the response is all written: TLS ends cleanly */
    (void)shutdown(bufferevent_getfd(s->client.bev), SHUT_WR);
    evbuffer_drain(bufferevent_get_input(s->client.bev),
                   evbuffer_get_length(bufferevent_get_input(s->client.bev)));
    session_set_timer(s, HTTP_LINGER_MS);
    hs_client_read_on(s);
}

/* The last response is queued: close once it is written. */
static void hs_close_after_flush(struct session *s, const char *result)
{
    struct http_sess *h = s->http;

    h->phase = HTTP_CLOSING;
    if (h->txn.result == NULL)
        h->txn.result = result;
    bufferevent_disable(s->client.bev, EV_READ);
    bufferevent_setwatermark(s->client.bev, EV_WRITE, 0, 0);
    session_set_timer(s, s->conf->timeouts.idle);
    if (evbuffer_get_length(bufferevent_get_output(s->client.bev)) == 0)
        hs_linger(s);
}

/* Answers the current request ourselves (deny, redirect, errors), then goes on or closes. */
static void hs_local_reply(struct session *s, unsigned status, const char *location,
                           const char *result, bool close)
{
    struct http_sess *h = s->http;
    struct http_txn *t = &h->txn;

    if (!t->client_keep_alive || s->w->stopping || s->conf != s->w->conf)
        close = true; /* a reload replaced s->conf: the next connection gets the new one */
    t->status = status;
    t->result = result;
    t->bytes_out += http_reply(s, status, location, close);
    hs_log_txn(s);
    if (close) {
        hs_close_after_flush(s, result);
        return;
    }
    hs_wait_next(s);
}

/* See http_engine.h: the exchange with the server cannot go on. */
void http_exchange_failed(struct session *s, unsigned status, const char *result)
{
    struct http_sess *h = s->http;
    struct http_txn *t = &h->txn;

    http_upstream_release(s, false);
    if (t->resp_head_done) {
        /* Part of the response is out: all we can do is cut the connection. */
        t->result = result;
        hs_log_txn(s);
        session_close(s, result);
        return;
    }
    t->status = status;
    t->result = result;
    t->bytes_out += http_reply(s, status, NULL, true);
    hs_log_txn(s);
    hs_close_after_flush(s, result);
}

/*
 * Expands a redirect rule's location. A request without Host (HTTP/1.0) has
 * no {host}: like nginx, use the name the client asked TLS for, else the
 * address it reached, rather than write "https:///...".
 */
static int hs_redirect_location(const struct session *s, const char *tmpl,
                                const struct http_request_view *view, char *out, size_t outlen)
{
    struct http_request_view v = *view;
    char ip[ADDR_STRLEN + 2];

    if (v.host.len == 0 && s->http->sni[0] != '\0') {
        v.host = (struct http_str){s->http->sni, strlen(s->http->sni)};
    } else if (v.host.len == 0) {
        bool v6 = s->local.ss_family == AF_INET6;

        addr_format_ip((const struct sockaddr *)&s->local, ip + v6, sizeof(ip) - 2);
        if (v6) { /* a literal IPv6 address goes in brackets in a URL */
            ip[0] = '[';
            strcat(ip, "]");
        }
        v.host = (struct http_str){ip, strlen(ip)};
    }
    return http_redirect_expand(tmpl, &v, out, outlen);
}

/*
 * The same, for a long target: in a buffer sized for the worst case (each
 * placeholder of tmpl replaced by a value as long as the head, or the SNI, and
 * every byte of it percent-encoded). Returns it (the caller frees it), or NULL
 * when out of memory.
 */
static char *hs_redirect_location_big(const struct session *s, const char *tmpl,
                                      const struct http_request_view *view,
                                      const struct http_head *head)
{
    size_t value = head->head_len > 256 ? head->head_len : 256, cap = strlen(tmpl) + 1;
    char *out;

    for (const char *p = tmpl; *p != '\0'; p++)
        cap += *p == '{' ? 3 * value : 0;
    out = malloc(cap);
    if (out != NULL && hs_redirect_location(s, tmpl, view, out, cap) < 0) {
        free(out);
        out = NULL;
    }
    return out;
}

static void hs_note_request_line(struct http_txn *t, const char *p, size_t len);

/*
 * A request that ends before its head was parsed (refused, timed out, or cut
 * by the client): still the connection's next request, with the bytes it
 * sent and, for the log, its request line as far as it got. Does nothing
 * once the head was parsed.
 */
static void hs_count_unparsed(struct session *s)
{
    struct http_txn *t = &s->http->txn;
    struct evbuffer *in = bufferevent_get_input(s->client.bev);
    size_t len = evbuffer_get_length(in);
    const char *p;

    if (t->no != 0)
        return;
    t->no = ++s->http->nrequests;
    t->bytes_in = len;
    if (len > s->l->http.max_header_bytes)
        len = s->l->http.max_header_bytes;
    p = len > 0 ? (const char *)evbuffer_pullup(in, (ev_ssize_t)len) : NULL;
    if (p != NULL && t->method[0] == '\0')
        hs_note_request_line(t, p, len);
}

/* Refuses a malformed request head: status, log line, close. */
static void hs_refuse(struct session *s, unsigned status, const char *why)
{
    char addr[ADDR_STRLEN];

    log_info("session %llx: listener %s: bad request from %s: %s (answering %u)",
             (unsigned long long)s->id, s->l->name,
             addr_format((struct sockaddr *)&s->client_addr, addr, sizeof(addr)), why, status);
    hs_count_unparsed(s);
    s->http->txn.result = "bad-request";
    hs_local_reply(s, status, NULL, "bad-request", true);
}

/* Copies a head string into a fixed NUL-terminated field for the log. */
static void hs_copy(char *dst, size_t size, struct http_str src)
{
    size_t n = src.len < size - 1 ? src.len : size - 1;

    if (n > 0)
        memcpy(dst, src.p, n);
    dst[n] = '\0';
}

/* t's log names, made on first use; NULL when out of memory (the line then shows none). */
static struct http_txn_names *hs_names(struct http_txn *t)
{
    if (t->names == NULL && (t->names = malloc(sizeof(*t->names))) != NULL) {
        t->names->host[0] = '\0'; /* not zeroed whole: each copy ends with its NUL */
        t->names->path[0] = '\0';
    }
    return t->names;
}

/* Cookie stickiness: the server the request's cookie names, or a new pick. */
static struct server *hs_sticky_pick(struct session *s, const struct http_head *head)
{
    const struct sticky_conf *sc = &s->l->http.sticky;
    struct http_txn *t = &s->http->txn;
    struct backend *b = t->backend;
    struct server *srv = NULL;
    bool had_cookie = false;

    for (size_t i = 0; i < head->nheaders && srv == NULL; i++) {
        const struct http_header *hd = &head->headers[i];
        const char *val;
        size_t vlen;

        if (!http_str_eq_nocase(hd->name, "cookie"))
            continue;
        if (!sticky_find_cookie(hd->value.p, hd->value.len, sc->cookie, &val, &vlen))
            continue;
        had_cookie = true;
        srv = sticky_memo_lookup(sc->key, b, val, vlen);
    }
    if (srv != NULL && balance_server_usable(srv)) {
        t->sticky = "hit";
        t->sticky_target = srv;
        return srv;
    }
    t->sticky = had_cookie ? "reset" : "miss";
    return balance_pick(b, (struct sockaddr *)&s->client_addr);
}

/* Body framing of the request, as the server will see it. */
static void hs_take_framing(struct http_txn *t, const struct http_head *head)
{
    t->req_body = head->body;
    t->req_left = head->content_length;
    if (head->body == HTTP_BODY_CHUNKED)
        http_chunked_init(&t->req_chunked);
    t->req_done = head->body == HTTP_BODY_NONE;
    t->client_keep_alive = head->keep_alive;
    t->upgrade = head->upgrade;
    t->expect_continue = head->expect_continue;
    t->client_minor = head->version_minor;
    t->head_request = head->method.len == 4 && memcmp(head->method.p, "HEAD", 4) == 0;
}

/* A whole request head is at the start of the client's input: decide and act. */
static void hs_handle_request(struct session *s, const struct http_head *head)
{
    struct http_sess *h = s->http;
    struct http_txn *t = &h->txn;
    const struct http_conf *hc = &s->l->http;
    struct evbuffer *in = bufferevent_get_input(s->client.bev);
    struct http_request_view view;
    const struct rule *rule;
    struct server *srv;
    size_t rule_index;
    bool path_ok;
    char location[2048], match_path[HTTP_RULES_PATH_MAX];
    struct http_fwd fwd = {
        .client = (struct sockaddr *)&s->client_addr,
        .proto = h->tls ? "https" : "http",
        .add_forwarded = hc->forwarded_headers,
        .keep_prior = s->l->proxy_protocol != PP_OFF,
    };

    t->no = ++h->nrequests;
    t->bytes_in = head->head_len;
    hs_copy(t->method, sizeof(t->method), head->method);
    hs_take_framing(t, head);
    path_ok = http_request_view_init(&view, head, (struct sockaddr *)&s->client_addr, match_path,
                                     sizeof(match_path)) == 0;
    if (hs_names(t) != NULL) {
        hs_copy(t->names->path, sizeof(t->names->path), head->target);
        hs_copy(t->names->host, sizeof(t->names->host), view.host);
    }
    fwd.upgrade = t->upgrade;
    if (!path_ok && hc->nrules > 0) {
        /* Rules could not see this path as the origin may: refuse rather than guess. */
        evbuffer_drain(in, head->head_len);
        hs_local_reply(s, 414, NULL, "uri-too-long", true);
        return;
    }

    rule = http_rules_match(hc, &view, &rule_index);
    if (rule != NULL)
        t->rule = (int)rule_index;
    if (rule != NULL && rule->action == RULE_DENY) {
        evbuffer_drain(in, head->head_len);
        hs_local_reply(s, rule->status, NULL, "denied", !t->req_done);
        return;
    }
    if (rule != NULL && rule->action == RULE_REDIRECT) {
        /* The view points into the head: expand before the head is drained. */
        char *big = NULL;
        const char *loc = location;
        int n = hs_redirect_location(s, rule->location, &view, location, sizeof(location));

        if (n < 0 && (big = hs_redirect_location_big(s, rule->location, &view, head)) != NULL)
            loc = big;
        evbuffer_drain(in, head->head_len);
        if (n < 0 && big == NULL)
            hs_local_reply(s, 500, NULL, "redirect-too-long", true); /* out of memory */
        else
            hs_local_reply(s, rule->status, loc, "redirect", !t->req_done);
        free(big);
        return;
    }
    t->backend = rule != NULL ? rule->backend : hc->default_backend;
    if (t->backend == NULL) {
        evbuffer_drain(in, head->head_len);
        hs_local_reply(s, 404, NULL, "no-route", !t->req_done);
        return;
    }
    if (hc->sticky.enabled)
        srv = hs_sticky_pick(s, head);
    else
        srv = balance_pick(t->backend, (struct sockaddr *)&s->client_addr);
    t->req_head = http_forward_request(head, &fwd, &t->req_head_len);
    evbuffer_drain(in, head->head_len);
    if (t->req_head == NULL) {
        hs_local_reply(s, 431, NULL, "head-too-large", true);
        return;
    }
    /*
     * Client reading stays on: further bytes (body, pipelined requests) wait
     * in the input, bounded by its high watermark, and toggling it per
     * request would cost two epoll_ctl calls.
     */
    h->phase = HTTP_CONNECT;
    s->backend = t->backend;
    http_upstream_connect(s, srv); /* srv NULL: wait for a slot, or 503 */
}

/*
 * For the log line of a refused request: the method and target as far as
 * they can be read from the first line (the access log escapes them).
 */
static void hs_note_request_line(struct http_txn *t, const char *p, size_t len)
{
    const char *end = memchr(p, '\n', len);
    const char *sp1, *sp2;
    size_t line = end ? (size_t)(end - p) : len;

    sp1 = memchr(p, ' ', line);
    if (sp1 == NULL)
        return;
    hs_copy(t->method, sizeof(t->method), (struct http_str){p, (size_t)(sp1 - p)});
    sp1++;
    sp2 = memchr(sp1, ' ', line - (size_t)(sp1 - p));
    if (hs_names(t) == NULL)
        return;
    hs_copy(t->names->path, sizeof(t->names->path),
            (struct http_str){sp1, sp2 ? (size_t)(sp2 - sp1) : line - (size_t)(sp1 - p)});
    /* The first Host line, if the head got that far: which site the request was for. */
    for (const char *l = end; l != NULL && (size_t)(l + 1 - p) < len;
         l = memchr(l + 1, '\n', len - (size_t)(l + 1 - p))) {
        size_t left = len - (size_t)(l + 1 - p), vlen;
        const char *v, *eol;

        if (l[1] == '\n' || (l[1] == '\r' && left > 1 && l[2] == '\n'))
            break; /* the end of the head: what follows is another request */
        if (left < 5 || strncasecmp(l + 1, "host:", 5) != 0)
            continue;
        v = l + 6;
        eol = memchr(l + 1, '\n', left);
        vlen = eol ? (size_t)(eol - v) : left - 5;
        while (vlen > 0 && (*v == ' ' || *v == '\t'))
            v++, vlen--;
        while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
            vlen--;
        hs_copy(t->names->host, sizeof(t->names->host), (struct http_str){v, vlen});
        break;
    }
}

/* Tries to parse a request head from the client's input. Returns 1 when one was handled. */
static int hs_read_head(struct session *s)
{
    struct http_sess *h = s->http;
    struct evbuffer *in = bufferevent_get_input(s->client.bev);
    size_t max = s->l->http.max_header_bytes;
    size_t len = evbuffer_get_length(in);
    struct http_head head_buf, *head = &head_buf; /* on the stack: no allocation per request */
    const char *p;
    int r;

    if (len == 0)
        return 0;
    if (!timerisset(&h->txn.started)) {
        /* First byte of a request: the request-head deadline replaces keep-alive's. */
        event_base_gettimeofday_cached(s->w->base, &h->txn.started);
        session_set_timer(s, s->conf->timeouts.http_request);
    }
    if (len > max + 1)
        len = max + 1;
    p = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
    if (p == NULL) {
        session_close(s, "out-of-memory");
        return 0;
    }
    r = http_parse_request(p, len, max, head);
    if (r == HTTP_OK)
        hs_handle_request(s, head);
    else if (r == HTTP_ERROR) {
        hs_note_request_line(&h->txn, p, len);
        hs_refuse(s, head->error_status, head->error);
    }
    return r == HTTP_OK;
}

/* Serves what the client sent while waiting for a head: possibly several pipelined requests. */
static void hs_process_input(struct session *s)
{
    while (!s->closing && s->http->phase == HTTP_WAIT_HEAD) {
        if (evbuffer_get_length(bufferevent_get_output(s->client.bev)) >= HTTP_HIGH_WATER) {
            /*
             * A client that pipelines requests without reading the answers
             * would make us buffer them without bound: serve no more until it
             * has read half (hs_on_client_write), idle timeout meanwhile.
             */
            s->client.throttled = true;
            bufferevent_disable(s->client.bev, EV_READ);
            session_set_timer(s, s->conf->timeouts.idle);
            return;
        }
        if (!hs_read_head(s))
            return;
    }
}

/*
 * Scans the chunked body bytes at the start of in. *n is set to how many
 * belong to the body (all of in unless it ended or is malformed).
 */
static enum http_chunk_result hs_chunked_span(struct http_chunked *c, struct evbuffer *in,
                                              size_t *n)
{
    struct evbuffer_iovec vec[16];
    struct evbuffer_ptr pos;
    size_t avail = evbuffer_get_length(in);

    *n = 0;
    while (*n < avail) {
        size_t before = *n;
        int nvec;

        if (evbuffer_ptr_set(in, &pos, *n, EVBUFFER_PTR_SET) < 0)
            break;
        nvec = evbuffer_peek(in, -1, &pos, vec, 16);
        if (nvec > 16)
            nvec = 16;
        for (int i = 0; i < nvec; i++) {
            size_t used = 0;
            enum http_chunk_result cr =
                http_chunked_scan(c, vec[i].iov_base, vec[i].iov_len, &used);

            *n += used;
            if (cr != HTTP_CHUNK_MORE)
                return cr;
        }
        if (*n == before)
            break; /* only empty blocks left: nothing more to scan now */
    }
    return HTTP_CHUNK_MORE;
}

/* Moves what belongs to the request body from the client to the server. */
static void hs_pump_request_body(struct session *s)
{
    struct http_txn *t = &s->http->txn;
    struct evbuffer *in = bufferevent_get_input(s->client.bev);
    struct evbuffer *out = bufferevent_get_output(s->server.bev);
    size_t avail = evbuffer_get_length(in), n = 0;

    if (t->req_done || avail == 0)
        return;
    if (t->req_body == HTTP_BODY_LENGTH) {
        n = avail < t->req_left ? avail : (size_t)t->req_left;
        t->req_left -= n;
        t->req_done = t->req_left == 0;
    } else {
        enum http_chunk_result cr = hs_chunked_span(&t->req_chunked, in, &n);

        if (cr == HTTP_CHUNK_ERROR) {
            log_info("session %llx: listener %s: malformed chunked request body",
                     (unsigned long long)s->id, s->l->name);
            http_exchange_failed(s, 400, "bad-chunked-body");
            return;
        }
        t->req_done = cr == HTTP_CHUNK_DONE;
    }
    evbuffer_remove_buffer(in, out, n);
    t->bytes_in += n;
    session_touch(s);
    if (!t->req_done && evbuffer_get_length(out) >= HTTP_HIGH_WATER)
        bufferevent_disable(s->client.bev, EV_READ); /* the server is slow: stop reading */
}

/* See http_engine.h: s->server is connected (new or from the pool). */
void http_server_connected(struct session *s)
{
    struct http_sess *h = s->http;
    struct http_txn *t = &h->txn;

    h->phase = HTTP_EXCHANGE;
    t->server = s->srv;
    if (s->l->http.sticky.enabled && t->sticky_target != s->srv) {
        /* A new pick, or the cookie's server failed to connect: name the one that answers. */
        if (t->sticky_target != NULL)
            t->sticky = "reset";
        sticky_memo_value(s->l->http.sticky.key, t->backend, s->srv, t->cookie);
    }
    bufferevent_setcb(s->server.bev, hs_on_server_read, hs_on_server_write, hs_on_server_event, s);
    bufferevent_setwatermark(s->server.bev, EV_WRITE, HTTP_HIGH_WATER / 2, 0);
    bufferevent_setwatermark(s->server.bev, EV_READ, 0, 0);
    /* The head is kept until the response begins: a stale pooled connection may need a retry. */
    bufferevent_write(s->server.bev, t->req_head, t->req_head_len);
    session_touch(s);
    session_set_timer(s, s->conf->timeouts.idle);
    http_io_fast_reads(s->server.bev);
    bufferevent_enable(s->server.bev, EV_READ | EV_WRITE);
    hs_pump_request_body(s);
    if (!s->closing && s->server.bev != NULL)
        http_io_flush(s->server.bev);
    if (!t->req_done && !s->closing && h->phase == HTTP_EXCHANGE)
        hs_client_read_on(s);
}

/* The response is complete: log, give the server back, then the next request or close. */
static void hs_exchange_done(struct session *s)
{
    struct http_sess *h = s->http;
    struct http_txn *t = &h->txn;
    bool reuse = t->server_keep_alive && t->req_done;
    bool close = h->close_after || !t->req_done;

    hs_log_txn(s);
    http_upstream_release(s, reuse);
    if (close) {
        hs_close_after_flush(s, "done");
        return;
    }
    hs_wait_next(s);
    hs_process_input(s);
}

/* Moves response body bytes from the server to the client. Returns 1 when it ended. */
static int hs_pump_response_body(struct session *s)
{
    struct http_txn *t = &s->http->txn;
    struct evbuffer *in = bufferevent_get_input(s->server.bev);
    struct evbuffer *out = bufferevent_get_output(s->client.bev);
    size_t avail = evbuffer_get_length(in), n = 0;

    switch (t->resp_body) {
    case HTTP_BODY_NONE:
        t->resp_done = true;
        break;
    case HTTP_BODY_LENGTH:
        n = avail < t->resp_left ? avail : (size_t)t->resp_left;
        t->resp_left -= n;
        t->resp_done = t->resp_left == 0;
        break;
    case HTTP_BODY_UNTIL_CLOSE:
        n = avail;
        break;
    case HTTP_BODY_CHUNKED: {
        enum http_chunk_result cr = hs_chunked_span(&t->resp_chunked, in, &n);

        if (cr == HTTP_CHUNK_ERROR) {
            log_warnx("session %llx: server %s/%s: malformed chunked response",
                      (unsigned long long)s->id, s->backend->name, s->srv->name);
            http_exchange_failed(s, 502, "bad-response");
            return 1;
        }
        t->resp_done = cr == HTTP_CHUNK_DONE;
        break;
    }
    }
    if (n > 0) {
        http_io_move(in, out, n); /* full TLS records: small bodies share the head's */
        t->bytes_out += n;
        session_touch(s);
    }
    http_io_flush(s->client.bev); /* now, not after a round trip through epoll */
    if (t->resp_done) {
        if (evbuffer_get_length(in) != 0)
            t->server_keep_alive = false; /* the server sent more than it announced */
        hs_exchange_done(s);
        return 1;
    }
    if (evbuffer_get_length(out) >= HTTP_HIGH_WATER)
        bufferevent_disable(s->server.bev, EV_READ); /* the client reads slowly */
    return 0;
}

/* A 101 answered an upgrade: from now on bytes go both ways unchanged. */
static void hs_start_tunnel(struct session *s)
{
    struct http_sess *h = s->http;

    h->txn.result = "upgraded";
    hs_log_txn(s);
    h->phase = HTTP_TUNNEL;
    relay_tunnel(s);
}

/* Sends the final response head on, rewritten. Returns 0, or -1 when the session ended. */
static int hs_send_response_head(struct session *s, const struct http_head *rh)
{
    struct http_sess *h = s->http;
    struct http_txn *t = &h->txn;
    const struct http_conf *hc = &s->l->http;
    struct evbuffer *out = bufferevent_get_output(s->client.bev);
    char set_cookie[512];
    struct http_resp_extra x = {.set_cookie = NULL};
    int n;

    t->status = rh->status;
    health_report_status(s->srv, rh->status);
    t->resp_body = rh->body;
    t->resp_left = rh->content_length;
    if (rh->body == HTTP_BODY_CHUNKED)
        http_chunked_init(&t->resp_chunked);
    /* A server connection is reused only when nothing about it is in doubt. */
    t->server_keep_alive = rh->keep_alive && rh->body != HTTP_BODY_UNTIL_CLOSE &&
                           t->client_minor == 1 && s->backend->proxy_protocol == PP_OFF;
    /* A reload replaced s->conf: close after this response so the client reconnects to it. */
    h->close_after = !t->client_keep_alive || rh->body == HTTP_BODY_UNTIL_CLOSE || !t->req_done ||
                     s->w->stopping || s->conf != s->w->conf;
    if (t->cookie[0] != '\0' &&
        sticky_memo_set_cookie(&hc->sticky, t->cookie, h->tls, set_cookie, sizeof(set_cookie)) > 0)
        x.set_cookie = set_cookie;
    if (h->tls && hc->hsts != NULL && hc->hsts[0] != '\0')
        x.hsts = hc->hsts;
    x.close = h->close_after;
    x.keep_alive_10 = !h->close_after && t->client_minor == 0;
    n = http_forward_response(out, rh, &x);
    if (n < 0) {
        session_close(s, "out-of-memory");
        return -1;
    }
    t->bytes_out += (uint64_t)n;
    t->resp_head_done = true;
    return 0;
}

/* Parses response heads at the start of the server's input. Returns 1 when a final head went on. */
static int hs_read_response_head(struct session *s)
{
    struct http_txn *t = &s->http->txn;
    struct evbuffer *in = bufferevent_get_input(s->server.bev);
    struct http_str method = {t->method, strlen(t->method)};
    struct http_head rh_buf, *rh = &rh_buf; /* on the stack: no allocation per response */
    size_t len;
    int r, ret = 0;

    while (!t->resp_head_done && (len = evbuffer_get_length(in)) > 0) {
        const char *p;

        if (len > HTTP_MAX_RESPONSE_HEAD + 1)
            len = HTTP_MAX_RESPONSE_HEAD + 1;
        p = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
        r = http_parse_response(p, len, HTTP_MAX_RESPONSE_HEAD, method, rh);
        if (r == HTTP_NEED_MORE)
            break;
        if (r == HTTP_ERROR) {
            log_warnx("session %llx: server %s/%s: bad response: %s", (unsigned long long)s->id,
                      s->backend->name, s->srv->name, rh->error);
            http_exchange_failed(s, 502, "bad-response");
            return -1;
        }
        if (rh->status == 101) {
            if (!t->upgrade) {
                http_exchange_failed(s, 502, "unexpected-101");
                return -1;
            }
            t->status = 101;
            t->bytes_out += rh->head_len;
            t->resp_head_done = true;
            t->server_keep_alive = false;
            evbuffer_remove_buffer(in, bufferevent_get_output(s->client.bev), rh->head_len);
            hs_start_tunnel(s);
            return -1;
        }
        if (rh->status < 200) {
            /* 100 Continue and other interim responses go on unchanged. */
            t->bytes_out += rh->head_len;
            evbuffer_remove_buffer(in, bufferevent_get_output(s->client.bev), rh->head_len);
            continue;
        }
        if (hs_send_response_head(s, rh) < 0) {
            return -1;
        }
        evbuffer_drain(in, rh->head_len);
        ret = 1;
    }
    return ret;
}

static void hs_on_server_read(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;
    struct http_txn *t = &s->http->txn;

    session_touch(s);
    if (!t->resp_head_done && hs_read_response_head(s) <= 0)
        return;
    if (s->http->phase == HTTP_EXCHANGE)
        hs_pump_response_body(s);
}

/* The server's output drained to the low mark: read more of the request body. */
static void hs_on_server_write(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;
    struct http_txn *t = &s->http->txn;

    if (s->http->phase == HTTP_EXCHANGE && !t->req_done)
        hs_client_read_on(s);
}

/*
 * A request may be sent again only when it is idempotent, had no body, went
 * out on a reused connection and got no byte of answer: the server closed an
 * idle connection as we reused it (RFC 9112 §9.3.1). Never after that.
 */
static bool hs_may_retry(const struct session *s)
{
    const struct http_txn *t = &s->http->txn;
    static const char *const idempotent[] = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"};
    bool ok = false;

    if (!s->http->server_pooled || t->retried || t->resp_head_done || t->bytes_out != 0 ||
        t->req_head == NULL || t->req_body != HTTP_BODY_NONE || t->upgrade ||
        evbuffer_get_length(bufferevent_get_input(s->server.bev)) != 0)
        return false;
    for (size_t i = 0; i < sizeof(idempotent) / sizeof(idempotent[0]); i++)
        ok |= strcmp(t->method, idempotent[i]) == 0;
    return ok;
}

static void hs_on_server_event(struct bufferevent *bev, short what, void *arg)
{
    struct session *s = arg;
    struct http_txn *t = &s->http->txn;

    if ((what & BEV_EVENT_EOF) && t->resp_head_done && t->resp_body == HTTP_BODY_UNTIL_CLOSE) {
        hs_pump_response_body(s);
        if (s->closing || s->http->phase != HTTP_EXCHANGE)
            return;
        t->resp_done = true;
        t->server_keep_alive = false;
        hs_exchange_done(s);
        return;
    }
    if (hs_may_retry(s)) {
        /* A pooled connection the server closed just as we reused it: nothing was answered. */
        struct server *srv = s->srv;

        log_debug("session %llx: server %s/%s closed a reused connection; retrying on a new one",
                  (unsigned long long)s->id, s->backend->name, srv->name);
        t->retried = true;
        http_upstream_release(s, false);
        s->http->phase = HTTP_CONNECT;
        http_upstream_connect_new(s, srv);
        return;
    }
    log_info("session %llx: server %s/%s %s %s", (unsigned long long)s->id, s->backend->name,
             s->srv->name, (what & BEV_EVENT_EOF) ? "closed the connection" : "failed:",
             (what & BEV_EVENT_EOF) ? (t->resp_head_done ? "mid-response" : "before responding")
                                    : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    http_exchange_failed(s, 502,
                         t->resp_head_done ? "server-closed-mid-response" : "server-closed");
}

/* Client bytes: a request head, a request body, or nothing we want now. */
static void hs_on_client_read(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;
    struct http_sess *h = s->http;

    switch (h->phase) {
    case HTTP_WAIT_HEAD:
        hs_process_input(s);
        return;
    case HTTP_EXCHANGE:
        hs_pump_request_body(s);
        return;
    case HTTP_CLOSING:
        evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
        return;
    default:
        return;
    }
}

/* The client took what we sent: finish a close, or resume the server. */
static void hs_on_client_write(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;
    struct http_sess *h = s->http;

    if (h->phase == HTTP_CLOSING) {
        if (!h->lingering && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
            hs_linger(s);
        return;
    }
    if (h->phase == HTTP_EXCHANGE && s->server.bev != NULL && h->txn.resp_head_done)
        bufferevent_enable(s->server.bev, EV_READ);
    if (h->phase == HTTP_WAIT_HEAD && s->client.throttled) {
        /* The client read its answers: serve the requests that wait. */
        s->client.throttled = false;
        hs_wait_next(s);
        hs_process_input(s);
    }
}

/*
 * A client handshake that failed or ran out of time: for its log line, the
 * SNI if OpenSSL got that far (not when it refused the version, which it
 * picks first), and the handshake's bytes each way, since no request came.
 */
static void hs_handshake_unfinished(struct http_sess *h)
{
    h->sni = tls_sni(h->ssl);
    h->txn.bytes_in = tls_bytes_read(h->ssl);
    h->txn.bytes_out = tls_bytes_written(h->ssl);
}

/* The TLS handshake with the client finished. */
static void hs_handshake_done(struct session *s)
{
    struct http_sess *h = s->http;
    const char *sni = tls_sni(h->ssl);

    h->sni = sni;
    metrics_handshake(s->l, hs_usec_since(&h->handshake_started), true);
    h->tls_version = tls_version_name(h->ssl);
    h->tls_cipher = tls_cipher_name(h->ssl);
    log_debug("session %llx: TLS %s %s SNI %s in %ld ms", (unsigned long long)s->id, h->tls_version,
              h->tls_cipher, h->sni[0] ? h->sni : "(none)",
              (long)(hs_usec_since(&h->handshake_started) / 1000));
    hs_wait_next(s);
    hs_process_input(s);
}

static void hs_on_client_event(struct bufferevent *bev, short what, void *arg)
{
    struct session *s = arg;
    struct http_sess *h = s->http;
    char why[256];

    if (what & BEV_EVENT_CONNECTED) {
        http_io_tls_kick(bev); /* the first request may have come with the handshake's end */
        hs_handshake_done(s);
        return;
    }
    if (h->phase == HTTP_CLOSING) {
        session_close(s, h->txn.result ? h->txn.result : "done");
        return;
    }
    if (h->phase == HTTP_HANDSHAKE) {
        tls_bev_handshake_error(bev, why, sizeof(why));
        hs_handshake_unfinished(h);
        log_info("session %llx: listener %s: TLS handshake failed: %s (SNI %s)",
                 (unsigned long long)s->id, s->l->name,
                 (what & BEV_EVENT_EOF) && why[0] == '\0' ? "client closed" : why,
                 h->sni[0] ? h->sni : "none");
        h->txn.result = "tls-handshake-failed";
        metrics_handshake(s->l, hs_usec_since(&h->handshake_started), false);
        session_close(s, "tls-handshake-failed");
        return;
    }
    if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_READING) &&
        (h->phase == HTTP_EXCHANGE || h->phase == HTTP_CONNECT) && h->txn.req_done) {
        /*
         * A client that half-closes after its request still gets the
         * response. Only an EOF while reading is that: libevent's TLS
         * bufferevent reports a write to a closed or reset connection as an
         * EOF while writing (a dirty shutdown), and stops writing, so taking
         * it for a half-close left an abandoned download waiting for
         * timeouts.idle. It ends the session below.
         */
        h->close_after = true;
        h->txn.client_keep_alive = false;
        return;
    }
    if (h->phase == HTTP_WAIT_HEAD && !timerisset(&h->txn.started)) {
        session_close(s, "done"); /* closed between requests: the normal end */
        return;
    }
    if (h->phase == HTTP_WAIT_HEAD)
        hs_count_unparsed(s); /* closed in the middle of a head */
    if (h->txn.result == NULL)
        h->txn.result = (what & BEV_EVENT_EOF) ? "client-closed" : "client-error";
    session_close(s, h->txn.result);
}

/*
 * Opens the client's bufferevent on the accepted socket: TLS or plain. bio
 * (TLS only, owned from here on, may be NULL): the BIO to read the socket
 * through, a replay BIO when a passthrough listener already read the
 * ClientHello.
 */
static void hs_open_client(struct session *s, BIO *bio)
{
    struct http_sess *h = s->http;
    struct event_base *base = s->w->base;
    size_t max = s->l->http.max_header_bytes;

    if (h->tls) {
        h->ssl = tls_server_ssl_new(s->l);
        if (h->ssl == NULL) {
            log_ssl_error("session %llx: cannot create a TLS session", (unsigned long long)s->id);
            BIO_free(bio);
            session_close(s, "out-of-memory");
            return;
        }
        if (bio != NULL)
            SSL_set_bio(h->ssl, bio, bio); /* libevent keeps it: BIO_get_fd is s->fd */
        s->client.bev = bufferevent_openssl_socket_new(
            base, s->fd, h->ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
        if (s->client.bev == NULL) {
            SSL_free(h->ssl);
            h->ssl = NULL;
            session_close(s, "out-of-memory");
            return;
        }
        bufferevent_openssl_set_allow_dirty_shutdown(s->client.bev, 1);
        http_io_tls_read_ahead(s->client.bev);
        h->phase = HTTP_HANDSHAKE;
        gettimeofday(&h->handshake_started, NULL);
        session_set_timer(s, s->conf->timeouts.handshake);
    } else {
        s->client.bev = bufferevent_socket_new(base, s->fd, BEV_OPT_CLOSE_ON_FREE);
        if (s->client.bev == NULL) {
            session_close(s, "out-of-memory");
            return;
        }
        h->phase = HTTP_WAIT_HEAD;
        session_set_timer(s, s->conf->timeouts.http_request);
    }
    s->fd = -1; /* the bufferevent owns it now */
    bufferevent_setcb(s->client.bev, hs_on_client_read, hs_on_client_write, hs_on_client_event, s);
    /* Bound what a client can make us hold: one head, a bit more than the limit. */
    bufferevent_setwatermark(s->client.bev, EV_READ, 0, max + 1 > 16384 ? max + 1 : 16384);
    /* Resume a throttled server once the client has taken half of what waits. */
    bufferevent_setwatermark(s->client.bev, EV_WRITE, HTTP_HIGH_WATER / 2, 0);
    bufferevent_enable(s->client.bev, EV_READ | EV_WRITE);
}

/*
 * The PROXY header of a balancer in front: peeked, parsed, then exactly its
 * bytes consumed, so the TLS handshake starts on the very next byte.
 */
static void hs_on_proxy_readable(evutil_socket_t fd, short what, void *arg)
{
    struct session *s = arg;
    struct http_sess *h = s->http;
    uint8_t buf[HTTP_MAX_PROXY_HDR];
    struct pp_info info;
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        session_close(s, "client-closed-early");
        return;
    }
    switch (pp_parse(buf, (size_t)n, s->l->proxy_protocol, &info)) {
    case PP_NEED_MORE:
        if ((size_t)n < sizeof(buf))
            return;
        /* fall through */
    case PP_BAD:
    case PP_ABSENT:
        log_info("session %llx: listener %s: missing or malformed PROXY header: closing",
                 (unsigned long long)s->id, s->l->name);
        session_close(s, "proxy-header-bad");
        return;
    case PP_OK:
        break;
    }
    if (recv(fd, buf, info.consumed, 0) != (ssize_t)info.consumed) {
        session_close(s, "client-error");
        return;
    }
    if (!info.local) {
        s->client_addr = info.src;
        s->local = info.dst;
    }
    event_free(h->pp_ev);
    h->pp_ev = NULL;
    hs_open_client(s, NULL);
}

/* The mode state of a new client connection, or NULL (the session is closed). */
static struct http_sess *hs_new(struct session *s)
{
    struct http_sess *h = calloc(1, sizeof(*h));
    int one = 1;

    /* Responses are written whole: send them now, not after the client's delayed ACK. */
    (void)setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    if (h == NULL) {
        session_close(s, "out-of-memory");
        return NULL;
    }
    s->http = h;
    h->txn.rule = -1;
    h->sni = "";
    h->tls = s->l->has_tls && s->l->mode != MODE_HTTP;
    return h;
}

/* See http_session.h. */
void http_start_terminated(struct session *s, BIO *bio)
{
    struct http_sess *h = hs_new(s);

    if (h == NULL || !h->tls) {
        BIO_free(bio);
        if (h != NULL)
            session_close(s, "internal-error"); /* validation allows TLS listeners only */
        return;
    }
    /*
     * The client already sent all it will before our ServerHello, so the
     * socket may never turn readable: the handshake is driven by the write
     * event hs_open_client enables, which fires at once.
     */
    hs_open_client(s, bio);
}

static void http_start(struct session *s)
{
    struct http_sess *h = hs_new(s);

    if (h == NULL)
        return;
    if (s->l->proxy_protocol == PP_OFF) {
        hs_open_client(s, NULL);
        return;
    }
    h->phase = HTTP_PROXY_HDR;
    /* Edge-triggered: bytes we only peeked must not wake us again and again. */
    h->pp_ev = event_new(s->w->base, s->fd, EV_READ | EV_PERSIST | EV_ET, hs_on_proxy_readable, s);
    if (h->pp_ev == NULL || event_add(h->pp_ev, NULL) < 0) {
        session_close(s, "out-of-memory");
        return;
    }
    session_set_timer(s, s->conf->timeouts.handshake);
}

/* The exchange has been idle: how long, against timeouts.idle. Returns 1 when it closed. */
static int hs_idle_expired(struct session *s)
{
    unsigned limit = s->conf->timeouts.idle;
    long idle = hs_ms_since(s, &s->last_io);

    if (idle < (long)limit) {
        session_set_timer(s, limit - (unsigned)idle);
        return 0;
    }
    return 1;
}

static void http_on_timer(struct session *s)
{
    struct http_sess *h = s->http;

    switch (h->phase) {
    case HTTP_PROXY_HDR:
    case HTTP_HANDSHAKE:
        hs_handshake_unfinished(h);
        log_info("session %llx: listener %s: TLS handshake not complete in time: closing (SNI %s)",
                 (unsigned long long)s->id, s->l->name, h->sni[0] ? h->sni : "none");
        h->txn.result = "timeout-handshake";
        session_close(s, "timeout-handshake");
        return;
    case HTTP_WAIT_HEAD:
        if (s->client.throttled) {
            log_info("session %llx: listener %s: client left its answers unread for %u ms: "
                     "closing",
                     (unsigned long long)s->id, s->l->name, s->conf->timeouts.idle);
            session_close(s, "timeout-client");
            return;
        }
        if (!timerisset(&h->txn.started)) {
            /* No request to log: the end of an idle connection is not an event worth info. */
            log_debug("session %llx: listener %s: no request in %u ms: closing",
                      (unsigned long long)s->id, s->l->name,
                      h->nrequests == 0 ? s->conf->timeouts.http_request
                                        : s->conf->timeouts.http_keepalive);
            session_close(s, "keepalive-timeout");
            return;
        }
        log_info("session %llx: listener %s: request head not complete in time: answering 408",
                 (unsigned long long)s->id, s->l->name);
        hs_count_unparsed(s); /* what the slow head got to, for the log line */
        hs_local_reply(s, 408, NULL, "timeout-request", true);
        return;
    case HTTP_CONNECT:
        http_upstream_connect_timeout(s);
        return;
    case HTTP_EXCHANGE:
        if (!hs_idle_expired(s))
            return;
        log_info("session %llx: server %s/%s: no response in %u ms", (unsigned long long)s->id,
                 s->backend->name, s->srv ? s->srv->name : "-", s->conf->timeouts.idle);
        http_exchange_failed(s, 504, "timeout-server");
        return;
    case HTTP_TUNNEL:
        relay_on_timer(s);
        return;
    case HTTP_CLOSING:
        session_close(s,
                      h->lingering ? (h->txn.result ? h->txn.result : "done") : "timeout-closing");
        return;
    }
}

/* At close: a request cut short still gets its line; a failed handshake gets one too. */
static void http_log(const struct session *s)
{
    struct http_sess *h = s->http;

    if (h == NULL)
        return;
    if (h->phase == HTTP_TUNNEL)
        metrics_bytes(s->l, s->client.bytes_read, s->server.bytes_read);
    if (h->phase == HTTP_TUNNEL || h->txn.logged)
        return;
    if (timerisset(&h->txn.started) || h->txn.result != NULL) {
        if (!timerisset(&h->txn.started))
            h->txn.started = s->started;
        if (h->txn.result == NULL)
            h->txn.result = s->result;
        hs_log_txn((struct session *)s);
    }
}

static void http_free(struct session *s)
{
    struct http_sess *h = s->http;

    server_queue_session_end(s);
    if (h == NULL)
        return;
    if (h->pp_ev != NULL)
        event_free(h->pp_ev);
    free(h->txn.req_head);
    free(h->txn.names);
    free(h);
    s->http = NULL;
}

/* The worker stops: a connection idle between requests ends now; others finish their request. */
static void http_on_stop(struct session *s)
{
    struct http_sess *h = s->http;

    if (h != NULL && h->phase == HTTP_WAIT_HEAD && !timerisset(&h->txn.started) && h->nrequests > 0)
        session_close(s, "stopping");
}

const struct session_ops http_ops = {
    .name = "http",
    .start = http_start,
    .on_timer = http_on_timer,
    .connected = NULL,
    .log = http_log,
    .free = http_free,
    .on_stop = http_on_stop,
    .opens_client = true,
};
