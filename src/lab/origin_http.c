/*
 * The origin's HTTP/1.1 request-head parser, chunked-body decoder, response
 * and JSON rendering, and WebSocket frame helpers. Pure functions over
 * caller-owned memory; nothing here does I/O.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/evp.h>

#include "origin_http.h"

/* States of struct ohttp_chunked; 0 must be the start. */
enum {
    CH_SIZE,          /* hex digits of a chunk size */
    CH_EXT,           /* chunk extensions (or whitespace) up to LF */
    CH_SIZE_LF,       /* CR seen after the size, LF expected */
    CH_DATA,          /* chunk data */
    CH_DATA_CR,       /* CRLF after chunk data */
    CH_DATA_LF,       /* LF after the CR after chunk data */
    CH_TRAILER_START, /* start of a trailer line, or the final blank line */
    CH_TRAILER,       /* inside a trailer line */
    CH_END_LF,        /* CR of the final blank line seen, LF expected */
};

/* True for RFC 9110 tchar: the bytes a method or field name may hold. */
static inline bool is_tchar(unsigned char c)
{
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
        return true;
    if (c >= '0' && c <= '9')
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

bool ostr_ieq(struct ostr s, const char *lit)
{
    size_t n = strlen(lit);

    return s.len == n && strncasecmp(s.p, lit, n) == 0;
}

/* True if the comma-separated list v holds tok (ASCII case-insensitively). */
static bool list_has(struct ostr v, const char *tok)
{
    const char *p = v.p, *end = v.p + v.len;

    while (p < end) {
        const char *e = memchr(p, ',', (size_t)(end - p));
        struct ostr t;

        if (e == NULL)
            e = end;
        t.p = p;
        t.len = (size_t)(e - p);
        while (t.len > 0 && (*t.p == ' ' || *t.p == '\t')) {
            t.p++;
            t.len--;
        }
        while (t.len > 0 && (t.p[t.len - 1] == ' ' || t.p[t.len - 1] == '\t'))
            t.len--;
        if (ostr_ieq(t, tok))
            return true;
        p = e + 1;
    }
    return false;
}

/* True if the last element of the comma-separated list v is tok. */
static bool list_last_is(struct ostr v, const char *tok)
{
    const char *p = v.p + v.len;
    struct ostr t;

    while (p > v.p && p[-1] != ',')
        p--;
    t.p = p;
    t.len = (size_t)(v.p + v.len - p);
    while (t.len > 0 && (*t.p == ' ' || *t.p == '\t')) {
        t.p++;
        t.len--;
    }
    return ostr_ieq(t, tok);
}

size_t ohttp_scan_head(struct ohttp_scan *s, struct evbuffer *buf, size_t limit)
{
    size_t len = evbuffer_get_length(buf);

    if (len > limit)
        len = limit;
    while (s->scanned < len) {
        struct evbuffer_iovec v[8];
        struct evbuffer_ptr ptr;
        int n, i;

        if (evbuffer_ptr_set(buf, &ptr, s->scanned, EVBUFFER_PTR_SET) < 0)
            return 0;
        n = evbuffer_peek(buf, (ev_ssize_t)(len - s->scanned), &ptr, v, 8);
        if (n <= 0)
            return 0;
        if (n > 8)
            n = 8;
        for (i = 0; i < n && s->scanned < len; i++) {
            const char *p = v[i].iov_base, *q = p, *e;
            size_t m = v[i].iov_len, base = s->scanned;

            if (m > len - base)
                m = len - base;
            e = p + m;
            while ((q = memchr(q, '\n', (size_t)(e - q))) != NULL) {
                size_t pos = base + (size_t)(q - p);
                char before = q > p ? q[-1] : s->prev;

                /* "\n\n" or "\n\r\n": the blank line ending the head. */
                if (s->have_nl &&
                    (pos == s->last_nl + 1 || (pos == s->last_nl + 2 && before == '\r'))) {
                    s->scanned = pos + 1;
                    return pos + 1;
                }
                s->have_nl = true;
                s->last_nl = pos;
                q++;
            }
            if (m > 0)
                s->prev = p[m - 1];
            s->scanned += m;
        }
    }
    return 0;
}

/* Appends h to req->hdrs, growing it; returns 0, or 431 / 500. */
static int req_add_header(struct ohttp_req *req, const struct ohttp_header *h)
{
    if (req->nhdrs == req->hcap) {
        size_t ncap = req->hcap ? req->hcap * 2 : 32;
        struct ohttp_header *n;

        if (req->hcap >= OHTTP_HEADERS_MAX)
            return 431;
        if (ncap > OHTTP_HEADERS_MAX)
            ncap = OHTTP_HEADERS_MAX;
        n = realloc(req->hdrs, ncap * sizeof(*n));
        if (n == NULL)
            return 500;
        req->hdrs = n;
        req->hcap = ncap;
    }
    req->hdrs[req->nhdrs++] = *h;
    return 0;
}

/* Parses a Content-Length value; returns 0 or -1 (empty, non-digit, over 2^62). */
static int parse_length(struct ostr v, uint64_t *out)
{
    uint64_t n = 0;
    size_t i;

    if (v.len == 0 || v.len > 19)
        return -1;
    for (i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return -1;
        n = n * 10 + (uint64_t)(v.p[i] - '0');
    }
    if (n > (UINT64_C(1) << 62))
        return -1;
    *out = n;
    return 0;
}

/* Framing facts gathered from the header lines of one request. */
struct head_facts {
    bool have_cl;      /* a Content-Length was seen */
    uint64_t cl;       /* its value */
    bool have_te;      /* a Transfer-Encoding was seen */
    bool te_chunked;   /* the last coding of the last Transfer-Encoding is chunked */
    bool conn_close;   /* Connection: close */
    bool conn_ka;      /* Connection: keep-alive */
    bool conn_upgrade; /* Connection: upgrade */
    bool up_ws;        /* Upgrade: websocket */
    bool ws_v13;       /* Sec-WebSocket-Version: 13 */
};

/* Interprets one header that matters for framing; returns 0 or 400. */
static int note_header(struct ohttp_req *req, struct head_facts *f, const struct ohttp_header *h)
{
    uint64_t n;

    switch (h->name.len) {
    case 6:
        if (ostr_ieq(h->name, "expect") && ostr_ieq(h->value, "100-continue"))
            req->expect_continue = true;
        break;
    case 7:
        if (ostr_ieq(h->name, "upgrade") && list_has(h->value, "websocket"))
            f->up_ws = true;
        break;
    case 10:
        if (ostr_ieq(h->name, "connection")) {
            f->conn_close |= list_has(h->value, "close");
            f->conn_ka |= list_has(h->value, "keep-alive");
            f->conn_upgrade |= list_has(h->value, "upgrade");
        }
        break;
    case 14:
        if (ostr_ieq(h->name, "content-length")) {
            if (parse_length(h->value, &n) < 0 || (f->have_cl && n != f->cl))
                return 400;
            f->have_cl = true;
            f->cl = n;
        }
        break;
    case 17:
        if (ostr_ieq(h->name, "transfer-encoding")) {
            f->have_te = true;
            f->te_chunked = list_last_is(h->value, "chunked");
        } else if (ostr_ieq(h->name, "sec-websocket-key")) {
            req->ws_key = h->value;
        }
        break;
    case 21:
        if (ostr_ieq(h->name, "sec-websocket-version"))
            f->ws_v13 = ostr_ieq(h->value, "13");
        break;
    }
    return 0;
}

/* Parses "METHOD SP target SP HTTP/1.x" in p[0..len); returns 0, 400 or 505. */
static int parse_request_line(const char *p, size_t len, struct ohttp_req *req)
{
    const char *end = p + len, *q = p, *t;

    while (q < end && is_tchar((unsigned char)*q))
        q++;
    if (q == p || q >= end || *q != ' ')
        return 400;
    req->method.p = p;
    req->method.len = (size_t)(q - p);
    t = ++q;
    while (q < end && *q != ' ') {
        if ((unsigned char)*q <= 0x20 || *q == 0x7f)
            return 400;
        q++;
    }
    if (q == t || q >= end)
        return 400;
    req->target.p = t;
    req->target.len = (size_t)(q - t);
    q++;
    req->version.p = q;
    req->version.len = (size_t)(end - q);
    if (req->version.len == 8 && memcmp(q, "HTTP/1.", 7) == 0 && (q[7] == '0' || q[7] == '1')) {
        req->minor = q[7] - '0';
    } else if (req->version.len == 8 && memcmp(q, "HTTP/", 5) == 0 && q[5] >= '0' && q[5] <= '9' &&
               q[6] == '.' && q[7] >= '0' && q[7] <= '9') {
        return 505;
    } else {
        return 400;
    }
    t = memchr(req->target.p, '?', req->target.len);
    req->path.p = req->target.p;
    req->path.len = t ? (size_t)(t - req->target.p) : req->target.len;
    return 0;
}

/* Parses one "name: value" line in p[0..len) into h; returns 0 or 400. */
static int parse_header_line(const char *p, size_t len, struct ohttp_header *h)
{
    const char *end = p + len, *q = p, *ve;

    if (*p == ' ' || *p == '\t')
        return 400; /* obs-fold */
    while (q < end && is_tchar((unsigned char)*q))
        q++;
    if (q == p || q >= end || *q != ':')
        return 400;
    h->name.p = p;
    h->name.len = (size_t)(q - p);
    q++;
    if (memchr(q, '\0', (size_t)(end - q)) != NULL || memchr(q, '\r', (size_t)(end - q)) != NULL)
        return 400;
    while (q < end && (*q == ' ' || *q == '\t'))
        q++;
    ve = end;
    while (ve > q && (ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
    h->value.p = q;
    h->value.len = (size_t)(ve - q);
    return 0;
}

int ohttp_parse_head(const char *buf, size_t len, struct ohttp_req *req)
{
    const char *p = buf, *end = buf + len;
    struct head_facts f = {0};
    bool first = true;
    int st;

    req->nhdrs = 0;
    req->body = OHTTP_BODY_NONE;
    req->content_length = 0;
    req->expect_continue = false;
    req->ws_upgrade = false;
    req->ws_key.p = NULL;
    req->ws_key.len = 0;
    for (;;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p)), *le;
        struct ohttp_header h;

        if (eol == NULL)
            return 400;
        le = eol;
        if (le > p && le[-1] == '\r')
            le--;
        if (first) {
            st = parse_request_line(p, (size_t)(le - p), req);
            first = false;
        } else if (le == p) {
            break; /* the blank line */
        } else {
            st = parse_header_line(p, (size_t)(le - p), &h);
            if (st == 0)
                st = req_add_header(req, &h);
            if (st == 0)
                st = note_header(req, &f, &h);
        }
        if (st != 0)
            return st;
        p = eol + 1;
    }
    if (f.have_te) {
        /* RFC 9112 6.1/6.3: both, or a final coding other than chunked, is unframeable. */
        if (f.have_cl || !f.te_chunked)
            return 400;
        req->body = OHTTP_BODY_CHUNKED;
    } else if (f.have_cl && f.cl > 0) {
        req->body = OHTTP_BODY_LENGTH;
        req->content_length = f.cl;
    }
    req->keep_alive = req->minor == 1 ? !f.conn_close : (f.conn_ka && !f.conn_close);
    req->is_head = ostr_ieq(req->method, "HEAD");
    req->ws_upgrade = f.up_ws && f.conn_upgrade && f.ws_v13 && req->minor == 1 &&
                      req->ws_key.len == 24 && req->body == OHTTP_BODY_NONE &&
                      req->method.len == 3 && memcmp(req->method.p, "GET", 3) == 0;
    return 0;
}

void ohttp_req_free(struct ohttp_req *req)
{
    free(req->hdrs);
    memset(req, 0, sizeof(*req));
}

/* Value of hex digit c, or -1. */
static inline int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Moves to the state after a complete chunk-size line. */
static void chunk_size_done(struct ohttp_chunked *c)
{
    c->line = 0;
    c->state = c->left == 0 ? CH_TRAILER_START : CH_DATA;
}

enum ohttp_status ohttp_chunked_feed(struct ohttp_chunked *c, const uint8_t *p, size_t n,
                                     size_t *used, size_t *data_off, size_t *data_len)
{
    size_t i = 0;
    int d;

    while (i < n) {
        unsigned char ch = p[i];

        if (c->state == CH_DATA) {
            size_t k = n - i < c->left ? n - i : (size_t)c->left;

            *data_off = i;
            *data_len = k;
            c->left -= k;
            if (c->left == 0)
                c->state = CH_DATA_CR;
            *used = i + k;
            return OHTTP_DATA;
        }
        i++;
        switch (c->state) {
        case CH_SIZE:
            if (++c->line > OHTTP_CHUNK_LINE)
                return OHTTP_BAD;
            if ((d = hexval(ch)) >= 0) {
                if (c->left >> 59)
                    return OHTTP_BAD; /* would pass 2^63 */
                c->left = c->left << 4 | (uint64_t)d;
                c->digits = true;
            } else if (!c->digits) {
                return OHTTP_BAD;
            } else if (ch == ';' || ch == ' ' || ch == '\t') {
                c->state = CH_EXT;
            } else if (ch == '\r') {
                c->state = CH_SIZE_LF;
            } else if (ch == '\n') {
                chunk_size_done(c);
            } else {
                return OHTTP_BAD;
            }
            break;
        case CH_EXT:
            if (++c->line > OHTTP_CHUNK_LINE || ch == '\0')
                return OHTTP_BAD;
            if (ch == '\n')
                chunk_size_done(c);
            break;
        case CH_SIZE_LF:
            if (ch != '\n')
                return OHTTP_BAD;
            chunk_size_done(c);
            break;
        case CH_DATA_CR:
            if (ch == '\r')
                c->state = CH_DATA_LF;
            else if (ch == '\n')
                goto next_chunk;
            else
                return OHTTP_BAD;
            break;
        case CH_DATA_LF:
            if (ch != '\n')
                return OHTTP_BAD;
        next_chunk:
            c->state = CH_SIZE;
            c->left = 0;
            c->line = 0;
            c->digits = false;
            break;
        case CH_TRAILER_START:
            if (ch == '\r') {
                c->state = CH_END_LF;
                break;
            }
            if (ch == '\n') {
                *used = i;
                return OHTTP_DONE;
            }
            c->state = CH_TRAILER;
            /* fall through */
        case CH_TRAILER:
            if (++c->trailers > OHTTP_HEAD_MAX || ch == '\0')
                return OHTTP_BAD;
            if (ch == '\n')
                c->state = CH_TRAILER_START;
            break;
        case CH_END_LF:
            if (ch != '\n')
                return OHTTP_BAD;
            *used = i;
            return OHTTP_DONE;
        default:
            return OHTTP_BAD;
        }
    }
    *used = n;
    return OHTTP_MORE;
}

enum ohttp_status ohttp_body_feed(struct ohttp_body_state *b, struct evbuffer *in, EVP_MD_CTX *md)
{
    for (;;) {
        struct evbuffer_iovec v[8];
        enum ohttp_status st = OHTTP_MORE;
        size_t drained = 0;
        int n, i;

        n = evbuffer_peek(in, -1, NULL, v, 8);
        if (n <= 0)
            return OHTTP_MORE;
        for (i = 0; i < n && i < 8 && st != OHTTP_DONE; i++) {
            const uint8_t *p = v[i].iov_base;
            size_t m = v[i].iov_len, off = 0;

            if (b->kind == OHTTP_BODY_LENGTH) {
                off = m < b->left ? m : (size_t)b->left;
                EVP_DigestUpdate(md, p, off);
                b->bytes += off;
                b->left -= off;
                if (b->left == 0)
                    st = OHTTP_DONE;
            }
            while (b->kind == OHTTP_BODY_CHUNKED && off < m && st != OHTTP_DONE) {
                size_t used = 0, doff = 0, dlen = 0;

                st = ohttp_chunked_feed(&b->chunk, p + off, m - off, &used, &doff, &dlen);
                if (st == OHTTP_BAD) {
                    evbuffer_drain(in, drained);
                    return OHTTP_BAD;
                }
                if (st == OHTTP_DATA) {
                    EVP_DigestUpdate(md, p + off + doff, dlen);
                    b->bytes += dlen;
                }
                off += used;
            }
            drained += off;
        }
        evbuffer_drain(in, drained);
        if (st == OHTTP_DONE)
            return OHTTP_DONE;
        if (drained == 0)
            return OHTTP_MORE; /* only empty blocks (e.g. one committed at EOF): wait */
    }
}

int ostr_to_u64(struct ostr s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;

    if (s.len == 0 || s.len > 13)
        return -1;
    for (i = 0; i < s.len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s.p[i] - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

int sbuf_reserve(struct sbuf *b, size_t n)
{
    size_t ncap;
    char *np;

    if (b->cap - b->len >= n)
        return 0;
    if (b->oom)
        return -1;
    ncap = b->cap ? b->cap : 1024;
    while (ncap - b->len < n)
        ncap *= 2;
    np = realloc(b->p, ncap);
    if (np == NULL) {
        b->oom = true;
        return -1;
    }
    b->p = np;
    b->cap = ncap;
    return 0;
}

void sbuf_reset(struct sbuf *b)
{
    b->len = 0;
    b->oom = false;
}

void sbuf_add(struct sbuf *b, const void *p, size_t n)
{
    if (sbuf_reserve(b, n) < 0)
        return;
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

void sbuf_adds(struct sbuf *b, const char *s)
{
    sbuf_add(b, s, strlen(s));
}

void sbuf_add_u64(struct sbuf *b, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof(tmp);

    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    sbuf_add(b, tmp + i, sizeof(tmp) - i);
}

void sbuf_free(struct sbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* Length of the well-formed UTF-8 sequence (2..4 bytes) at p, or 0 (RFC 3629 table). */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xbf;
    size_t k, i;

    if (c >= 0xc2 && c <= 0xdf)
        k = 2;
    else if (c >= 0xe0 && c <= 0xef)
        k = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        k = 4;
    else
        return 0;
    if (n < k)
        return 0;
    if (c == 0xe0)
        lo = 0xa0; /* overlong */
    else if (c == 0xed)
        hi = 0x9f; /* surrogates */
    else if (c == 0xf0)
        lo = 0x90; /* overlong */
    else if (c == 0xf4)
        hi = 0x8f; /* above U+10FFFF */
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (i = 2; i < k; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return k;
}

void sbuf_add_json(struct sbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s, *end = p + n;

    if (sbuf_reserve(b, n + 2) < 0)
        return;
    b->p[b->len++] = '"';
    while (p < end) {
        const unsigned char *start = p;
        char esc[6] = {'\\', 'u', '0', '0', 0, 0};
        size_t k;

        while (p < end && *p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\')
            p++;
        sbuf_add(b, start, (size_t)(p - start));
        if (p == end)
            break;
        if (*p >= 0x80 && (k = utf8_len(p, (size_t)(end - p))) > 0) {
            sbuf_add(b, p, k);
            p += k;
            continue;
        }
        switch (*p) {
        case '"':
            sbuf_add(b, "\\\"", 2);
            break;
        case '\\':
            sbuf_add(b, "\\\\", 2);
            break;
        case '\n':
            sbuf_add(b, "\\n", 2);
            break;
        case '\r':
            sbuf_add(b, "\\r", 2);
            break;
        case '\t':
            sbuf_add(b, "\\t", 2);
            break;
        default:
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
            sbuf_add(b, esc, 6);
        }
        p++;
    }
    sbuf_add(b, "\"", 1);
}

int ows_parse_frame(const uint8_t *p, size_t n, struct ows_frame *f)
{
    size_t hl = 2;
    uint8_t op;

    if (n < 2)
        return 0;
    op = p[0] & 0x0f;
    if ((p[0] & 0x70) != 0 || (op > 2 && op < 8) || op > 10 || !(p[1] & 0x80))
        return -1;
    f->fin = (p[0] & 0x80) != 0;
    f->opcode = op;
    f->masked = true;
    f->len = p[1] & 0x7f;
    if (f->len == 126) {
        if (n < 4)
            return 0;
        f->len = (uint64_t)p[2] << 8 | p[3];
        hl = 4;
    } else if (f->len == 127) {
        int i;

        if (n < 10)
            return 0;
        if (p[2] & 0x80)
            return -1;
        f->len = 0;
        for (i = 2; i < 10; i++)
            f->len = f->len << 8 | p[i];
        hl = 10;
    }
    if (op >= 8 && (!f->fin || f->len > 125))
        return -1;
    if (n < hl + 4)
        return 0;
    memcpy(f->mask, p + hl, 4);
    return (int)(hl + 4);
}

/* XORs p[0..n) with a WebSocket mask, continuing at *mpos (bytes unmasked so far, mod 4). */
static void ows_unmask(uint8_t *p, size_t n, const uint8_t mask[4], unsigned *mpos)
{
    size_t i;

    for (i = 0; i < n; i++)
        p[i] ^= mask[(*mpos + i) & 3];
    *mpos = (unsigned)((*mpos + n) & 3);
}

size_t ows_frame_header(uint8_t *out, bool fin, uint8_t opcode, uint64_t len)
{
    int i;

    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

/* Queues a frame header for a payload of len bytes, then p[0..n) of it. */
static void ows_send(struct evbuffer *out, bool fin, uint8_t opcode, uint64_t len, const void *p,
                     size_t n)
{
    uint8_t hdr[10];

    evbuffer_add(out, hdr, ows_frame_header(hdr, fin, opcode, len));
    if (n > 0)
        evbuffer_add(out, p, n);
}

enum ows_result ows_echo(struct ows_state *ws, struct evbuffer *in, struct evbuffer *out,
                         uint8_t *scratch, size_t scratch_len, size_t out_high)
{
    static const uint8_t protocol_error[2] = {0x03, 0xea}; /* status 1002 */
    uint8_t ctl[125];
    struct ows_frame f;

    for (;;) {
        size_t len = evbuffer_get_length(in), k;
        unsigned mpos = 0;
        int hl;

        if (evbuffer_get_length(out) >= out_high)
            return OWS_FULL;
        if (ws->in_payload) {
            k = len < ws->left ? len : (size_t)ws->left;
            if (k > scratch_len)
                k = scratch_len;
            if (k == 0)
                return OWS_MORE;
            evbuffer_remove(in, scratch, k);
            ows_unmask(scratch, k, ws->mask, &ws->mpos);
            evbuffer_add(out, scratch, k);
            ws->left -= k;
            ws->in_payload = ws->left > 0;
            continue;
        }
        k = len < 14 ? len : 14;
        hl = ows_parse_frame(evbuffer_pullup(in, (ev_ssize_t)k), k, &f);
        if (hl == 0)
            return OWS_MORE;
        if (hl < 0) {
            ows_send(out, true, 8, 2, protocol_error, 2);
            return OWS_BAD;
        }
        if (f.opcode >= 8) {
            if (len < (size_t)hl + f.len)
                return OWS_MORE; /* control frames are handled whole (<= 125 bytes) */
            evbuffer_drain(in, (size_t)hl);
            evbuffer_remove(in, ctl, (size_t)f.len);
            ows_unmask(ctl, (size_t)f.len, f.mask, &mpos);
            if (f.opcode == 9) {
                ows_send(out, true, 10, f.len, ctl, (size_t)f.len);
            } else if (f.opcode == 8) {
                ows_send(out, true, 8, f.len, ctl, (size_t)f.len); /* echo the status */
                return OWS_CLOSE;
            }
            continue;
        }
        /* Data frame: echo its header now, its payload as it arrives. */
        evbuffer_drain(in, (size_t)hl);
        ows_send(out, f.fin, f.opcode, f.len, NULL, 0);
        memcpy(ws->mask, f.mask, 4);
        ws->mpos = 0;
        ws->left = f.len;
        ws->in_payload = f.len > 0;
    }
}

int ows_accept_key(struct ostr key, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char in[64 + sizeof(guid)], md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (key.len > 64)
        return -1;
    memcpy(in, key.p, key.len);
    memcpy(in + key.len, guid, sizeof(guid) - 1);
    if (EVP_Digest(in, key.len + sizeof(guid) - 1, md, &mdlen, EVP_sha1(), NULL) != 1 ||
        mdlen != 20)
        return -1;
    EVP_EncodeBlock((unsigned char *)out, md, 20); /* 28 chars and a NUL */
    return 0;
}

const char *ohttp_reason(int status)
{
    static const struct {
        int status;       /* code */
        const char *text; /* RFC 9110 reason phrase */
    } reasons[] = {
        {100, "Continue"},
        {101, "Switching Protocols"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {206, "Partial Content"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {303, "See Other"},
        {304, "Not Modified"},
        {307, "Temporary Redirect"},
        {308, "Permanent Redirect"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {413, "Content Too Large"},
        {418, "I'm a teapot"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {505, "HTTP Version Not Supported"},
    };
    size_t i;

    for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (reasons[i].status == status)
            return reasons[i].text;
    return "Status";
}

void ohttp_render_head(struct sbuf *b, int status, const char *ctype, int64_t clen,
                       const char *name, bool keep_alive, int minor)
{
    sbuf_add(b, "HTTP/1.1 ", 9);
    sbuf_add_u64(b, (uint64_t)status);
    sbuf_add(b, " ", 1);
    sbuf_adds(b, ohttp_reason(status));
    if (ctype != NULL) {
        sbuf_add(b, "\r\nContent-Type: ", 16);
        sbuf_adds(b, ctype);
    }
    if (clen >= 0) {
        sbuf_add(b, "\r\nContent-Length: ", 18);
        sbuf_add_u64(b, (uint64_t)clen);
    }
    sbuf_add(b, "\r\nX-Origin: ", 12);
    sbuf_adds(b, name);
    if (!keep_alive)
        sbuf_add(b, "\r\nConnection: close", 19);
    else if (minor == 0)
        sbuf_add(b, "\r\nConnection: keep-alive", 24);
    sbuf_add(b, "\r\n\r\n", 4);
}

/* Appends the "proxy" value of the echo. */
static void render_proxy(struct sbuf *b, const struct oecho *e)
{
    if (e->pp_version == 0) {
        sbuf_add(b, "null", 4);
        return;
    }
    sbuf_add(b, "{\"version\":", 11);
    sbuf_add_u64(b, (uint64_t)e->pp_version);
    if (e->pp_local) {
        sbuf_adds(b, ",\"local\":true,\"src\":null,\"dst\":null}");
        return;
    }
    /* Addresses are printed by inet_ntop: no byte needs escaping. */
    sbuf_add(b, ",\"local\":false,\"src\":\"", 22);
    sbuf_adds(b, e->pp_src);
    sbuf_add(b, "\",\"dst\":\"", 9);
    sbuf_adds(b, e->pp_dst);
    sbuf_add(b, "\"}", 2);
}

void ohttp_render_echo(struct sbuf *b, const struct ohttp_req *req, const struct oecho *e)
{
    size_t i;

    sbuf_add(b, "{\"origin\":\"", 11);
    sbuf_adds(b, e->name);
    sbuf_add(b, "\",\"method\":", 11);
    sbuf_add_json(b, req->method.p, req->method.len);
    sbuf_add(b, ",\"path\":", 8);
    sbuf_add_json(b, req->target.p, req->target.len);
    sbuf_add(b, ",\"version\":", 11);
    sbuf_add_json(b, req->version.p, req->version.len);
    sbuf_add(b, ",\"headers\":[", 12);
    for (i = 0; i < req->nhdrs; i++) {
        sbuf_add(b, i ? ",[" : "[", i ? 2 : 1);
        sbuf_add_json(b, req->hdrs[i].name.p, req->hdrs[i].name.len);
        sbuf_add(b, ",", 1);
        sbuf_add_json(b, req->hdrs[i].value.p, req->hdrs[i].value.len);
        sbuf_add(b, "]", 1);
    }
    sbuf_add(b, "],\"client\":\"", 12);
    sbuf_adds(b, e->client);
    sbuf_add(b, "\",\"proxy\":", 10);
    render_proxy(b, e);
    sbuf_add(b, ",\"tls\":", 7);
    otls_add_json(b, e->ssl);
    sbuf_add(b, ",\"body_bytes\":", 14);
    sbuf_add_u64(b, e->body_bytes);
    sbuf_add(b, ",\"body_sha256\":\"", 16);
    sbuf_adds(b, e->body_sha256);
    sbuf_add(b, "\",\"request_no\":", 15);
    sbuf_add_u64(b, e->request_no);
    sbuf_add(b, ",\"connection_id\":", 17);
    sbuf_add_u64(b, e->conn_id);
    sbuf_add(b, ",\"worker\":", 10);
    sbuf_add_u64(b, e->worker);
    sbuf_add(b, "}\n", 2);
}
