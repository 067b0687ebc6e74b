/*
 * The heads the gateway sends on: a request head toward the server and a
 * response head toward the client. Both are rebuilt from the parsed head,
 * never copied blindly: hop-by-hop headers (RFC 9110 §7.6.1) stay on their
 * hop, the forwarded headers say who the client was, and the response gets
 * the sticky cookie, HSTS and our connection decision.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "http/http_engine.h"
#include "http_rules.h"

/* Heads up to this are built on the stack: only their exact size is allocated. */
#define FWD_STACK_HEAD 16384

/* A head being written into a fixed-size buffer. */
struct head_out {
    char *buf;
    size_t len, cap;
    bool overflow;
};

static void out_add(struct head_out *o, const char *p, size_t n)
{
    if (o->overflow || o->len + n > o->cap) {
        o->overflow = true;
        return;
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
}

static void out_str(struct head_out *o, const char *s)
{
    out_add(o, s, strlen(s));
}

static void out_hstr(struct head_out *o, struct http_str s)
{
    out_add(o, s.p, s.len);
}

/* Appends "Name: value\r\n". */
static void out_header(struct head_out *o, const char *name, const char *value)
{
    out_str(o, name);
    out_add(o, ": ", 2);
    out_str(o, value);
    out_add(o, "\r\n", 2);
}

/*
 * Header name s is lit (a string literal), case-insensitively. The length is
 * compared first: most names differ in length, and the heads are rebuilt per
 * request, header by header.
 */
#define NAME_IS(s, lit) ((s).len == sizeof(lit) - 1 && http_str_eq_nocase((s), (lit)))

/* Headers that describe one hop only (RFC 9110 §7.6.1), never passed on. */
static bool is_hop_by_hop(struct http_str name)
{
    return NAME_IS(name, "connection") || NAME_IS(name, "keep-alive") ||
           NAME_IS(name, "proxy-connection") || NAME_IS(name, "te") || NAME_IS(name, "upgrade") ||
           NAME_IS(name, "proxy-authenticate") || NAME_IS(name, "proxy-authorization");
}

/* True when head h has a Connection header: only then can it nominate others. */
static bool has_connection(const struct http_head *h)
{
    for (size_t i = 0; i < h->nheaders; i++)
        if (NAME_IS(h->headers[i].name, "connection"))
            return true;
    return false;
}

/*
 * A header the message's Connection header names as hop-by-hop ("Connection:
 * close, X-Foo" drops X-Foo). Framing and routing headers are never dropped
 * this way: a client must not be able to strip Content-Length or Host.
 * has_conn: has_connection(h), worked out once per head.
 */
static bool is_nominated(const struct http_head *h, bool has_conn, struct http_str name)
{
    if (!has_conn || NAME_IS(name, "content-length") || NAME_IS(name, "transfer-encoding") ||
        NAME_IS(name, "host"))
        return false;
    for (size_t i = 0; i < h->nheaders; i++) {
        char tok[64];

        if (!NAME_IS(h->headers[i].name, "connection") || name.len >= sizeof(tok))
            continue;
        memcpy(tok, name.p, name.len);
        tok[name.len] = '\0';
        if (http_list_has(h->headers[i].value, tok))
            return true;
    }
    return false;
}

/* The forwarded headers we replace (or extend, for a trusted balancer in front). */
static bool is_forwarded_header(struct http_str name)
{
    return NAME_IS(name, "x-forwarded-for") || NAME_IS(name, "x-forwarded-proto") ||
           NAME_IS(name, "x-forwarded-host") || NAME_IS(name, "forwarded");
}

/* Writes X-Forwarded-For/-Proto/-Host and Forwarded. */
static void out_forwarded(struct head_out *o, const struct http_head *h, const struct http_fwd *f)
{
    const struct http_header *prior_xff = NULL, *prior_fwd = NULL, *prior_proto = NULL;
    const struct http_header *prior_host = NULL;
    struct http_str none = {"", 0};
    char value[2048];
    int n;

    /* The first of each, as http_find_header would find them, in one pass. */
    for (size_t i = h->nheaders; i-- > 0;) {
        const struct http_header *hd = &h->headers[i];

        if (NAME_IS(hd->name, "x-forwarded-for"))
            prior_xff = hd;
        else if (NAME_IS(hd->name, "forwarded"))
            prior_fwd = hd;
        else if (NAME_IS(hd->name, "x-forwarded-proto"))
            prior_proto = hd;
        else if (NAME_IS(hd->name, "x-forwarded-host"))
            prior_host = hd;
    }

    n = http_xff_value(f->client, prior_xff && f->keep_prior ? prior_xff->value : none,
                       f->keep_prior, value, sizeof(value));
    if (n >= 0)
        out_header(o, "X-Forwarded-For", value);
    if (f->keep_prior && prior_proto != NULL) {
        out_str(o, "X-Forwarded-Proto: ");
        out_hstr(o, prior_proto->value);
        out_add(o, "\r\n", 2);
    } else {
        out_header(o, "X-Forwarded-Proto", f->proto);
    }
    if (f->keep_prior && prior_host != NULL) {
        out_str(o, "X-Forwarded-Host: ");
        out_hstr(o, prior_host->value);
        out_add(o, "\r\n", 2);
    } else if (h->host.len > 0) {
        out_str(o, "X-Forwarded-Host: ");
        out_hstr(o, h->host);
        out_add(o, "\r\n", 2);
    }
    n = http_forwarded_value(f->client, f->proto, h->host,
                             prior_fwd && f->keep_prior ? prior_fwd->value : none, f->keep_prior,
                             value, sizeof(value));
    if (n >= 0)
        out_header(o, "Forwarded", value);
}

char *http_forward_request(const struct http_head *h, const struct http_fwd *f, size_t *len)
{
    char stack[FWD_STACK_HEAD];
    struct head_out o = {.cap = h->head_len + 8192};
    const struct http_header *upgrade = f->upgrade ? http_find_header(h, "upgrade") : NULL;
    bool has_conn = has_connection(h);
    char *head;

    /* Usual heads: the exact size (a few hundred bytes, a fast allocation), not head + 8 KiB. */
    o.buf = o.cap <= sizeof(stack) ? stack : malloc(o.cap);
    if (o.buf == NULL)
        return NULL;
    out_hstr(&o, h->method);
    out_add(&o, " ", 1);
    out_hstr(&o, h->target);
    out_str(&o, h->version_minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
    for (size_t i = 0; i < h->nheaders; i++) {
        const struct http_header *hd = &h->headers[i];

        if (is_hop_by_hop(hd->name) || is_nominated(h, has_conn, hd->name))
            continue;
        if (f->add_forwarded && is_forwarded_header(hd->name))
            continue;
        out_hstr(&o, hd->name);
        out_add(&o, ": ", 2);
        out_hstr(&o, hd->value);
        out_add(&o, "\r\n", 2);
    }
    if (upgrade != NULL) {
        out_str(&o, "Connection: upgrade\r\nUpgrade: ");
        out_hstr(&o, upgrade->value);
        out_add(&o, "\r\n", 2);
    } else if (h->version_minor == 0) {
        out_str(&o, "Connection: close\r\n");
    }
    if (f->add_forwarded)
        out_forwarded(&o, h, f);
    out_add(&o, "\r\n", 2);
    if (o.overflow) {
        if (o.buf != stack)
            free(o.buf);
        return NULL;
    }
    if (o.buf != stack) {
        *len = o.len;
        return o.buf;
    }
    if ((head = malloc(o.len)) != NULL)
        memcpy(head, o.buf, o.len);
    *len = o.len;
    return head;
}

/* Appends the decimal digits of v. */
static void out_uint(struct head_out *o, unsigned v)
{
    char digits[16];
    size_t n = sizeof(digits);

    do {
        digits[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    out_add(o, digits + n, sizeof(digits) - n);
}

/*
 * Built in one buffer and appended at once: one evbuffer chain (one TLS
 * record with a small body behind it), no printf.
 */
int http_forward_response(struct evbuffer *out, const struct http_head *h,
                          const struct http_resp_extra *x)
{
    char stack[FWD_STACK_HEAD];
    const char *reason = h->reason.len > 0 ? NULL : http_reason(h->status);
    /* Each header may grow by ": " for ":" and CRLF for LF; 128 covers the fixed lines. */
    struct head_out o = {
        .cap = h->head_len + 3 * h->nheaders + 128 + (reason ? strlen(reason) : 0) +
               (x->set_cookie ? strlen(x->set_cookie) : 0) + (x->hsts ? strlen(x->hsts) : 0),
    };
    bool upgrading = h->status == 101;
    bool has_conn = has_connection(h), has_hsts = false;
    int r;

    o.buf = o.cap <= sizeof(stack) ? stack : malloc(o.cap);
    if (o.buf == NULL)
        return -1;
    out_str(&o, "HTTP/1.1 ");
    out_uint(&o, h->status);
    out_add(&o, " ", 1);
    if (reason == NULL)
        out_hstr(&o, h->reason);
    else
        out_str(&o, reason);
    out_add(&o, "\r\n", 2);
    for (size_t i = 0; i < h->nheaders; i++) {
        const struct http_header *hd = &h->headers[i];

        if (!upgrading && (is_hop_by_hop(hd->name) || is_nominated(h, has_conn, hd->name)))
            continue;
        if (NAME_IS(hd->name, "strict-transport-security"))
            has_hsts = true;
        out_hstr(&o, hd->name);
        out_add(&o, ": ", 2);
        out_hstr(&o, hd->value);
        out_add(&o, "\r\n", 2);
    }
    if (x->set_cookie != NULL)
        out_header(&o, "Set-Cookie", x->set_cookie);
    if (x->hsts != NULL && !has_hsts)
        out_header(&o, "Strict-Transport-Security", x->hsts);
    if (x->close && !upgrading)
        out_str(&o, "Connection: close\r\n");
    else if (x->keep_alive_10)
        out_str(&o, "Connection: keep-alive\r\n");
    out_add(&o, "\r\n", 2);
    r = o.overflow || o.len > INT_MAX || evbuffer_add(out, o.buf, o.len) != 0 ? -1 : (int)o.len;
    if (o.buf != stack)
        free(o.buf);
    return r;
}
